//! Link settings of the `ledge` binary.
//!
//! On GNU/Linux the binary's relative relocations are packed (`-z pack-relative-relocs`, DT_RELR):
//! a position-independent `ledge` otherwise carries ~1.6 MiB of RELA entries (vtables, the parsers'
//! symbol-name tables…) that the loader reads on every start — pages that stay resident for the
//! life of the process. GNU ld ≥ 2.38 and lld ≥ 15 pack them and record the glibc ≥ 2.36 version
//! the loader needs (older ones ignore the option, with a warning). mold 1.x packs them without that
//! version record, and glibc then refuses the binary, so a build that links with mold (a common
//! local speed-up, set in `RUSTFLAGS`) keeps plain relocations.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if target.ends_with("-linux-gnu") && !rustflags.contains("mold") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
