//! Invariants: a grant is consumed at most once whatever the transactions and their order;
//! execution is deterministic.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};
use proptest::prelude::*;

/// A marketplace with a grade-3 product, two consumers and a data subject's grant.
struct Fixture {
    world: World,
    consumer: Keypair,
    other: Keypair,
    subject: Keypair,
    product: ProductId,
    grant: SignedGrant,
}

fn fixture() -> Fixture {
    let mut world = World::new();
    let provider = kp(1);
    let consumer = kp(2);
    let other = kp(3);
    let subject = kp(4);
    world.admit(&provider, &[Role::Provider]);
    world.admit(&consumer, &[Role::Consumer]);
    world.admit(&other, &[Role::Consumer]);
    world.rate(&provider.public(), 3);
    let product = world.list(&provider, 3, ProductConditions::default());
    let grant = grant(&subject, 1, &consumer.public(), product, "check", 6);
    Fixture { world, consumer, other, subject, product, grant }
}

/// Every kind of transaction that touches the grant, by everyone who might send it.
fn touch(f: &Fixture, kind: u8) -> (Keypair, Operation) {
    let id = f.grant.grant.id;
    let inline = GrantRef::Inline(Box::new(f.grant.clone()));
    let use_op = |grant| Operation::UseGrant {
        grant,
        product: f.product,
        purpose: "check".into(),
        request_hash: Hash::digest(&[kind]),
    };
    match kind % 9 {
        0 => (f.consumer.clone(), use_op(inline)),
        1 => (f.consumer.clone(), use_op(GrantRef::Id(id))),
        2 => (f.other.clone(), use_op(inline)),
        3 => (f.subject.clone(), Operation::RegisterGrant { grant: Box::new(f.grant.clone()) }),
        4 => (f.subject.clone(), Operation::RevokeGrant { grant: id }),
        5 => (f.other.clone(), Operation::ExpireGrant { grant: id }),
        6 => (
            f.consumer.clone(),
            Operation::PlaceOrder {
                product: f.product,
                grant: Some(inline),
                purpose: "check".into(),
                demand: None,
            },
        ),
        7 => (
            f.consumer.clone(),
            Operation::PlaceOrder {
                product: f.product,
                grant: Some(GrantRef::Id(id)),
                purpose: "check".into(),
                demand: None,
            },
        ),
        _ => (f.other.clone(), Operation::RevokeGrant { grant: id }),
    }
}

/// Execute the steps block by block (a step is a transaction kind and whether a new block
/// starts before it); return receipts and the final state.
fn run(f: &Fixture, steps: &[(u8, bool)]) -> (Vec<Receipt>, MemState) {
    let mut st = f.world.st.clone();
    let mut height = f.world.height;
    let mut block: Vec<Vec<u8>> = Vec::new();
    let mut receipts = Vec::new();
    let mut nonces = std::collections::BTreeMap::new();
    let flush =
        |st: &mut MemState, block: &mut Vec<Vec<u8>>, height: u64, receipts: &mut Vec<Receipt>| {
            let ctx = BlockContext { chain_id: CHAIN.into(), height, time_ms: height };
            receipts.extend(execute_block(st, &ctx, block));
            block.clear();
        };
    for (kind, new_block) in steps {
        if *new_block {
            flush(&mut st, &mut block, height, &mut receipts);
            height += 1;
        }
        let (who, op) = touch(f, *kind);
        let n =
            nonces.entry(who.public()).or_insert_with(|| next_nonce(&st, &who.public()).unwrap());
        block.push(TransactionBody::new(CHAIN, *n, op).sign(&who).encode());
        *n += 1;
    }
    flush(&mut st, &mut block, height, &mut receipts);
    (receipts, st)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_grant_is_consumed_at_most_once(steps in proptest::collection::vec((any::<u8>(), any::<bool>()), 1..14)) {
        let f = fixture();
        let (receipts, st) = run(&f, &steps);
        let id = f.grant.grant.id.to_string();
        let of = |kind: &str| receipts.iter().flat_map(|r| r.events_of(kind)).filter(|e| e.get("grant") == Some(id.as_str())).count();
        let consumed = of("grant.consumed");
        prop_assert!(consumed <= 1, "consumed {consumed} times");
        // Issued → Consumed | Revoked | Expired happens at most once in total.
        prop_assert!(consumed + of("grant.revoked") + of("grant.expired") <= 1);
        let state = st.get(&keys::grant(&f.grant.grant.id)).and_then(|v| render(&keys::grant(&f.grant.grant.id), &v));
        let is_consumed = state.as_ref().is_some_and(|s| s["state"] == "consumed");
        prop_assert_eq!(is_consumed, consumed == 1);
        prop_assert_eq!(st.get(&keys::usage(&f.grant.grant.id)).is_some(), consumed == 1);
        // Every receipt is accounted for: one per transaction, in order.
        prop_assert_eq!(receipts.len(), steps.len());
    }

    #[test]
    fn execution_is_deterministic(steps in proptest::collection::vec((any::<u8>(), any::<bool>()), 1..10)) {
        let f = fixture();
        let (r1, s1) = run(&f, &steps);
        let (r2, s2) = run(&f, &steps);
        prop_assert_eq!(&r1, &r2);
        prop_assert_eq!(s1.root(), s2.root());
        let enc = |rs: &[Receipt]| rs.iter().map(Receipt::encode).collect::<Vec<_>>();
        prop_assert_eq!(enc(&r1), enc(&r2));
    }
}

