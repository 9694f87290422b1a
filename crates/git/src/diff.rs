//! [`Mirror::diff`]: what changed between two commits, file by file, with rename detection.

use std::ops::ControlFlow;

use gix::ObjectId;
use gix::bstr::{BStr, ByteSlice};
use gix::diff::tree_with_rewrites::Change as RawChange;
use gix::object::tree::{EntryKind, EntryMode};

use crate::{BlobId, CommitId, Error, FileEntry, FileMode, Mirror};

/// One file-level change between two commits. Only regular and executable files appear: a file that
/// became a symlink is `Removed`, a symlink that became a file is `Added`, submodules never appear.
/// Paths that are not UTF-8 are left out, as [`list_files`](Mirror::list_files) leaves them out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    Added {
        file: FileEntry,
    },
    Modified {
        file: FileEntry,
    },
    Removed {
        path: String,
    },
    /// `from` was renamed to `to.path`; `modified` when the content changed too (a similarity match
    /// rather than an exact one).
    Renamed {
        from: String,
        to: FileEntry,
        modified: bool,
    },
}

impl Change {
    /// The path the change leaves in the new commit, or the removed path.
    pub fn path(&self) -> &str {
        match self {
            Change::Added { file } | Change::Modified { file } => &file.path,
            Change::Removed { path } => path,
            Change::Renamed { to, .. } => &to.path,
        }
    }
}

impl Mirror {
    /// The changes that turn `old`'s tree into `new`'s, sorted by [`Change::path`]. Both commits must be in
    /// the mirror (see [`fetch`](Self::fetch)); history between them is not needed.
    ///
    /// Renames are detected like git does by default: exact matches first, then pairs of removed and added
    /// files at least [`rename_similarity`](crate::MirrorOptions::rename_similarity) alike, up to
    /// [`rename_limit`](crate::MirrorOptions::rename_limit) candidates.
    pub fn diff(&self, old: CommitId, new: CommitId) -> Result<Vec<Change>, Error> {
        let repo = self.open_for(&old.to_hex())?;
        let old_tree = crate::object::commit_tree(&repo, old.0)?;
        let new_tree = crate::object::commit_tree(&repo, new.0)?;
        let backend = |err: gix::Error| Error::backend(format!("diffing {old} and {new}"), err);

        // Attributes would normally come from HEAD's index; a mirror has no meaningful HEAD, so start empty.
        let no_index = gix::index::State::new(repo.object_hash());
        let attributes = repo
            .attributes_only(&no_index, gix::worktree::stack::state::attributes::Source::IdMapping)
            .map_err(backend)?
            .detach();
        let mut resource_cache = gix::diff::resource_cache(
            &repo,
            gix::diff::blob::pipeline::Mode::ToGit,
            attributes,
            Default::default(),
        )
        .map_err(backend)?;
        let options = gix::diff::tree_with_rewrites::Options {
            location: Some(gix::diff::tree::recorder::Location::Path),
            rewrites: Some(gix::diff::Rewrites {
                copies: None,
                percentage: Some(self.options().rename_similarity),
                limit: self.options().rename_limit,
                track_empty: false,
            }),
        };
        let mut raw = Vec::new();
        gix::diff::tree_with_rewrites(
            gix::objs::TreeRefIter::from_bytes(&old_tree.data, repo.object_hash()),
            gix::objs::TreeRefIter::from_bytes(&new_tree.data, repo.object_hash()),
            &mut resource_cache,
            &mut Default::default(),
            &repo.objects,
            |change| {
                raw.push(change.into_owned());
                Ok(ControlFlow::Continue(()))
            },
            options,
        )
        .map_err(|err| Error::backend(format!("diffing {old} and {new}"), err))?;

        let mut changes = Vec::with_capacity(raw.len());
        for change in raw {
            if let Some(change) = file_change(&repo, change)? {
                changes.push(change);
            }
        }
        changes.sort_by(|a, b| a.path().cmp(b.path()));
        Ok(changes)
    }
}

fn file_mode(mode: EntryMode) -> Option<FileMode> {
    match mode.kind() {
        EntryKind::Blob => Some(FileMode::Regular),
        EntryKind::BlobExecutable => Some(FileMode::Executable),
        EntryKind::Tree | EntryKind::Link | EntryKind::Commit => None,
    }
}

fn utf8(path: &BStr) -> Option<String> {
    path.to_str().ok().map(str::to_owned)
}

/// The file at `location` as it is in the new commit, if it is a file with a UTF-8 path.
fn file_entry(
    repo: &gix::Repository,
    location: &BStr,
    mode: EntryMode,
    id: ObjectId,
) -> Result<Option<FileEntry>, Error> {
    let (Some(mode), Some(path)) = (file_mode(mode), utf8(location)) else {
        return Ok(None);
    };
    let size = crate::object::header(repo, id)?.size();
    Ok(Some(FileEntry { path, blob_id: BlobId(id), size, mode }))
}

fn removed(location: &BStr, mode: EntryMode) -> Option<Change> {
    file_mode(mode)?;
    Some(Change::Removed { path: utf8(location)? })
}

fn file_change(repo: &gix::Repository, change: RawChange) -> Result<Option<Change>, Error> {
    Ok(match change {
        RawChange::Addition { location, entry_mode, id, .. } => {
            file_entry(repo, location.as_ref(), entry_mode, id)?.map(|file| Change::Added { file })
        }
        RawChange::Deletion { location, entry_mode, .. } => removed(location.as_ref(), entry_mode),
        RawChange::Modification { location, previous_entry_mode, entry_mode, id, .. } => {
            let was_file = file_mode(previous_entry_mode).is_some();
            match (was_file, file_entry(repo, location.as_ref(), entry_mode, id)?) {
                (true, Some(file)) => Some(Change::Modified { file }),
                (false, Some(file)) => Some(Change::Added { file }),
                (true, None) => removed(location.as_ref(), previous_entry_mode),
                (false, None) => None,
            }
        }
        RawChange::Rewrite {
            source_location,
            source_entry_mode,
            source_id,
            location,
            entry_mode,
            id,
            ..
        } => {
            let from = file_mode(source_entry_mode).and(utf8(source_location.as_ref()));
            match (from, file_entry(repo, location.as_ref(), entry_mode, id)?) {
                (Some(from), Some(to)) => Some(Change::Renamed { from, to, modified: source_id != id }),
                (None, Some(file)) => Some(Change::Added { file }),
                (Some(from), None) => Some(Change::Removed { path: from }),
                (None, None) => None,
            }
        }
    })
}
