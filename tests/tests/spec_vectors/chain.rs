//! SPEC.md §7 and §10: headers and block ids, the transaction and receipt trees, votes,
//! proposals, validator sets, certificates, and event cursors.

use dpx_consensus::{
    Certificate, Height, Proposal, Round, SignedMessage, Validator, ValidatorIndex, ValidatorSet,
    Vote, VoteKind,
};
use dpx_contracts::{Code, DecisionReceipt, Event as ContractEvent, Receipt};
use dpx_crypto::{Domain, Hash, HashWriter, Keypair, Signature};
use dpx_ledger::{Block, Header, merkle, receipts_hash};
use serde_json::{Value, json};

use crate::reference;
use crate::{CHAIN, hx};

/// The validators of every consensus vector: seeds 0x10..0x13, powers 10, 20, 30, 40, in
/// index order (sorted by key, as genesis orders them).
pub fn validators() -> (Vec<Keypair>, ValidatorSet) {
    let mut keys: Vec<(Keypair, u64)> =
        (0u8..4).map(|i| (Keypair::from_seed([0x10 + i; 32]), 10 * (u64::from(i) + 1))).collect();
    keys.sort_by_key(|(k, _)| k.public());
    let set = ValidatorSet::new(
        keys.iter().map(|(k, power)| Validator { key: k.public(), power: *power }).collect(),
    )
    .expect("a valid set");
    (keys.into_iter().map(|(k, _)| k).collect(), set)
}

pub fn sample_header() -> Header {
    let (keys, set) = validators();
    Header {
        chain_id: CHAIN.into(),
        height: 2,
        time_ms: 1_767_225_601_000,
        proposer: keys[1].public(),
        parent_id: Hash::digest(b"parent block id"),
        parent_certificate_hash: Hash::digest(b"parent certificate"),
        tx_root: merkle::root(&[b"tx-0".to_vec(), b"tx-1".to_vec()]),
        state_root: Hash::digest(b"state root"),
        validator_set_hash: set.hash(CHAIN),
        prev_receipts_hash: Hash::ZERO,
    }
}

fn header_vector(h: &Header) -> Value {
    let bytes = h.encode();
    assert_eq!(bytes, reference::header_bytes(h), "header encoding as SPEC.md §7.1 gives it");
    assert_eq!(h.id(), reference::hash_of(Domain::HEADER.tag(), &h.chain_id, &[&bytes]));
    json!({
        "header": serde_json::to_value(h).expect("json"),
        "header_bytes": hx(&bytes),
        "block_id": h.id().to_hex(),
    })
}

fn vote_vector(keys: &[Keypair], v: Vote) -> Value {
    let bytes = v.sign_bytes();
    let kind = match v.kind {
        VoteKind::Prevote => 1,
        VoteKind::Precommit => 2,
    };
    assert_eq!(bytes, reference::vote_sign_bytes(kind, v.height.0, v.round.0, v.value_id.as_ref()));
    let signed = v.sign(CHAIN, &keys[v.validator.get()]);
    json!({
        "vote": serde_json::to_value(v).expect("json"),
        "sign_bytes": hx(&bytes),
        "digest": v.digest(CHAIN).to_hex(),
        "signature": signed.signature.to_hex(),
        "wire": hx(SignedMessage::Vote(signed).encode()),
    })
}

fn proposal_vector(keys: &[Keypair], p: Proposal) -> Value {
    let bytes = p.sign_bytes();
    assert_eq!(
        bytes,
        reference::proposal_sign_bytes(
            p.height.0,
            p.round.0,
            &p.value_id,
            p.pol_round.map(|r| r.0)
        )
    );
    let signed = p.sign(CHAIN, &keys[p.proposer.get()]);
    json!({
        "proposal": serde_json::to_value(p).expect("json"),
        "sign_bytes": hx(&bytes),
        "digest": p.digest(CHAIN).to_hex(),
        "signature": signed.signature.to_hex(),
        "wire": hx(SignedMessage::Proposal(signed).encode()),
    })
}

fn certificate(keys: &[Keypair], header: &Header, round: u32, signers: &[u32]) -> Certificate {
    let signatures: Vec<(ValidatorIndex, Signature)> = signers
        .iter()
        .map(|i| {
            let v = Vote {
                kind: VoteKind::Precommit,
                height: Height(header.height),
                round: Round(round),
                value_id: Some(header.id()),
                validator: ValidatorIndex(*i),
            };
            (ValidatorIndex(*i), v.sign(CHAIN, &keys[*i as usize]).signature)
        })
        .collect();
    Certificate {
        height: Height(header.height),
        round: Round(round),
        value_id: header.id(),
        signatures,
    }
}

