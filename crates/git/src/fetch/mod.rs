//! Fetching into a mirror: `local` copies from a repository on this machine, `network` speaks git's
//! protocol over https; both end by pinning the fetched commit with a ref.

pub(crate) mod local;
pub(crate) mod network;

use crate::{CommitId, Error, Want};

/// Points the mirror's ref for `want` at `commit`, so it stays reachable and later fetches negotiate from it.
pub(crate) fn pin(repo: &gix::Repository, want: &Want, commit: CommitId) -> Result<(), Error> {
    let name = want.local_ref_name()?;
    repo.reference(
        name.as_str(),
        commit.0,
        gix::refs::transaction::PreviousValue::Any,
        format!("ledge: fetched {commit}"),
    )
    .map_err(|err| Error::backend(format!("updating {name} in the mirror"), err))?;
    Ok(())
}