/// A mixed block executed twice on the same starting state and on two freshly built states
/// gives identical receipts and identical state.
#[test]
fn same_block_same_result_on_fresh_states() {
    let build = || {
        let f = fixture();
        let mut txs = Vec::new();
        let mut push = |who: &Keypair, n: u64, op| {
            txs.push(TransactionBody::new(CHAIN, n, op).sign(who).encode());
        };
        let cn = f.world.nonce(&f.consumer.public());
        let on = f.world.nonce(&f.other.public());
        push(
            &f.consumer,
            cn,
            Operation::UseGrant {
                grant: GrantRef::Inline(Box::new(f.grant.clone())),
                product: f.product,
                purpose: "check".into(),
                request_hash: Hash::ZERO,
            },
        );
        push(
            &f.consumer,
            cn + 1,
            Operation::UseGrant {
                grant: GrantRef::Id(f.grant.grant.id),
                product: f.product,
                purpose: "check".into(),
                request_hash: Hash::ZERO,
            },
        );
        push(
            &f.other,
            on,
            Operation::PostDemand {
                title: "t".into(),
                domain: "d".into(),
                budget: 3,
                description_hash: Hash::ZERO,
                deadline_ms: None,
            },
        );
        push(
            &f.other,
            on + 1,
            Operation::PlaceOrder {
                product: f.product,
                grant: None,
                purpose: String::new(),
                demand: None,
            },
        );
        push(&f.other, on + 5, Operation::CloseDemand { demand: DemandId(Hash::ZERO) });
        txs.push(vec![1, 2, 3]);
        (f, txs)
    };
    let (f1, txs) = build();
    let (f2, txs2) = build();
    assert_eq!(txs, txs2);
    let ctx = BlockContext { chain_id: CHAIN.into(), height: f1.world.height + 1, time_ms: 5 };
    let (mut a, mut b, mut c) = (f1.world.st.clone(), f2.world.st.clone(), f1.world.st.clone());
    let ra = execute_block(&mut a, &ctx, &txs);
    let rb = execute_block(&mut b, &ctx, &txs);
    let rc = execute_block(&mut c, &ctx, &txs);
    assert_eq!(ra, rb);
    assert_eq!(ra, rc);
    assert_eq!(a.root(), b.root());
    assert_eq!(a.root(), c.root());
    let codes: Vec<Code> = ra.iter().map(|r| r.code).collect();
    assert_eq!(
        codes,
        [Code::Ok, Code::Failed, Code::Ok, Code::Denied, Code::Invalid, Code::Undecodable]
    );
}
