//! The data's whole life cycle (issue 18, part 3): stages attested in order, destruction due
//! after a product's retention period, overdue destructions reported once and bounded per
//! block, and a regulator's review.

mod common;

use common::*;
use dpx_contracts::lifecycle::DAY_MS;
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};

/// A market with a rated provider, a funded buyer and a product kept `retention_days`.
fn setup(retention_days: Option<u32>) -> (World, Keypair, Keypair, ProductId) {
    let mut w = World::new();
    let (provider, buyer) = (kp(1), kp(2));
    w.admit(&provider, &[Role::Provider]);
    w.admit(&buyer, &[Role::Consumer]);
    w.rate(&provider.public(), 3);
    w.fund(&buyer.public(), 10_000_000);
    let product = ProductId::derive(CHAIN, &provider.public(), w.nonce(&provider.public()));
    let spec = ProductSpec { retention_days, ..spec(2, ProductConditions::default()) };
    w.ok(&provider, Operation::ListProduct { spec });
    (w, provider, buyer, product)
}

/// An order placed, accepted and delivered (not yet confirmed).
fn delivered(w: &mut World, provider: &Keypair, buyer: &Keypair, product: ProductId) -> OrderId {
    let oid = OrderId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    w.ok(
        buyer,
        Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand: None },
    );
    w.ok(provider, Operation::AcceptOrder { order: oid });
    w.ok(provider, Operation::DeliverOrder { order: oid, delivery_hash: Hash::digest(b"data") });
    oid
}

fn attest(oid: OrderId, stage: Stage) -> Operation {
    Operation::Attest {
        target: AttestTarget::Order(oid),
        stage,
        hash: Hash::digest(stage.as_str().as_bytes()),
    }
}

fn review(oid: OrderId, seq: u32, verdict: Verdict) -> Operation {
    Operation::ReviewAttestation {
        target: AttestTarget::Order(oid),
        seq,
        verdict,
        reason_hash: Hash::digest(b"reasons"),
    }
}

/// Start a new block at `time_ms`: its start reports the overdue destructions.
fn block_at(w: &mut World, time_ms: u64) -> Vec<Event> {
    w.height += 1;
    w.at_time(time_ms);
    let ctx = w.ctx();
    let events = begin_block(&mut w.st, &ctx);
    let stored: Vec<Event> = overdue_reports(&w.st, w.height).into_iter().map(|(_, e)| e).collect();
    assert_eq!(stored, events, "the block's start events are found again in state");
    events
}

fn due_record(w: &World, oid: OrderId) -> Option<DestructionDue> {
    let v = w.st.get(&keys::destruction(keys::TARGET_ORDER, &oid.0.0))?;
    let k = keys::destruction(keys::TARGET_ORDER, &oid.0.0);
    serde_json::from_value(render(&k, &v)?).ok()
}

fn queue_len(w: &World) -> usize {
    w.st.scan(keys::PREFIX_DESTRUCTION_QUEUE).count()
}

const UP_TO_STORAGE: [Stage; 3] = [Stage::Collected, Stage::Transmitted, Stage::Stored];

#[test]
fn all_stages_in_order_are_accepted() {
    let (mut w, provider, buyer, product) = setup(None);
    let oid = delivered(&mut w, &provider, &buyer, product);
    let stages = [
        Stage::Collected,
        Stage::Transmitted,
        Stage::Stored,
        Stage::Processed,
        Stage::Processed,
        Stage::SharedOnward,
        Stage::SharedOnward,
        Stage::Destroyed,
    ];
    for (seq, stage) in stages.into_iter().enumerate() {
        let r = w.ok(&buyer, attest(oid, stage));
        let e = r.events_of("lifecycle.attested").next().unwrap();
        assert_eq!(e.get("stage"), Some(stage.as_str()));
        assert_eq!(e.get("seq"), Some(seq.to_string().as_str()));
        let a: Attestation = w.get(&keys::attestation(b'o', &oid.0.0, seq as u32)).unwrap();
        assert_eq!((a.stage, a.review), (stage, None));
    }
    // Processing may be skipped: a second order goes from storage to destruction.
    w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    let other = delivered(&mut w, &provider, &buyer, product);
    for stage in UP_TO_STORAGE {
        w.ok(&buyer, attest(other, stage));
    }
    w.ok(&buyer, attest(other, Stage::Destroyed));
}

