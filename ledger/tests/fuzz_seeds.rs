//! Valid encodings of what the ledger decodes from outside (blocks, headers, Merkle and state
//! proofs, snapshot streams): the seed corpora of the fuzz targets in fuzz/. From valid inputs
//! the fuzzer reaches the checks behind the protobuf layer at once.
//!
//! The test checks that every seed decodes (a snapshot: imports into an empty store). With
//! `DPX_FUZZ_SEEDS=1` it also writes them to `fuzz/corpus/<target>/`.

mod common;

use dpx_crypto::Hash;
use dpx_ledger::{Block, Header, MerkleProof, StateProof, Store, WriteSet, merkle};

use common::{commit, fast_config};

/// The chain id the fuzz targets open their stores with.
const CHAIN: &str = "fuzz";

fn write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    if std::env::var_os("DPX_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed file");
    }
}

#[test]
fn seeds_decode_to_what_was_encoded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), CHAIN, fast_config()).expect("open");
    let genesis: WriteSet =
        (0..6u8).map(|i| (vec![b'k', i], Some(vec![i; usize::from(i) + 1]))).collect();
    store.genesis(genesis).expect("genesis");
    let txs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 8]).collect();
    let writes: WriteSet =
        [(vec![b'k', 1], None), (vec![b'k', 9], Some(b"nine".to_vec()))].into_iter().collect();
    commit(&store, txs.clone(), writes);
    let block = store.block(1).expect("read").expect("block 1");

    let mut blocks = Vec::new();
    let bytes = block.encode();
    assert_eq!(Block::decode(&bytes, 1 << 20).expect("block"), block);
    blocks.push(("block".to_string(), bytes));
    let bytes = block.header.encode();
    assert_eq!(Header::decode(&bytes, 1 << 16).expect("header"), block.header);
    blocks.push(("header".to_string(), bytes));
    for i in [0, 3, 4] {
        let proof = merkle::prove(&txs, i).expect("prove");
        let bytes = proof.encode();
        let back = MerkleProof::decode(&bytes, 1 << 16).expect("merkle proof");
        assert!(back.verify(&block.header.tx_root, &txs[i]));
        blocks.push((format!("merkle-proof-{i}"), bytes));
    }
    write_seeds("block_decode", &blocks);

    let mut proofs = Vec::new();
    let root = store.state_root(1).expect("read").expect("root");
    // Present, deleted and never-written keys: inclusion and both kinds of exclusion proof.
    for (i, key) in [b"k\x00".as_slice(), b"k\x01", b"k\x09", b"zz\x07"].into_iter().enumerate() {
        let (value, proof) = store.get_with_proof(key, 1).expect("proof");
        dpx_ledger::verify_state_proof(root, key, value.as_deref(), &proof).expect("verifies");
        let bytes = proof.encode();
        let back = StateProof::decode(&bytes, dpx_ledger::MAX_STATE_PROOF_BYTES).expect("decode");
        assert_eq!(back, proof);
        proofs.push((format!("state-proof-{i}"), bytes));
    }
    write_seeds("state_proof_decode", &proofs);

    let mut snapshot = Vec::new();
    let exported = store.export_snapshot(1, &mut snapshot).expect("export");
    let other = tempfile::tempdir().expect("tempdir");
    let empty = Store::open(other.path(), CHAIN, fast_config()).expect("open");
    assert_eq!(empty.import_snapshot(&mut snapshot.as_slice(), exported).expect("import"), 1);
    assert_ne!(exported, Hash::ZERO);
    write_seeds("snapshot_import", &[("snapshot-1".to_string(), snapshot)]);
}
