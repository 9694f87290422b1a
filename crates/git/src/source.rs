//! What to fetch and from where: a repository [`Source`], the [`Want`]ed ref or commit, and [`Credentials`].

use std::fmt;
use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;

use crate::{CommitId, Error};

/// Where a repository lives. Parsed once, so a fetch never has to guess.
///
/// Only https (and plain http when the mirror's options allow it) and local repositories are supported:
/// ssh and `git://` would need programs or ports ledge does not ship or open.
#[derive(Clone, PartialEq, Eq)]
pub struct Source {
    location: Location,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An `https://` or `http://` URL, without any user info.
    Network { url: String, https: bool },
    /// A repository on this machine: a work tree, its `.git` directory or a bare repository.
    Local(PathBuf),
}

impl Source {
    /// Parses `https://host/owner/repo(.git)`, `http://…`, `file:///path` or a plain filesystem path.
    ///
    /// A password embedded in the URL is refused: pass [`Credentials`] to the fetch instead, so the secret
    /// never ends up in a URL that may be printed.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |message: String| Error::InvalidInput { field: "source", message };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("the repository location is empty".into()));
        }
        let url = gix::url::parse(trimmed.as_bytes().as_bstr())
            .map_err(|err| invalid(format!("not a repository URL or path: {err}")))?;
        if url.password().is_some() {
            return Err(invalid("the URL embeds a password; pass the token as credentials instead".into()));
        }
        let location = match url.scheme {
            gix::url::Scheme::Https | gix::url::Scheme::Http => {
                let https = url.scheme == gix::url::Scheme::Https;
                if url.host().is_none_or(str::is_empty) {
                    return Err(invalid("the URL has no host".into()));
                }
                let mut url = url;
                url.set_user(None);
                Location::Network { url: url.to_bstring().to_string(), https }
            }
            gix::url::Scheme::File => {
                let path = gix::path::from_bstr(url.path.as_bstr())
                    .map_err(|_| invalid("the path is not valid for this platform".into()))?;
                Location::Local(path.into_owned())
            }
            other => {
                return Err(invalid(format!(
                    "the {} scheme is not supported; use https:// or a local path",
                    other.as_str()
                )));
            }
        };
        Ok(Source { location })
    }

    /// A repository on this machine.
    pub fn local(path: impl Into<PathBuf>) -> Self {
        Source { location: Location::Local(path.into()) }
    }

    /// The local path, if this is a local source.
    pub fn local_path(&self) -> Option<&Path> {
        match &self.location {
            Location::Local(path) => Some(path),
            Location::Network { .. } => None,
        }
    }

    /// Whether this source is fetched over the network.
    pub fn is_network(&self) -> bool {
        matches!(self.location, Location::Network { .. })
    }

    pub(crate) fn location(&self) -> &Location {
        &self.location
    }
}

impl std::str::FromStr for Source {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Source::parse(s)
    }
}

/// Prints the URL (which holds no secret: user info is stripped at parse time) or the path.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::Network { url, .. } => f.write_str(url),
            Location::Local(path) => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({self})")
    }
}

/// What to fetch from a source.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Want {
    /// Whatever the repository's `HEAD` points at (its default branch).
    Head,
    /// A ref: a full name (`refs/heads/main`, `refs/tags/v1`, `refs/pull/7/head`) or a branch name (`main`).
    Ref(String),
    /// A specific commit, e.g. the `after` of a GitHub push event.
    Commit(CommitId),
}

impl Want {
    /// A branch by its short name.
    pub fn branch(name: impl AsRef<str>) -> Self {
        Want::Ref(format!("refs/heads/{}", name.as_ref()))
    }

    /// The full name of the wanted ref (`HEAD` for [`Want::Head`]), validated; `None` for a commit.
    pub(crate) fn full_ref_name(&self) -> Result<Option<String>, Error> {
        let name = match self {
            Want::Commit(_) => return Ok(None),
            Want::Head => return Ok(Some("HEAD".to_owned())),
            Want::Ref(name) if name.starts_with("refs/") => name.clone(),
            Want::Ref(name) => format!("refs/heads/{name}"),
        };
        gix::validate::reference::name(name.as_bytes().into()).map_err(|err| Error::InvalidInput {
            field: "ref",
            message: format!("{name:?} is not a valid ref name: {err}"),
        })?;
        Ok(Some(name))
    }

    /// The ref in the mirror that pins what this want fetched, so it stays reachable and later fetches
    /// negotiate from it: the same name for refs, `refs/ledge/remote-head` for `HEAD`,
    /// `refs/ledge/commits/<sha>` for a commit.
    pub(crate) fn local_ref_name(&self) -> Result<String, Error> {
        Ok(match self {
            Want::Commit(id) => format!("refs/ledge/commits/{id}"),
            Want::Head => "refs/ledge/remote-head".to_owned(),
            Want::Ref(_) => self.full_ref_name()?.unwrap_or_default(),
        })
    }
}

/// Credentials for a private repository, e.g. a GitHub installation token.
///
/// `Debug` masks the secret; nothing in this crate logs or prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub(crate) username: String,
    pub(crate) secret: String,
}

impl Credentials {
    /// A GitHub App installation token or personal access token (username `x-access-token`).
    pub fn github_token(token: impl Into<String>) -> Self {
        Credentials { username: "x-access-token".to_owned(), secret: token.into() }
    }

    /// A username and password (or token) for HTTP basic authentication.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials { username: username.into(), secret: password.into() }
    }

    /// The username sent along with the secret.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("secret", &"***").finish()
    }
}