#[test]
fn out_of_order_attestations_are_refused_changing_nothing() {
    let (mut w, provider, buyer, product) = setup(None);
    let oid = delivered(&mut w, &provider, &buyer, product);
    // `fail` checks that nothing but the nonce changed.
    for stage in [Stage::Transmitted, Stage::Stored, Stage::Processed, Stage::Destroyed] {
        w.fail(&buyer, attest(oid, stage), Code::Failed, "cannot follow unattested");
    }
    w.ok(&buyer, attest(oid, Stage::Collected));
    w.fail(&buyer, attest(oid, Stage::Collected), Code::Failed, "next may be transmitted");
    w.fail(&buyer, attest(oid, Stage::Stored), Code::Failed, "out of order");
    w.ok(&buyer, attest(oid, Stage::Transmitted));
    w.fail(&buyer, attest(oid, Stage::Processed), Code::Failed, "next may be stored");
    w.ok(&buyer, attest(oid, Stage::Stored));
    w.fail(&buyer, attest(oid, Stage::Transmitted), Code::Failed, "cannot follow stored");
    w.ok(&buyer, attest(oid, Stage::SharedOnward));
    // No going back from exchange to processing.
    w.fail(&buyer, attest(oid, Stage::Processed), Code::Failed, "shared_onward or destroyed");
    assert_eq!(w.events("lifecycle.attested").count(), 4);
}

#[test]
fn destruction_is_last_and_happens_once() {
    let (mut w, provider, buyer, product) = setup(None);
    let oid = delivered(&mut w, &provider, &buyer, product);
    for stage in UP_TO_STORAGE {
        w.ok(&buyer, attest(oid, stage));
    }
    w.ok(&buyer, attest(oid, Stage::Destroyed));
    w.fail(&buyer, attest(oid, Stage::Destroyed), Code::Failed, "attested destroyed");
    w.fail(&buyer, attest(oid, Stage::Processed), Code::Failed, "attested destroyed");
}

#[test]
fn retention_makes_destruction_due_at_settlement_plus_retention_reported_once() {
    let (mut w, provider, buyer, product) = setup(Some(30));
    let oid = delivered(&mut w, &provider, &buyer, product);
    assert!(due_record(&w, oid).is_none(), "nothing is due before settlement");
    let settled_ms = w.time_ms() + 123;
    w.at_time(settled_ms);
    let r = w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    let due_ms = settled_ms + 30 * DAY_MS;
    let e = r.events_of("lifecycle.destruction_due").next().unwrap();
    assert_eq!(e.get("due_ms"), Some(due_ms.to_string().as_str()));
    assert_eq!(e.get("holder"), Some(buyer.public().to_string().as_str()));
    let rec = due_record(&w, oid).unwrap();
    assert_eq!((rec.due_ms, rec.holder, rec.overdue_height), (due_ms, buyer.public(), None));
    assert_eq!(queue_len(&w), 1);

    assert!(block_at(&mut w, due_ms - 1).is_empty(), "not overdue a millisecond early");
    let events = block_at(&mut w, due_ms);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "lifecycle.destruction_overdue");
    assert_eq!(events[0].get("target"), Some(format!("order:{oid}").as_str()));
    assert_eq!(events[0].get("due_ms"), Some(due_ms.to_string().as_str()));
    let overdue_at = w.height;
    assert!(block_at(&mut w, due_ms + 1).is_empty(), "reported once");
    assert!(block_at(&mut w, due_ms + 10 * DAY_MS).is_empty(), "reported once");
    // Still on record as overdue (for the audit), off the queue.
    assert_eq!(due_record(&w, oid).unwrap().overdue_height, Some(overdue_at));
    assert_eq!(queue_len(&w), 0);

    // A late destruction clears the record and says it was late.
    for stage in UP_TO_STORAGE {
        w.ok(&buyer, attest(oid, stage));
    }
    let r = w.ok(&buyer, attest(oid, Stage::Destroyed));
    let e = r.events_of("lifecycle.attested").next().unwrap();
    assert_eq!(
        (e.get("overdue"), e.get("due_ms")),
        (Some("true"), Some(due_ms.to_string().as_str()))
    );
    assert!(due_record(&w, oid).is_none());
}

#[test]
fn destruction_before_due_leaves_the_queue() {
    let (mut w, provider, buyer, product) = setup(Some(1));
    let oid = delivered(&mut w, &provider, &buyer, product);
    w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    let due_ms = due_record(&w, oid).unwrap().due_ms;
    for stage in UP_TO_STORAGE {
        w.ok(&buyer, attest(oid, stage));
    }
    let r = w.ok(&buyer, attest(oid, Stage::Destroyed));
    assert_eq!(r.events_of("lifecycle.attested").next().unwrap().get("overdue"), Some("false"));
    assert!(due_record(&w, oid).is_none());
    assert_eq!(queue_len(&w), 0);
    assert!(block_at(&mut w, due_ms + 1).is_empty());
}

