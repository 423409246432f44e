//! Store behaviour: commit checks, reads, indexes, pruning, snapshots, refusal to open.

mod common;

use dpx_crypto::Hash;
use dpx_ledger::{
    LedgerError, Overlay, Store, StoreConfig, WriteSet, merkle, receipts_hash, verify_state_proof,
};

use common::{CHAIN, commit, fast_config, genesis_writes, model_state, next_block, workload};

fn w(pairs: &[(&str, Option<&str>)]) -> WriteSet {
    pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()))).collect()
}

#[test]
fn blocks_txs_receipts_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    assert_eq!(store.tip_height(), 0);
    let g = store.genesis(w(&[("a", Some("1"))])).unwrap();
    assert_eq!(store.state_root(0).unwrap(), Some(g));
    assert!(matches!(store.genesis(WriteSet::new()), Err(LedgerError::GenesisDone)));

    let txs = vec![b"t1".to_vec(), b"t2".to_vec()];
    let block = next_block(&store, txs.clone());
    let root = store
        .commit_block(
            &block,
            b"cert-1",
            w(&[("b", Some("2"))]),
            vec![b"r1".to_vec(), b"r2".to_vec()],
        )
        .unwrap();
    assert_eq!(store.tip_height(), 1);
    assert_eq!(store.block(1).unwrap().unwrap(), block);
    assert_eq!(store.block_by_id(&block.id()).unwrap().unwrap(), block);
    assert_eq!(store.certificate(1).unwrap().unwrap(), b"cert-1");
    assert_eq!(store.receipts(1).unwrap(), vec![b"r1".to_vec(), b"r2".to_vec()]);
    let h2 = Hash::digest(b"t2");
    assert_eq!(store.tx(&h2).unwrap(), Some((1, 1, b"t2".to_vec())));
    assert_eq!(store.receipt(&h2).unwrap(), Some((1, 1, b"r2".to_vec())));
    assert_eq!(store.tx(&Hash::digest(b"nope")).unwrap(), None);
    assert_eq!(store.state_root(1).unwrap(), Some(root));
    assert_eq!(
        store.block_receipts_hash(1).unwrap(),
        Some(receipts_hash(&[b"r1".to_vec(), b"r2".to_vec()]))
    );
    // A receipt is provable against the receipts hash the next header will carry.
    let p = merkle::prove_receipt(&store.receipts(1).unwrap(), 1).unwrap();
    assert!(p.verify_receipt(&store.block_receipts_hash(1).unwrap().unwrap(), b"r2"));

    // Versioned reads.
    assert_eq!(store.get(b"b", 0).unwrap(), None);
    assert_eq!(store.get(b"b", 1).unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get_latest(b"a").unwrap(), Some(b"1".to_vec()));
    assert!(matches!(store.get(b"a", 2), Err(LedgerError::VersionUnavailable { .. })));

    // A replayed tx stays indexed at its first inclusion.
    let block2 = next_block(&store, vec![b"t1".to_vec()]);
    store.commit_block(&block2, b"c2", WriteSet::new(), vec![b"dup".to_vec()]).unwrap();
    assert_eq!(store.tx(&Hash::digest(b"t1")).unwrap().unwrap().0, 1);
    assert_eq!(store.verify_integrity().unwrap().tx_index_entries, 2);
}

#[test]
fn parent_certificate_is_replaced_in_the_same_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    store.genesis(WriteSet::new()).unwrap();
    commit(&store, vec![], WriteSet::new());
    assert_eq!(store.certificate(1).unwrap().unwrap(), b"cert-1");
    let block = next_block(&store, vec![]);
    store
        .commit_block_with_parent_certificate(
            &block,
            b"c2",
            Some(b"canonical-1"),
            WriteSet::new(),
            vec![],
        )
        .unwrap();
    assert_eq!(store.certificate(1).unwrap().unwrap(), b"canonical-1");
    assert_eq!(store.certificate(2).unwrap().unwrap(), b"c2");
    store.verify_integrity().unwrap();
}

