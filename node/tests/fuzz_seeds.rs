//! Valid inputs for the node's fuzz targets (fuzz/): a peer frame of every kind carrying valid
//! payloads, and the transaction bodies and object ids the RPC parses. From valid inputs the
//! fuzzer reaches the checks behind the protobuf layer at once.
//!
//! The test checks that every seed decodes. With `DPX_FUZZ_SEEDS=1` it also writes them to
//! `fuzz/corpus/<target>/`.

use dpx_consensus::{Certificate, Height, Round, SignedMessage, ValidatorIndex, Vote, VoteKind};
use dpx_contracts::{Operation, Role, TransactionBody};
use dpx_crypto::{Hash, Keypair};
use dpx_ledger::{Block, Header, merkle};
use dpx_node::wire::{
    Ack, NetMessage, NetResponse, ProposalBlock, Status, SyncRequest, SyncResponse, SyncedBlock,
    TxBatch, TxFetch, TxFill, net_message, net_response,
};
use prost::Message;

/// The chain id of the `rpc_inputs` target's checker.
const CHAIN: &str = "dpx-fuzz";

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

fn tx(seed: u8, nonce: u64) -> Vec<u8> {
    let agency = Keypair::from_seed([seed; 32]);
    let op = Operation::Admit {
        key: Keypair::from_seed([seed + 1; 32]).public(),
        name: format!("org-{seed}"),
        roles: vec![Role::Consumer],
    };
    TransactionBody::new(CHAIN, nonce, op).sign(&agency).encode()
}

#[test]
fn seeds_decode_to_what_was_encoded() {
    let key = Keypair::from_seed([1; 32]);
    let txs = vec![tx(10, 0), tx(10, 1), tx(20, 0)];
    let block = Block {
        header: Header {
            chain_id: CHAIN.into(),
            height: 2,
            time_ms: 1_700_000_000_000,
            proposer: key.public(),
            parent_id: Hash([1; 32]),
            parent_certificate_hash: Hash([2; 32]),
            tx_root: merkle::root(&txs),
            state_root: Hash([3; 32]),
            validator_set_hash: Hash([4; 32]),
            prev_receipts_hash: Hash([5; 32]),
        },
        txs: txs.clone(),
    };
    // Its compact form: the first transaction inline, the others by hash.
    let compact = dpx_node::driver::compact::encode(&block, b"", |i| {
        Some((Hash::digest(&block.txs[i]), i == 0))
    });
    let places = dpx_node::driver::compact::slots(&compact, txs.len()).expect("compact seed");
    assert_eq!(places.len(), txs.len());
    let block = block.encode();
    let vote = Vote {
        kind: VoteKind::Precommit,
        height: Height(2),
        round: Round(0),
        value_id: Some(Hash([6; 32])),
        validator: ValidatorIndex(0),
    }
    .sign(CHAIN, &key);
    let certificate = Certificate {
        height: Height(2),
        round: Round(0),
        value_id: Hash([6; 32]),
        signatures: vec![(ValidatorIndex(0), vote.signature)],
    }
    .encode();

    let kinds = [
        ("consensus", net_message::Kind::Consensus(SignedMessage::Vote(vote).encode())),
        (
            "block",
            net_message::Kind::Block(ProposalBlock {
                height: 2,
                round: 0,
                block: block.clone(),
                parent_certificate: certificate.clone(),
            }),
        ),
        ("txs", net_message::Kind::Txs(TxBatch { txs: txs.clone() })),
        (
            "compact",
            net_message::Kind::Compact(dpx_node::wire::CompactBlock {
                parent_certificate: certificate.clone(),
                ..compact.clone()
            }),
        ),
        (
            "tx-fetch",
            net_message::Kind::TxFetch(TxFetch {
                block_id: vec![6; 32],
                hashes: compact.hashes.clone(),
            }),
        ),
        (
            "tx-fill",
            net_message::Kind::TxFill(TxFill { block_id: vec![6; 32], txs: txs[1..].to_vec() }),
        ),
        ("status", net_message::Kind::Status(Status { height: 9, tip_id: vec![7; 32], round: 1 })),
        (
            "sync-request",
            net_message::Kind::SyncRequest(SyncRequest { from_height: 3, max_blocks: 32 }),
        ),
    ];
    let mut frames = Vec::new();
    for (name, kind) in kinds {
        let m = NetMessage { kind: Some(kind) };
        let bytes = m.encode_to_vec();
        assert_eq!(NetMessage::decode(bytes.as_slice()).expect(name), m);
        frames.push((format!("message-{name}"), bytes));
    }
    let responses = [
        ("ack", net_response::Kind::Ack(Ack {})),
        (
            "sync",
            net_response::Kind::Sync(SyncResponse {
                blocks: vec![SyncedBlock {
                    block,
                    certificate: certificate.clone(),
                    parent_certificate: certificate,
                }],
            }),
        ),
    ];
    for (name, kind) in responses {
        let r = NetResponse { kind: Some(kind) };
        let bytes = r.encode_to_vec();
        assert_eq!(NetResponse::decode(bytes.as_slice()).expect(name), r);
        frames.push((format!("response-{name}"), bytes));
    }
    write_seeds("net_frame", &frames);

    // The RPC's inputs: one transaction, a protobuf batch, object ids of each form.
    let checker = dpx_app::admit::TxChecker::new(CHAIN, false, 1024);
    let mut rpc = vec![("tx".to_string(), txs[0].clone())];
    let batch = TxBatch { txs: txs.clone() }.encode_to_vec();
    let verdicts = checker.check_batch(TxBatch::decode(batch.as_slice()).expect("batch").txs);
    assert_eq!(verdicts.len(), txs.len());
    assert!(verdicts.iter().all(Result::is_ok), "{verdicts:?}");
    rpc.push(("batch".into(), batch));
    let id = key.public().to_hex();
    assert!(dpx_app::views::object_key("participants", &id).is_ok());
    assert!(dpx_app::views::object_key("policies", "3").is_ok());
    rpc.push(("id-key".into(), id.into_bytes()));
    rpc.push(("id-number".into(), b"3".to_vec()));
    write_seeds("rpc_inputs", &rpc);
}
