//! SPEC.md §8 and §11: the state tree (leaf and node hashing, bit order, proofs) and a proof
//! bundle checked end to end.

use dpx_app::proofs::{ProofBundle, TxProofBundle};
use dpx_app::replay::ChainBuilder;
use dpx_consensus::{Certificate, Height, Round, ValidatorIndex, ValidatorSet, Vote, VoteKind};
use dpx_contracts::keys;
use dpx_crypto::{Hash, Keypair};
use dpx_genesis::Genesis;
use dpx_ledger::{
    Block, Header, ProofNode, StateProof, Store, StoreConfig, WriteSet, merkle, receipts_hash,
    verify_state_proof,
};
use serde_json::{Value, json};

use crate::reference::{self, LeafPair, Sibling};
use crate::{CHAIN, hx};

fn reference_proof(p: &StateProof) -> (Option<LeafPair>, Vec<Sibling>) {
    let leaf = p.leaf.map(|l| (l.key_hash.0, l.value_hash.0));
    let siblings = p
        .siblings
        .iter()
        .map(|n| match n {
            ProofNode::Null => Sibling::Null,
            ProofNode::Internal { left, right } => Sibling::Internal(left.0, right.0),
            ProofNode::Leaf(l) => Sibling::Leaf(l.key_hash.0, l.value_hash.0),
        })
        .collect();
    (leaf, siblings)
}

/// Both the code and the reference must give `expect` for (key, value) under `root`.
fn both_verify(root: Hash, key: &[u8], value: Option<&[u8]>, p: &StateProof, expect: bool) {
    let (leaf, siblings) = reference_proof(p);
    assert_eq!(verify_state_proof(root, key, value, p).is_ok(), expect, "code, key {key:?}");
    assert_eq!(reference::smt_verify(&root.0, key, value, leaf, &siblings), expect, "reference");
}

fn proof_vector(store: &Store, root: Hash, key: &[u8], kind: &str) -> Value {
    let (value, proof) = store.get_with_proof(key, 0).expect("a proof");
    both_verify(root, key, value.as_deref(), &proof, true);
    // The same proof must not show another value, or a present value absent.
    both_verify(root, key, Some(b"something else"), &proof, false);
    if value.is_some() {
        both_verify(root, key, None, &proof, false);
    }
    json!({
        "kind": kind,
        "key": hx(key),
        "value": value.as_ref().map(hx),
        "key_hash": Hash::digest(key),
        "proof": serde_json::to_value(&proof).expect("json"),
        "proof_protobuf": hx(proof.encode()),
    })
}