#[test]
fn commit_refuses_blocks_that_do_not_extend_the_tip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    let early = next_block_without_genesis();
    assert!(matches!(
        store.commit_block(&early, b"", WriteSet::new(), vec![]),
        Err(LedgerError::NoGenesis)
    ));
    store.genesis(genesis_writes()).unwrap();
    commit(&store, vec![b"x".to_vec()], w(&[("k", Some("v"))]));

    let good = next_block(&store, vec![b"y".to_vec()]);
    let receipts = vec![b"r".to_vec()];
    let mut bad = good.clone();
    bad.header.height = 5;
    assert!(matches!(
        store.commit_block(&bad, b"", WriteSet::new(), receipts.clone()),
        Err(LedgerError::NotNext { tip: 1, found: 5 })
    ));
    for field in ["parent_id", "state_root", "prev_receipts_hash", "tx_root"] {
        let mut bad = good.clone();
        let h = &mut bad.header;
        *match field {
            "parent_id" => &mut h.parent_id,
            "state_root" => &mut h.state_root,
            "prev_receipts_hash" => &mut h.prev_receipts_hash,
            _ => &mut h.tx_root,
        } = Hash([9; 32]);
        match store.commit_block(&bad, b"", WriteSet::new(), receipts.clone()) {
            Err(LedgerError::HeaderMismatch { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut bad = good.clone();
    bad.header.chain_id = "other".into();
    assert!(matches!(
        store.commit_block(&bad, b"", WriteSet::new(), receipts.clone()),
        Err(LedgerError::BlockChain { .. })
    ));
    assert!(matches!(
        store.commit_block(&good, b"", WriteSet::new(), vec![]),
        Err(LedgerError::ReceiptCount { txs: 1, receipts: 0 })
    ));
    let huge: WriteSet = [(vec![0; dpx_ledger::MAX_KEY_BYTES + 1], None)].into();
    assert!(matches!(
        store.commit_block(&good, b"", huge, receipts.clone()),
        Err(LedgerError::TooLarge { .. })
    ));
    // Nothing of the refused blocks is visible.
    assert_eq!(store.tip_height(), 1);
    store.commit_block(&good, b"", WriteSet::new(), receipts).unwrap();
    store.verify_integrity().unwrap();
}

fn next_block_without_genesis() -> dpx_ledger::Block {
    let dir = tempfile::tempdir().expect("test setup");
    let s = Store::open(dir.path(), CHAIN, fast_config()).expect("test setup");
    s.genesis(WriteSet::new()).expect("test setup");
    next_block(&s, vec![])
}

#[test]
fn same_history_gives_bit_identical_roots() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s1 = Store::open(d1.path(), CHAIN, fast_config()).unwrap();
    let s2 =
        Store::open(d2.path(), CHAIN, StoreConfig { retain_versions: Some(2), ..fast_config() })
            .unwrap();
    assert_eq!(s1.genesis(genesis_writes()).unwrap(), s2.genesis(genesis_writes()).unwrap());
    for h in 1..=20 {
        let (txs, writes) = workload(h);
        let predicted = s1.compute_root(&writes).unwrap();
        let r1 = commit(&s1, txs.clone(), writes.clone());
        let r2 = commit(&s2, txs, writes);
        assert_eq!(r1, r2, "height {h}");
        assert_eq!(r1, predicted, "compute_root at {h}");
        assert_eq!(s1.block(h).unwrap().unwrap().id(), s2.block(h).unwrap().unwrap().id());
    }
    // An empty block keeps the root.
    let before = s1.state_root(20).unwrap().unwrap();
    assert_eq!(commit(&s1, vec![], WriteSet::new()), before);
}

#[test]
fn overlay_executes_over_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    store.genesis(w(&[("acct/alice", Some("10"))])).unwrap();
    let mut o = Overlay::new(&store);
    let bal: u64 =
        String::from_utf8(o.get(b"acct/alice").unwrap().unwrap()).unwrap().parse().unwrap();
    o.put(b"acct/alice".to_vec(), (bal - 3).to_string().into_bytes()).unwrap();
    o.put(b"acct/bob".to_vec(), b"3".to_vec()).unwrap();
    let sp = o.savepoint();
    o.delete(b"acct/alice".to_vec()).unwrap();
    o.rollback(sp);
    let root = commit(&store, vec![b"pay".to_vec()], o.into_writes());
    assert_eq!(store.get_latest(b"acct/alice").unwrap(), Some(b"7".to_vec()));
    let (v, proof) = store.get_with_proof(b"acct/bob", 1).unwrap();
    verify_state_proof(root, b"acct/bob", v.as_deref(), &proof).unwrap();
    assert_eq!(v, Some(b"3".to_vec()));
}

#[test]
fn scan_prefix_pages_through_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    store.genesis(genesis_writes()).unwrap();
    commit(&store, vec![], w(&[("obj/007", None), ("other/1", Some("x"))]));
    let mut all = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(b"obj/", after.as_deref(), 7).unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().0.clone());
        all.extend(page);
    }
    assert_eq!(all.len(), 49);
    assert!(all.windows(2).all(|p| p[0].0 < p[1].0));
    assert!(all.iter().all(|(k, _)| k.starts_with(b"obj/") && k != b"obj/007"));
    assert_eq!(store.scan_prefix(b"other/", None, 10).unwrap().len(), 1);
}

