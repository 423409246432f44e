//! The crate layering of ARCHITECTURE.md, checked on the resolved dependency graph: the cores
//! (`dpx-consensus`, `dpx-contracts`) pull in no I/O, and the application (`dpx-app`) no
//! networking, async runtime or HTTP — the auditor's replay and anything else built on it runs
//! without libp2p or tokio, and nothing beneath `dpx-node` depends on it.
//!
//! Runs `cargo tree` on this workspace (offline, from the lock file): a dependency that creeps
//! in through a feature or another crate is caught, not only one named in a `Cargo.toml`.

use std::path::Path;
use std::process::Command;

/// The names of every package in `package`'s normal (non-dev, non-build) dependency graph.
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .args(["tree", "--offline", "--locked", "-e", "normal", "--prefix", "none", "-p", package])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("cargo tree prints UTF-8");
    let mut names: Vec<String> =
        text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    names.sort();
    names.dedup();
    names
}

/// Packages of `names` that are `forbidden` or start with one of them and a dash
/// (`tokio` also catches `tokio-util`, `libp2p` every `libp2p-*`).
fn offenders(names: &[String], forbidden: &[&str]) -> Vec<String> {
    names
        .iter()
        .filter(|n| forbidden.iter().any(|f| *n == f || n.starts_with(&format!("{f}-"))))
        .cloned()
        .collect()
}

#[test]
fn the_application_has_no_network_runtime_or_http() {
    let deps = normal_dependencies("dpx-app");
    // The graph was really read: the crate and what it is built on are in it.
    for expected in ["dpx-app", "dpx-contracts", "dpx-ledger", "dpx-consensus"] {
        assert!(deps.iter().any(|d| d == expected), "{expected} missing from {deps:?}");
    }
    let bad = offenders(
        &deps,
        &["dpx-node", "libp2p", "tokio", "axum", "hyper", "reqwest", "tower", "prost-build"],
    );
    assert!(bad.is_empty(), "dpx-app depends on {bad:?}");
}

#[test]
fn the_cores_do_no_io() {
    for core in ["dpx-consensus", "dpx-contracts"] {
        let deps = normal_dependencies(core);
        assert!(deps.iter().any(|d| d == core), "{core} missing from {deps:?}");
        let bad = offenders(
            &deps,
            &["dpx-ledger", "dpx-app", "dpx-node", "libp2p", "tokio", "rocksdb", "axum"],
        );
        assert!(bad.is_empty(), "{core} depends on {bad:?}");
    }
}

/// The check reads the real graph: the node, which is allowed the network, shows it.
#[test]
fn the_check_sees_the_nodes_network_stack() {
    let deps = normal_dependencies("dpx-node");
    let found = offenders(&deps, &["dpx-app", "libp2p", "tokio", "axum"]);
    for family in ["dpx-app", "libp2p", "tokio", "axum"] {
        assert!(found.iter().any(|f| f.starts_with(family)), "{family} not seen in {found:?}");
    }
}

#[test]
fn offenders_match_whole_names_and_their_families() {
    let names: Vec<String> =
        ["tokio-util", "tokio", "tokiofoo", "libp2p-swarm", "serde"].map(str::to_owned).to_vec();
    assert_eq!(offenders(&names, &["tokio", "libp2p"]), ["tokio-util", "tokio", "libp2p-swarm"]);
}