pub fn state_tree() -> Value {
    let entries: Vec<(&[u8], &[u8])> = vec![
        (b"alpha", b"1"),
        (b"beta", b"2"),
        (b"gamma", b"3"),
        (b"delta", b"4"),
        (b"epsilon", b"5"),
        (b"zeta", b""),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), CHAIN, StoreConfig::default()).expect("store");
    let writes: WriteSet = entries.iter().map(|(k, v)| (k.to_vec(), Some(v.to_vec()))).collect();
    let root = store.genesis(writes).expect("genesis");
    let leaves: Vec<LeafPair> =
        entries.iter().map(|(k, v)| (Hash::digest(k).0, Hash::digest(v).0)).collect();
    assert_eq!(root.0, reference::smt_root(&leaves, 0), "the root as SPEC.md §8.2 defines it");
    let leaf_rows: Vec<Value> = entries
        .iter()
        .zip(&leaves)
        .map(|((k, v), (kh, vh))| {
            json!({
                "key": hx(k),
                "value": hx(v),
                "key_hash": hx(kh),
                "value_hash": hx(vh),
                "leaf_hash": hx(reference::smt_leaf(kh, vh)),
            })
        })
        .collect();
    let mut proofs = vec![
        proof_vector(&store, root, b"alpha", "inclusion"),
        proof_vector(&store, root, b"zeta", "inclusion (empty value)"),
    ];
    // One exclusion proof of each shape: the key's place is empty, or another key's leaf holds
    // the subtree the key would fall in.
    let mut shapes = [false, false];
    for i in 0..64 {
        let key = format!("missing-{i}").into_bytes();
        let (_, p) = store.get_with_proof(&key, 0).expect("a proof");
        let shape = usize::from(p.leaf.is_some());
        if !shapes[shape] {
            shapes[shape] = true;
            let kind =
                if p.leaf.is_some() { "exclusion (another leaf)" } else { "exclusion (empty)" };
            proofs.push(proof_vector(&store, root, &key, kind));
        }
    }
    assert_eq!(shapes, [true, true], "both exclusion shapes found");
    // Version 1: two keys deleted, one added, one changed. A deletion leaves no trace in the
    // tree: the root is the root of the remaining entries.
    let header = Header {
        chain_id: CHAIN.into(),
        height: 1,
        time_ms: 1,
        proposer: Keypair::from_seed([9; 32]).public(),
        parent_id: Hash::ZERO,
        parent_certificate_hash: Hash::ZERO,
        tx_root: merkle::root(&[]),
        state_root: root,
        validator_set_hash: Hash::ZERO,
        prev_receipts_hash: receipts_hash(&[]),
    };
    let changes: Vec<(&[u8], Option<&[u8]>)> =
        vec![(b"beta", None), (b"gamma", None), (b"eta", Some(b"7")), (b"alpha", Some(b"one"))];
    let writes: WriteSet =
        changes.iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect();
    let block = Block { header, txs: vec![] };
    let root1 = store.commit_block(&block, b"", writes, vec![]).expect("commit");
    let mut after: std::collections::BTreeMap<&[u8], &[u8]> = entries.iter().copied().collect();
    for (k, v) in &changes {
        match v {
            Some(v) => after.insert(k, v),
            None => after.remove(k),
        };
    }
    let after_leaves: Vec<LeafPair> =
        after.iter().map(|(k, v)| (Hash::digest(k).0, Hash::digest(v).0)).collect();
    assert_eq!(root1.0, reference::smt_root(&after_leaves, 0), "root after deletions");
    let version1 = json!({
        "changes": changes.iter().map(|(k, v)| json!({ "key": hx(k), "value": v.map(hx) })).collect::<Vec<_>>(),
        "root": root1,
    });
    let empty_dir = tempfile::tempdir().expect("tempdir");
    let empty = Store::open(empty_dir.path(), CHAIN, StoreConfig::default()).expect("store");
    let empty_root = empty.genesis(WriteSet::new()).expect("genesis");
    assert_eq!(empty_root.0, reference::PLACEHOLDER);
    json!({
        "description": "SPEC.md §8. A state of six entries: key_hash = blake3(key), value_hash = blake3(value), leaf_hash = blake3(\"JMT::LeafNode\" ‖ key_hash ‖ value_hash); the root of the binary sparse Merkle tree over key-hash bits (most significant bit of byte 0 first, 0 = left), internal = blake3(\"JMT::IntrnalNode\" ‖ left ‖ right), empty subtree = \"SPARSE_MERKLE_PLACEHOLDER_HASH__\", a subtree with one leaf = that leaf's hash. Proofs (of version 0) in their JSON (RPC) and protobuf forms; siblings run from the bottom up. `version_1`: the root after deleting two keys (value null), adding one and changing one.",
        "entries": leaf_rows,
        "root": root,
        "empty_root": empty_root,
        "proofs": proofs,
        "version_1": version1,
    })
}

/// `dpx audit verify`'s checks (node/src/cli/audit.rs), from public functions.
fn verify_bundle(b: &ProofBundle, genesis: &Genesis) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    if b.chain_id != genesis.chain_id || b.header.chain_id != genesis.chain_id {
        return Err("chain".into());
    }
    if b.header.height != b.version + 1 {
        return Err("height".into());
    }
    let set = ValidatorSet::new(b.validators.clone()).map_err(|e| err(&e))?;
    let genesis_set = genesis.validator_set().map_err(|e| err(&e))?;
    if set.hash(CHAIN) != genesis_set.hash(CHAIN) || b.header.validator_set_hash != set.hash(CHAIN)
    {
        return Err("validator set".into());
    }
    let cert_bytes = hex::decode(&b.certificate).map_err(|e| err(&e))?;
    let cert = Certificate::decode(&cert_bytes).map_err(|e| err(&e))?;
    dpx_app::validate::check_certificate(CHAIN, &cert, b.header.height, &b.header.id(), &set)?;
    let key = hex::decode(&b.key).map_err(|e| err(&e))?;
    let value = b.value_bytes();
    verify_state_proof(b.header.state_root, &key, value.as_deref(), &b.proof)
        .map_err(|e| err(&e))?;
    let (leaf, siblings) = reference_proof(&b.proof);
    if !reference::smt_verify(&b.header.state_root.0, &key, value.as_deref(), leaf, &siblings) {
        return Err("the reference disagrees with the code".into());
    }
    Ok(())
}