#[test]
fn keys_in_reads_a_half_open_range_of_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    store.genesis(genesis_writes()).unwrap();
    commit(&store, vec![], w(&[("obj/007", None), ("obj/010", None), ("other/1", Some("x"))]));
    let got = store.keys_in_latest(b"obj/005", b"obj/012", 100).unwrap();
    let want: Vec<Vec<u8>> = ["obj/005", "obj/006", "obj/008", "obj/009", "obj/011"]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    assert_eq!(got, want, "deleted keys are gone, `to` is excluded");
    assert_eq!(store.keys_in_latest(b"obj/005", b"obj/012", 2).unwrap(), want[..2].to_vec());
    assert!(store.keys_in_latest(b"obj/012", b"obj/005", 9).unwrap().is_empty(), "empty range");
    assert!(store.keys_in_latest(&[0; 2000], b"z", 9).is_err(), "an oversized bound is refused");
    // Through an overlay: what the block wrote so far counts, in order.
    let mut o = Overlay::new(&store);
    o.delete(b"obj/005".to_vec()).unwrap();
    o.put(b"obj/0055".to_vec(), b"v".to_vec()).unwrap();
    let got = o.keys_in(b"obj/005", b"obj/012", 2).unwrap();
    assert_eq!(got, vec![b"obj/0055".to_vec(), b"obj/006".to_vec()]);
}

#[test]
fn pruning_keeps_the_window_and_drops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig { retain_versions: Some(4), ..fast_config() };
    let store = Store::open(dir.path(), CHAIN, cfg.clone()).unwrap();
    store.genesis(genesis_writes()).unwrap();
    for h in 1..=30 {
        let (txs, writes) = workload(h);
        commit(&store, txs, writes);
    }
    assert_eq!(store.oldest_version(), 27);
    assert!(matches!(store.get(b"obj/001", 26), Err(LedgerError::VersionUnavailable { .. })));
    // Every retained version still answers every key with a valid proof.
    for v in 27..=30 {
        let root = store.state_root(v).unwrap().unwrap();
        let model = model_state(v);
        for i in 0..200 {
            let key = format!("obj/{i:03}").into_bytes();
            let (value, proof) = store.get_with_proof(&key, v).unwrap();
            assert_eq!(value.as_ref(), model.get(&key), "v{v} {i}");
            verify_state_proof(root, &key, value.as_deref(), &proof).unwrap();
        }
    }
    store.verify_integrity().unwrap();
    // Blocks stay; only state versions go.
    assert!(store.block(1).unwrap().is_some());
    let pruned_nodes = count(dir.path(), "jmt_nodes");
    let pruned_values = count(dir.path(), "jmt_values");
    drop(store);

    let full = tempfile::tempdir().unwrap();
    let store = Store::open(full.path(), CHAIN, fast_config()).unwrap();
    store.genesis(genesis_writes()).unwrap();
    for h in 1..=30 {
        let (txs, writes) = workload(h);
        commit(&store, txs, writes);
    }
    store.prune_to(10).unwrap();
    assert_eq!(store.oldest_version(), 10);
    store.verify_integrity().unwrap();
    drop(store);
    let (full_nodes, full_values) =
        (count(full.path(), "jmt_nodes"), count(full.path(), "jmt_values"));
    assert!(pruned_nodes < full_nodes, "{pruned_nodes} !< {full_nodes}");
    assert!(pruned_values < full_values, "{pruned_values} !< {full_values}");
    assert_values_pruned_to(full.path(), 10);
    // Pruning at once to where the window ended leaves exactly what pruning at every commit
    // left, and nothing any retained version does not need.
    let store = Store::open(full.path(), CHAIN, fast_config()).unwrap();
    store.prune_to(27).unwrap();
    store.verify_integrity().unwrap();
    drop(store);
    assert_eq!(count(full.path(), "jmt_nodes"), pruned_nodes);
    assert_eq!(count(full.path(), "jmt_values"), pruned_values);
    assert_values_pruned_to(full.path(), 27);
    assert_values_pruned_to(dir.path(), 27);
}

