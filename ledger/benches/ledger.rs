//! Criterion benches of the ledger's hot paths. They print figures; they assert nothing on time.
//!
//! - `commit_block_1000_writes`: one block of 100 txs writing 1,000 state keys, synced WAL.
//! - `state_proof_generate` / `state_proof_verify`: on a state of 10,000 keys.
//! - `read_at_tip`: flat-state read and versioned (tree) read at the tip.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dpx_crypto::{Hash, Keypair};
use dpx_ledger::{Block, Header, Store, StoreConfig, WriteSet, merkle, verify_state_proof};

const CHAIN: &str = "dpx-bench";

fn key(i: u64) -> Vec<u8> {
    format!("obj/{i:016x}").into_bytes()
}

fn next_block(store: &Store, txs: Vec<Vec<u8>>) -> Block {
    let tip = store.tip_height();
    let parent_id = store.header(tip).expect("bench setup").map_or(Hash::ZERO, |h| h.id());
    Block {
        header: Header {
            chain_id: CHAIN.into(),
            height: tip + 1,
            time_ms: tip * 1000,
            proposer: Keypair::from_seed([9; 32]).public(),
            parent_id,
            parent_certificate_hash: Hash::ZERO,
            tx_root: merkle::root(&txs),
            state_root: store.state_root(tip).expect("bench setup").expect("bench setup"),
            validator_set_hash: Hash::ZERO,
            prev_receipts_hash: store
                .block_receipts_hash(tip)
                .expect("bench setup")
                .expect("bench setup"),
        },
        txs,
    }
}

fn seeded_store(dir: &std::path::Path, keys: u64) -> Store {
    let store = Store::open(dir, CHAIN, StoreConfig::default()).expect("bench setup");
    let genesis: WriteSet = (0..keys).map(|i| (key(i), Some(vec![7; 100]))).collect();
    store.genesis(genesis).expect("bench setup");
    store
}

fn bench_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("bench setup");
    let store = seeded_store(dir.path(), 10_000);
    let mut round = 0u64;
    c.bench_function("commit_block_1000_writes", |b| {
        b.iter_batched(
            || {
                round += 1;
                let txs: Vec<Vec<u8>> =
                    (0..100).map(|t| format!("tx-{round}-{t}").into_bytes()).collect();
                // Half updates of existing keys, half fresh keys.
                let writes: WriteSet = (0..1000u64)
                    .map(|i| {
                        let k = if i % 2 == 0 {
                            key(i * 7 % 10_000)
                        } else {
                            key(1_000_000 + round * 1000 + i)
                        };
                        (k, Some(round.to_be_bytes().repeat(12)))
                    })
                    .collect();
                let block = next_block(&store, txs);
                (block, writes)
            },
            |(block, writes)| {
                let receipts = vec![b"ok".to_vec(); block.txs.len()];
                black_box(
                    store.commit_block(&block, b"cert", writes, receipts).expect("bench setup"),
                )
            },
            BatchSize::PerIteration,
        );
    });
}

fn bench_proofs_and_reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("bench setup");
    let store = seeded_store(dir.path(), 10_000);
    let root = store.state_root(0).expect("bench setup").expect("bench setup");
    let mut i = 0u64;
    c.bench_function("state_proof_generate", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            black_box(store.get_with_proof(&key(i), 0).expect("bench setup"))
        });
    });
    let k = key(4242);
    let (value, proof) = store.get_with_proof(&k, 0).expect("bench setup");
    c.bench_function("state_proof_verify", |b| {
        b.iter(|| {
            verify_state_proof(root, black_box(&k), value.as_deref(), &proof).expect("bench setup");
        });
    });
    let (_, absent) = store.get_with_proof(b"absent", 0).expect("bench setup");
    c.bench_function("state_proof_verify_exclusion", |b| {
        b.iter(|| {
            verify_state_proof(root, black_box(b"absent"), None, &absent).expect("bench setup");
        });
    });
    c.bench_function("read_at_tip_flat", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            black_box(store.get_latest(&key(i)).expect("bench setup"))
        });
    });
    c.bench_function("read_at_tip_versioned", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            black_box(store.get(&key(i), store.tip_height()).expect("bench setup"))
        });
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench_commit, bench_proofs_and_reads
}
criterion_main!(benches);