fn cert_case(name: &str, cert: &Certificate, set: &ValidatorSet) -> Value {
    let bytes = cert.encode();
    let valid = cert.verify(CHAIN, set).is_ok();
    json!({
        "name": name,
        "certificate": {
            "height": cert.height.0,
            "round": cert.round.0,
            "value_id": cert.value_id.to_hex(),
            "signatures": cert.signatures.iter().map(|(i, s)| json!({ "validator": i.0, "signature": s.to_hex() })).collect::<Vec<_>>(),
        },
        "certificate_bytes": hx(&bytes),
        "blake3": Hash::digest(&bytes).to_hex(),
        "valid": valid,
    })
}

pub fn consensus() -> Value {
    let (keys, set) = validators();
    let header = sample_header();
    let id = header.id();
    let mut w = HashWriter::new(Domain::VALIDATOR_SET, CHAIN);
    w.update(&(set.len() as u64).to_le_bytes());
    let mut parts: Vec<Vec<u8>> = vec![(set.len() as u64).to_le_bytes().to_vec()];
    for v in set.validators() {
        w.update(v.key.as_bytes()).update(&v.power.to_le_bytes());
        parts.push(v.key.to_bytes().to_vec());
        parts.push(v.power.to_le_bytes().to_vec());
    }
    let part_refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    assert_eq!(set.hash(CHAIN), w.finish());
    assert_eq!(set.hash(CHAIN), reference::hash_of(Domain::VALIDATOR_SET.tag(), CHAIN, &part_refs));
    let vote = |kind, round, value_id, validator| Vote {
        kind,
        height: Height(header.height),
        round: Round(round),
        value_id,
        validator: ValidatorIndex(validator),
    };
    let votes = vec![
        vote_vector(&keys, vote(VoteKind::Prevote, 0, Some(id), 0)),
        vote_vector(&keys, vote(VoteKind::Prevote, 0, None, 2)),
        vote_vector(&keys, vote(VoteKind::Precommit, 1, Some(id), 3)),
    ];
    let proposal = |round, pol_round, proposer| Proposal {
        height: Height(header.height),
        round: Round(round),
        value_id: id,
        pol_round,
        proposer: ValidatorIndex(proposer),
    };
    let proposals = vec![
        proposal_vector(&keys, proposal(0, None, 1)),
        proposal_vector(&keys, proposal(3, Some(Round(1)), 2)),
    ];
    // Total power 100, so a quorum is 67: the validators of power 40 and 30 are one, the three
    // of power 10, 20 and 30 are not.
    let by_power = |powers: &[u64]| -> Vec<u32> {
        let mut v: Vec<u32> = powers
            .iter()
            .map(|p| set.validators().iter().position(|v| v.power == *p).expect("a power") as u32)
            .collect();
        v.sort_unstable();
        v
    };
    let good = certificate(&keys, &header, 1, &by_power(&[40, 30]));
    let mut unordered = good.clone();
    unordered.signatures.swap(0, 1);
    let mut forged = good.clone();
    let signer = forged.signatures[1].0.get();
    forged.signatures[1].1 = keys[signer].sign_digest(&Hash::digest(b"something else"));
    let cases = vec![
        cert_case("quorum", &good, &set),
        cert_case("all four", &certificate(&keys, &header, 1, &[0, 1, 2, 3]), &set),
        cert_case(
            "three validators, no quorum",
            &certificate(&keys, &header, 1, &by_power(&[10, 20, 30])),
            &set,
        ),
        cert_case("signers not strictly increasing", &unordered, &set),
        cert_case("one bad signature", &forged, &set),
    ];
    let valid: Vec<bool> = cases.iter().map(|c| c["valid"].as_bool().expect("bool")).collect();
    assert_eq!(valid, [true, true, false, false, false]);
    json!({
        "description": "SPEC.md §7.3–§7.5. The validator set (index order = ascending key bytes) and its hash; votes and proposals for the block id of `header` with their sign bytes, digests (H(dpx/vote/v1 | dpx/proposal/v1, chain_id, sign_bytes)), signatures and wire encodings (protobuf SignedMessage); certificates over that block with their protobuf bytes, the plain blake3 the next header's parent_certificate_hash carries, and whether they verify against the set.",
        "chain_id": CHAIN,
        "validator_seeds": keys.iter().map(|k| hx(k.seed())).collect::<Vec<_>>(),
        "validators": set.validators().iter().map(|v| json!({ "key": v.key, "power": v.power })).collect::<Vec<_>>(),
        "total_power": set.total_power(),
        "quorum": set.quorum(),
        "validator_set_hash": { "parts": part_refs.iter().map(hx).collect::<Vec<_>>(), "hash": set.hash(CHAIN).to_hex() },
        "header": header_vector(&header),
        "votes": votes,
        "proposals": proposals,
        "certificates": cases,
    })
}

