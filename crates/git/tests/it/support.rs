//! Test fixtures: `TestRepo` drives the `git` CLI in a temp dir, isolated from the host's git config;
//! `fixture()` builds the standard repository every test starts from.

use std::path::{Path, PathBuf};
use std::process::Command;

use ledge_git::{CommitId, Mirror, MirrorOptions, Source};

/// A work tree at `<temp dir>/widgets`, so the temp dir can serve as an HTTP server's project root.
pub struct TestRepo {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl TestRepo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("widgets");
        std::fs::create_dir(&path).expect("create repo dir");
        let repo = TestRepo { dir, path };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the repository as `widgets`.
    pub fn parent_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn source(&self) -> Source {
        Source::local(self.path())
    }

    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
            .args(["-c", "protocol.file.allow=always", "-c", "core.autocrlf=false"])
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create dirs");
        std::fs::write(full, contents).expect("write file");
    }

    pub fn make_executable(&self, path: &str) {
        use std::os::unix::fs::PermissionsExt;
        let full = self.path().join(path);
        std::fs::set_permissions(full, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    pub fn symlink(&self, path: &str, target: &str) {
        std::os::unix::fs::symlink(target, self.path().join(path)).expect("symlink");
    }

    /// Adds a submodule entry (a gitlink) without cloning anything; its empty directory is what an
    /// unpopulated submodule looks like, so later `git add --all` leaves it alone.
    pub fn add_gitlink(&self, path: &str, commit: &str) {
        std::fs::create_dir_all(self.path().join(path)).expect("create dirs");
        self.git(&["update-index", "--add", "--cacheinfo", &format!("160000,{commit},{path}")]);
    }

    pub fn remove(&self, path: &str) {
        self.git(&["rm", "--quiet", path]);
    }

    pub fn rename(&self, from: &str, to: &str) {
        let full = self.path().join(to);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("create dirs");
        self.git(&["mv", from, to]);
    }

    pub fn commit(&self, message: &str) -> CommitId {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> CommitId {
        self.git(&["rev-parse", "HEAD"]).trim().parse().expect("commit id")
    }

    pub fn blob_id(&self, commit: CommitId, path: &str) -> String {
        self.git(&["rev-parse", &format!("{commit}:{path}")]).trim().to_owned()
    }

    /// Distinct objects reachable from `commit`'s tree plus the commit itself: what a depth-1 first fetch brings.
    pub fn objects_in_snapshot(&self, commit: CommitId) -> u64 {
        let listing = self.git(&["ls-tree", "-r", "-t", &commit.to_hex()]);
        let mut ids: Vec<&str> = listing
            .lines()
            .filter(|line| !line.contains(" commit "))
            .filter_map(|line| line.split_whitespace().nth(2))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() as u64 + 2 // the root tree and the commit
    }

    /// Objects reachable from `new` but not from `old`: what an incremental fetch must bring, no more.
    pub fn objects_between(&self, old: CommitId, new: CommitId) -> u64 {
        self.git(&["rev-list", "--objects", &new.to_hex(), &format!("^{old}")]).lines().count() as u64
    }
}

/// A mirror in its own temp dir, allowed to read local repositories.
pub struct TestMirror {
    pub mirror: Mirror,
    _dir: tempfile::TempDir,
}

impl TestMirror {
    pub fn new() -> Self {
        Self::with_options(MirrorOptions { allow_local_sources: true, ..MirrorOptions::default() })
    }

    pub fn with_options(options: MirrorOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path: PathBuf = dir.path().join("git").join("org-1").join("repo-1.git");
        TestMirror { mirror: Mirror::new(path, options), _dir: dir }
    }
}

impl std::ops::Deref for TestMirror {
    type Target = Mirror;
    fn deref(&self) -> &Mirror {
        &self.mirror
    }
}

/// 1.5 MiB of text: over the default 1 MiB file limit and the default read cap.
pub fn big_text() -> String {
    "a line of perfectly ordinary text that is not binary at all\n".repeat(26_000)
}

/// A source file long enough that editing one line keeps it well above 50% similar.
pub fn module_source(name: &str) -> String {
    let mut text = format!("//! The {name} module.\n\n");
    for i in 0..40 {
        text.push_str(&format!(
            "pub fn {name}_function_{i}(input: u32) -> u32 {{\n    input * {i} + 1\n}}\n\n"
        ));
    }
    text
}

pub struct Fixture {
    pub repo: TestRepo,
    pub initial: CommitId,
}

/// The standard repository: nested directories, a vendored directory, binaries (by extension and by
/// content), generated files (by name, by suffix, by header), a big file, `.gitignore`d-but-committed
/// files (root and nested rules, with a negation), an executable, a symlink and a submodule.
pub fn fixture() -> Fixture {
    let repo = TestRepo::new();
    repo.write("README.md", "# Fixture\n");
    repo.write("src/lib.rs", module_source("lib"));
    repo.write("src/nested/deep/mod.rs", module_source("deep"));
    repo.write("src/big_module.rs", module_source("big"));
    repo.write("docs/old.md", "Old documentation.\n");
    repo.write("scripts/run.sh", "#!/bin/sh\necho run\n");
    repo.write("vendor/dep/lib.go", "package dep\n");
    repo.write("web/node_modules/left-pad/index.js", "module.exports = 1;\n");
    repo.write("assets/logo.png", b"\x89PNG\r\n\x1a\n not really a png");
    repo.write("data/blob.dat", b"header\0\x01\x02binary payload");
    repo.write("Cargo.lock", "# This file is automatically @generated by Cargo.\nversion = 3\n");
    repo.write("web/app.min.js", "var a=1;\n");
    repo.write("gen/api.pb.go", "package gen\n");
    repo.write(
        "gen/client.go",
        "// Code generated by ogen, DO NOT EDIT.\n\npackage gen\n\nfunc Client() {}\n",
    );
    repo.write("big.txt", big_text());
    repo.write(".gitignore", "*.log\n!important.log\nbuild/\n");
    repo.write("debug.log", "ignored but committed\n");
    repo.write("important.log", "re-included by a negation\n");
    repo.write("build/output.txt", "ignored directory, committed\n");
    repo.write("src/.gitignore", "generated_*.rs\n");
    repo.write("src/generated_schema.rs", "pub struct Schema;\n");
    repo.write("generated_at_root.rs", "// only src/.gitignore mentions this pattern\n");
    repo.symlink("link-to-readme", "README.md");
    repo.make_executable("scripts/run.sh");
    repo.git(&["add", "--all"]);
    repo.git(&["add", "--force", "debug.log", "build/output.txt", "src/generated_schema.rs"]);
    repo.add_gitlink("libs/sub", "1111111111111111111111111111111111111111");
    let initial = repo.commit("initial");
    Fixture { repo, initial }
}