#[test]
fn data_destroyed_before_settlement_is_not_queued() {
    let (mut w, provider, buyer, product) = setup(Some(7));
    let oid = delivered(&mut w, &provider, &buyer, product);
    for stage in UP_TO_STORAGE {
        w.ok(&buyer, attest(oid, stage));
    }
    w.ok(&buyer, attest(oid, Stage::Destroyed));
    let r = w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    assert_eq!(r.events_of("lifecycle.destruction_due").count(), 0);
    assert_eq!(queue_len(&w), 0);
}

#[test]
fn overdue_reports_are_bounded_per_block_earliest_first() {
    let (mut w, provider, buyer, product) = setup(Some(2));
    let n = MAX_OVERDUE_PER_BLOCK + 5;
    let settled_ms = w.time_ms();
    let mut orders = Vec::new();
    for _ in 0..n {
        let oid = delivered(&mut w, &provider, &buyer, product);
        w.at_time(settled_ms);
        w.ok(&buyer, Operation::ConfirmOrder { order: oid });
        orders.push(oid);
    }
    assert_eq!(queue_len(&w), n);
    let due_ms = settled_ms + 2 * DAY_MS;
    let first = block_at(&mut w, due_ms);
    let second = block_at(&mut w, due_ms + 1);
    let third = block_at(&mut w, due_ms + 2);
    assert_eq!((first.len(), second.len(), third.len()), (MAX_OVERDUE_PER_BLOCK, 5, 0));
    // Same due time: by target, each order exactly once.
    orders.sort();
    let reported: Vec<String> =
        first.iter().chain(&second).map(|e| e.get("target").unwrap().to_string()).collect();
    let expected: Vec<String> = orders.iter().map(|o| format!("order:{o}")).collect();
    assert_eq!(reported, expected);
}

#[test]
fn a_consumed_grant_with_retention_becomes_due() {
    let (mut w, provider, buyer, _) = setup(None);
    let subject = kp(5);
    let product = ProductId::derive(CHAIN, &provider.public(), w.nonce(&provider.public()));
    let conditions =
        ProductConditions { purposes: vec!["credit-check".into()], ..Default::default() };
    let spec = ProductSpec { retention_days: Some(3), ..spec(3, conditions) };
    w.ok(&provider, Operation::ListProduct { spec });
    let sid = w.enrol(&subject, "subject");
    let g = grant(&subject, sid, 1, &buyer.public(), product, "credit-check", T0_MS + 3_600_000);
    let r = w.ok(&buyer, use_inline(&g, b"req"));
    let used_ms = w.time_ms();
    let e = r.events_of("lifecycle.destruction_due").next().unwrap();
    assert_eq!(e.get("target"), Some(format!("grant:{}", g.grant.id()).as_str()));
    assert_eq!(e.get("due_ms"), Some((used_ms + 3 * DAY_MS).to_string().as_str()));
    let events = block_at(&mut w, used_ms + 3 * DAY_MS);
    assert_eq!(events.len(), 1);
}

#[test]
fn a_regulator_confirms_and_rejects_and_a_rejected_destruction_is_overdue_again() {
    let (mut w, provider, buyer, product) = setup(Some(30));
    let reg = w.regulator.clone();
    let oid = delivered(&mut w, &provider, &buyer, product);
    w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    for stage in UP_TO_STORAGE {
        w.ok(&buyer, attest(oid, stage));
    }
    let r = w.ok(&reg, review(oid, 0, Verdict::Confirmed));
    let e = r.events_of("lifecycle.reviewed").next().unwrap();
    assert_eq!((e.get("verdict"), e.get("stage")), (Some("confirmed"), Some("collected")));
    let first: Attestation = w.get(&keys::attestation(b'o', &oid.0.0, 0)).unwrap();
    let rev = first.review.unwrap();
    assert_eq!(
        (rev.reviewer, rev.verdict, rev.height),
        (reg.public(), Verdict::Confirmed, w.height)
    );
    // A rejected storage stays on record; the order of stages goes on.
    w.ok(&reg, review(oid, 2, Verdict::Rejected));
    w.ok(&buyer, attest(oid, Stage::Destroyed));
    assert!(due_record(&w, oid).is_none());

    // The destruction is rejected: due again at once, reported overdue by the next block.
    let r = w.ok(&reg, review(oid, 3, Verdict::Rejected));
    let e = r.events_of("lifecycle.destruction_due").next().unwrap();
    assert_eq!(
        (e.get("reopened"), e.get("due_ms")),
        (Some("true"), Some(w.time_ms().to_string().as_str()))
    );
    let rec = due_record(&w, oid).unwrap();
    assert!(rec.reopened && rec.overdue_height.is_none());
    let rejected_ms = w.time_ms();
    let events = block_at(&mut w, rejected_ms + 1);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get("reopened"), Some("true"));
    assert!(block_at(&mut w, rejected_ms + 2).is_empty());
    // Only a new destruction may follow, and it clears the record.
    w.fail(&buyer, attest(oid, Stage::Processed), Code::Failed, "next may be destroyed");
    w.ok(&buyer, attest(oid, Stage::Destroyed));
    assert!(due_record(&w, oid).is_none());
    w.ok(&reg, review(oid, 4, Verdict::Confirmed));
    w.fail(&buyer, attest(oid, Stage::Destroyed), Code::Failed, "attested destroyed");
}