fn tree_vector(n: usize) -> Value {
    let items: Vec<Vec<u8>> = (0..n).map(|i| format!("tx-{i}").into_bytes()).collect();
    let leaves: Vec<Hash> =
        items.iter().map(|t| reference::merkle_leaf(Domain::MERKLE_LEAF.tag(), t)).collect();
    let rleaves: Vec<Hash> =
        items.iter().map(|t| reference::merkle_leaf(Domain::RECEIPTS.tag(), t)).collect();
    let root = merkle::root(&items);
    assert_eq!(root, reference::merkle_root(&leaves));
    assert_eq!(receipts_hash(&items), reference::merkle_root(&rleaves));
    let proofs: Vec<Value> = (0..n)
        .map(|i| {
            let p = merkle::prove(&items, i).expect("in range");
            assert!(reference::merkle_verify(leaves[i], p.index, p.leaf_count, &p.siblings, &root));
            json!({ "index": i, "siblings": p.siblings, "protobuf": hx(p.encode()) })
        })
        .collect();
    json!({
        "items": items.iter().map(hx).collect::<Vec<_>>(),
        "leaf_hashes": leaves,
        "tx_root": root,
        "receipt_leaf_hashes": rleaves,
        "receipts_root": receipts_hash(&items),
        "proofs": proofs,
    })
}

pub fn blocks() -> Value {
    let (keys, set) = validators();
    let first = Header {
        chain_id: CHAIN.into(),
        height: 1,
        time_ms: 1_767_225_600_001,
        proposer: keys[0].public(),
        parent_id: Hash::ZERO,
        parent_certificate_hash: Hash::ZERO,
        tx_root: merkle::root(&[]),
        state_root: Hash::digest(b"genesis state root"),
        validator_set_hash: set.hash(CHAIN),
        prev_receipts_hash: receipts_hash(&[]),
    };
    let block = Block { header: sample_header(), txs: vec![b"tx-0".to_vec(), b"tx-1".to_vec()] };
    block.check_tx_root().expect("tx root");
    let trees: Vec<Value> = [0, 1, 2, 3, 5, 7].into_iter().map(tree_vector).collect();
    json!({
        "description": "SPEC.md §7.1–§7.2. Headers → protobuf bytes → block id = H(dpx/header/v1, chain_id, header_bytes); a block's protobuf bytes; transaction trees (leaf = H(dpx/merkle/leaf/v1, \"\", tx), node = H(dpx/merkle/node/v1, \"\", left, right), split at the largest power of two below n, empty = 32 zero bytes) and receipt trees (leaf domain dpx/receipts/v1) with an inclusion proof of every leaf (siblings from the leaf up).",
        "headers": [header_vector(&first), header_vector(&block.header)],
        "block": { "header_block_id": block.id(), "txs": block.txs.iter().map(hx).collect::<Vec<_>>(), "block_bytes": hx(block.encode()) },
        "trees": trees,
    })
}

pub fn events() -> Value {
    let (keys, _) = validators();
    let txs = vec![b"tx-a".to_vec(), b"tx-b".to_vec()];
    let event = |kind: &str, n: u32| ContractEvent::new(kind).attr("n", n);
    let decision = DecisionReceipt {
        action: "order".into(),
        principal: keys[0].public(),
        resource: "Product::\"00\"".into(),
        allowed: false,
        policy_version: 1,
        policy_hash: Hash::ZERO,
        determining: vec![],
        reason: "denied".into(),
    };
    let receipts = [
        Receipt {
            tx_hash: Hash::digest(&txs[0]),
            code: Code::Ok,
            reason: String::new(),
            events: vec![event("product.listed", 1), event("grant.issued", 2)],
            decision: None,
        },
        Receipt {
            tx_hash: Hash::digest(&txs[1]),
            code: Code::Denied,
            reason: "denied".into(),
            events: vec![event("policy.denied", 1), event("tx.failed", 2)],
            decision: Some(decision),
        },
    ];
    let header = Header { height: 7, tx_root: merkle::root(&txs), ..sample_header() };
    let block = Block { header, txs };
    let encoded: Vec<Vec<u8>> = receipts.iter().map(Receipt::encode).collect();
    let be = dpx_node::events::BlockEvents::new(&block, &encoded);
    let out: Vec<Value> = be
        .events
        .iter()
        .map(|e| json!({ "kind": e.kind, "cursor": e.cursor, "tx_hash": e.tx_hash }))
        .collect();
    json!({
        "description": "SPEC.md §10. The events one block produces, in stream order, and their cursors `H.N`: the block event is N = 0; transaction i (from 0) has N = 16·i + 1, its contract events 16·i + 2 … (at most 15), its policy decision 16·i + 16.",
        "height": 7,
        "receipts": receipts.iter().map(|r| serde_json::to_value(r).expect("json")).collect::<Vec<_>>(),
        "events": out,
    })
}
