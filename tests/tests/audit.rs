//! Auditors' tools (issue 8): an independent replay of the whole ledger that pinpoints the first
//! divergence, and offline proofs.
//!
//! The ledger is built directly with the libraries (`ChainBuilder`: headers from the tip,
//! execution through the contracts, certificates signed by the validators' keys), so every
//! test is deterministic and fast; one test replays a real 4-node cluster over RPC and from a
//! stopped node's home. Tampering writes the RocksDB column families directly, with the
//! layout of `ledger/src/store/schema.rs`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dpx_app::replay::{
    ChainBuilder, Divergence, DivergenceKind, Fetched, Outcome, ReplayError, ReplayOptions, Source,
    replay,
};
use dpx_contracts::{
    Category, Grant, GrantRef, Operation, ProductConditions, ProductId, ProductSpec,
    ProposalAction, Role, SubjectId, keys,
};
use dpx_crypto::{Hash, Keypair, PublicKey};
use dpx_genesis::Genesis;
use dpx_ledger::Store;
use dpx_node::replay::HomeSource;
use dpx_tests::signer::Signer;
use serde_json::Value;

const CHAIN: &str = "dpx-audit-test";

fn kp(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

/// Everything about the test ledger a test needs to aim at.
struct Ledger {
    _dir: tempfile::TempDir,
    path: PathBuf,
    genesis: Genesis,
    genesis_path: PathBuf,
    tip: u64,
    /// Height and tx index of the grant's use, and the grant's state key.
    grant_use: (u64, u32),
    grant_key: Vec<u8>,
    /// Height of the denied listing.
    denied_at: u64,
}

fn validators() -> Vec<Keypair> {
    (10..14).map(kp).collect()
}

/// A fault injected into the execution result of block 4 (the grant's use) before it commits;
/// all later headers and certificates then certify the faulty outcome.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// The grant's stored value differs from what the contracts wrote.
    State,
    /// The use's receipt differs from what the contracts produced.
    Receipt,
}

fn build_ledger() -> Ledger {
    build_ledger_with(Fault::None)
}

