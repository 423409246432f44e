//! Criterion benches of the ledger's hot paths. They print figures; they assert nothing on time.
//!
//! - `commit_block_1000_writes`: one block of 100 txs writing 1,000 state keys, synced WAL.
//! - `state_proof_generate` / `state_proof_verify`: on a state of 10,000 keys.
//! - `read_at_tip`: flat-state read and versioned (tree) read at the tip.
//! - `storage/*`: a marketplace-sized store (100,000 keys of ~200 bytes and 20 blocks of history,
//!   reopened so it sits in SST files, not the memtable): committing blocks of 1,000 transactions
//!   writing 1,000 keys (half updates of random existing keys, half new keys), and reading
//!   values and proofs at the tip with warm caches and right after a reopen (cold caches; the
//!   operating system's page cache stays warm), and 1,000 tx-index lookups of transactions
//!   never committed (the read a commit used to make per transaction).

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

const STATE_KEYS: u64 = 100_000;

fn market_key(i: u64) -> Vec<u8> {
    // Keys shaped like the contracts' records: a kind, then an id.
    let kind = ["grant", "product", "participant", "demand"][(i % 4) as usize];
    format!("{kind}/{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).into_bytes()
}

fn market_value(i: u64, round: u64) -> Vec<u8> {
    let mut v = format!("{{\"id\":{i},\"round\":{round},\"body\":\"").into_bytes();
    v.resize(200, b'x');
    v
}

/// A splitmix64 step: the benches' only randomness, fixed so before and after read the same keys.
fn mix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 1,000 txs writing 1,000 keys: half updates of existing keys, half new keys.
fn market_block(store: &Store, round: u64, rng: &mut u64) -> (Block, WriteSet) {
    let txs: Vec<Vec<u8>> = (0..1000).map(|t| format!("tx-{round}-{t}").into_bytes()).collect();
    let writes: WriteSet = (0..1000u64)
        .map(|i| {
            let id = if i % 2 == 0 { mix(rng) % STATE_KEYS } else { STATE_KEYS + round * 1000 + i };
            (market_key(id), Some(market_value(id, round)))
        })
        .collect();
    (next_block(store, txs), writes)
}

fn commit_market(store: &Store, round: u64, rng: &mut u64) {
    let (block, writes) = market_block(store, round, rng);
    let receipts = vec![b"ok".to_vec(); block.txs.len()];
    store.commit_block(&block, b"cert", writes, receipts).expect("bench setup");
}

/// The marketplace-sized store, built once and reopened by each bench.
fn market_store(dir: &std::path::Path) -> u64 {
    let config = StoreConfig { sync_writes: false, ..StoreConfig::default() };
    let store = Store::open(dir, CHAIN, config).expect("bench setup");
    let genesis: WriteSet =
        (0..STATE_KEYS).map(|i| (market_key(i), Some(market_value(i, 0)))).collect();
    store.genesis(genesis).expect("bench setup");
    let mut rng = 1;
    for round in 1..=20 {
        commit_market(&store, round, &mut rng);
    }
    store.tip_height()
}

fn bench_storage(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("bench setup");
    let built_tip = market_store(dir.path());
    let open = || Store::open(dir.path(), CHAIN, StoreConfig::default()).expect("bench setup");
    let mut g = c.benchmark_group("storage");
    {
        let store = open();
        let mut round = built_tip;
        let mut rng = 2;
        g.bench_function("commit_1000_txs_1000_writes_100k_state", |b| {
            b.iter_batched(
                || {
                    round += 1;
                    market_block(&store, round, &mut rng)
                },
                |(block, writes)| {
                    let receipts = vec![b"ok".to_vec(); block.txs.len()];
                    black_box(store.commit_block(&block, b"cert", writes, receipts).expect("bench"))
                },
                BatchSize::PerIteration,
            );
        });
    }
    let store = open();
    let tip = store.tip_height();
    // What the commit of a 1,000-transaction block used to spend asking the tx index whether
    // each transaction was already included (all new: misses).
    let mut probe = 0u64;
    g.bench_function("tx_index_1000_misses", |b| {
        b.iter(|| {
            probe += 1;
            for t in 0..1000u64 {
                let h = Hash::digest(&[probe.to_be_bytes(), t.to_be_bytes()].concat());
                black_box(store.tx(&h).expect("bench"));
            }
        });
    });
    let mut rng = 3;
    g.bench_function("read_tip_versioned_warm", |b| {
        b.iter(|| {
            black_box(store.get(&market_key(mix(&mut rng) % STATE_KEYS), tip).expect("bench"))
        });
    });
    g.bench_function("proof_tip_warm", |b| {
        b.iter(|| {
            black_box(
                store.get_with_proof(&market_key(mix(&mut rng) % STATE_KEYS), tip).expect("bench"),
            )
        });
    });
    drop(store);
    // Cold: each iteration reopens the store (not timed; criterion drops the previous one
    // first), then times 200 proofs at the tip.
    g.bench_function("proofs_200_tip_cold", |b| {
        b.iter_batched(
            open,
            |store: Store| {
                for _ in 0..200 {
                    let k = market_key(mix(&mut rng) % STATE_KEYS);
                    black_box(store.get_with_proof(&k, tip).expect("bench"));
                }
                store
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench_commit, bench_proofs_and_reads, bench_storage
}
criterion_main!(benches);
