//! [`Mirror`]: one bare repository per indexed repository, created on first fetch and reused after.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::source::Location;
use crate::{BlobId, CommitId, Credentials, Error, Source, Want};

/// How a [`Mirror`] fetches and reads. `Default` gives ledge's defaults.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// How many commits of history each fetch brings (`Some(1)`: only the wanted commit, the default;
    /// `None`: all of it). Diffs do not need history, only both commits — see [`Mirror::fetch`].
    pub depth: Option<NonZeroU32>,
    /// The cap of [`Mirror::read`]: larger blobs fail with [`Error::TooLarge`] without being loaded.
    /// Default 1 MiB, the default file size limit of [`FilterOptions`](crate::FilterOptions).
    pub max_blob_size: u64,
    /// Whether local repositories (plain paths, `file://`) may be fetched. Default false: on a server,
    /// a repository URL supplied by a user must not read the server's own disk. The CLI turns it on.
    pub allow_local_sources: bool,
    /// Whether plain `http://` may be used. Default false (https only); tests and trusted networks.
    pub allow_plain_http: bool,
    /// How long to wait for a network connection. Default 30 s.
    pub connect_timeout: Duration,
    /// A transfer slower than [`low_speed_limit_bytes`](Self::low_speed_limit_bytes) for this long is aborted.
    /// Default 60 s.
    pub low_speed_time: Duration,
    /// See [`low_speed_time`](Self::low_speed_time). Default 1,000 bytes/s.
    pub low_speed_limit_bytes: u32,
    /// Minimum similarity (0.0–1.0) for an added and a removed file to count as a rename. Default 0.5, git's.
    pub rename_similarity: f32,
    /// At most this many added × removed files are compared for similarity (exact renames are always
    /// found). Default 1000, git's.
    pub rename_limit: usize,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            depth: NonZeroU32::new(1),
            max_blob_size: 1024 * 1024,
            allow_local_sources: false,
            allow_plain_http: false,
            connect_timeout: Duration::from_secs(30),
            low_speed_time: Duration::from_secs(60),
            low_speed_limit_bytes: 1000,
            rename_similarity: 0.5,
            rename_limit: 1000,
        }
    }
}

/// The result of a [`Mirror::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The commit the want resolved to (a tag is peeled to its commit).
    pub commit: CommitId,
    /// How many objects the pack this fetch added holds (0 when the mirror already had everything).
    /// A local fetch brings exactly the missing objects; a network pack may also carry a few objects
    /// the mirror already had, as the delta bases that complete a thin pack.
    pub received_objects: u64,
    /// Whether this fetch created the mirror.
    pub created_mirror: bool,
}

/// Counts that describe what a mirror holds on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MirrorStats {
    /// Pack files (each fetch that brings objects adds one).
    pub packs: usize,
    /// Objects in all packs.
    pub packed_objects: u64,
    /// Objects stored one file each.
    pub loose_objects: u64,
}

/// A bare mirror of one repository, at a directory the caller chooses
/// (see [`mirror_path`] for ledge's layout).
///
/// Constructing one does no I/O; the first [`fetch`](Self::fetch) creates the repository. All methods are
/// blocking (run them with `spawn_blocking`); a `Mirror` is `Send + Sync` and holds no open handles.
/// Concurrent fetches into the same mirror are safe at the storage level: packs appear atomically and refs
/// are updated under lock files.
#[derive(Debug, Clone)]
pub struct Mirror {
    path: PathBuf,
    options: MirrorOptions,
}

impl Mirror {
    pub fn new(path: impl Into<PathBuf>, options: MirrorOptions) -> Self {
        Mirror { path: path.into(), options }
    }

