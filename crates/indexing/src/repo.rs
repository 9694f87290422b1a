//! Which repository of which organization: [`RepoRef`], the names derived from it (coordinator object,
//! mirror directory, artifact prefix), and [`org_of_owner`], today's mapping from GitHub to organizations.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::PipelineError;

/// The organization a repository owned by GitHub account `owner_login` belongs to.
///
/// Until the platform API maps GitHub App installations to organizations (issue 5), an organization is
/// its GitHub account: the owner's login, lowercased (GitHub logins are case-insensitive). This is the
/// one place that decides it; replace it with the installation → organization lookup.
pub fn org_of_owner(owner_login: &str) -> String {
    owner_login.to_ascii_lowercase()
}

/// A repository of an organization: `org` plus the repository key `<owner>/<name>`, both validated and
/// lowercased (GitHub names are case-insensitive, so `Octo/Hello` and `octo/hello` are one repository).
///
/// Every name derived from it is safe as a path component and an object key: the org and the owner are
/// letters, digits, `-` and `_`; the name may also hold `.` but is never only dots.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoRef {
    org: String,
    owner: String,
    name: String,
}

const MAX_PART: usize = 100;

fn check_part(field: &'static str, value: &str, allow_dot: bool) -> Result<(), PipelineError> {
    let valid_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (allow_dot && b == b'.');
    let valid = !value.is_empty()
        && value.len() <= MAX_PART
        && value.bytes().all(valid_byte)
        && !value.bytes().all(|b| b == b'.');
    if valid {
        Ok(())
    } else {
        Err(PipelineError::invalid(
            field,
            format!("{value:?} is not a valid name (1-{MAX_PART} letters, digits, '-', '_'{})", {
                if allow_dot { ", '.'" } else { "" }
            }),
        ))
    }
}

impl RepoRef {
    /// The repository `full_name` (`<owner>/<name>`) of organization `org`.
    pub fn new(org: &str, full_name: &str) -> Result<RepoRef, PipelineError> {
        let org = org.to_ascii_lowercase();
        check_part("org", &org, false)?;
        let Some((owner, name)) = full_name.split_once('/') else {
            return Err(PipelineError::invalid("repo", format!("{full_name:?} is not <owner>/<name>")));
        };
        let (owner, name) = (owner.to_ascii_lowercase(), name.to_ascii_lowercase());
        check_part("repo", &owner, false)?;
        check_part("repo", &name, true)?;
        Ok(RepoRef { org, owner, name })
    }

    /// A GitHub repository by its `full_name`, in the organization of its owner ([`org_of_owner`]).
    pub fn from_github(full_name: &str) -> Result<RepoRef, PipelineError> {
        let owner = full_name.split_once('/').map_or(full_name, |(owner, _)| owner);
        RepoRef::new(&org_of_owner(owner), full_name)
    }

    pub fn org(&self) -> &str {
        &self.org
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The repository key, `<owner>/<name>`: what indexes and vectors store as `repo`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The name of the repository's IndexingCoordinator object: `<org>:<owner>/<name>`.
    pub fn coordinator_name(&self) -> String {
        format!("{}:{}/{}", self.org, self.owner, self.name)
    }

    /// The bare mirror of the repository: `<data_dir>/mirrors/<org>/<owner>/<name>.git`.
    pub fn mirror_dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join("mirrors").join(&self.org).join(&self.owner).join(format!("{}.git", self.name))
    }

    /// The prefix of every artifact of the repository in the `artifacts` bucket:
    /// `orgs/<org>/repos/<owner>/<name>/`.
    pub fn artifact_prefix(&self) -> String {
        format!("orgs/{}/repos/{}/{}/", self.org, self.owner, self.name)
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.coordinator_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_github_repository_belongs_to_its_owner_lowercased() {
        let repo = RepoRef::from_github("Octo-Org/Hello.World").unwrap();
        assert_eq!((repo.org(), repo.key()), ("octo-org", "octo-org/hello.world".to_owned()));
        assert_eq!(repo.coordinator_name(), "octo-org:octo-org/hello.world");
        assert_eq!(repo.artifact_prefix(), "orgs/octo-org/repos/octo-org/hello.world/");
        assert_eq!(
            repo.mirror_dir(Path::new("/data")),
            Path::new("/data/mirrors/octo-org/octo-org/hello.world.git")
        );
        assert_eq!(RepoRef::from_github(".github/.github").ok(), None, "a dot in an owner");
        assert_eq!(RepoRef::from_github("octo/.github").unwrap().name(), ".github");
    }

    #[test]
    fn names_that_could_leave_their_directory_are_refused() {
        for bad in ["octo", "octo/", "/x", "octo/..", "../x", "octo/a/b", "octo/a b", "octo/é", "octo/a\0"] {
            assert!(RepoRef::new("octo", bad).is_err(), "{bad:?}");
        }
        assert!(RepoRef::new("", "octo/x").is_err());
        assert!(RepoRef::new("a.b", "octo/x").is_err());
        assert!(RepoRef::new("octo", &format!("octo/{}", "x".repeat(101))).is_err());
    }
}