pub fn proof_bundle() -> Value {
    let agency = Keypair::from_seed([1; 32]);
    let validators: Vec<Keypair> = (0u8..4).map(|i| Keypair::from_seed([0x10 + i; 32])).collect();
    let genesis = Genesis::example(
        CHAIN,
        &[("Agency", agency.public())],
        &validators.iter().map(Keypair::public).collect::<Vec<_>>(),
    );
    let set = genesis.validator_set().expect("set");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), CHAIN, StoreConfig::default()).expect("store");
    let root0 = store.genesis(genesis.initial_writes().expect("writes")).expect("genesis");
    let header = Header {
        chain_id: CHAIN.into(),
        height: 1,
        time_ms: genesis.genesis_time_ms + 1000,
        proposer: set.proposer(Height(1), Round(0)).key,
        parent_id: Hash::ZERO,
        parent_certificate_hash: Hash::ZERO,
        tx_root: merkle::root(&[]),
        state_root: root0,
        validator_set_hash: set.hash(CHAIN),
        prev_receipts_hash: receipts_hash(&[]),
    };
    let block = Block { header, txs: vec![] };
    let id = block.id();
    let signatures = (0u32..3)
        .map(|i| {
            let index = ValidatorIndex(i);
            let key = validators
                .iter()
                .find(|k| k.public() == set.validators()[i as usize].key)
                .expect("a validator key");
            let vote = Vote {
                kind: VoteKind::Precommit,
                height: Height(1),
                round: Round(0),
                value_id: Some(id),
                validator: index,
            };
            (index, vote.sign(CHAIN, key).signature)
        })
        .collect();
    let cert = Certificate { height: Height(1), round: Round(0), value_id: id, signatures };
    store.commit_block(&block, &cert.encode(), WriteSet::new(), vec![]).expect("commit");
    let key = keys::participant(&agency.public());
    let bundle = dpx_app::proofs::prove(&store, CHAIN, &key, Some(0)).expect("a bundle");
    verify_bundle(&bundle, &genesis).expect("the bundle verifies");

    let mut tampered = Vec::new();
    let mut case = |what: &str, edit: &dyn Fn(&mut ProofBundle)| {
        let mut b = bundle.clone();
        edit(&mut b);
        let valid = verify_bundle(&b, &genesis).is_ok();
        assert!(!valid, "{what} must not verify");
        tampered.push(json!({ "what": what, "bundle": b, "valid": valid }));
    };
    case("value changed", &|b| {
        let mut v = b.value_bytes().expect("a value");
        v[3] ^= 1;
        b.value = Some(hex::encode(v));
    });
    case("header state_root changed", &|b| b.header.state_root.0[0] ^= 1);
    case("a certificate signature changed", &|b| {
        let mut c = hex::decode(&b.certificate).expect("hex");
        let last = c.len() - 1;
        c[last] ^= 1;
        b.certificate = hex::encode(c);
    });
    case("validator power changed", &|b| b.validators[0].power += 1);
    json!({
        "description": "SPEC.md §11. A proof bundle as `dpx audit prove` writes it (inside {\"bundle\": …}) and the genesis it verifies against: the value's state proof against header.state_root (the state after `version`, carried by the header of block version + 1), that header's id certified by `certificate` (protobuf, hex) signed by more than 2/3 of `validators`, whose hash must equal the genesis validator set's. `tampered`: edits that must be refused.",
        "genesis": serde_json::to_value(&genesis).expect("json"),
        "bundle": bundle,
        "valid": true,
        "tampered": tampered,
    })
}

/// `dpx_app::proofs::verify_tx` and the reference Merkle check of SPEC.md §7.2 must agree.
fn verify_tx_bundle(b: &TxProofBundle, genesis: &Genesis) -> Result<(), String> {
    dpx_app::proofs::verify_tx(b, genesis)?;
    let tx = hex::decode(&b.tx).map_err(|e| e.to_string())?;
    let leaf = reference::merkle_leaf("dpx/merkle/leaf/v1", &tx);
    let p = &b.tx_proof;
    if !reference::merkle_verify(leaf, p.index, p.leaf_count, &p.siblings, &b.block.header.tx_root)
    {
        return Err("the reference disagrees with the code (tx)".into());
    }
    if let Some(r) = &b.receipt {
        let receipt = hex::decode(&r.receipt).map_err(|e| e.to_string())?;
        let leaf = reference::merkle_leaf("dpx/receipts/v1", &receipt);
        let (p, root) = (&r.proof, &r.next.header.prev_receipts_hash);
        if !reference::merkle_verify(leaf, p.index, p.leaf_count, &p.siblings, root) {
            return Err("the reference disagrees with the code (receipt)".into());
        }
    }
    Ok(())
}