/// Every key's value entries at or below `oldest` but the latest are gone (a read at `oldest`
/// needs that one), and no stale record is left for a version at or below `oldest`.
fn assert_values_pruned_to(path: &std::path::Path, oldest: u64) {
    let db = open_read_only(path);
    let mut at_or_below = std::collections::HashMap::<Vec<u8>, u32>::new();
    for item in db
        .iterator_cf(db.cf_handle("jmt_values").expect("test setup"), rocksdb::IteratorMode::Start)
    {
        let (k, _) = item.expect("test setup");
        let version = u64::from_be_bytes(k[32..40].try_into().expect("test setup"));
        if version <= oldest {
            *at_or_below.entry(k[..32].to_vec()).or_default() += 1;
        }
    }
    assert!(at_or_below.values().all(|&n| n == 1), "a superseded entry survived pruning");
    let stale = db.cf_handle("stale").expect("test setup");
    let left = db
        .iterator_cf(stale, rocksdb::IteratorMode::Start)
        .filter(|i| {
            u64::from_be_bytes(
                i.as_ref().expect("test setup").0[..8].try_into().expect("test setup"),
            ) <= oldest
        })
        .count();
    assert_eq!(left, 0, "stale records at or below {oldest} left");
}

fn open_read_only(path: &std::path::Path) -> rocksdb::DB {
    let opts = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&opts, path).expect("test setup");
    rocksdb::DB::open_cf_for_read_only(&opts, path, cfs, false).expect("test setup")
}

/// A store written before stale records were batched per version (one entry per record,
/// `since ‖ kind ‖ key`, empty value) prunes exactly as a new one does.
#[test]
fn a_store_with_one_stale_entry_per_record_still_prunes() {
    let build = || {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
        store.genesis(genesis_writes()).unwrap();
        for h in 1..=20 {
            let (txs, writes) = workload(h);
            commit(&store, txs, writes);
        }
        drop(store);
        dir
    };
    let (new, old) = (build(), build());
    // Rewrite `old`'s batched entries (`since ‖ 2`, records `kind ‖ u16 BE length ‖ key`) into
    // the earlier layout.
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, old.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, old.path(), cfs).unwrap();
        let stale = db.cf_handle("stale").unwrap();
        let mut batch = rocksdb::WriteBatch::default();
        let mut rewritten = 0;
        for item in db.iterator_cf(stale, rocksdb::IteratorMode::Start) {
            let (k, v) = item.unwrap();
            assert_eq!((k.len(), k[8]), (9, 2), "only batched entries are written now");
            let mut rest = &v[..];
            while !rest.is_empty() {
                let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
                let mut one = k[..8].to_vec();
                one.push(rest[0]);
                one.extend_from_slice(&rest[3..3 + len]);
                batch.put_cf(stale, one, []);
                rewritten += 1;
                rest = &rest[3 + len..];
            }
            batch.delete_cf(stale, &k);
        }
        assert!(rewritten > 100, "the workload replaces nodes and values ({rewritten})");
        db.write(batch).unwrap();
    }
    for dir in [&new, &old] {
        let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
        store.prune_to(15).unwrap();
        store.verify_integrity().unwrap();
        drop(store);
        assert_values_pruned_to(dir.path(), 15);
    }
    assert_eq!(count(old.path(), "jmt_nodes"), count(new.path(), "jmt_nodes"));
    assert_eq!(count(old.path(), "jmt_values"), count(new.path(), "jmt_values"));
}

fn count(path: &std::path::Path, cf: &str) -> usize {
    let db = open_read_only(path);
    db.iterator_cf(db.cf_handle(cf).expect("test setup"), rocksdb::IteratorMode::Start).count()
}

