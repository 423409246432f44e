//! Products, demands, trades and life-cycle attestations.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::Hash;

fn setup() -> (World, dpx_crypto::Keypair, dpx_crypto::Keypair) {
    let mut w = World::new();
    let provider = kp(1);
    let buyer = kp(2);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&buyer, &[Role::Consumer]);
    w.fund(&buyer.public(), 100_000);
    (w, provider, buyer)
}

#[test]
fn listing_needs_a_rating_at_or_above_the_grade() {
    let (mut w, provider, buyer) = setup();
    let r = w.fail(
        &provider,
        Operation::ListProduct { spec: spec(1, ProductConditions::default()) },
        Code::Denied,
        "no policy permits list_product",
    );
    assert_eq!(r.decision.unwrap().policy_version, 1);
    w.rate(&provider.public(), 2);
    let id = w.list(&provider, 2, ProductConditions::default());
    w.fail(
        &provider,
        Operation::ListProduct { spec: spec(3, ProductConditions::default()) },
        Code::Denied,
        "no policy permits",
    );
    // A consumer cannot list even when rated.
    w.rate(&buyer.public(), 4);
    w.fail(
        &buyer,
        Operation::ListProduct { spec: spec(1, ProductConditions::default()) },
        Code::Denied,
        "no policy permits",
    );
    let p: Product = w.get(&keys::product(&id)).unwrap();
    assert_eq!((p.spec.grade, p.listed, p.version, p.provider), (2, true, 1, provider.public()));
}

#[test]
fn update_and_delist_by_the_provider_only() {
    let (mut w, provider, buyer) = setup();
    w.rate(&provider.public(), 2);
    let id = w.list(&provider, 1, ProductConditions::default());
    let mut s = spec(2, ProductConditions::default());
    s.price = 20_000;
    w.ok(&provider, Operation::UpdateProduct { product: id, spec: s.clone() });
    let p: Product = w.get(&keys::product(&id)).unwrap();
    assert_eq!((p.spec.price, p.version), (20_000, 2));
    // Raising the grade above the provider's rating is refused.
    w.fail(
        &provider,
        Operation::UpdateProduct { product: id, spec: spec(4, ProductConditions::default()) },
        Code::Denied,
        "no policy permits",
    );
    w.fail(
        &buyer,
        Operation::UpdateProduct { product: id, spec: s.clone() },
        Code::Failed,
        "only the provider",
    );
    w.fail(&buyer, Operation::DelistProduct { product: id }, Code::Failed, "only the provider");
    w.ok(&provider, Operation::DelistProduct { product: id });
    w.fail(&provider, Operation::DelistProduct { product: id }, Code::Failed, "delisted");
    w.fail(&provider, Operation::UpdateProduct { product: id, spec: s }, Code::Failed, "delisted");
    // Bad specs never reach execution.
    let mut bad = spec(5, ProductConditions::default());
    let bytes = w.sign(&provider, Operation::ListProduct { spec: bad.clone() });
    assert!(matches!(check_stateless(&bytes, CHAIN), Err(TxError::InvalidOp { .. })));
    bad.grade = 1;
    bad.name = "x".repeat(300);
    assert!(
        check_stateless(&w.sign(&provider, Operation::ListProduct { spec: bad }), CHAIN).is_err()
    );
}

