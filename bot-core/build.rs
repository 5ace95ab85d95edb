//! Sets `cfg(haproxy)` when the tests that drive a real HAProxy can run: `haproxy` is
//! on the PATH, or `CI=true` (where a missing HAProxy must fail the tests loudly
//! instead of skipping them). Without it those tests are `#[ignore]`d with the reason
//! "haproxy not installed", which `cargo test` prints for everyone to see.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(haproxy)");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let found = dirs.iter().map(|d| d.join("haproxy")).find(|p| p.is_file());
    match &found {
        // Uninstalling it is noticed.
        Some(binary) => println!("cargo::rerun-if-changed={}", binary.display()),
        // Installing it is noticed (a PATH directory changes).
        None => {
            for dir in dirs.iter().filter(|d| d.is_dir()) {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if found.is_some() || ci {
        println!("cargo::rustc-cfg=haproxy");
    }
}
