//! Object lookups in a mirror with typed errors (missing, wrong kind, corrupt), and on-disk statistics.

use std::path::Path;

use gix::ObjectId;

use crate::{Error, MirrorStats};

/// Maps a gitoxide failure while reading object `id` to a corrupt-object error when gitoxide classifies
/// it so, or to a backend error otherwise.
pub(crate) fn read_error(id: ObjectId, err: gix::Error) -> Error {
    if err.dominant_class() == Some(gix::error::Class::Corruption) {
        Error::CorruptObject { id: id.to_string(), message: err.to_string() }
    } else {
        Error::backend(format!("reading object {id}"), err)
    }
}

/// The kind and size of `id`, from its header: the object is not decompressed.
pub(crate) fn header(repo: &gix::Repository, id: ObjectId) -> Result<gix::odb::find::Header, Error> {
    repo.try_find_header(id)
        .map_err(|err| read_error(id, err))?
        .ok_or_else(|| Error::MissingObject { id: id.to_string() })
}

pub(crate) fn find(repo: &gix::Repository, id: ObjectId) -> Result<gix::Object<'_>, Error> {
    repo.try_find_object(id)
        .map_err(|err| read_error(id, err))?
        .ok_or_else(|| Error::MissingObject { id: id.to_string() })
}

pub(crate) fn expect_kind(
    id: ObjectId,
    actual: gix::object::Kind,
    expected: gix::object::Kind,
) -> Result<(), Error> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::WrongObjectKind {
            id: id.to_string(),
            expected: kind_name(expected),
            actual: actual.to_string(),
        })
    }
}

fn kind_name(kind: gix::object::Kind) -> &'static str {
    match kind {
        gix::object::Kind::Blob => "blob",
        gix::object::Kind::Tree => "tree",
        gix::object::Kind::Commit => "commit",
        gix::object::Kind::Tag => "tag",
    }
}

/// The commit `id` in the mirror, with a tag peeled, or `MissingObject` / `WrongObjectKind`.
pub(crate) fn commit(repo: &gix::Repository, id: ObjectId) -> Result<gix::Commit<'_>, Error> {
    let object = find(repo, id)?;
    match object.kind {
        gix::object::Kind::Commit => Ok(object.into_commit()),
        gix::object::Kind::Tag => {
            let peeled = object.peel_to_commit().map_err(|err| read_error(id, err))?;
            Ok(peeled)
        }
        other => {
            Err(Error::WrongObjectKind { id: id.to_string(), expected: "commit", actual: other.to_string() })
        }
    }
}

/// The root tree of commit `id`.
pub(crate) fn commit_tree(repo: &gix::Repository, id: ObjectId) -> Result<gix::Tree<'_>, Error> {
    let commit = commit(repo, id)?;
    let tree_id = commit.tree_id().map_err(|err| read_error(id, err))?.detach();
    let tree = find(repo, tree_id)?;
    expect_kind(tree_id, tree.kind, gix::object::Kind::Tree)?;
    Ok(tree.into_tree())
}

/// Counts packs, packed objects and loose objects under `git_dir/objects`.
pub(crate) fn stats(git_dir: &Path) -> Result<MirrorStats, Error> {
    let objects = git_dir.join("objects");
    let mut stats = MirrorStats::default();
    if !objects.is_dir() {
        return Ok(stats);
    }
    let io = |path: &Path, err| Error::io(format!("listing {}", path.display()), err);
    let pack_dir = objects.join("pack");
    if pack_dir.is_dir() {
        for entry in std::fs::read_dir(&pack_dir).map_err(|err| io(&pack_dir, err))? {
            let path = entry.map_err(|err| io(&pack_dir, err))?.path();
            if path.extension().is_some_and(|ext| ext == "idx") {
                let index = gix_pack::index::File::at(&path, gix::hash::Kind::Sha1)
                    .map_err(|err| Error::backend(format!("reading pack index {}", path.display()), err))?;
                stats.packs += 1;
                stats.packed_objects += u64::from(index.num_objects());
            }
        }
    }
    for entry in std::fs::read_dir(&objects).map_err(|err| io(&objects, err))? {
        let entry = entry.map_err(|err| io(&objects, err))?;
        let name = entry.file_name();
        let is_fanout =
            name.len() == 2 && name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_fanout {
            let dir = entry.path();
            stats.loose_objects += std::fs::read_dir(&dir).map_err(|err| io(&dir, err))?.count() as u64;
        }
    }
    Ok(stats)
}
