//! File selection for indexing: the pure [`FileFilter`], the [`IgnoreRules`] of a commit, and [`SkipReason`].
//!
//! Nothing here touches git: a filter judges a path, a size and (optionally) the first bytes of the content,
//! so it is tested on plain strings. [`Mirror::select_files`](crate::Mirror::select_files) wires it to a commit.

use std::path::PathBuf;

use gix::bstr::ByteSlice;

/// Why a file is not indexed. Every skip carries one, so the caller can record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// A submodule (gitlink): a commit of another repository, not a file.
    Submodule,
    /// A symbolic link: its "content" is a path, and following it could leave the repository.
    Symlink,
    /// The path is not valid UTF-8, which ledge's paths must be.
    NonUtf8Path,
    /// Under a vendored or dependency directory (`vendor/`, `node_modules/`, `third_party/`, …).
    Vendored,
    /// Matched by the repository's own `.gitignore` files (committed anyway).
    Ignored,
    /// Generated: a lock file, minified or protobuf output, or a file whose header says it is generated.
    Generated,
    /// Binary: a known binary extension, or a NUL byte in the first bytes.
    Binary,
    /// Larger than the filter's size limit.
    TooLarge { size: u64, limit: u64 },
}

impl SkipReason {
    /// A stable lowercase code for storing the reason (`"vendored"`, `"too_large"`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            SkipReason::Submodule => "submodule",
            SkipReason::Symlink => "symlink",
            SkipReason::NonUtf8Path => "non_utf8_path",
            SkipReason::Vendored => "vendored",
            SkipReason::Ignored => "ignored",
            SkipReason::Generated => "generated",
            SkipReason::Binary => "binary",
            SkipReason::TooLarge { .. } => "too_large",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The knobs of a [`FileFilter`]. `Default` gives ledge's defaults; every list can be replaced.
#[derive(Debug, Clone)]
pub struct FilterOptions {
    /// Files larger than this are skipped as [`SkipReason::TooLarge`]. Default 1 MiB.
    pub max_file_size: u64,
    /// How many leading bytes are searched for a NUL byte. Default 8 KiB.
    pub sniff_bytes: usize,
    /// How many leading lines are searched for a "generated" marker. Default 5.
    pub generated_marker_lines: usize,
    /// Directory names whose contents are vendored, matched against every directory component.
    pub vendored_dirs: Vec<String>,
    /// Extensions (lowercase, no dot) of binary formats.
    pub binary_extensions: Vec<String>,
    /// File names that are generated (lock files), matched exactly against the last path component.
    pub generated_file_names: Vec<String>,
    /// Suffixes of generated file names (`.min.js`, `.pb.go`), matched case-insensitively.
    pub generated_suffixes: Vec<String>,
    /// Whether the repository's `.gitignore` files exclude files. Default true.
    pub respect_gitignore: bool,
}

const VENDORED_DIRS: &[&str] = &[
    "vendor",
    "node_modules",
    "third_party",
    "third-party",
    "thirdparty",
    "bower_components",
    "jspm_packages",
    "Pods",
    "Carthage",
    ".git",
    ".hg",
    ".svn",
    ".yarn",
    "__pycache__",
    ".venv",
    "venv",
    "site-packages",
];

const BINARY_EXTENSIONS: &[&str] = &[
    // images
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "ico",
    "icns",
    "webp",
    "tif",
    "tiff",
    "psd",
    "heic",
    "avif",
    // documents
    "pdf",
    "doc",
    "docx",
    "xls",
    "xlsx",
    "ppt",
    "pptx",
    "odt",
    "ods",
    "odp",
    // archives
    "zip",
    "gz",
    "tgz",
    "bz2",
    "xz",
    "zst",
    "7z",
    "rar",
    "tar",
    "jar",
    "war",
    "ear",
    "apk",
    "ipa",
    "deb",
    "rpm",
    "dmg",
    "iso",
    // compiled code and libraries
    "exe",
    "dll",
    "so",
    "dylib",
    "a",
    "o",
    "obj",
    "lib",
    "pdb",
    "class",
    "pyc",
    "pyo",
    "wasm",
    "node",
    "rlib",
    "bin",
    // fonts
    "woff",
    "woff2",
    "ttf",
    "otf",
    "eot",
    // audio and video
    "mp3",
    "mp4",
    "m4a",
    "wav",
    "flac",
    "ogg",
    "oga",
    "webm",
    "avi",
    "mov",
    "mkv",
    // data stores
    "sqlite",
    "sqlite3",
    "db",
    "parquet",
    "onnx",
    "pt",
    "safetensors",
    "npy",
    "npz",
];

const GENERATED_FILE_NAMES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lock",
    "bun.lockb",
    "deno.lock",
    "composer.lock",
    "Gemfile.lock",
    "Podfile.lock",
    "Package.resolved",
    "poetry.lock",
    "Pipfile.lock",
    "pdm.lock",
    "uv.lock",
    "go.sum",
    "flake.lock",
    "mix.lock",
    "pubspec.lock",
    "packages.lock.json",
    "gradle.lockfile",
];

const GENERATED_SUFFIXES: &[&str] = &[
    ".min.js",
    ".min.mjs",
    ".min.css",
    ".js.map",
    ".css.map",
    ".pb.go",
    ".pb.gw.go",
    ".pb.cc",
    ".pb.h",
    "_pb2.py",
    "_pb2.pyi",
    "_pb2_grpc.py",
    ".g.dart",
    ".freezed.dart",
    ".designer.cs",
];

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl Default for FilterOptions {
    fn default() -> Self {
        FilterOptions {
            max_file_size: 1024 * 1024,
            sniff_bytes: 8 * 1024,
            generated_marker_lines: 5,
            vendored_dirs: owned(VENDORED_DIRS),
            binary_extensions: owned(BINARY_EXTENSIONS),
            generated_file_names: owned(GENERATED_FILE_NAMES),
            generated_suffixes: owned(GENERATED_SUFFIXES),
            respect_gitignore: true,
        }
    }
}