/// A small marketplace history over 12 blocks: admissions, a rating, a listing and a denied
/// one, a one-use grant used once and refused the second time, a denied order, and filler
/// blocks.
fn build_ledger_with(fault: Fault) -> Ledger {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let mut agency = Signer::new(CHAIN, 1);
    let vals = validators();
    let genesis = Genesis::example(
        CHAIN,
        &[("Data Authority", agency.public())],
        &vals.iter().map(Keypair::public).collect::<Vec<_>>(),
    );
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json()).unwrap();
    let mut b = ChainBuilder::new(&path, &genesis, &vals).unwrap();
    let mut rater = Signer::new(CHAIN, 2);
    let mut provider = Signer::new(CHAIN, 3);
    let mut employer = Signer::new(CHAIN, 4);
    let applicant = kp(5); // a citizen: a key on a phone, enrolled by the registrar
    let mut registrar = Signer::new(CHAIN, 6);
    let applicant_id = SubjectId::keyed(&[0x5e; 32], b"110101199003071234");

    let admit = |a: &mut Signer, key: PublicKey, name: &str, role: Role| {
        a.sign(Operation::Admit { key, name: name.into(), roles: vec![role] })
    };
    let block1 = vec![
        admit(&mut agency, rater.public(), "Rating Body", Role::RatingBody),
        admit(&mut agency, provider.public(), "CV Registry", Role::Provider),
        admit(&mut agency, employer.public(), "Employer", Role::Consumer),
        // One agency: its proposal is the quorum, the registrar is admitted at once.
        agency.sign(Operation::Propose {
            action: ProposalAction::AdmitRegistrar {
                key: registrar.public(),
                name: "Identity Service".into(),
            },
        }),
        registrar.sign(Operation::EnrolSubject {
            subject_id: applicant_id,
            subject_key: applicant.public(),
        }),
    ];
    b.push(block1).unwrap();
    b.push(vec![rater.sign(Operation::SetRating { participant: provider.public(), rating: 3 })])
        .unwrap();
    let spec = |grade: u8| ProductSpec {
        name: format!("CV check grade {grade}"),
        category: Category::DataService,
        domain: "hr".into(),
        grade,
        price: 12_000,
        terms_hash: Hash::digest(b"terms"),
        conditions: ProductConditions {
            purposes: vec!["hiring-check".into()],
            ..Default::default()
        },
        retention_days: None,
    };
    let product = ProductId::derive(CHAIN, &provider.public(), provider.nonce);
    let list = provider.sign(Operation::ListProduct { spec: spec(3) });
    let denied = provider.sign(Operation::ListProduct { spec: spec(4) }); // above its rating
    b.push(vec![list, denied]).unwrap();
    let denied_at = 3;

    let grant = Grant {
        serial: Hash::digest(b"grant-1"),
        subject: applicant_id,
        key: applicant.public(),
        epoch: 0,
        consumer: employer.public(),
        product,
        purpose: "hiring-check".into(),
        expires_at_ms: genesis.genesis_time_ms + 3_600_000,
    }
    .sign(&applicant, CHAIN);
    let gid = grant.grant.id();
    let filler = admit(&mut agency, kp(40).public(), "Filler 40", Role::Consumer);
    let use_grant = employer.sign(Operation::UseGrant {
        grant: GrantRef::Inline(Box::new(grant)),
        subject: applicant_id,
        product,
        purpose: "hiring-check".into(),
        request_hash: Hash::digest(b"verify cv"),
    });
    let grant_key = keys::grant(&gid);
    b.push_altered(vec![filler, use_grant], |writes, receipts| match fault {
        Fault::None => {}
        Fault::State => {
            let v = writes.get_mut(&grant_key).unwrap().as_mut().unwrap();
            *v.last_mut().unwrap() ^= 1;
        }
        Fault::Receipt => *receipts[1].last_mut().unwrap() ^= 1,
    })
    .unwrap();
    let grant_use = (4, 1);
    let again = employer.sign(Operation::UseGrant {
        grant: GrantRef::Id(gid),
        subject: applicant_id,
        product,
        purpose: "hiring-check".into(),
        request_hash: Hash::digest(b"verify cv again"),
    });
    b.push(vec![again]).unwrap();
    // Validator index 3 misses block 6. The order is denied: grade 3 needs a consumed grant.
    let order = employer.sign(Operation::PlaceOrder {
        product,
        grant: None,
        purpose: "hiring".into(),
        demand: None,
    });
    b.push_signed_by(vec![order], |i| i != 3).unwrap();
    for i in 0..6u8 {
        let txs = (0..2)
            .map(|j| {
                admit(
                    &mut agency,
                    kp(50 + 2 * i + j).public(),
                    &format!("Org {i}-{j}"),
                    Role::Consumer,
                )
            })
            .collect();
        b.push(txs).unwrap();
    }
    let tip = b.store().tip_height();
    drop(b);
    Ledger { _dir: dir, path, genesis, genesis_path, tip, grant_use, grant_key, denied_at }
}

fn run_replay(l: &Ledger, to: Option<u64>) -> Outcome {
    run_replay_with(l, to, None)
}

/// [`run_replay`] with a given number of threads verifying signatures ahead.
fn run_replay_with(l: &Ledger, to: Option<u64>, verify_workers: Option<usize>) -> Outcome {
    let out = tempfile::tempdir().unwrap();
    let mut source = HomeSource::open(&l.path, CHAIN).unwrap();
    let opts = ReplayOptions { to_height: to, progress: false, verify_workers };
    replay(&l.genesis, &mut source, &out.path().join("replay"), &opts).unwrap()
}

#[track_caller]
fn expect_divergence(l: &Ledger) -> Divergence {
    match run_replay(l, None) {
        Outcome::Diverged(d) => *d,
        Outcome::Verified(r) => panic!("tampering went unnoticed: {}", r.summary()),
    }
}

/// Open the ledger's RocksDB with all its column families, for tampering.
fn raw_db(path: &Path) -> rocksdb::DB {
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).unwrap();
    rocksdb::DB::open_cf(&rocksdb::Options::default(), path, cfs).unwrap()
}

