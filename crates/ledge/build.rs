//! Link settings of the `ledge` binary.
//!
//! On GNU/Linux the binary's relative relocations are packed (`-z pack-relative-relocs`, DT_RELR):
//! a position-independent `ledge` otherwise carries ~1.6 MiB of RELA entries (vtables, the parsers'
//! symbol-name tables…) that the loader reads on every start — pages that stay resident for the
//! life of the process. GNU ld ≥ 2.38 and lld ≥ 15 pack them and record the glibc ≥ 2.36 version
//! the loader needs (older ones ignore the option, with a warning). mold 1.x packs them without that
//! version record, and glibc then refuses the binary, so a build that links with mold (a common
//! local speed-up, set in `RUSTFLAGS`) keeps plain relocations.
//!
//! A release build linked by lld (Rust's default linker on x86_64 GNU/Linux) also places the
//! functions that start `ledge serve` and answer its first requests side by side, in the order
//! `startup-order.txt` lists them (`scripts/startup-order` writes it). Scattered over 27 MB of code,
//! the ~0.9 MB that start-up runs made the kernel map (and, after the page cache dropped the
//! binary, read) several MB of it. A name the build no longer has is skipped.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=startup-order.txt");
    let target = std::env::var("TARGET").unwrap_or_default();
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if target.ends_with("-linux-gnu") && !rustflags.contains("mold") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    // Rust's own lld, unless the build names another linker (the option is lld's and mold's).
    let default_linker = std::env::var_os("RUSTC_LINKER").is_none()
        && !rustflags.contains("fuse-ld")
        && !rustflags.contains("linker");
    if release && target == "x86_64-unknown-linux-gnu" && default_linker {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let order = std::path::Path::new(&dir).join("startup-order.txt");
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
