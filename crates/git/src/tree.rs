//! Listing a commit's files ([`Mirror::list_files`]), its `.gitignore` rules, and the filtered selection
//! of files to index ([`Mirror::select_files`]).

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice};
use gix::object::tree::EntryKind;

use crate::{BlobId, CommitId, Error, FileFilter, IgnoreRules, Mirror, SkipReason};

/// How a file is stored in git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileMode {
    Regular,
    Executable,
}

/// A regular or executable file of a commit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileEntry {
    /// Repository-relative, `/`-separated.
    pub path: String,
    pub blob_id: BlobId,
    /// Size in bytes, from the object header.
    pub size: u64,
    pub mode: FileMode,
}

/// A tree entry or file that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SkippedFile {
    /// Repository-relative; a non-UTF-8 path is shown lossily.
    pub path: String,
    pub reason: SkipReason,
}

/// Files of a commit, sorted by path, and what was skipped (also sorted by path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileListing {
    pub files: Vec<FileEntry>,
    pub skipped: Vec<SkippedFile>,
}

impl FileListing {
    /// The entry at `path`, if it is among the files.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.binary_search_by(|file| file.path.as_str().cmp(path)).ok().map(|i| &self.files[i])
    }

    /// Why `path` was skipped, if it was.
    pub fn skip_reason(&self, path: &str) -> Option<SkipReason> {
        self.skipped.iter().find(|skipped| skipped.path == path).map(|skipped| skipped.reason)
    }
}

/// `.gitignore` files larger than this are not read (no real one comes close).
const MAX_GITIGNORE_SIZE: u64 = 1024 * 1024;

struct WalkedEntry {
    path: BString,
    id: ObjectId,
    kind: EntryKind,
}

impl Mirror {
    /// Lists the regular and executable files of `commit`. Submodules, symlinks and non-UTF-8 paths are
    /// reported in [`FileListing::skipped`]. No filtering beyond that: see [`select_files`](Self::select_files).
    pub fn list_files(&self, commit: CommitId) -> Result<FileListing, Error> {
        let repo = self.open_for(&commit.to_hex())?;
        let entries = walk(&repo, commit)?;
        listing(&repo, &entries)
    }

    /// The `.gitignore` rules of `commit`: every `.gitignore` file in its tree, read from the object database.
    pub fn ignore_rules(&self, commit: CommitId) -> Result<IgnoreRules, Error> {
        let repo = self.open_for(&commit.to_hex())?;
        let entries = walk(&repo, commit)?;
        ignore_rules(&repo, &entries)
    }

    /// The files of `commit` worth indexing according to `filter`, and every other file with its reason:
    /// [`list_files`](Self::list_files), then [`FileFilter::check_path`] against the commit's own
    /// `.gitignore` rules, then [`FileFilter::check_content`] on each remaining blob (read whole: it is
    /// within the filter's size limit).
    pub fn select_files(&self, commit: CommitId, filter: &FileFilter) -> Result<FileListing, Error> {
        let repo = self.open_for(&commit.to_hex())?;
        let entries = walk(&repo, commit)?;
        let rules = if filter.options().respect_gitignore {
            ignore_rules(&repo, &entries)?
        } else {
            IgnoreRules::new()
        };
        let FileListing { files, mut skipped } = listing(&repo, &entries)?;
        let mut selected = Vec::with_capacity(files.len());
        for file in files {
            let reason = match filter.check_path(&file.path, file.size, &rules) {
                Some(reason) => Some(reason),
                None => {
                    let object = crate::object::find(&repo, file.blob_id.0)?;
                    filter.check_content(&object.data)
                }
            };
            match reason {
                Some(reason) => skipped.push(SkippedFile { path: file.path, reason }),
                None => selected.push(file),
            }
        }
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(FileListing { files: selected, skipped })
    }
}

/// Every non-tree entry of `commit`'s tree, recursively.
fn walk(repo: &gix::Repository, commit: CommitId) -> Result<Vec<WalkedEntry>, Error> {
    let root = crate::object::commit_tree(repo, commit.0)?;
    let mut out = Vec::new();
    let mut pending = vec![(root.id, BString::default())];
    while let Some((tree_id, prefix)) = pending.pop() {
        let object = crate::object::find(repo, tree_id)?;
        crate::object::expect_kind(tree_id, object.kind, gix::object::Kind::Tree)?;
        let tree = object.into_tree();
        for entry in tree.iter() {
            let entry = entry.map_err(|err| crate::object::read_error(tree_id, err))?;
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(entry.filename());
            let id = entry.oid().to_owned();
            match entry.mode().kind() {
                EntryKind::Tree => pending.push((id, path)),
                kind => out.push(WalkedEntry { path, id, kind }),
            }
        }
    }
    Ok(out)
}

fn listing(repo: &gix::Repository, entries: &[WalkedEntry]) -> Result<FileListing, Error> {
    let mut listing = FileListing::default();
    for entry in entries {
        let skip = |reason| SkippedFile { path: entry.path.to_str_lossy().into_owned(), reason };
        let mode = match entry.kind {
            EntryKind::Blob => FileMode::Regular,
            EntryKind::BlobExecutable => FileMode::Executable,
            EntryKind::Link => {
                listing.skipped.push(skip(SkipReason::Symlink));
                continue;
            }
            EntryKind::Commit => {
                listing.skipped.push(skip(SkipReason::Submodule));
                continue;
            }
            EntryKind::Tree => continue,
        };
        let Ok(path) = entry.path.to_str() else {
            listing.skipped.push(skip(SkipReason::NonUtf8Path));
            continue;
        };
        let size = crate::object::header(repo, entry.id)?.size();
        listing.files.push(FileEntry { path: path.to_owned(), blob_id: BlobId(entry.id), size, mode });
    }
    listing.files.sort_by(|a, b| a.path.cmp(&b.path));
    listing.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

fn ignore_rules(repo: &gix::Repository, entries: &[WalkedEntry]) -> Result<IgnoreRules, Error> {
    let mut rules = IgnoreRules::new();
    for entry in entries {
        let is_gitignore = entry.path.rsplit_str("/").next() == Some(b".gitignore".as_slice());
        if !is_gitignore || !matches!(entry.kind, EntryKind::Blob | EntryKind::BlobExecutable) {
            continue;
        }
        let Ok(path) = entry.path.to_str() else { continue };
        if crate::object::header(repo, entry.id)?.size() > MAX_GITIGNORE_SIZE {
            continue;
        }
        let object = crate::object::find(repo, entry.id)?;
        rules.add_file(path, &object.data);
    }
    Ok(rules)
}
