//! Fetching from a repository on this machine without `git upload-pack`: the missing commits, trees and
//! blobs are read from the source with gitoxide and written into the mirror as one new pack.
//!
//! The walk stops at objects the mirror already has (a tree the mirror has comes with everything under
//! it, since objects only ever arrive in whole packs), so a second fetch copies only what changed.
//! History is cut at the configured depth and the cut is recorded in the mirror's `shallow` file,
//! exactly as a shallow network fetch would.
//!
//! Blobs over [`STREAM_OVER`] bytes do not go through the pack: each is inflated from the source
//! straight into a loose object of the mirror, a buffer at a time, so a 50 MB file costs no more
//! memory than a small one (in the pack, it was held decompressed and again compressed: ~85 MB).
//! They are written before the pack, whose trees name them: a fetch cut short between the two leaves
//! loose blobs nothing names yet, never a tree whose blobs are missing.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use gix::ObjectId;
use gix_pack::data::output;

use crate::{CommitId, Error, Source, Want};

/// Objects are compressed and written this many at a time, bounding memory to one chunk.
const ENTRIES_PER_CHUNK: usize = 256;

/// Blobs larger than this are streamed into loose objects instead of the pack (see the module docs).
const STREAM_OVER: u64 = 1024 * 1024;

pub(crate) fn fetch(
    mirror: &gix::Repository,
    source: &Source,
    path: &Path,
    want: &Want,
    depth: Option<NonZeroU32>,
) -> Result<(CommitId, u64), Error> {
    let repository = source.to_string();
    if !path.exists() {
        return Err(Error::Unreachable { repository, message: "no such file or directory".into() });
    }
    let src = gix::open_opts(path, gix::open::Options::isolated()).map_err(|err| {
        Error::RepositoryNotFound { repository: repository.clone(), message: err.to_string() }
    })?;
    let commit = resolve(&src, want, &repository)?;
    // Most lookups in the mirror miss; without this, each miss would rescan the pack directory.
    let mut probe = mirror.clone();
    probe.objects.refresh = gix::odb::store::RefreshMode::Never;
    let plan = plan(&src, &probe, commit, depth).map_err(|err| copy_error(&repository, err))?;

    // New shallow boundaries are recorded before their commits arrive and old ones are lifted only after
    // the parents arrived, so an interrupted fetch never leaves a commit whose parents are missing unmarked.
    update_shallow(mirror, &plan.new_shallow, &[])?;
    for &(blob, size) in &plan.large_blobs {
        copy_large_blob(&src, mirror, blob, size).map_err(|err| copy_error(&repository, err))?;
    }
    let pack = write_pack(&src, mirror, &plan.objects).map_err(|err| copy_error(&repository, err))?;
    // The source's packs stay mapped (and resident) while it is open: close it before the new pack is
    // mapped for indexing, so the two are never resident together.
    drop(src);
    let written =
        pack.map(|file| index_pack(file, mirror)).transpose().map_err(|err| copy_error(&repository, err))?;
    update_shallow(mirror, &[], &plan.unshallow)?;
    super::pin(mirror, want, CommitId(commit))?;
    let packed = match written {
        Some(outcome) => {
            if let Some(keep) = outcome.keep_path {
                std::fs::remove_file(&keep)
                    .map_err(|err| Error::io(format!("removing {}", keep.display()), err))?;
            }
            u64::from(outcome.index.num_objects)
        }
        None => 0,
    };
    let received_objects = packed + plan.large_blobs.len() as u64;
    Ok((CommitId(commit), received_objects))
}

fn copy_error(repository: &str, err: gix::Error) -> Error {
    if err.dominant_class() == Some(gix::error::Class::Corruption) {
        Error::CorruptObject { id: format!("in {repository}"), message: err.to_string() }
    } else {
        Error::backend(format!("copying objects from {repository}"), err)
    }
}

