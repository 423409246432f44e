//! Overdue destructions end to end (issue 18, the data's life cycle): a grant consumed for a
//! product with a retention period makes its destruction due; the first block past the due
//! time reports it overdue at its start. The report is in the block's state (and so under its
//! state root), reaches the holder's event stream but no outsider's, and `dpx audit replay`
//! re-derives and counts it — and pinpoints a tampered report to the block start.
//!
//! The ledger is built with `ChainBuilder` (execution through the contracts, certificates
//! signed by the validators' keys), so it runs in about a second.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::PathBuf;

use dpx_app::LatestState;
use dpx_app::replay::{AuditReport, ChainBuilder, DivergenceKind, Outcome, ReplayOptions, replay};
use dpx_contracts::lifecycle::DAY_MS;
use dpx_contracts::{
    AttestTarget, Category, Grant, GrantId, GrantRef, Operation, ProductConditions, ProductId,
    ProductSpec, ProposalAction, Role, Stage, SubjectId, keys,
};
use dpx_crypto::{Hash, Keypair, PublicKey};
use dpx_genesis::Genesis;
use dpx_ledger::{Store, StoreConfig};
use dpx_node::events::BlockEvents;
use dpx_node::replay::HomeSource;
use dpx_tests::signer::Signer;

const CHAIN: &str = "dpx-overdue-test";