    /// The bare repository's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> &MirrorOptions {
        &self.options
    }

    /// Whether the mirror has been created (by a first fetch).
    pub fn exists(&self) -> bool {
        self.path.join("objects").is_dir() && self.path.join("HEAD").is_file()
    }

    /// Fetches `want` from `source` into the mirror and returns the commit it resolved to.
    ///
    /// Fetches are shallow by default ([`MirrorOptions::depth`]) and incremental: objects the mirror
    /// already has are not transferred again. Every fetched commit stays pinned by a ref in the mirror,
    /// so a commit indexed earlier is still there for the next [`diff`](Self::diff). To diff a push
    /// (`before` → `after`), fetch both wants: fetching a commit the mirror already has is a no-op
    /// without any network round trip, and a `before` the mirror lacks (new node, wiped disk) is
    /// fetched by its id on its own, at the same depth:
    ///
    /// ```no_run
    /// # fn push(mirror: &ledge_git::Mirror, source: &ledge_git::Source,
    /// #         before: ledge_git::CommitId, after: ledge_git::CommitId) -> Result<(), ledge_git::Error> {
    /// use ledge_git::Want;
    /// mirror.fetch(source, &Want::Commit(before), None)?;
    /// mirror.fetch(source, &Want::Commit(after), None)?;
    /// let changes = mirror.diff(before, after)?;
    /// # Ok(()) }
    /// ```
    ///
    /// Local sources are copied in-process (gitoxide reads the source's objects and writes one pack into
    /// the mirror), so no `git` program is ever run; network sources use gitoxide's protocol v2 client.
    pub fn fetch(
        &self,
        source: &Source,
        want: &Want,
        credentials: Option<&Credentials>,
    ) -> Result<Fetched, Error> {
        // Validate before touching the disk.
        want.full_ref_name()?;
        match source.location() {
            Location::Local(_) if !self.options.allow_local_sources => {
                return Err(Error::InvalidInput {
                    field: "source",
                    message: format!("local repositories are not allowed for this mirror: {source}"),
                });
            }
            Location::Network { https: false, .. } if !self.options.allow_plain_http => {
                return Err(Error::InvalidInput {
                    field: "source",
                    message: format!("plain http is not allowed, use https: {source}"),
                });
            }
            _ => {}
        }
        let (repo, created_mirror) = self.open_or_create()?;
        if let Want::Commit(commit) = want
            && repo.has_object(commit.0)
        {
            let header = crate::object::header(&repo, commit.0)?;
            crate::object::expect_kind(commit.0, header.kind(), gix::object::Kind::Commit)?;
            crate::fetch::pin(&repo, want, *commit)?;
            return Ok(Fetched { commit: *commit, received_objects: 0, created_mirror });
        }
        let (commit, received_objects) = match source.location() {
            Location::Local(path) => {
                crate::fetch::local::fetch(&repo, source, path, want, self.options.depth)?
            }
            Location::Network { url, .. } => {
                crate::fetch::network::fetch(&repo, source, url, want, credentials, &self.options)?
            }
        };
        Ok(Fetched { commit, received_objects, created_mirror })
    }

    /// Whether the mirror holds `commit` (and so its whole tree).
    pub fn contains(&self, commit: CommitId) -> Result<bool, Error> {
        Ok(self.open_existing()?.is_some_and(|repo| repo.has_object(commit.0)))
    }

    /// Reads a blob, failing with [`Error::TooLarge`] above [`MirrorOptions::max_blob_size`].
    pub fn read(&self, blob: BlobId) -> Result<Vec<u8>, Error> {
        self.read_with_limit(blob, self.options.max_blob_size)
    }

    /// Reads a blob, failing with [`Error::TooLarge`] above `limit` bytes. The size is taken from the
    /// object's header first, so an oversized blob is never decompressed into memory.
    pub fn read_with_limit(&self, blob: BlobId, limit: u64) -> Result<Vec<u8>, Error> {
        let repo = self.open_for(&blob.to_hex())?;
        let header = crate::object::header(&repo, blob.0)?;
        crate::object::expect_kind(blob.0, header.kind(), gix::object::Kind::Blob)?;
        if header.size() > limit {
            return Err(Error::TooLarge { id: blob, size: header.size(), limit });
        }
        let object = crate::object::find(&repo, blob.0)?;
        crate::object::expect_kind(blob.0, object.kind, gix::object::Kind::Blob)?;
        Ok(object.detach().data)
    }

    /// Counts packs and objects on disk: what fetches added, observable without timing.
    pub fn stats(&self) -> Result<MirrorStats, Error> {
        crate::object::stats(&self.path)
    }

    /// Opens the mirror, or `Err(MissingObject)` naming `id` if it was never created.
    pub(crate) fn open_for(&self, id: &str) -> Result<gix::Repository, Error> {
        self.open_existing()?.ok_or_else(|| Error::MissingObject { id: id.to_owned() })
    }

    fn open_existing(&self) -> Result<Option<gix::Repository>, Error> {
        if !self.exists() {
            return Ok(None);
        }
        gix::open_opts(&self.path, self.open_options())
            .map(Some)
            .map_err(|err| Error::backend(format!("opening the mirror at {}", self.path.display()), err))
    }

    fn open_options(&self) -> gix::open::Options {
        let options = &self.options;
        gix::open::Options::isolated().config_overrides([
            "protocol.version=2".to_owned(),
            format!("gitoxide.http.connectTimeout={}", options.connect_timeout.as_millis()),
            format!("http.lowSpeedTime={}", options.low_speed_time.as_secs().max(1)),
            format!("http.lowSpeedLimit={}", options.low_speed_limit_bytes),
        ])
    }

    /// Opens the mirror, creating it first if needed. Creation is atomic: the repository is initialised
    /// in a temporary sibling directory and renamed into place, so a concurrent creator (or a crash) never
    /// leaves a half-made mirror; the loser of a race just uses the winner's.
    fn open_or_create(&self) -> Result<(gix::Repository, bool), Error> {
        if let Some(repo) = self.open_existing()? {
            return Ok((repo, false));
        }
        let parent = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|err| Error::io(format!("creating {}", parent.display()), err))?;
        let staging = tempfile::Builder::new()
            .prefix(".ledge-mirror-")
            .tempdir_in(parent)
            .map_err(|err| Error::io(format!("creating a staging directory in {}", parent.display()), err))?;
        gix::ThreadSafeRepository::init_opts(
            staging.path(),
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            gix::open::Options::isolated(),
        )
        .map_err(|err| Error::backend("initialising the mirror", err))?;
        let created = match std::fs::rename(staging.path(), &self.path) {
            Ok(()) => {
                // The directory moved: nothing is left for the guard to delete.
                let _ = staging.keep();
                true
            }
            Err(_) if self.exists() => false,
            Err(err) => {
                return Err(Error::io(format!("moving the new mirror to {}", self.path.display()), err));
            }
        };
        let repo = self
            .open_existing()?
            .ok_or_else(|| Error::backend("opening the new mirror", "the mirror vanished after creation"))?;
        Ok((repo, created))
    }
}

/// ledge's layout for mirrors: `<data_dir>/git/<org>/<repository>.git`.
///
/// Both components must be plain names (ASCII letters, digits, `-`, `_`, `.`, not starting with a dot,
/// at most 100 characters), so a mirror can never be placed outside `<data_dir>/git`.
pub fn mirror_path(data_dir: &Path, org: &str, repository: &str) -> Result<PathBuf, Error> {
    fn component(field: &'static str, value: &str) -> Result<(), Error> {
        let valid = !value.is_empty()
            && value.len() <= 100
            && !value.starts_with('.')
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(())
        } else {
            Err(Error::InvalidInput {
                field,
                message: format!("{value:?} is not a plain name (letters, digits, '-', '_', '.')"),
            })
        }
    }
    component("org", org)?;
    component("repository", repository)?;
    Ok(data_dir.join("git").join(org).join(format!("{repository}.git")))
}