#[test]
fn demand_post_respond_award_close() {
    let (mut w, provider, buyer) = setup();
    let rival = kp(3);
    w.admit(&rival, &[Role::Provider]);
    w.rate(&provider.public(), 1);
    let product = w.list(&provider, 1, ProductConditions::default());
    let did = DemandId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    w.ok(
        &buyer,
        Operation::PostDemand {
            title: "traffic flow API".into(),
            domain: "transport".into(),
            budget: 50_000,
            description_hash: Hash::digest(b"need"),
            deadline_ms: Some(T0_MS + 10_000),
        },
    );
    let respond = |product| Operation::RespondDemand {
        demand: did,
        product,
        price: 40_000,
        proposal_hash: Hash::digest(b"offer"),
    };
    w.fail(&buyer, respond(None), Code::Denied, "no policy permits respond_demand");
    w.ok(&provider, respond(Some(product)));
    w.fail(&provider, respond(None), Code::Failed, "already answered");
    w.fail(&rival, respond(Some(product)), Code::Failed, "not a listed product of the responder");
    w.ok(&rival, respond(None));
    let d: Demand = w.get(&keys::demand(&did)).unwrap();
    assert_eq!((d.responses, d.status), (2, DemandStatus::Open));
    let resp: DemandResponse = w.get(&keys::response(&did, &provider.public())).unwrap();
    assert_eq!(resp.product, Some(product));
    w.fail(
        &provider,
        Operation::AwardDemand { demand: did, responder: provider.public() },
        Code::Failed,
        "only the poster",
    );
    w.fail(
        &buyer,
        Operation::AwardDemand { demand: did, responder: kp(60).public() },
        Code::Failed,
        "not found",
    );
    w.ok(&buyer, Operation::AwardDemand { demand: did, responder: provider.public() });
    w.fail(
        &buyer,
        Operation::AwardDemand { demand: did, responder: rival.public() },
        Code::Failed,
        "is awarded",
    );
    // The awarded trade references the demand, and closes it.
    let r = w.ok(
        &buyer,
        Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand: Some(did) },
    );
    assert_eq!(r.events_of("demand.closed").count(), 1);
    w.fail(&buyer, Operation::CloseDemand { demand: did }, Code::Failed, "is closed");
    // Past the deadline, no responses.
    let did2 = DemandId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    w.ok(
        &buyer,
        Operation::PostDemand {
            title: "t".into(),
            domain: "d".into(),
            budget: 1,
            description_hash: Hash::ZERO,
            deadline_ms: Some(T0_MS + 2_000),
        },
    );
    w.height = 3;
    w.fail(
        &provider,
        Operation::RespondDemand {
            demand: did2,
            product: None,
            price: 1,
            proposal_hash: Hash::ZERO,
        },
        Code::Failed,
        "deadline",
    );
}

#[test]
fn trade_order_accept_deliver_confirm_settles_from_escrow() {
    let (mut w, provider, buyer) = setup();
    w.rate(&provider.public(), 2);
    let product = w.list(&provider, 2, ProductConditions::default());
    let oid = OrderId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    w.ok(
        &buyer,
        Operation::PlaceOrder { product, grant: None, purpose: "risk".into(), demand: None },
    );
    assert_eq!(w.balance(&buyer.public()), 100_000, "placing an order holds nothing yet");
    w.fail(&buyer, Operation::AcceptOrder { order: oid }, Code::Failed, "not the party");
    w.fail(
        &provider,
        Operation::DeliverOrder { order: oid, delivery_hash: Hash::ZERO },
        Code::Failed,
        "is ordered",
    );
    let r = w.ok(&provider, Operation::AcceptOrder { order: oid });
    assert_eq!(r.events_of("order.accepted").next().unwrap().get("escrow"), Some("10000"));
    assert_eq!(w.balance(&buyer.public()), 90_000);
    let delivery = Hash::digest(b"delivered dataset v1");
    w.ok(&provider, Operation::DeliverOrder { order: oid, delivery_hash: delivery });
    w.fail(&provider, Operation::ConfirmOrder { order: oid }, Code::Failed, "not the party");
    // Confirmation settles: no fee set, so the provider receives the whole escrow.
    let r = w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    let e = r.events_of("order.settled").next().unwrap();
    assert_eq!(
        (e.get("settlement_amount"), e.get("provider_amount"), e.get("fee"), e.get("refund")),
        (Some("10000"), Some("10000"), Some("0"), Some("0"))
    );
    let o: Order = w.get(&keys::order(&oid)).unwrap();
    assert_eq!(
        (o.status, o.delivery_hash, o.settlement_amount, o.price, o.escrow),
        (OrderStatus::Settled, Some(delivery), Some(10_000), 10_000, 0)
    );
    assert_eq!(o.terms_hash, Hash::digest(b"terms"), "the product's terms");
    assert_eq!(w.balance(&provider.public()), 10_000);
    w.fail(&buyer, Operation::CancelOrder { order: oid }, Code::Failed, "is settled");
    w.fail(&buyer, Operation::ConfirmOrder { order: oid }, Code::Failed, "is settled");
}