/// Flip one bit of the byte at `at` of a hex string (a tampered vector).
fn flip(h: &mut String, at: usize) {
    let mut v = hex::decode(&*h).expect("hex");
    v[at] ^= 1;
    *h = hex::encode(v);
}

pub fn tx_proof_bundle() -> Value {
    let agency = Keypair::from_seed([1; 32]);
    let validators: Vec<Keypair> = (0u8..4).map(|i| Keypair::from_seed([0x10 + i; 32])).collect();
    let mut genesis = Genesis::example(
        CHAIN,
        &[("Agency", agency.public())],
        &validators.iter().map(Keypair::public).collect::<Vec<_>>(),
    );
    // Opaque payloads keep the vector small; the proofs do not depend on what a payload says.
    genesis.consensus_only = true;
    let dir = tempfile::tempdir().expect("tempdir");
    // Three of the four validators sign: the certificates carry 30 of the 40 power.
    let signers: Vec<Keypair> =
        validators.iter().take(3).map(|k| Keypair::from_seed(k.seed())).collect();
    let mut chain = ChainBuilder::new(dir.path(), &genesis, &signers).expect("builder");
    let txs: Vec<Vec<u8>> = (0u8..5).map(|i| format!("payload {i}").into_bytes()).collect();
    chain.push(txs.clone()).expect("block 1");
    chain.push(vec![b"payload 5".to_vec()]).expect("block 2");
    let store = chain.store();
    let prove = |tx: &[u8]| {
        dpx_app::proofs::prove_tx(store, CHAIN, &Hash::digest(tx)).expect("prove").expect("some")
    };
    let bundle = prove(&txs[3]);
    verify_tx_bundle(&bundle, &genesis).expect("the bundle verifies");
    let pending = prove(b"payload 5");
    assert!(pending.receipt.is_none());
    verify_tx_bundle(&pending, &genesis).expect("the pending bundle verifies");

    let mut tampered = Vec::new();
    let mut case = |what: &str, edit: &dyn Fn(&mut TxProofBundle)| {
        let mut b = bundle.clone();
        edit(&mut b);
        let valid = verify_tx_bundle(&b, &genesis).is_ok();
        assert!(!valid, "{what} must not verify");
        tampered.push(json!({ "what": what, "bundle": b, "valid": valid }));
    };
    case("tx byte changed", &|b| flip(&mut b.tx, 0));
    case("tx proof sibling changed", &|b| b.tx_proof.siblings[0].0[0] ^= 1);
    case("header tx_root changed", &|b| b.block.header.tx_root.0[0] ^= 1);
    case("a block certificate signature changed", &|b| {
        let n = b.block.certificate.len() / 2;
        flip(&mut b.block.certificate, n - 1);
    });
    case("receipt byte changed", &|b| flip(&mut b.receipt.as_mut().expect("r").receipt, 0));
    case("receipt proof sibling changed", &|b| {
        b.receipt.as_mut().expect("r").proof.siblings[0].0[0] ^= 1;
    });
    case("next header prev_receipts_hash changed", &|b| {
        b.receipt.as_mut().expect("r").next.header.prev_receipts_hash.0[0] ^= 1;
    });
    case("next certificate signature changed", &|b| {
        let c = &mut b.receipt.as_mut().expect("r").next.certificate;
        let n = c.len() / 2;
        flip(c, n - 1);
    });
    json!({
        "description": "SPEC.md §11.2. Transaction proof bundles as GET /v1/txs/{hash}/proof returns them (and `dpx audit prove-tx` writes inside {\"kind\": \"tx\", \"bundle\": …}) and the genesis they verify against (a consensus-only chain: payloads are opaque bytes). `bundle`: the transaction at index 3 of block 1 with its receipt proved against block 2's prev_receipts_hash; `pending`: the transaction of block 2, the tip, whose receipt is not certified yet (receipt null, inclusion still verifiable). `tampered`: edits that must be refused.",
        "genesis": serde_json::to_value(&genesis).expect("json"),
        "bundle": bundle,
        "valid": true,
        "pending": pending,
        "tampered": tampered,
    })
}

