//! The test vectors of `SPEC.md`, regenerated from the code and compared with the committed
//! files in `spec/vectors/`, so the written protocol cannot drift from the implementation.
//!
//! `DPX_WRITE_VECTORS=1 cargo test -p dpx-tests --test spec_vectors` rewrites the files (review
//! the diff: a changed vector is a changed protocol). Without it, any difference fails and names
//! the first JSON path that differs.
//!
//! Besides regenerating, each module checks the spec's *descriptions* against the code where a
//! byte-level detail could be misread: `reference.rs` re-implements the hashing, the Merkle
//! trees and the state-tree proof check from the text of SPEC.md alone, and the vectors are
//! produced only after the reference agrees with the Rust code.

mod chain;
mod crypto;
mod reference;
mod rpc_request;
mod state;
mod txs;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The chain id every vector uses.
pub const CHAIN: &str = "dpx-spec";

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

fn spec_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../SPEC.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lowercase hex, as every byte string in the vectors.
pub fn hx(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

/// The first JSON path at which `committed` and `generated` differ.
fn first_difference(committed: &Value, generated: &Value, path: &str) -> Option<String> {
    match (committed, generated) {
        (Value::Object(old), Value::Object(new)) => {
            let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (old.get(k), new.get(k)) {
                (Some(o), Some(n)) => first_difference(o, n, &format!("{path}.{k}")),
                _ => Some(format!("{path}.{k} (present on one side only)")),
            })
        }
        (Value::Array(old), Value::Array(new)) => {
            if old.len() != new.len() {
                return Some(format!("{path} (length {} vs {})", old.len(), new.len()));
            }
            old.iter()
                .zip(new)
                .enumerate()
                .find_map(|(i, (o, n))| first_difference(o, n, &format!("{path}[{i}]")))
        }
        _ if committed == generated => None,
        _ => Some(format!("{path}: committed {committed} vs generated {generated}")),
    }
}

/// Compare `generated` with `spec/vectors/<name>.json`, or write it with `DPX_WRITE_VECTORS=1`.
fn check(name: &str, generated: &Value) {
    let path = vectors_dir().join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(generated).expect("vectors serialize") + "\n";
    if std::env::var("DPX_WRITE_VECTORS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(vectors_dir()).expect("create spec/vectors");
        std::fs::write(&path, text).expect("write vectors");
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (DPX_WRITE_VECTORS=1 writes it)", path.display()));
    let committed: Value = serde_json::from_str(&committed)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    if let Some(diff) = first_difference(&committed, generated, "$") {
        panic!(
            "{} disagrees with the code at {diff}\nIf the protocol changed on purpose, rerun \
             with DPX_WRITE_VECTORS=1, review the diff and update SPEC.md.",
            path.display()
        );
    }
}

#[test]
fn hashing() {
    check("hashing", &crypto::hashing());
}

#[test]
fn keys() {
    check("keys", &crypto::keys());
}

#[test]
fn signatures() {
    check("signatures", &crypto::signatures());
}

#[test]
fn transactions() {
    check("transactions", &txs::transactions());
}

#[test]
fn grants() {
    check("grants", &txs::grants());
}

#[test]
fn ids_and_state_keys() {
    check("ids", &txs::ids());
}

#[test]
fn decoding() {
    check("decoding", &txs::decoding());
}

#[test]
fn enums() {
    let v = txs::enums();
    check("enums", &v);
    // The tables in SPEC.md are written by hand; every row must be there, exactly.
    let spec = spec_text();
    for (name, rows) in v["enums"].as_object().expect("enums object") {
        for row in rows.as_array().expect("rows") {
            let line = format!("| {} | `{}` |", row["code"], row["name"].as_str().expect("name"));
            assert!(spec.contains(&line), "SPEC.md lacks the {name} row {line:?}");
        }
    }
}

#[test]
fn domains_are_all_in_the_spec() {
    let spec = spec_text();
    for d in crypto::hashing()["domains"].as_array().expect("domains") {
        let tag = d["tag"].as_str().expect("tag");
        assert!(spec.contains(&format!("`{tag}`")), "SPEC.md does not name the domain {tag}");
    }
}

#[test]
fn consensus() {
    check("consensus", &chain::consensus());
}

#[test]
fn blocks() {
    check("blocks", &chain::blocks());
}

#[test]
fn events() {
    check("events", &chain::events());
}

#[test]
fn state_tree() {
    check("state_tree", &state::state_tree());
}

#[test]
fn proof_bundle() {
    check("proof_bundle", &state::proof_bundle());
}

#[test]
fn proof_bundle_history() {
    check("proof_bundle_history", &state::proof_bundle_history());
}

#[test]
fn tx_proof_bundle() {
    check("tx_proof_bundle", &state::tx_proof_bundle());
}

#[test]
fn rpc_request() {
    check("rpc_request", &rpc_request::rpc_request());
}
