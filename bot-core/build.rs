//! Sets `cfg(haproxy)` when the tests that drive a real HAProxy can run: `haproxy` is
//! on the PATH, or `CI=true` (where a missing HAProxy must fail the tests loudly
//! instead of skipping them). Without it those tests are `#[ignore]`d with the reason
//! "haproxy not installed", which `cargo test` prints for everyone to see.

use std::path::PathBuf;

fn main() {
    embed_migrations();
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

/// Writes `$OUT_DIR/migrations.rs`: for each engine, its `migrations/<engine>/` files as
/// `(version, description, include_str!(file))`, by version, named as sqlx names them
/// (`0012_probe_count.sql` is version 12, "probe count"). The library hands them to
/// sqlx's migrator at run time, without sqlx's `migrate!` macro and the proc-macro build
/// (sqlx-macros with every driver, again for each feature set) it needs.
fn embed_migrations() {
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut code = String::from("// Written by build.rs from migrations/: do not edit.\n");
    for (engine, feature, name) in [
        ("sqlite", "sqlite", "SQLITE"),
        ("postgres", "postgres", "POSTGRES"),
    ] {
        let dir = root.join("migrations").join(engine);
        println!("cargo::rerun-if-changed={}", dir.display());
        let mut files: Vec<(i64, String, PathBuf)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| {
                let path = entry.expect("a readable migrations directory").path();
                let name = path.file_name()?.to_str()?.to_owned();
                let (version, rest) = name.split_once('_')?;
                let words = rest.strip_suffix(".sql")?;
                assert!(
                    !words.ends_with(".up") && !words.ends_with(".down"),
                    "{}: reversible migrations are not embedded; write a forward one",
                    path.display()
                );
                let version = version.parse().unwrap_or_else(|_| {
                    panic!(
                        "{}: the name must start with its version number",
                        path.display()
                    )
                });
                Some((version, words.replace('_', " "), path))
            })
            .collect();
        files.sort_by_key(|(version, _, _)| *version);
        code.push_str(&format!(
            "#[cfg(feature = {feature:?})]\npub(crate) const {name}: &[File] = &[\n"
        ));
        for (version, description, path) in files {
            let path = path.to_str().expect("a UTF-8 path to the migrations");
            code.push_str(&format!(
                "    ({version}, {description:?}, include_str!({path:?})),\n"
            ));
        }
        code.push_str("];\n");
    }
    std::fs::write(out.join("migrations.rs"), code).expect("write migrations.rs");
}
