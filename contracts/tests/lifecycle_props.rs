//! The life cycle over random sequences of attestations (any stage, in or out of order),
//! regulator reviews (any verdict, any seq, by the regulator or an auditor), settlements and
//! blocks that move time forward. After every step:
//!
//! - each target's stored attestations follow the order of stages (`allowed_after`), and a
//!   refused step changed nothing but the signer's nonce;
//! - the due-queue and the due records agree: an entry exists exactly for each record not yet
//!   reported overdue, under its due time;
//! - a block start reports at most `MAX_OVERDUE_PER_BLOCK` destructions, each due by then, and
//!   a target is reported at most once per time its destruction became due.
//!
//! The same sequence replayed on a fresh chain gives the same receipts, events and state.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;

use common::*;
use dpx_contracts::lifecycle::{DAY_MS, allowed_after};
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};
use proptest::prelude::*;

const ORDERS: usize = 3;

#[derive(Debug, Clone)]
enum Step {
    /// `None`: the `pick`-th stage allowed next (so sequences also get far in the life cycle).
    Attest {
        order: usize,
        stage: Option<Stage>,
        pick: usize,
    },
    Review {
        order: usize,
        seq: u32,
        verdict: Verdict,
        by_regulator: bool,
    },
    Confirm {
        order: usize,
    },
    Block {
        advance_ms: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..ORDERS, proptest::option::weighted(0.3, proptest::sample::select(Stage::ALL)), 0..3usize)
            .prop_map(|(order, stage, pick)| Step::Attest { order, stage, pick }),
        2 => (0..ORDERS, 0u32..8, proptest::sample::select(Verdict::ALL), any::<bool>()).prop_map(
            |(order, seq, verdict, by_regulator)| Step::Review { order, seq, verdict, by_regulator }
        ),
        1 => (0..ORDERS).prop_map(|order| Step::Confirm { order }),
        2 => prop_oneof![Just(1u64), Just(DAY_MS), 0..3 * DAY_MS]
            .prop_map(|advance_ms| Step::Block { advance_ms }),
    ]
}

struct Run {
    w: World,
    buyer: Keypair,
    orders: Vec<OrderId>,
    block_events: Vec<Event>,
}

fn stored_attestations(w: &World, oid: OrderId) -> Vec<Attestation> {
    (0u32..)
        .map_while(|seq| {
            let key = keys::attestation(keys::TARGET_ORDER, &oid.0.0, seq);
            let v = w.st.get(&key)?;
            serde_json::from_value(render(&key, &v)?).ok()
        })
        .collect()
}

fn check_invariants(run: &Run) {
    let w = &run.w;
    for oid in &run.orders {
        let all = stored_attestations(w, *oid);
        // The model: destruction is due once the trade closed after delivery (or a regulator
        // rejected the destruction), until a destruction stands.
        let order: Order = w.get(&keys::order(oid)).unwrap();
        let last = all.last();
        let rejected =
            |a: &Attestation| a.review.as_ref().map(|r| r.verdict) == Some(Verdict::Rejected);
        let destroyed = last.is_some_and(|a| a.stage == Stage::Destroyed && !rejected(a));
        let reopened = last.is_some_and(|a| a.stage == Stage::Destroyed && rejected(a));
        let due = (order.status == OrderStatus::Settled || reopened) && !destroyed;
        let key = keys::destruction(keys::TARGET_ORDER, &oid.0.0);
        let record: Option<DestructionDue> =
            w.st.get(&key).map(|v| serde_json::from_value(render(&key, &v).unwrap()).unwrap());
        assert_eq!(record.is_some(), due, "due record of {oid}: {:?}", last.map(|a| a.stage));
        // A rejected destruction stays due from the rejection: a settlement never postpones it.
        if reopened {
            assert!(record.unwrap().reopened, "reopened destruction of {oid} postponed");
        }
        for (i, a) in all.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| &all[p]);
            // The review of the previous one may have come later, so check against the stage
            // rule as it stood: a destruction is followed only if it was rejected.
            assert!(allowed_after(prev).contains(&a.stage), "{:?} after {:?}", a.stage, prev);
        }
    }
    let queue: BTreeMap<Vec<u8>, u64> =
        w.st.scan(keys::PREFIX_DESTRUCTION_QUEUE)
            .map(|(k, _)| {
                let (due, t) = keys::parse_destruction_queue(k).unwrap();
                let (tag, id) = t.key_parts();
                (keys::destruction(tag, &id), due)
            })
            .collect();
    let mut pending = BTreeMap::new();
    for (k, v) in w.st.scan(keys::PREFIX_DESTRUCTION) {
        let rec: DestructionDue = serde_json::from_value(render(k, v).unwrap()).unwrap();
        if rec.overdue_height.is_none() {
            pending.insert(k.to_vec(), rec.due_ms);
        }
    }
    assert_eq!(queue, pending, "queue entries are exactly the unreported due records");
}