/// The commit `want` names in the source repository, with tags peeled.
fn resolve(src: &gix::Repository, want: &Want, repository: &str) -> Result<ObjectId, Error> {
    let ref_not_found =
        |name: &str| Error::RefNotFound { repository: repository.to_owned(), name: name.to_owned() };
    let backend = |err: gix::Error| Error::backend(format!("resolving {want:?} in {repository}"), err);
    let id = match want {
        Want::Commit(commit) => {
            let header = src.try_find_header(commit.0).map_err(backend)?;
            match header {
                None => {
                    return Err(Error::CommitNotFound { repository: repository.to_owned(), commit: *commit });
                }
                Some(header) => {
                    crate::object::expect_kind(commit.0, header.kind(), gix::object::Kind::Commit)?;
                    return Ok(commit.0);
                }
            }
        }
        Want::Head | Want::Ref(_) => {
            let name = want.full_ref_name()?.unwrap_or_default();
            let reference = src.try_find_reference(name.as_str()).map_err(backend)?;
            let Some(mut reference) = reference else {
                return Err(ref_not_found(&name));
            };
            // An unborn HEAD (empty repository) fails to peel: there is no commit to fetch.
            reference.peel_to_id().map_err(|_| ref_not_found(&name))?.detach()
        }
    };
    let object = src.find_object(id).map_err(backend)?;
    let commit = object.peel_to_commit().map_err(backend)?;
    Ok(commit.id)
}

#[derive(Default)]
struct Plan {
    /// Every object to copy into the pack: commits, trees and blobs the mirror lacks.
    objects: Vec<ObjectId>,
    /// Blobs over [`STREAM_OVER`] bytes the mirror lacks, with their sizes: streamed, not packed.
    large_blobs: Vec<(ObjectId, u64)>,
    /// Copied commits whose parents are beyond the depth.
    new_shallow: Vec<ObjectId>,
    /// Commits that were shallow in the mirror and now get their parents.
    unshallow: Vec<ObjectId>,
}

/// Walks commits from `tip` breadth-first down to `depth`, stopping at commits the mirror has completely,
/// and collects the trees and blobs the mirror lacks.
fn plan(
    src: &gix::Repository,
    mirror: &gix::Repository,
    tip: ObjectId,
    depth: Option<NonZeroU32>,
) -> gix::Result<Plan> {
    let shallow: HashSet<ObjectId> = match mirror.shallow_commits()? {
        Some(commits) => commits.iter().copied().collect(),
        None => HashSet::new(),
    };
    let mut plan = Plan::default();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([(tip, 1u32)]);
    seen.insert(tip);
    while let Some((id, level)) = queue.pop_front() {
        let present = mirror.has_object(id);
        let is_shallow = shallow.contains(&id);
        if present && !is_shallow {
            continue;
        }
        let commit = src.find_commit(id)?;
        let within_depth = depth.is_none_or(|depth| level < depth.get());
        let parents: Vec<ObjectId> = commit.parent_ids().map(|parent| parent.detach()).collect();
        if !present {
            collect_tree(src, mirror, commit.tree_id()?.detach(), &mut seen, &mut plan)?;
            plan.objects.push(id);
        }
        if within_depth {
            if is_shallow {
                plan.unshallow.push(id);
            }
            for parent in parents {
                if seen.insert(parent) {
                    queue.push_back((parent, level + 1));
                }
            }
        } else if !present && !parents.is_empty() {
            plan.new_shallow.push(id);
        }
    }
    Ok(plan)
}