#[test]
fn snapshot_round_trip_checks_the_root() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = Store::open(src_dir.path(), CHAIN, fast_config()).unwrap();
    src.genesis(genesis_writes()).unwrap();
    for h in 1..=12 {
        let (txs, writes) = workload(h);
        commit(&src, txs, writes);
    }
    let mut snap = Vec::new();
    let root = src.export_snapshot(8, &mut snap).unwrap();
    assert_eq!(Some(root), src.state_root(8).unwrap());

    // A wrong expected root is refused and leaves the store empty.
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = Store::open(bad_dir.path(), CHAIN, fast_config()).unwrap();
    assert!(matches!(
        bad.import_snapshot(&mut snap.as_slice(), Hash([1; 32])),
        Err(LedgerError::SnapshotRoot { .. })
    ));
    assert!(!bad.has_genesis());
    // So is a tampered value.
    let mut tampered = snap.clone();
    let n = tampered.len();
    tampered[n - 6] ^= 1;
    assert!(bad.import_snapshot(&mut tampered.as_slice(), root).is_err());
    // And a truncated stream.
    assert!(bad.import_snapshot(&mut &snap[..snap.len() - 3], root).is_err());

    let dst_dir = tempfile::tempdir().unwrap();
    let dst = Store::open(dst_dir.path(), CHAIN, fast_config()).unwrap();
    assert_eq!(dst.import_snapshot(&mut snap.as_slice(), root).unwrap(), 8);
    assert_eq!(dst.tip_height(), 8);
    assert_eq!(dst.state_root(8).unwrap(), Some(root));
    let model: Vec<_> = model_state(8).into_iter().collect();
    assert_eq!(dst.scan_prefix(b"", None, 10_000).unwrap(), model);
    dst.verify_integrity().unwrap();
    assert!(matches!(
        dst.import_snapshot(&mut snap.as_slice(), root),
        Err(LedgerError::StoreNotEmpty)
    ));
    // The imported store carries on exactly like the original.
    for h in 9..=12 {
        let (txs, writes) = workload(h);
        assert_eq!(commit(&dst, txs, writes), src.state_root(h).unwrap().unwrap(), "height {h}");
        assert_eq!(dst.block(h).unwrap().unwrap().id(), src.block(h).unwrap().unwrap().id());
    }
    dst.verify_integrity().unwrap();

    // Genesis-height snapshots work too.
    let mut snap0 = Vec::new();
    let root0 = src.export_snapshot(0, &mut snap0).unwrap();
    let d0 = tempfile::tempdir().unwrap();
    let s0 = Store::open(d0.path(), CHAIN, fast_config()).unwrap();
    assert_eq!(s0.import_snapshot(&mut snap0.as_slice(), root0).unwrap(), 0);
    s0.verify_integrity().unwrap();
}

#[test]
fn refuses_other_chain_and_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
        store.genesis(WriteSet::new()).unwrap();
    }
    let err = Store::open(dir.path(), "other-chain", fast_config()).unwrap_err();
    assert!(matches!(err, LedgerError::WrongChain { .. }), "{err}");
    assert!(err.to_string().contains("other-chain"));
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), cfs).unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"format_version", 99u32.to_be_bytes()).unwrap();
    }
    let err = Store::open(dir.path(), CHAIN, fast_config()).unwrap_err();
    assert!(matches!(err, LedgerError::NewerFormat { found: 99, .. }), "{err}");
}

fn format_version(path: &std::path::Path) -> u32 {
    let db = open_read_only(path);
    let raw = db
        .get_cf(db.cf_handle("meta").expect("test setup"), b"format_version")
        .expect("test setup")
        .expect("test setup");
    u32::from_be_bytes(raw.as_slice().try_into().expect("test setup"))
}

#[test]
fn an_older_format_is_upgraded_by_the_first_write() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path(), CHAIN, fast_config()).unwrap().genesis(genesis_writes()).unwrap();
    assert_eq!(format_version(dir.path()), 2);
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), cfs).unwrap();
        db.put_cf(db.cf_handle("meta").unwrap(), b"format_version", 1u32.to_be_bytes()).unwrap();
    }
    // Opening and reading (an audit replaying from a stopped node's home) changes nothing.
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    assert!(store.get_latest(b"obj/001").unwrap().is_some());
    drop(store);
    assert_eq!(format_version(dir.path()), 1, "opening alone leaves the format as it was");
    // The first batch written records the new format.
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    let (txs, writes) = workload(1);
    commit(&store, txs, writes);
    drop(store);
    assert_eq!(format_version(dir.path()), 2, "a binary older than format 2 now refuses it");
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let store = Store::open(dir.path(), CHAIN, StoreConfig::default()).unwrap();
        store.genesis(genesis_writes()).unwrap();
        let (txs, writes) = workload(1);
        commit(&store, txs, writes)
    };
    let store = Store::open(dir.path(), CHAIN, StoreConfig::default()).unwrap();
    assert_eq!(store.tip_height(), 1);
    assert_eq!(store.state_root(1).unwrap(), Some(root));
    assert!(store.has_genesis());
    store.verify_integrity().unwrap();
}