fn pos_key(height: u64, index: u32) -> Vec<u8> {
    let mut k = height.to_be_bytes().to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Flip the bits of byte `at` (from the end if negative) of `cf[key]`.
fn flip(path: &Path, cf: &str, key: &[u8], at: isize) {
    let db = raw_db(path);
    let cf = db.cf_handle(cf).unwrap();
    let mut v = db.get_cf(cf, key).unwrap().expect("the entry to tamper with exists");
    let i = if at < 0 { v.len() - at.unsigned_abs() } else { at.unsigned_abs() };
    v[i] ^= 0xff;
    db.put_cf(cf, key, v).unwrap();
}

// ----- clean replays --------------------------------------------------------------------

#[test]
fn clean_replay_reproduces_every_root_and_reports_the_history() {
    let l = build_ledger();
    let (root, rhash) = {
        let s = Store::open(&l.path, CHAIN, dpx_ledger::StoreConfig::default()).unwrap();
        (s.state_root(l.tip).unwrap().unwrap(), s.block_receipts_hash(l.tip).unwrap().unwrap())
    };
    let Outcome::Verified(r) = run_replay(&l, None) else { panic!("a clean ledger diverged") };
    assert!(r.verified);
    assert_eq!((r.from_height, r.to_height, r.blocks, r.source_tip), (1, l.tip, l.tip, l.tip));
    assert_eq!(r.final_state_root, root);
    assert_eq!(r.final_receipts_hash, rhash);
    assert_eq!(r.transactions, 5 + 1 + 2 + 2 + 1 + 1 + 12);
    // 3 admitted in block 1 and the registrar (by governance), 1 filler, 12 later.
    assert_eq!(r.participants_admitted, 17);
    assert_eq!(r.products_listed, 1);
    assert_eq!((r.grants.issued, r.grants.consumed, r.grants.second_use_attempts), (1, 1, 1));
    assert_eq!(r.grant_refusals.len(), 1);
    assert_eq!(r.grant_refusals[0].height, 5);
    assert!(
        r.grant_refusals[0].reason.contains("already consumed at height 4"),
        "{:?}",
        r.grant_refusals
    );
    // The listing above the provider's rating, and the order for a grade-3 product without a
    // consumed grant.
    assert_eq!(r.policy_denied.len(), 2, "{:?}", r.policy_denied);
    assert_eq!((r.policy_denied[0].height, r.policy_denied[0].tx_index), (l.denied_at, 1));
    assert_eq!(r.policy_denied[0].action, "list_product");
    let order = &r.policy_denied[1];
    assert_eq!((order.height, order.tx_index, order.action.as_str()), (6, 0, "order"));
    assert_eq!(order.determining, ["restricted-needs-consumed-grant"]);
    assert_eq!(r.trades.orders_placed, 0);
    assert_eq!(r.objects["products"], 1);
    assert_eq!(r.objects["grants"], 1);
    // Signing record from the certificates: everyone signed all but validator 3 at block 6.
    assert_eq!(r.validators.len(), 4);
    let set = l.genesis.validator_set().unwrap();
    let v3 = set.validators()[3].key;
    for v in &r.validators {
        assert_eq!(v.heights_in_set, l.tip);
        let missed = u64::from(v.key == v3);
        assert_eq!((v.signed, v.missed), (l.tip - missed, missed), "{}", v.key);
    }
    assert_eq!(r.validators.iter().map(|v| v.proposed).sum::<u64>(), l.tip);
    let text = r.summary();
    assert!(text.contains("second-use attempts 1") && text.contains("denied at 3#1"), "{text}");
}

#[test]
fn partial_replay_checks_the_last_block_against_the_next_header() {
    let l = build_ledger();
    let Outcome::Verified(r) = run_replay(&l, Some(5)) else { panic!("a clean ledger diverged") };
    assert_eq!((r.to_height, r.blocks, r.source_tip), (5, 5, l.tip));
    let s = Store::open(&l.path, CHAIN, dpx_ledger::StoreConfig::default()).unwrap();
    assert_eq!(s.header(6).unwrap().unwrap().state_root, r.final_state_root);
}

/// Verifying signatures ahead on other threads changes nothing but the speed: the same report
/// with none, one or many workers, and over a part of the chain.
#[test]
fn the_report_is_the_same_whatever_the_number_of_verifying_workers() {
    let l = build_ledger();
    let report = |to, workers| match run_replay_with(&l, to, workers) {
        Outcome::Verified(mut r) => {
            // Timings are the only fields that may differ.
            (r.elapsed_ms, r.blocks_per_s, r.txs_per_s) = (0, 0.0, 0.0);
            r
        }
        Outcome::Diverged(d) => panic!("a clean ledger diverged with {workers:?}: {}", d.render()),
    };
    for to in [None, Some(5)] {
        let in_order = report(to, Some(0));
        for workers in [Some(1), Some(3), None] {
            assert_eq!(report(to, workers), in_order, "{workers:?} workers, to {to:?}");
        }
    }
}

// ----- tampering is pinpointed ------------------------------------------------------------

#[test]
fn a_tampered_transaction_byte_is_a_tx_root_divergence_at_its_block() {
    let l = build_ledger();
    flip(&l.path, "txs", &pos_key(4, 1), -3);
    let d = expect_divergence(&l);
    assert_eq!((d.height, d.kind), (4, DivergenceKind::TxRoot), "{}", d.render());
    // The same finding whether the altered transaction was met ahead by a worker or not.
    for workers in [0, 1, 3] {
        let Outcome::Diverged(w) = run_replay_with(&l, None, Some(workers)) else {
            panic!("tampering went unnoticed with {workers} workers");
        };
        assert_eq!((w.height, w.kind, &w.detail), (d.height, d.kind, &d.detail), "{workers}");
    }
}

#[test]
fn a_tampered_header_breaks_its_certificate() {
    let l = build_ledger();
    // The header's time: the block id changes, so the certificate no longer names it.
    let db = raw_db(&l.path);
    let cf = db.cf_handle("headers").unwrap();
    let raw = db.get_cf(cf, 7u64.to_be_bytes()).unwrap().unwrap();
    let mut h = dpx_ledger::Header::decode(&raw, raw.len()).unwrap();
    h.time_ms += 1;
    db.put_cf(cf, 7u64.to_be_bytes(), h.encode()).unwrap();
    drop(db);
    let d = expect_divergence(&l);
    assert_eq!((d.height, d.kind), (7, DivergenceKind::Certificate), "{}", d.render());
}

#[test]
fn a_tampered_receipt_is_pinpointed_to_its_transaction() {
    let l = build_ledger();
    flip(&l.path, "receipts", &pos_key(5, 0), -1);
    let d = expect_divergence(&l);
    assert_eq!(
        (d.height, d.kind, d.tx_index),
        (5, DivergenceKind::Receipts, Some(0)),
        "{}",
        d.render()
    );
    assert_eq!(d.against, "source store");
}

#[test]
fn a_tampered_state_value_is_pinpointed_to_its_key_and_transaction() {
    let l = build_ledger();
    // jmt_values: key hash ‖ version → tag ‖ key length ‖ key ‖ value.
    let mut vkey = dpx_ledger::key_hash(&l.grant_key).0.to_vec();
    vkey.extend_from_slice(&l.grant_use.0.to_be_bytes());
    flip(&l.path, "jmt_values", &vkey, -1);
    let d = expect_divergence(&l);
    assert_eq!((d.height, d.kind), (l.grant_use.0, DivergenceKind::StateRoot), "{}", d.render());
    assert_eq!(d.tx_index, Some(l.grant_use.1), "{}", d.render());
    let hex_key = hex::encode(&l.grant_key);
    let k = d.keys.iter().find(|k| k.key == hex_key).expect("the grant's key is named");
    assert_eq!(k.tx_index, Some(l.grant_use.1));
    assert_ne!(k.replayed, k.source);
    assert!(k.key_text.as_deref().unwrap().starts_with("grant/"), "{k:?}");
}

#[test]
fn a_tampered_latest_state_value_is_found_by_the_final_comparison() {
    let l = build_ledger();
    flip(&l.path, "state", &l.grant_key, -1);
    let d = expect_divergence(&l);
    assert_eq!((d.height, d.kind), (l.tip, DivergenceKind::StateRoot), "{}", d.render());
    assert_eq!(d.keys.len(), 1);
    assert_eq!(d.keys[0].key, hex::encode(&l.grant_key));
}

#[test]
fn a_tampered_certificate_signature_is_a_certificate_divergence_at_its_block() {
    let l = build_ledger();
    flip(&l.path, "certificates", &8u64.to_be_bytes(), -5);
    let d = expect_divergence(&l);
    assert_eq!((d.height, d.kind), (8, DivergenceKind::Certificate), "{}", d.render());
}

#[test]
fn a_tampered_tip_certificate_is_caught_too() {
    let l = build_ledger();
    flip(&l.path, "certificates", &l.tip.to_be_bytes(), -5);
    let d = expect_divergence(&l);
    assert_eq!((d.height, d.kind), (l.tip, DivergenceKind::Certificate), "{}", d.render());
}

#[test]
fn a_tampered_recorded_root_is_a_state_root_divergence() {
    let l = build_ledger();
    flip(&l.path, "roots", &9u64.to_be_bytes(), 0);
    let d = expect_divergence(&l);
    assert_eq!((d.height, d.kind), (9, DivergenceKind::StateRoot), "{}", d.render());
}

#[test]
fn a_wrong_genesis_is_a_state_root_divergence_before_block_one() {
    let l = build_ledger();
    let mut other = l.genesis.clone();
    other.app.params.max_block_txs += 1;
    let out = tempfile::tempdir().unwrap();
    let mut source = HomeSource::open(&l.path, CHAIN).unwrap();
    let Outcome::Diverged(d) =
        replay(&other, &mut source, &out.path().join("r"), &ReplayOptions::default()).unwrap()
    else {
        panic!("another genesis replayed cleanly");
    };
    assert_eq!((d.height, d.kind), (0, DivergenceKind::StateRoot), "{}", d.render());
}

/// A source that serves blocks and certificates only, like a node's RPC.
struct BlocksOnly(HomeSource);

impl Source for BlocksOnly {
    fn describe(&self) -> String {
        "blocks only".into()
    }
    fn tip(&mut self) -> Result<u64, ReplayError> {
        self.0.tip()
    }
    fn fetch(&mut self, height: u64) -> Result<Fetched, ReplayError> {
        self.0.fetch(height)
    }
}

fn replay_blocks_only(l: &Ledger, to: Option<u64>) -> Outcome {
    let out = tempfile::tempdir().unwrap();
    let mut source = BlocksOnly(HomeSource::open(&l.path, CHAIN).unwrap());
    let opts = ReplayOptions { to_height: to, progress: false, verify_workers: None };
    replay(&l.genesis, &mut source, &out.path().join("replay"), &opts).unwrap()
}

#[test]
fn a_certified_but_wrong_state_is_found_against_the_next_header() {
    let l = build_ledger_with(Fault::State);
    let Outcome::Diverged(d) = replay_blocks_only(&l, None) else { panic!("not detected") };
    assert_eq!((d.height, d.kind), (4, DivergenceKind::StateRoot), "{}", d.render());
    assert_eq!(d.against, "header 5");
    assert!(d.detail.contains("serves no state values"), "{}", d.render());
    assert_ne!(d.replayed, d.source);
    // Replaying only up to block 4 still compares its outcome with header 5.
    let Outcome::Diverged(d) = replay_blocks_only(&l, Some(4)) else { panic!("not detected") };
    assert_eq!((d.height, d.kind, d.against.as_str()), (4, DivergenceKind::StateRoot, "header 5"));
    // Blocks 1..=3 are fine.
    assert!(matches!(replay_blocks_only(&l, Some(3)), Outcome::Verified(_)));
}

#[test]
fn a_certified_but_wrong_state_is_pinpointed_to_key_and_transaction_from_a_home() {
    let l = build_ledger_with(Fault::State);
    let d = expect_divergence(&l);
    assert_eq!(
        (d.height, d.kind, d.tx_index),
        (4, DivergenceKind::StateRoot, Some(1)),
        "{}",
        d.render()
    );
    assert_eq!(d.keys.len(), 1, "{}", d.render());
    assert_eq!(d.keys[0].key, hex::encode(&l.grant_key));
    assert_eq!(d.keys[0].tx_index, Some(1));
}

#[test]
fn certified_but_wrong_receipts_are_found_against_the_next_header() {
    let l = build_ledger_with(Fault::Receipt);
    let Outcome::Diverged(d) = replay_blocks_only(&l, None) else { panic!("not detected") };
    assert_eq!((d.height, d.kind, d.against.as_str()), (4, DivergenceKind::Receipts, "header 5"));
    // From the home the stored receipt itself is named.
    let d = expect_divergence(&l);
    assert_eq!(
        (d.height, d.kind, d.tx_index),
        (4, DivergenceKind::Receipts, Some(1)),
        "{}",
        d.render()
    );
}

#[test]
fn a_clean_ledger_replays_from_blocks_alone() {
    let l = build_ledger();
    let Outcome::Verified(r) = replay_blocks_only(&l, None) else { panic!("diverged") };
    assert_eq!(r.to_height, l.tip);
}

// ----- the command line -------------------------------------------------------------------

fn dpx_cmd(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(dpx_tests::dpx_bin().unwrap())
        .args(args)
        .env_remove("DPX_RPC")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_replay_writes_a_report_and_fails_on_divergence() {
    let l = build_ledger();
    let out = tempfile::tempdir().unwrap();
    let genesis = l.genesis_path.to_str().unwrap();
    let home = l.path.to_str().unwrap();
    let out_dir = out.path().join("audit");
    let (code, stdout, stderr) = dpx_cmd(&[
        "audit",
        "replay",
        "--genesis",
        genesis,
        "--from-home",
        home,
        "--out",
        out_dir.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["to_height"], l.tip);
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    assert_eq!(file["final_state_root"], v["final_state_root"]);
    assert!(out_dir.join("ledger").join("CURRENT").exists(), "the replayed ledger is kept");
    assert!(stderr.contains("blocks/s"), "progress on stderr: {stderr}");

    flip(&l.path, "certificates", &3u64.to_be_bytes(), -5);
    let (code, stdout, stderr) =
        dpx_cmd(&["audit", "replay", "--genesis", genesis, "--from-home", home, "--quiet"]);
    assert_ne!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("DIVERGENCE at height 3 (certificate)"), "{stdout}");
    assert!(stderr.contains("height 3"), "{stderr}");
}

// ----- offline proofs -----------------------------------------------------------------------

/// A proof bundle of the grant from the built ledger, as `dpx audit prove` writes it.
fn grant_proof(l: &Ledger) -> Value {
    let s = Store::open(&l.path, CHAIN, dpx_ledger::StoreConfig::default()).unwrap();
    let bundle = dpx_app::proofs::prove(&s, CHAIN, &l.grant_key, None).unwrap();
    serde_json::json!({ "kind": "grants", "id": "grant-1", "bundle": bundle })
}

fn verify(proof: &Value, genesis: &Path) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proof.json");
    std::fs::write(&path, proof.to_string()).unwrap();
    dpx_cmd(&[
        "audit",
        "verify",
        path.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--output",
        "json",
    ])
}

#[test]
fn proofs_verify_offline_and_forgeries_are_refused() {
    let l = build_ledger();
    let proof = grant_proof(&l);
    // No node runs anywhere: verification needs nothing but the genesis file.
    let (code, stdout, stderr) = verify(&proof, &l.genesis_path);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["value"]["state"], "consumed", "{v}");

    // A forged value: claim the grant is still issued (another value byte).
    let mut forged = proof.clone();
    let value = forged["bundle"]["value"].as_str().unwrap().to_owned();
    let mut bytes = hex::decode(&value).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    forged["bundle"]["value"] = Value::String(hex::encode(bytes));
    let (code, _, stderr) = verify(&forged, &l.genesis_path);
    assert_ne!(code, 0);
    assert!(stderr.contains("Merkle proof"), "{stderr}");

    // A forged certificate signature.
    let mut forged = proof.clone();
    let cert = forged["bundle"]["certificate"].as_str().unwrap().to_owned();
    let mut bytes = hex::decode(&cert).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    forged["bundle"]["certificate"] = Value::String(hex::encode(bytes));
    let (code, _, stderr) = verify(&forged, &l.genesis_path);
    assert_ne!(code, 0);
    assert!(stderr.contains("not certified"), "{stderr}");

    // A validator set of the prover's own choosing.
    let mut forged = proof.clone();
    forged["bundle"]["validators"] = serde_json::json!([{ "key": kp(99).public(), "power": 10 }]);
    let (code, _, stderr) = verify(&forged, &l.genesis_path);
    assert_ne!(code, 0, "{stderr}");

    // Cross-chain: the same bundle against another chain's genesis, then relabelled for it.
    let mut other = l.genesis.clone();
    other.chain_id = "dpx-other-chain".into();
    let dir = tempfile::tempdir().unwrap();
    let other_path = dir.path().join("genesis.json");
    std::fs::write(&other_path, other.to_json()).unwrap();
    let (code, _, stderr) = verify(&proof, &other_path);
    assert_ne!(code, 0);
    assert!(stderr.contains("is for chain"), "{stderr}");
    let mut relabelled = proof.clone();
    relabelled["bundle"]["chain_id"] = Value::String(other.chain_id.clone());
    relabelled["bundle"]["header"]["chain_id"] = Value::String(other.chain_id.clone());
    let (code, _, stderr) = verify(&relabelled, &other_path);
    assert_ne!(code, 0, "a proof relabelled for another chain must not verify: {stderr}");
}