/// Adds `root` and everything under it that the mirror lacks to the plan. Submodule entries are commits
/// of other repositories and are not followed.
fn collect_tree(
    src: &gix::Repository,
    mirror: &gix::Repository,
    root: ObjectId,
    seen: &mut HashSet<ObjectId>,
    plan: &mut Plan,
) -> gix::Result<()> {
    let mut trees = vec![root];
    while let Some(tree_id) = trees.pop() {
        if !seen.insert(tree_id) || mirror.has_object(tree_id) {
            continue;
        }
        plan.objects.push(tree_id);
        let tree = src.find_tree(tree_id)?;
        for entry in tree.iter() {
            let entry = entry?;
            let id = entry.oid().to_owned();
            match entry.mode().kind() {
                gix::object::tree::EntryKind::Tree => trees.push(id),
                gix::object::tree::EntryKind::Commit => {}
                gix::object::tree::EntryKind::Blob
                | gix::object::tree::EntryKind::BlobExecutable
                | gix::object::tree::EntryKind::Link => {
                    if seen.insert(id) && !mirror.has_object(id) {
                        // The header gives the size without decompressing the blob.
                        match src.find_header(id)?.size() {
                            size if size > STREAM_OVER => plan.large_blobs.push((id, size)),
                            _ => plan.objects.push(id),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Writes `ids` as one pack (undeltified, compressed) into a temporary file in the mirror's `objects/pack`,
/// invisible to readers until [`index_pack`]. `None` when there is nothing to write.
fn write_pack(
    src: &gix::Repository,
    mirror: &gix::Repository,
    ids: &[ObjectId],
) -> gix::Result<Option<File>> {
    use gix::error::ResultExt;
    if ids.is_empty() {
        return Ok(None);
    }
    let count = u32::try_from(ids.len()).or_raise(|| gix::error::message("too many objects for one pack"))?;
    let pack_dir = mirror.objects.store_ref().path().join("pack");
    std::fs::create_dir_all(&pack_dir).or_raise(|| gix::error::message("creating objects/pack"))?;
    let mut file =
        tempfile::tempfile_in(&pack_dir).or_raise(|| gix::error::message("creating a temporary pack"))?;
    {
        let entries = ids.chunks(ENTRIES_PER_CHUNK).map(|chunk| {
            chunk
                .iter()
                .map(|id| {
                    let object = src.find_object(*id)?;
                    let data = gix::objs::Data::new(&object.data, object.kind, gix::hash::Kind::Sha1);
                    output::Entry::from_data(
                        &output::Count::from_data(*id, None),
                        &data,
                        gix::zlib::Compression::BEST_SPEED,
                    )
                })
                .collect::<gix::Result<Vec<_>>>()
        });
        let mut pack = output::bytes::FromEntriesIter::new(
            entries,
            BufWriter::new(&mut file),
            count,
            gix_pack::data::Version::V2,
            gix::hash::Kind::Sha1,
        );
        for written in &mut pack {
            written?;
        }
        pack.into_write().flush().or_raise(|| gix::error::message("writing the temporary pack"))?;
    }
    Ok(Some(file))
}

/// Copies one large blob into a loose object of the mirror without holding it in memory: its zlib
/// stream is read from the source's loose object or pack entry and inflated into the mirror's writer,
/// which deflates and hashes as it goes. A blob stored as a delta in the source (or behind an
/// alternate) has no such stream: it is read whole, as in the pack. The written id is checked.
fn copy_large_blob(
    src: &gix::Repository,
    mirror: &gix::Repository,
    id: ObjectId,
    size: u64,
) -> gix::Result<()> {
    use gix::error::ResultExt;
    use gix::objs::Write as _;
    let store = gix::odb::loose::Store::at(mirror.objects.store_ref().path(), gix::hash::Kind::Sha1);
    let written = match blob_stream(src, id).or_raise(|| gix::error::message("reading a large blob"))? {
        Some(mut stream) => store.write_stream(gix::object::Kind::Blob, size, &mut stream)?,
        None => {
            let object = src.find_object(id)?;
            store.write_buf(gix::object::Kind::Blob, &object.data)?
        }
    };
    if written != id {
        return Err(gix::error::message!("blob {id} was copied as {written}: the source is corrupt").into());
    }
    Ok(())
}

/// The content of blob `id` as a stream inflated from the source's storage, or `None` when the blob is
/// neither loose nor a whole (undeltified) entry of one of the source's packs.
fn blob_stream(src: &gix::Repository, id: ObjectId) -> std::io::Result<Option<Inflated<BufReader<File>>>> {
    let objects = src.objects.store_ref().path();
    let hex = id.to_hex().to_string();
    match File::open(objects.join(&hex[..2]).join(&hex[2..])) {
        Ok(file) => {
            // A loose object is one zlib stream of `blob <size>\0` and the content.
            let mut stream = Inflated::new(BufReader::new(file));
            let mut header = Vec::new();
            let mut byte = [0u8; 1];
            while header.len() < 32 {
                stream.read_exact(&mut byte)?;
                if byte[0] == 0 {
                    return Ok(header.starts_with(b"blob ").then_some(stream));
                }
                header.push(byte[0]);
            }
            return Ok(None);
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let packs = match std::fs::read_dir(objects.join("pack")) {
        Ok(packs) => packs,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    for entry in packs {
        let idx = entry?.path();
        if idx.extension().is_none_or(|ext| ext != "idx") {
            continue;
        }
        let Ok(index) = gix_pack::index::File::at(&idx, gix::hash::Kind::Sha1) else { continue };
        let Some(position) = index.lookup(id) else { continue };
        let offset = index.pack_offset_at_index(position);
        let mut pack = BufReader::new(File::open(idx.with_extension("pack"))?);
        pack.seek(std::io::SeekFrom::Start(offset))?;
        let entry =
            gix_pack::data::Entry::from_read(&mut pack, offset, gix::hash::Kind::Sha1.len_in_bytes())?;
        if !matches!(entry.header, gix_pack::data::entry::Header::Blob) {
            return Ok(None);
        }
        pack.seek(std::io::SeekFrom::Start(entry.data_offset))?;
        return Ok(Some(Inflated::new(pack)));
    }
    Ok(None)
}

/// Inflates the zlib stream that starts at the reader's position, a buffer at a time.
struct Inflated<R> {
    input: R,
    state: gix::zlib::Decompress,
}

impl<R: BufRead> Inflated<R> {
    fn new(input: R) -> Self {
        Self { input, state: gix::zlib::Decompress::new() }
    }
}

impl<R: BufRead> Read for Inflated<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        gix::zlib::stream::inflate::read(&mut self.input, &mut self.state, buf)
    }
}

/// Lets gitoxide index the pack `write_pack` wrote and move pack and index into the mirror's
/// `objects/pack`, where they appear atomically.
fn index_pack(mut file: File, mirror: &gix::Repository) -> gix::Result<gix_pack::bundle::write::Outcome> {
    use gix::error::ResultExt;
    let pack_dir = mirror.objects.store_ref().path().join("pack");
    file.rewind().or_raise(|| gix::error::message("rewinding the temporary pack"))?;
    let outcome = gix_pack::Bundle::write_to_directory(
        &mut BufReader::new(file),
        Some(&pack_dir),
        &mut gix::progress::Discard,
        &AtomicBool::new(false),
        None::<gix::objs::find::Never>,
        gix::hash::Kind::Sha1,
        gix_pack::bundle::write::Options::default(),
    )?;
    Ok(outcome)
}

/// Adds and removes shallow boundaries in the mirror's `shallow` file, under its lock.
fn update_shallow(mirror: &gix::Repository, add: &[ObjectId], remove: &[ObjectId]) -> Result<(), Error> {
    if add.is_empty() && remove.is_empty() {
        return Ok(());
    }
    let error = |err: gix::Error| Error::backend("updating the mirror's shallow file", err);
    let path = mirror.shallow_file().map_err(error)?;
    let lock = gix::lock::File::acquire_to_update_resource(
        &path,
        gix::lock::acquire::Fail::AfterDurationWithBackoff(Duration::from_secs(10)),
        None,
        0,
    )
    .map_err(error)?;
    let current = gix_shallow::read(&path).map_err(error)?;
    let updates: Vec<gix_shallow::Update> = add
        .iter()
        .filter(|id| current.as_ref().is_none_or(|current| !current.contains(id)))
        .map(|id| gix_shallow::Update::Shallow(*id))
        .chain(remove.iter().map(|id| gix_shallow::Update::Unshallow(*id)))
        .collect();
    gix_shallow::write(lock, current, &updates).map_err(error)?;
    Ok(())
}