fn kp(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

struct Ledger {
    _dir: tempfile::TempDir,
    path: PathBuf,
    genesis: Genesis,
    grant: GrantId,
    employer: PublicKey,
    provider: PublicKey,
    outsider: PublicKey,
    /// The block whose start reports the destruction overdue.
    overdue_at: u64,
}

/// Which history to build.
#[derive(Clone, Copy, PartialEq, Eq)]
enum History {
    /// Reported overdue, then destroyed late.
    DestroyedLate,
    /// Reported overdue, never destroyed.
    Outstanding,
    /// The overdue report in the block's writes is altered before it commits (a faulty chain
    /// whose later headers certify it).
    TamperedReport,
}

fn build(history: History) -> Ledger {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger");
    let mut agency = Signer::new(CHAIN, 1);
    let vals: Vec<Keypair> = (10..14).map(kp).collect();
    let genesis = Genesis::example(
        CHAIN,
        &[("Data Authority", agency.public())],
        &vals.iter().map(Keypair::public).collect::<Vec<_>>(),
    );
    let mut b = ChainBuilder::new(&path, &genesis, &vals).unwrap();
    let mut rater = Signer::new(CHAIN, 2);
    let mut provider = Signer::new(CHAIN, 3);
    let mut employer = Signer::new(CHAIN, 4);
    let applicant = kp(5);
    let mut registrar = Signer::new(CHAIN, 6);
    let outsider = Signer::new(CHAIN, 7);
    let subject = SubjectId::keyed(&[0x5e; 32], b"110101199003071234");
    let admit = |a: &mut Signer, key: PublicKey, role: Role| {
        a.sign(Operation::Admit { key, name: format!("{role:?}"), roles: vec![role] })
    };
    b.push(vec![
        admit(&mut agency, rater.public(), Role::RatingBody),
        admit(&mut agency, provider.public(), Role::Provider),
        admit(&mut agency, employer.public(), Role::Consumer),
        admit(&mut agency, outsider.public(), Role::Consumer),
        agency.sign(Operation::Propose {
            action: ProposalAction::AdmitRegistrar { key: registrar.public(), name: "ID".into() },
        }),
        registrar
            .sign(Operation::EnrolSubject { subject_id: subject, subject_key: applicant.public() }),
    ])
    .unwrap();
    b.push(vec![rater.sign(Operation::SetRating { participant: provider.public(), rating: 3 })])
        .unwrap();
    let product = ProductId::derive(CHAIN, &provider.public(), provider.nonce);
    b.push(vec![provider.sign(Operation::ListProduct {
        spec: ProductSpec {
            name: "CV check".into(),
            category: Category::DataService,
            domain: "hr".into(),
            grade: 3,
            price: 0,
            terms_hash: Hash::digest(b"terms"),
            conditions: ProductConditions {
                purposes: vec!["hiring-check".into()],
                ..Default::default()
            },
            retention_days: Some(1),
        },
    })])
    .unwrap();
    let grant = Grant {
        serial: Hash::digest(b"grant-1"),
        subject,
        key: applicant.public(),
        epoch: 0,
        consumer: employer.public(),
        product,
        purpose: "hiring-check".into(),
        expires_at_ms: genesis.genesis_time_ms + 3_600_000,
    }
    .sign(&applicant, CHAIN);
    let gid = grant.grant.id();
    // Block 4: the use makes the destruction due one day later.
    b.push(vec![employer.sign(Operation::UseGrant {
        grant: GrantRef::Inline(Box::new(grant)),
        subject,
        product,
        purpose: "hiring-check".into(),
        request_hash: Hash::digest(b"verify cv"),
    })])
    .unwrap();
    // Block 5, just before the due time: nothing to report. Block 6, a day later: reported.
    b.skip_time(DAY_MS - 2_000);
    b.push(vec![]).unwrap();
    b.skip_time(1_000);
    let overdue_at = 6;
    let report_key = keys::overdue(overdue_at, keys::TARGET_GRANT, &gid.0.0);
    b.push_altered(vec![], |writes, _| {
        if history == History::TamperedReport {
            let v = writes.get_mut(&report_key).unwrap().as_mut().unwrap();
            *v.last_mut().unwrap() ^= 1;
        }
    })
    .unwrap();
    if history == History::DestroyedLate {
        let target = AttestTarget::Grant(gid);
        let stages = [Stage::Collected, Stage::Transmitted, Stage::Stored, Stage::Destroyed];
        let txs = stages
            .iter()
            .map(|&stage| {
                employer.sign(Operation::Attest {
                    target,
                    stage,
                    hash: Hash::digest(stage.as_str().as_bytes()),
                })
            })
            .collect();
        b.push(txs).unwrap();
    }
    b.push(vec![]).unwrap();
    drop(b);
    Ledger {
        _dir: dir,
        path,
        genesis,
        grant: gid,
        employer: employer.public(),
        provider: provider.public(),
        outsider: outsider.public(),
        overdue_at,
    }
}

fn replay_home(l: &Ledger) -> Outcome {
    let out = tempfile::tempdir().unwrap();
    let mut source = HomeSource::open(&l.path, CHAIN).unwrap();
    let opts = ReplayOptions { to_height: None, progress: false, verify_workers: None };
    replay(&l.genesis, &mut source, &out.path().join("replay"), &opts).unwrap()
}

/// The report's life-cycle counts: due, reported overdue, attested destroyed, of those late,
/// still outstanding.
fn counts(r: &AuditReport) -> [u64; 5] {
    let lc = &r.lifecycle;
    [
        lc.destructions_due,
        lc.destructions_overdue,
        lc.destructions_attested,
        lc.destroyed_late,
        lc.overdue_outstanding,
    ]
}

#[test]
fn an_overdue_destruction_is_reported_once_in_state_and_to_the_holder_alone() {
    let l = build(History::Outstanding);
    let store = Store::open(&l.path, CHAIN, StoreConfig::default()).unwrap();
    let overdue: Vec<_> = store.scan_prefix(keys::PREFIX_OVERDUE, None, 100).unwrap();
    assert_eq!(overdue.len(), 1, "reported exactly once, by one block start");
    let key = keys::overdue(l.overdue_at, keys::TARGET_GRANT, &l.grant.0.0);
    assert_eq!(overdue[0].0, key);
    let view = dpx_contracts::render(&overdue[0].0, &overdue[0].1).unwrap();
    assert_eq!(view["overdue_height"], l.overdue_at, "{view}");
    assert_eq!(view["holder"], l.employer.to_hex(), "{view}");
    // The queue entry is gone; the due record stays, marked, until destruction is attested.
    assert!(store.scan_prefix(keys::PREFIX_DESTRUCTION_QUEUE, None, 10).unwrap().is_empty());
    let due = store.get_latest(&keys::destruction(keys::TARGET_GRANT, &l.grant.0.0)).unwrap();
    assert!(due.is_some());

    // The events of each block, as a node derives them (live and replayed alike).
    let st = LatestState::new(&store);
    for h in 1..=store.tip_height() {
        let block = store.block(h).unwrap().unwrap();
        let receipts = store.receipts(h).unwrap();
        let events = BlockEvents::with_state(&block, &receipts, &block.tx_hashes(), &st);
        let found: Vec<_> =
            events.events.iter().filter(|e| e.kind == "lifecycle.destruction_overdue").collect();
        if h != l.overdue_at {
            assert!(found.is_empty(), "block {h} reported nothing overdue");
            continue;
        }
        assert_eq!(found.len(), 1);
        let e = found[0];
        assert_eq!(e.cursor, format!("{h}.1"), "after the block's (no) transactions");
        assert_eq!(e.tx_hash, None);
        assert!(e.audience.includes_any(&[l.employer]), "the holder receives it");
        assert!(e.audience.includes_any(&[l.provider]), "so does the provider of the data");
        assert!(!e.audience.includes_any(&[l.outsider]), "an outsider does not");
        let text = e.data.to_string();
        assert!(text.contains(&format!("grant:{}", l.grant)), "{text}");
        assert!(e.parties.contains(&l.employer.to_hex()), "filterable by the holder");
    }
    assert!(st.into_error().is_none());
    drop(store);

    // The audit re-derives the report and counts it as still outstanding.
    let Outcome::Verified(r) = replay_home(&l) else { panic!("a clean chain diverged") };
    let lc = &r.lifecycle;
    assert_eq!(counts(&r), [1, 1, 0, 0, 1], "{}", r.summary());
    assert_eq!(lc.overdue[0].height, l.overdue_at);
    assert_eq!(lc.overdue[0].holder, l.employer);
    assert_eq!(r.events.get("lifecycle.destruction_overdue"), Some(&1));
    assert_eq!(r.objects.get("overdue_destructions"), Some(&1));
    assert!(r.summary().contains("reported overdue 1 (1 still outstanding)"), "{}", r.summary());
}

#[test]
fn a_late_destruction_is_counted_late_and_no_longer_outstanding() {
    let l = build(History::DestroyedLate);
    let Outcome::Verified(r) = replay_home(&l) else { panic!("a clean chain diverged") };
    assert_eq!(counts(&r), [1, 1, 1, 1, 0], "{}", r.summary());
    // The report itself stays on the ledger for good.
    assert_eq!(r.objects.get("overdue_destructions"), Some(&1));
    assert_eq!(r.objects.get("destructions"), Some(&0));
}

#[test]
fn a_tampered_overdue_report_is_pinpointed_to_the_block_start() {
    let l = build(History::TamperedReport);
    let Outcome::Diverged(d) = replay_home(&l) else { panic!("tampering went unnoticed") };
    assert_eq!((d.height, d.kind), (l.overdue_at, DivergenceKind::StateRoot), "{}", d.render());
    let key = keys::overdue(l.overdue_at, keys::TARGET_GRANT, &l.grant.0.0);
    assert_eq!(d.keys.len(), 1, "{}", d.render());
    assert_eq!(d.keys[0].key, hex::encode(key));
    // Written by the block's start, not by a transaction (the block has none).
    assert_eq!((d.tx_index, d.keys[0].tx_index), (None, None), "{}", d.render());
}