#[test]
fn a_destruction_rejected_before_settlement_is_not_postponed_by_it() {
    let (mut w, provider, buyer, product) = setup(Some(30));
    let reg = w.regulator.clone();
    let oid = delivered(&mut w, &provider, &buyer, product);
    for stage in UP_TO_STORAGE {
        w.ok(&buyer, attest(oid, stage));
    }
    w.ok(&buyer, attest(oid, Stage::Destroyed));
    w.ok(&reg, review(oid, 3, Verdict::Rejected));
    let rejected_ms = w.time_ms();
    w.next_block();
    let r = w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    assert_eq!(r.events_of("lifecycle.destruction_due").count(), 0);
    let rec = due_record(&w, oid).unwrap();
    assert_eq!((rec.due_ms, rec.reopened), (rejected_ms, true));
}

#[test]
fn only_a_regulator_reviews_and_only_once() {
    let (mut w, provider, buyer, product) = setup(None);
    let (reg, auditor, operator) = (w.regulator.clone(), w.auditor.clone(), w.operator.clone());
    let oid = delivered(&mut w, &provider, &buyer, product);
    w.ok(&buyer, attest(oid, Stage::Collected));
    for who in [&auditor, &operator, &buyer, &provider] {
        w.fail(who, review(oid, 0, Verdict::Confirmed), Code::Denied, "no policy permits");
    }
    w.fail(&reg, review(oid, 1, Verdict::Confirmed), Code::Failed, "not found");
    w.ok(&reg, review(oid, 0, Verdict::Rejected));
    w.fail(&reg, review(oid, 0, Verdict::Confirmed), Code::Failed, "already rejected");
    w.fail(&reg, review(oid, 0, Verdict::Rejected), Code::Failed, "already rejected");
}

/// The whole scenario with its block-start steps: its state root, receipts and overdue events.
fn scenario() -> (Hash, Vec<Receipt>, Vec<Event>) {
    let (mut w, provider, buyer, product) = setup(Some(1));
    let reg = w.regulator.clone();
    let mut overdue = Vec::new();
    let a = delivered(&mut w, &provider, &buyer, product);
    let b = delivered(&mut w, &provider, &buyer, product);
    w.ok(&buyer, Operation::ConfirmOrder { order: a });
    w.ok(&buyer, Operation::ConfirmOrder { order: b });
    for stage in UP_TO_STORAGE {
        w.ok(&buyer, attest(a, stage));
    }
    w.ok(&buyer, attest(a, Stage::Destroyed));
    w.ok(&reg, review(a, 3, Verdict::Rejected));
    let t = w.time_ms();
    overdue.extend(block_at(&mut w, t + DAY_MS));
    overdue.extend(block_at(&mut w, t + 2 * DAY_MS));
    (w.st.root(), w.receipts, overdue)
}

#[test]
fn same_inputs_same_root_receipts_and_overdue_events() {
    let (root_a, receipts_a, overdue_a) = scenario();
    let (root_b, receipts_b, overdue_b) = scenario();
    assert_eq!(overdue_a.len(), 2, "the rejected destruction and the other order");
    assert_eq!((root_a, &receipts_a, &overdue_a), (root_b, &receipts_b, &overdue_b));
}

#[test]
fn due_records_and_queue_entries_are_seen_by_parties_and_supervisors_only() {
    let (mut w, provider, buyer, product) = setup(Some(5));
    let stranger = kp(7);
    w.admit(&stranger, &[Role::Consumer]);
    let oid = delivered(&mut w, &provider, &buyer, product);
    w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    let record = keys::destruction(keys::TARGET_ORDER, &oid.0.0);
    let entry = w.st.scan(keys::PREFIX_DESTRUCTION_QUEUE).next().unwrap().0.to_vec();
    for key in [record, entry] {
        let value = w.st.get(&key).unwrap();
        assert!(render(&key, &value).is_some());
        let access = read::state_access(&w.st, &key, &value);
        let may = |who: &Keypair| read::viewer(&w.st, &who.public()).may(&access);
        assert!(may(&buyer) && may(&provider) && may(&w.regulator) && may(&w.auditor));
        assert!(!may(&stranger), "{}", String::from_utf8_lossy(&key));
    }
}