/// Decides which files of a repository are worth indexing. Pure: no I/O.
///
/// Checks run cheapest first and the first match is the reason: vendored, ignored, generated by name,
/// binary by extension, too large ([`check_path`](Self::check_path)); then, on the content,
/// NUL bytes and generated markers ([`check_content`](Self::check_content)).
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    options: FilterOptions,
}

impl FileFilter {
    pub fn new(options: FilterOptions) -> Self {
        FileFilter { options }
    }

    pub fn options(&self) -> &FilterOptions {
        &self.options
    }

    /// Judges a file by its repository-relative `path` (with `/` separators), its `size` and the
    /// commit's `.gitignore` rules, without its content.
    pub fn check_path(&self, path: &str, size: u64, ignore: &IgnoreRules) -> Option<SkipReason> {
        let (dirs, file_name) = match path.rsplit_once('/') {
            Some((dirs, name)) => (Some(dirs), name),
            None => (None, path),
        };
        if let Some(dirs) = dirs
            && dirs.split('/').any(|dir| self.options.vendored_dirs.iter().any(|v| v == dir))
        {
            return Some(SkipReason::Vendored);
        }
        if self.options.respect_gitignore && ignore.is_ignored(path) {
            return Some(SkipReason::Ignored);
        }
        if self.options.generated_file_names.iter().any(|name| name == file_name)
            || self.options.generated_suffixes.iter().any(|suffix| ends_with_ignore_case(file_name, suffix))
        {
            return Some(SkipReason::Generated);
        }
        if let Some((stem, extension)) = file_name.rsplit_once('.')
            && !stem.is_empty()
            && self.options.binary_extensions.iter().any(|ext| ext.eq_ignore_ascii_case(extension))
        {
            return Some(SkipReason::Binary);
        }
        if size > self.options.max_file_size {
            return Some(SkipReason::TooLarge { size, limit: self.options.max_file_size });
        }
        None
    }

    /// Judges a file by its content (only the first [`sniff_bytes`](FilterOptions::sniff_bytes) are looked at):
    /// a NUL byte means binary; a header line saying the file is generated means generated.
    pub fn check_content(&self, content: &[u8]) -> Option<SkipReason> {
        let head = &content[..content.len().min(self.options.sniff_bytes)];
        if head.contains(&0) {
            return Some(SkipReason::Binary);
        }
        let says_generated = head.lines().take(self.options.generated_marker_lines).any(is_generated_marker);
        says_generated.then_some(SkipReason::Generated)
    }
}

/// A header line that marks its file as generated. The conventions recognised:
/// `@generated` (Facebook, Rust's `cargo` and many others), `Code generated … DO NOT EDIT.` (Go),
/// `Generated by the protocol buffer compiler.  DO NOT EDIT!` and friends (any line with both
/// "generated" and "DO NOT EDIT"), and `<auto-generated>` (.NET).
fn is_generated_marker(line: &[u8]) -> bool {
    if line.find(b"@generated").is_some() || line.find(b"<auto-generated").is_some() {
        return true;
    }
    line.find(b"DO NOT EDIT").is_some() && line.to_ascii_lowercase().find(b"generated").is_some()
}

fn ends_with_ignore_case(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len()
        && name.is_char_boundary(name.len() - suffix.len())
        && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// The `.gitignore` rules of one commit: the root file and every nested one, each applying below its
/// own directory, deeper files taking precedence, `!negations` honoured, as git evaluates them.
///
/// Built from blob contents, not from a work tree, so it is exactly what the commit says.
#[derive(Debug, Default, Clone)]
pub struct IgnoreRules {
    search: gix::ignore::Search,
}

impl IgnoreRules {
    /// No rules: nothing is ignored.
    pub fn new() -> Self {
        IgnoreRules::default()
    }

    /// Adds the patterns of the `.gitignore` file at repository-relative `gitignore_path`
    /// (`.gitignore`, `src/.gitignore`, …). Files may be added in any order.
    pub fn add_file(&mut self, gitignore_path: &str, contents: &[u8]) {
        // gix-glob derives a list's base directory from its source path relative to a root;
        // a virtual root makes `src/.gitignore` apply under `src/`.
        let root = PathBuf::from("/");
        let source = root.join(gitignore_path);
        let parse = gix::ignore::search::Ignore { support_precious: false };
        if self.search.add_patterns_buffer(contents, source, Some(&root), parse).is_ok() {
            // The search gives precedence to lists added last: keep deeper directories last.
            self.search
                .patterns
                .sort_by_key(|list| list.base.as_ref().map_or(0, |base| base.find_iter(b"/").count()));
        }
    }

    /// How many `.gitignore` files were added.
    pub fn file_count(&self) -> usize {
        self.search.patterns.len()
    }

    /// Whether git would ignore the file at repository-relative `path`: the file itself or any directory
    /// above it matches. As in git, a file inside an ignored directory cannot be re-included.
    pub fn is_ignored(&self, path: &str) -> bool {
        if self.search.patterns.is_empty() {
            return false;
        }
        let mut end = 0;
        while let Some(offset) = path[end..].find('/') {
            end += offset;
            if self.matches(&path[..end], true) {
                return true;
            }
            end += 1;
        }
        self.matches(path, false)
    }

    fn matches(&self, path: &str, is_dir: bool) -> bool {
        self.search
            .pattern_matching_relative_path(path.into(), Some(is_dir), gix::glob::pattern::Case::Sensitive)
            .is_some_and(|m| !m.pattern.is_negative())
    }
}