#[test]
fn cancel_and_dispute_paths() {
    let (mut w, provider, buyer) = setup();
    w.rate(&provider.public(), 1);
    let product = w.list(&provider, 1, ProductConditions::default());
    let place = |w: &mut World| {
        let id = OrderId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
        w.ok(
            &buyer,
            Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand: None },
        );
        id
    };
    let o1 = place(&mut w);
    w.ok(&provider, Operation::CancelOrder { order: o1 });
    let o2 = place(&mut w);
    w.ok(&provider, Operation::AcceptOrder { order: o2 });
    w.ok(&buyer, Operation::CancelOrder { order: o2 });
    // Dispute after delivery; the operator resolves by settling low or cancelling.
    let op = w.operator.clone();
    for (settle, expect) in [(Some(1_000), OrderStatus::Settled), (None, OrderStatus::Cancelled)] {
        let o = place(&mut w);
        w.ok(&provider, Operation::AcceptOrder { order: o });
        w.fail(
            &buyer,
            Operation::DisputeOrder { order: o, reason_hash: Hash::ZERO },
            Code::Failed,
            "is accepted",
        );
        w.ok(&provider, Operation::DeliverOrder { order: o, delivery_hash: Hash::digest(b"d") });
        w.ok(
            &buyer,
            Operation::DisputeOrder { order: o, reason_hash: Hash::digest(b"incomplete") },
        );
        w.fail(&buyer, Operation::CancelOrder { order: o }, Code::Failed, "is disputed");
        w.ok(&op, Operation::ResolveDispute { order: o, settle_amount: settle });
        let got: Order = w.get(&keys::order(&o)).unwrap();
        assert_eq!((got.status, got.settlement_amount), (expect, settle));
        assert_eq!(got.refund_amount, Some(10_000 - settle.unwrap_or(0)));
    }
}

#[test]
fn orders_refused_for_delisted_products_barred_buyers_and_unmet_conditions() {
    let (mut w, provider, buyer) = setup();
    w.rate(&provider.public(), 4);
    let delisted = w.list(&provider, 1, ProductConditions::default());
    w.ok(&provider, Operation::DelistProduct { product: delisted });
    w.fail(
        &buyer,
        Operation::PlaceOrder {
            product: delisted,
            grant: None,
            purpose: String::new(),
            demand: None,
        },
        Code::Failed,
        "delisted",
    );
    let open = w.list(&provider, 1, ProductConditions::default());
    w.fail(
        &provider,
        Operation::PlaceOrder { product: open, grant: None, purpose: String::new(), demand: None },
        Code::Failed,
        "own product",
    );
    let a = w.agency().clone();
    w.ok(&a, Operation::Suspend { participant: buyer.public(), reason: "fraud".into() });
    w.fail(
        &buyer,
        Operation::PlaceOrder { product: open, grant: None, purpose: String::new(), demand: None },
        Code::Denied,
        "suspended-denied",
    );
    w.ok(&a, Operation::Reinstate { participant: buyer.public() });
    // Per-product conditions.
    let picky = w.list(
        &provider,
        2,
        ProductConditions { min_consumer_rating: 2, whitelist_only: true, purposes: vec![] },
    );
    let order =
        Operation::PlaceOrder { product: picky, grant: None, purpose: String::new(), demand: None };
    let r = w.fail(&buyer, order.clone(), Code::Denied, "forbidden by");
    assert_eq!(
        r.decision.unwrap().determining,
        ["min-consumer-rating", "whitelist-only-products"],
        "sorted ids"
    );
    w.rate(&buyer.public(), 2);
    let reg = w.regulator.clone();
    w.ok(
        &reg,
        Operation::SetListStatus { participant: buyer.public(), status: ListStatus::Whitelisted },
    );
    w.ok(&buyer, order);
}

