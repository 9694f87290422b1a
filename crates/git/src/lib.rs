//! `ledge-git`: the "source" step of indexing — bare git mirrors fetched with gitoxide, files listed,
//! selected and diffed, with no `git` program needed at run time.
//!
//! # Layout
//!
//! - [`source`]: what to fetch and from where — [`Source`] (https, or a local path), [`Want`] (a ref or a
//!   commit), [`Credentials`] (masked in `Debug`).
//! - [`mirror`]: [`Mirror`], one bare repository per indexed repository ([`mirror_path`] gives ledge's
//!   layout), created atomically on first fetch; [`Mirror::fetch`], [`Mirror::read`], [`Mirror::stats`].
//! - `fetch`: the two ways objects arrive — `fetch::local` copies from a repository on disk into one new
//!   pack, `fetch::network` runs gitoxide's protocol v2 client over reqwest + rustls.
//! - [`tree`]: [`Mirror::list_files`], [`Mirror::ignore_rules`], [`Mirror::select_files`].
//! - [`diff`]: [`Mirror::diff`] with rename detection, as [`Change`]s.
//! - [`filter`]: [`FileFilter`], pure: vendored, ignored, generated, binary, too large — each a [`SkipReason`].
//! - `object`: typed object lookups; [`error`]: [`Error`] and its [`ErrorKind`]; `id`: [`CommitId`], [`BlobId`].
//!
//! # Invariant
//!
//! Objects enter a mirror only as whole packs that hold everything reachable from what they bring down to
//! what the mirror already had (or to a recorded shallow boundary). So a commit in the mirror always comes
//! with its complete tree: listing, reading and diffing never need the network, and a fetch that finds its
//! commit already present does nothing. The crate knows nothing of tenants, queues or indexes: callers
//! choose the mirror's directory and decide what to do with files.

pub mod diff;
pub mod error;
mod fetch;
pub mod filter;
mod id;
pub mod mirror;
mod object;
pub mod source;
pub mod tree;

pub use diff::Change;
pub use error::{Error, ErrorKind};
pub use filter::{FileFilter, FilterOptions, IgnoreRules, SkipReason};
pub use id::{BlobId, CommitId};
pub use mirror::{Fetched, Mirror, MirrorOptions, MirrorStats, mirror_path};
pub use source::{Credentials, Source, Want};
pub use tree::{FileEntry, FileListing, FileMode, SkippedFile};