fn play(steps: &[Step]) -> Run {
    let mut w = World::new();
    let (provider, buyer) = (kp(1), kp(2));
    w.admit(&provider, &[Role::Provider]);
    w.admit(&buyer, &[Role::Consumer]);
    w.rate(&provider.public(), 3);
    w.fund(&buyer.public(), 1_000_000);
    let product = ProductId::derive(CHAIN, &provider.public(), w.nonce(&provider.public()));
    let spec = ProductSpec { retention_days: Some(1), ..spec(2, ProductConditions::default()) };
    w.ok(&provider, Operation::ListProduct { spec });
    let mut orders = Vec::new();
    for _ in 0..ORDERS {
        let oid = OrderId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
        let place =
            Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand: None };
        w.ok(&buyer, place);
        w.ok(&provider, Operation::AcceptOrder { order: oid });
        w.ok(&provider, Operation::DeliverOrder { order: oid, delivery_hash: Hash::digest(b"d") });
        orders.push(oid);
    }
    let mut run = Run { w, buyer, orders, block_events: Vec::new() };
    let mut time_ms = run.w.time_ms();
    let mut became_due: BTreeMap<String, usize> = BTreeMap::new();
    let mut reported: BTreeMap<String, usize> = BTreeMap::new();
    for s in steps {
        let (who, op) = match s {
            Step::Attest { order, stage, pick } => {
                let oid = run.orders[*order];
                let stage = stage.unwrap_or_else(|| {
                    let all = stored_attestations(&run.w, oid);
                    let next = allowed_after(all.last());
                    // Nothing may follow: attest a destruction again (refused).
                    next.get(pick % next.len().max(1)).copied().unwrap_or(Stage::Destroyed)
                });
                let target = AttestTarget::Order(oid);
                (run.buyer.clone(), Operation::Attest { target, stage, hash: Hash::ZERO })
            }
            Step::Review { order, seq, verdict, by_regulator } => (
                if *by_regulator { run.w.regulator.clone() } else { run.w.auditor.clone() },
                Operation::ReviewAttestation {
                    target: AttestTarget::Order(run.orders[*order]),
                    seq: *seq,
                    verdict: *verdict,
                    reason_hash: Hash::ZERO,
                },
            ),
            Step::Confirm { order } => {
                (run.buyer.clone(), Operation::ConfirmOrder { order: run.orders[*order] })
            }
            Step::Block { advance_ms } => {
                time_ms += advance_ms;
                run.w.height += 1;
                run.w.at_time(time_ms);
                let ctx = run.w.ctx();
                let events = begin_block(&mut run.w.st, &ctx);
                assert!(events.len() <= MAX_OVERDUE_PER_BLOCK);
                for e in &events {
                    assert!(e.get("due_ms").unwrap().parse::<u64>().unwrap() <= time_ms);
                    *reported.entry(e.get("target").unwrap().to_string()).or_default() += 1;
                }
                run.block_events.extend(events);
                check_invariants(&run);
                continue;
            }
        };
        let before = run.w.st.clone();
        let r = run.w.run(&who, op);
        if r.is_ok() {
            for e in r.events_of("lifecycle.destruction_due") {
                *became_due.entry(e.get("target").unwrap().to_string()).or_default() += 1;
            }
        } else {
            let nonce = keys::nonce(&who.public());
            let mut changed = run
                .w
                .st
                .map
                .keys()
                .chain(before.map.keys())
                .filter(|k| **k != nonce && run.w.st.map.get(*k) != before.map.get(*k));
            assert!(changed.next().is_none(), "a refused step changed state: {}", r.reason);
        }
        check_invariants(&run);
    }
    for (target, n) in &reported {
        assert!(*n <= became_due.get(target).copied().unwrap_or(0), "{target} reported {n} times");
    }
    run
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn life_cycle_invariants_hold_and_replay_is_deterministic(steps in proptest::collection::vec(step(), 1..60)) {
        let a = play(&steps);
        let b = play(&steps);
        prop_assert_eq!(a.w.st.root(), b.w.st.root());
        prop_assert_eq!(a.w.receipts, b.w.receipts);
        prop_assert_eq!(a.block_events, b.block_events);
    }
}
