//! Property tests of the node cache against the store: over random commits, prunes and a
//! snapshot import, reads through the cache equal reads straight from RocksDB, and the cache
//! never holds a node RocksDB no longer has.

use dpx_crypto::Hash;
use jmt::JellyfishMerkleTree;
use proptest::prelude::*;

use super::schema::{CF_NODES, decode_node, encode_node};
use super::test_blocks::next_block;
use super::tree::TreeView;
use super::{Store, StoreConfig};
use crate::{Blake3Hasher, WriteSet, key_hash};

const CHAIN: &str = "dpx-cache-test";
const KEYS: u8 = 40;

fn config(retain: Option<u64>, nodes: usize) -> StoreConfig {
    StoreConfig {
        retain_versions: retain,
        sync_writes: false,
        node_cache_nodes: nodes,
        ..StoreConfig::default()
    }
}

fn key(i: u8) -> Vec<u8> {
    format!("k/{i:02}").into_bytes()
}

fn commit(store: &Store, writes: WriteSet) -> Hash {
    let tip = store.tip_height();
    let block = next_block(store, vec![format!("tx-{tip}").into_bytes()]);
    store.commit_block(&block, b"cert", writes, vec![b"ok".to_vec()]).unwrap()
}

/// Every cached node is in RocksDB, byte for byte.
fn assert_cache_is_a_subset(store: &Store) {
    let cf = store.cf(CF_NODES).unwrap();
    for (k, node) in store.nodes.entries() {
        let on_disk = store.db.get_cf(cf, &k).unwrap();
        assert!(on_disk.is_some(), "the cache holds a node the store deleted");
        let on_disk = decode_node(&on_disk.unwrap()).unwrap();
        assert_eq!(encode_node(&on_disk).unwrap(), encode_node(&node).unwrap());
    }
}

/// Values and proofs of every key at every retained version, through the cache and without it.
fn assert_reads_agree(store: &Store) {
    let cached = store.tree_view();
    let plain = TreeView::new(&store.db, None);
    let (cached, plain) = (
        JellyfishMerkleTree::<_, Blake3Hasher>::new(&cached),
        JellyfishMerkleTree::<_, Blake3Hasher>::new(&plain),
    );
    for v in store.oldest_version()..=store.tip_height() {
        for i in 0..KEYS {
            let kh = key_hash(&key(i));
            let a = cached.get_with_proof(kh, v).unwrap();
            let b = plain.get_with_proof(kh, v).unwrap();
            assert_eq!(a.0, b.0, "value of key {i} at version {v}");
            assert_eq!(borsh::to_vec(&a.1).unwrap(), borsh::to_vec(&b.1).unwrap());
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Commit(Vec<(u8, Option<u8>)>),
    Prune(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec((0..KEYS, proptest::option::weighted(0.8, any::<u8>())), 0..12)
            .prop_map(Op::Commit),
        1 => (0u64..4).prop_map(Op::Prune),
    ]
}

fn write_set(pairs: &[(u8, Option<u8>)]) -> WriteSet {
    pairs.iter().map(|(k, v)| (key(*k), v.map(|v| vec![v; 1 + usize::from(v % 7)]))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn cached_reads_equal_uncached_reads(
        retain in prop_oneof![Just(None), Just(Some(1u64)), Just(Some(3u64))],
        cache_nodes in 1usize..48,
        ops in proptest::collection::vec(op(), 1..20),
    ) {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cached = Store::open(da.path(), CHAIN, config(retain, cache_nodes)).unwrap();
        let uncached = Store::open(db.path(), CHAIN, config(retain, 0)).unwrap();
        let genesis = write_set(&[(0, Some(1)), (1, Some(2)), (2, Some(3))]);
        prop_assert_eq!(cached.genesis(genesis.clone()).unwrap(), uncached.genesis(genesis).unwrap());
        for op in &ops {
            match op {
                Op::Commit(pairs) => {
                    let w = write_set(pairs);
                    prop_assert_eq!(commit(&cached, w.clone()), commit(&uncached, w));
                }
                Op::Prune(back) => {
                    let to = cached.tip_height().saturating_sub(*back);
                    cached.prune_to(to).unwrap();
                    uncached.prune_to(to).unwrap();
                }
            }
            assert_cache_is_a_subset(&cached);
            assert_reads_agree(&cached);
        }
        prop_assert_eq!(cached.oldest_version(), uncached.oldest_version());
        for v in cached.oldest_version()..=cached.tip_height() {
            for i in 0..KEYS {
                prop_assert_eq!(cached.get_with_proof(&key(i), v).unwrap(),
                                uncached.get_with_proof(&key(i), v).unwrap());
            }
        }
        prop_assert!(cached.node_cache_stats().nodes <= cache_nodes);
        cached.verify_integrity().unwrap();
    }
}

#[test]
fn the_cache_serves_reads_and_follows_a_snapshot_import() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = Store::open(src_dir.path(), CHAIN, config(Some(2), 10_000)).unwrap();
    src.genesis(write_set(&[(0, Some(1))])).unwrap();
    for h in 0..6u8 {
        commit(&src, write_set(&[(h, Some(h)), (h + 10, Some(h)), (h / 2 + 20, None)]));
    }
    // Commits fill the cache with what they wrote; reads at the tip hit it.
    let before = src.node_cache_stats();
    assert!(before.nodes > 0);
    src.get_with_proof(&key(3), src.tip_height()).unwrap();
    assert!(src.node_cache_stats().hits > before.hits);

    let mut snap = Vec::new();
    let root = src.export_snapshot(src.tip_height(), &mut snap).unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = Store::open(dst_dir.path(), CHAIN, config(Some(2), 64)).unwrap();
    dst.import_snapshot(&mut snap.as_slice(), root).unwrap();
    assert_cache_is_a_subset(&dst);
    for h in 0..5u8 {
        let w = write_set(&[(h + 30, Some(h)), (h, None)]);
        assert_eq!(commit(&dst, w.clone()), commit(&src, w));
        assert_cache_is_a_subset(&dst);
        assert_reads_agree(&dst);
    }
    dst.verify_integrity().unwrap();
}