/// The tuning lives in the options a binary opens with, not on disk: plain RocksDB options (an
/// older dpx, an operator's tool) open a store this one wrote, write-ahead log included, and
/// read its indexes.
#[test]
fn plain_rocksdb_options_open_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
        store.genesis(genesis_writes()).unwrap();
        let (txs, writes) = workload(1);
        commit(&store, txs, writes)
    };
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), cfs).unwrap();
        let index = db.cf_handle("tx_index").unwrap();
        assert!(db.get_cf(index, Hash::digest(b"tx-1-0").0).unwrap().is_some());
    }
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    assert_eq!(store.state_root(1).unwrap(), Some(root));
    store.verify_integrity().unwrap();
}

#[test]
fn cache_settings_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        StoreConfig { block_cache_bytes: 1000, ..fast_config() },
        StoreConfig { block_cache_bytes: usize::MAX, ..fast_config() },
        StoreConfig { node_cache_nodes: usize::MAX, ..fast_config() },
        StoreConfig { node_cache_bytes: usize::MAX, ..fast_config() },
    ] {
        let err = Store::open(dir.path(), CHAIN, bad).unwrap_err();
        assert!(matches!(err, LedgerError::Setting { .. }), "{err}");
    }
    // Off is a valid setting: every read then goes to RocksDB.
    let off = StoreConfig { node_cache_nodes: 0, node_cache_bytes: 0, ..fast_config() };
    let store = Store::open(dir.path(), CHAIN, off).unwrap();
    store.genesis(genesis_writes()).unwrap();
    let (txs, writes) = workload(1);
    commit(&store, txs, writes);
    store.get_with_proof(b"obj/001", 1).unwrap();
    assert_eq!(store.node_cache_stats(), dpx_ledger::NodeCacheStats::default());
}

/// The latest-state cache never lets a read return less than a commit that returned before the
/// read began: readers race commits that rewrite the same keys (and delete one of them now and
/// then), and every value read is at least the height the last finished commit wrote.
#[test]
fn latest_state_reads_never_go_back_behind_a_finished_commit() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const KEYS: u64 = 8;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    let key = |i: u64| format!("hot/{i}").into_bytes();
    store
        .genesis((0..KEYS).map(|i| (key(i), Some(0u64.to_be_bytes().to_vec()))).collect())
        .unwrap();
    let finished = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for r in 0..3u64 {
            let (store, finished, done) = (&store, &finished, &done);
            s.spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::SeqCst) || reads < 1000 {
                    let i = (reads + r) % KEYS;
                    let before = finished.load(Ordering::SeqCst);
                    let got = store.get_latest(&key(i)).unwrap();
                    let after = finished.load(Ordering::SeqCst);
                    // Height h deletes key h % KEYS when h is a multiple of 5, else writes h
                    // to it. What a read sees was written by a commit no older than the last
                    // one finished before it began, and no newer than the one running after.
                    let h = match got {
                        Some(v) => u64::from_be_bytes(v.try_into().unwrap()),
                        None => (before..=after + 1)
                            .rev()
                            .find(|d| d % 5 == 0 && d % KEYS == i)
                            .unwrap_or_else(|| {
                                panic!("key {i} absent, commits {before}..={after}")
                            }),
                    };
                    assert!(
                        (before..=after + 1).contains(&h),
                        "key {i} read height {h}, commits {before}..={after} finished around it"
                    );
                    reads += 1;
                }
            });
        }
        for h in 1..=300u64 {
            let writes = (0..KEYS)
                .map(|i| {
                    let value = (h % 5 == 0 && i == h % KEYS).then_some(());
                    (key(i), if value.is_some() { None } else { Some(h.to_be_bytes().to_vec()) })
                })
                .collect();
            commit(&store, vec![format!("tx-{h}").into_bytes()], writes);
            finished.store(h, Ordering::SeqCst);
        }
        done.store(true, Ordering::SeqCst);
    });
    let stats = store.state_cache_stats();
    assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
}

/// A corrupt stale entry (what pruning will read) is found by the integrity check.
#[test]
fn the_integrity_check_decodes_stale_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
        store.genesis(genesis_writes()).unwrap();
        for h in 1..=5 {
            let (txs, writes) = workload(h);
            commit(&store, txs, writes);
        }
        store.verify_integrity().unwrap();
    }
    {
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).unwrap();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), cfs).unwrap();
        let stale = db.cf_handle("stale").unwrap();
        let (k, v) = db.iterator_cf(stale, rocksdb::IteratorMode::Start).next().unwrap().unwrap();
        db.put_cf(stale, &k, &v[..v.len() - 1]).unwrap(); // its last record cut short
    }
    let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
    let err = store.verify_integrity().unwrap_err().to_string();
    assert!(err.contains("stale"), "{err}");
}