/// A bundle after a validator-set change, carrying the change (SPEC.md §11.3).
pub fn proof_bundle_history() -> Value {
    let agency = Keypair::from_seed([1; 32]);
    let validators: Vec<Keypair> = (0u8..4).map(|i| Keypair::from_seed([0x10 + i; 32])).collect();
    let genesis = Genesis::example(
        CHAIN,
        &[("Agency", agency.public())],
        &validators.iter().map(Keypair::public).collect::<Vec<_>>(),
    );
    let newcomer = Keypair::from_seed([0x20; 32]);
    let mut keys_known: Vec<Keypair> =
        validators.iter().map(|k| Keypair::from_seed(k.seed())).collect();
    keys_known.push(Keypair::from_seed(newcomer.seed()));
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = ChainBuilder::new(dir.path(), &genesis, &keys_known).expect("builder");
    // Block 1: the one agency's proposal (its own approval is the quorum) adds the newcomer
    // from height 4.
    let op = dpx_contracts::Operation::Propose {
        action: dpx_contracts::ProposalAction::UpdateValidators {
            changes: vec![dpx_contracts::Validator {
                key: newcomer.public(),
                power: 10,
                name: "Newcomer".into(),
            }],
            effective_height: 4,
        },
    };
    let tx = dpx_contracts::TransactionBody::new(CHAIN, 0, op).sign(&agency).encode();
    chain.push(vec![tx]).expect("block 1");
    for _ in 2..=5 {
        chain.push(vec![]).expect("a block");
    }
    let key = keys::participant(&agency.public());
    let bundle = dpx_app::proofs::prove(chain.store(), CHAIN, &key, Some(4)).expect("a bundle");
    assert_eq!(bundle.validator_history.len(), 1);
    assert_eq!(bundle.validators.len(), 5);
    let verify = |b: &ProofBundle| -> Result<(), String> {
        let c = dpx_app::proofs::CertifiedHeader {
            header: b.header.clone(),
            certificate: b.certificate.clone(),
            validators: b.validators.clone(),
        };
        dpx_app::proofs::verify_certified(&c, &genesis, &b.validator_history)?;
        let key = hex::decode(&b.key).map_err(|e| e.to_string())?;
        verify_state_proof(b.header.state_root, &key, b.value_bytes().as_deref(), &b.proof)
            .map_err(|e| e.to_string())
    };
    verify(&bundle).expect("the bundle verifies");
    let mut tampered = Vec::new();
    let mut case = |what: &str, edit: &dyn Fn(&mut ProofBundle)| {
        let mut b = bundle.clone();
        edit(&mut b);
        let valid = verify(&b).is_ok();
        assert!(!valid, "{what} must not verify");
        tampered.push(json!({ "what": what, "bundle": b, "valid": valid }));
    };
    case("validator history removed", &|b| b.validator_history.clear());
    case("new set's power changed in the handoff value", &|b| {
        let v = &mut b.validator_history[0].value;
        let n = v.len() / 2;
        flip(v, n - 1);
    });
    case("handoff certificate signature changed", &|b| {
        let c = &mut b.validator_history[0].certificate;
        let n = c.len() / 2;
        flip(c, n - 1);
    });
    case("handoff effective_height changed", &|b| b.validator_history[0].effective_height = 5);
    case("handoff header state_root changed", &|b| {
        b.validator_history[0].header.state_root.0[0] ^= 1;
    });
    json!({
        "description": "SPEC.md §11.3. A proof bundle after a validator-set change: genesis validators 0x10..0x13 (seeds), a governed change adds the key of seed 0x20 (power 10, name Newcomer) from height 4 (decided in block 1). The bundle proves the agency's participant record at version 4 (header of block 5, certified by the new five-member set) and carries one handoff: header 3 (the last the genesis set validates) with its certificate, and the state proof at version 2 of valupdate/‖u64be(4) holding the new ValidatorSet. Walk the history from the genesis set as §11.3 says. `tampered`: edits that must be refused.",
        "genesis": serde_json::to_value(&genesis).expect("json"),
        "bundle": bundle,
        "valid": true,
        "tampered": tampered,
    })
}