// ----- a real cluster ---------------------------------------------------------------------

#[test]
fn a_running_cluster_replays_over_rpc_and_from_a_stopped_home() {
    let mut c = dpx_tests::Cluster::init(4).unwrap();
    c.start_all().unwrap();
    c.wait_height_all(4, Duration::from_secs(90)).unwrap();
    let genesis = c.chain_dir().join("genesis.json");
    let genesis = genesis.to_str().unwrap();
    let (code, stdout, stderr) = dpx_cmd(&[
        "audit",
        "replay",
        "--genesis",
        genesis,
        "--from-rpc",
        &c.rpc[0],
        "--output",
        "json",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert!(v["to_height"].as_u64().unwrap() >= 4, "{v}");
    assert_eq!(v["source"], format!("rpc {}", c.rpc[0]));

    c.stop(1).unwrap();
    let home = c.homes[1].to_str().unwrap().to_owned();
    let (code, stdout, stderr) = dpx_cmd(&[
        "audit",
        "replay",
        "--genesis",
        genesis,
        "--from-home",
        &home,
        "--output",
        "json",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["verified"], true);
    let signed: u64 =
        v["validators"].as_array().unwrap().iter().map(|x| x["signed"].as_u64().unwrap()).sum();
    assert!(signed >= 3 * v["blocks"].as_u64().unwrap(), "quorum certificates: {v}");
}

#[test]
fn replay_over_rpc_backs_off_when_the_node_rate_limits() {
    let mut c = dpx_tests::Cluster::init(1).unwrap();
    // Fewer requests a second than the replay has in flight: it must meet 429s and wait.
    let cfg_path = c.homes[0].join("config.toml");
    let mut cfg = dpx_node::config::Config::load(&cfg_path).unwrap();
    cfg.rpc.per_ip_requests_per_s = 5;
    cfg.rpc.per_ip_burst = 3;
    cfg.save(&cfg_path).unwrap();
    c.start_all().unwrap();
    c.wait_height(0, 12, Duration::from_secs(90)).unwrap();
    std::thread::sleep(Duration::from_secs(1)); // the bucket refills after the height polls
    let genesis = c.chain_dir().join("genesis.json");
    let start = std::time::Instant::now();
    let (code, stdout, stderr) = dpx_cmd(&[
        "audit",
        "replay",
        "--genesis",
        genesis.to_str().unwrap(),
        "--from-rpc",
        &c.rpc[0],
        "--output",
        "json",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["verified"], true, "{v}");
    assert!(v["to_height"].as_u64().unwrap() >= 12, "{v}");
    println!("replayed {} blocks from a rate-limited node in {:?}", v["blocks"], start.elapsed());
}