#[test]
fn restricted_products_need_a_consumed_grant_per_order() {
    let (mut w, provider, buyer) = setup();
    let subject = kp(5);
    w.rate(&provider.public(), 3);
    let product = w.list(&provider, 3, ProductConditions::default());
    let r = w.fail(
        &buyer,
        Operation::PlaceOrder { product, grant: None, purpose: "loan".into(), demand: None },
        Code::Denied,
        "restricted-needs-consumed-grant",
    );
    assert_eq!(r.decision.unwrap().determining, ["restricted-needs-consumed-grant"]);
    let sid = w.enrol(&subject, "subject");
    let g = grant(&subject, sid, 1, &buyer.public(), product, "credit-check", T0_MS + 3_600_000);
    let oid = OrderId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    let place = Operation::PlaceOrder {
        product,
        grant: Some(GrantRef::Inline(Box::new(g.clone()))),
        purpose: "credit-check".into(),
        demand: None,
    };
    let r = w.ok(&buyer, place.clone());
    assert_eq!(r.events_of("grant.consumed").count(), 1);
    let o: Order = w.get(&keys::order(&oid)).unwrap();
    assert_eq!(o.grant, Some(g.grant.id()));
    let usage: UsageReceipt = w.get(&keys::usage(&g.grant.id())).unwrap();
    assert_eq!(usage.request_hash, oid.0, "the usage receipt names the order");
    // The same grant cannot buy a second order.
    w.fail(&buyer, place, Code::Failed, "already consumed");
}

#[test]
fn life_cycle_attestations_by_the_holder_only() {
    let (mut w, provider, buyer) = setup();
    let subject = kp(5);
    w.rate(&provider.public(), 2);
    let product = w.list(&provider, 2, ProductConditions::default());
    let oid = OrderId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    w.ok(
        &buyer,
        Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand: None },
    );
    let attest = |stage, seed: &[u8]| Operation::Attest {
        target: AttestTarget::Order(oid),
        stage,
        hash: Hash::digest(seed),
    };
    w.fail(&buyer, attest(Stage::Processed, b"p"), Code::Failed, "delivered data");
    w.ok(&provider, Operation::AcceptOrder { order: oid });
    w.ok(&provider, Operation::DeliverOrder { order: oid, delivery_hash: Hash::digest(b"d") });
    w.fail(&provider, attest(Stage::Processed, b"p"), Code::Failed, "only the holder");
    let reg = w.regulator.clone();
    w.fail(&reg, attest(Stage::Processed, b"p"), Code::Denied, "supervisors-change-nothing");
    w.ok(&buyer, attest(Stage::Collected, b"collected"));
    w.ok(&buyer, attest(Stage::Transmitted, b"transmitted"));
    w.ok(&buyer, attest(Stage::Stored, b"stored"));
    w.ok(&buyer, attest(Stage::Processed, b"processed"));
    w.ok(&buyer, attest(Stage::SharedOnward, b"shared"));
    let r = w.ok(&buyer, attest(Stage::Destroyed, b"destroyed"));
    assert_eq!(r.events_of("lifecycle.attested").next().unwrap().get("seq"), Some("5"));
    w.fail(&buyer, attest(Stage::Processed, b"again"), Code::Failed, "destroyed");
    let a: Attestation = w.get(&keys::attestation(b'o', &oid.0.0, 5)).unwrap();
    assert_eq!((a.stage, a.attester, a.height), (Stage::Destroyed, buyer.public(), w.height));

    // The use of a grant: its consumer is the holder.
    let sid = w.enrol(&subject, "subject");
    let g = grant(&subject, sid, 1, &buyer.public(), product, "credit-check", T0_MS + 3_600_000);
    let gt = Operation::Attest {
        target: AttestTarget::Grant(g.grant.id()),
        stage: Stage::Collected,
        hash: Hash::ZERO,
    };
    w.fail(&buyer, gt.clone(), Code::Failed, "not found");
    w.ok(&buyer, use_inline(&g, b""));
    w.fail(&provider, gt.clone(), Code::Failed, "only the holder");
    w.ok(&buyer, gt);
}

/// Execute `op` by `who` in the current block, with the block time `time_ms`.
fn run_at(w: &mut World, who: &dpx_crypto::Keypair, op: Operation, time_ms: u64) -> Receipt {
    let bytes = w.sign(who, op);
    let tx = check_stateless(&bytes, CHAIN).unwrap();
    let ctx = BlockContext { chain_id: CHAIN.into(), height: w.height, time_ms };
    execute(&mut w.st, &ctx, &tx)
}

/// A demand's deadline is a block time in ms: a response in a block timed exactly at the
/// deadline is accepted, one a millisecond later refused; replaying the same blocks gives the
/// same verdicts.
#[test]
fn demand_deadline_by_block_time_at_the_exact_millisecond() {
    let day_ms: u64 = 24 * 60 * 60 * 1000;
    let t0: u64 = 1_780_000_000_000; // a block time in 2026
    let deadline = t0 + 3 * day_ms; // "answers within three days"
    let scenario = || {
        let (mut w, provider, buyer) = setup();
        let rival = kp(3);
        w.admit(&rival, &[Role::Provider]);
        let post = |deadline_ms| Operation::PostDemand {
            title: "t".into(),
            domain: "d".into(),
            budget: 1,
            description_hash: Hash::ZERO,
            deadline_ms: Some(deadline_ms),
        };
        // A deadline at or before the posting block's time, or too far ahead, is refused.
        for (dl, why) in [
            (t0, "not after the block time"),
            (t0 - 1, "not after the block time"),
            (t0 + 367 * day_ms, "more than"),
        ] {
            let r = run_at(&mut w, &buyer, post(dl), t0);
            assert_eq!(r.code, Code::Failed, "{}", r.reason);
            assert!(r.reason.contains(why), "{}", r.reason);
        }
        let did = DemandId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
        assert!(run_at(&mut w, &buyer, post(deadline), t0).is_ok());
        let respond = Operation::RespondDemand {
            demand: did,
            product: None,
            price: 1,
            proposal_hash: Hash::ZERO,
        };
        let at_deadline = run_at(&mut w, &provider, respond.clone(), deadline);
        let after = run_at(&mut w, &rival, respond, deadline + 1);
        let d: Demand = w.get(&keys::demand(&did)).unwrap();
        (w, at_deadline, after, d, buyer, provider)
    };
    let (mut w, at_deadline, after, d, buyer, provider) = scenario();
    assert!(at_deadline.is_ok(), "{}", at_deadline.reason);
    assert_eq!(after.code, Code::Failed);
    assert!(after.reason.contains("deadline"), "{}", after.reason);
    assert_eq!((d.deadline_ms, d.responses, d.status), (Some(deadline), 1, DemandStatus::Open));
    assert!(d.accepts_responses_at(deadline) && !d.accepts_responses_at(deadline + 1));
    // Replayed: the same verdicts and the same state.
    let (w2, a2, b2, ..) = scenario();
    assert_eq!((a2, b2, w2.st.root()), (at_deadline, after, w.st.root()));
    // Past the deadline the demand is closed for responses only: the poster still awards the
    // answer received in time.
    let r = run_at(
        &mut w,
        &buyer,
        Operation::AwardDemand { demand: d.id, responder: provider.public() },
        deadline + day_ms,
    );
    assert!(r.is_ok(), "{}", r.reason);
}
