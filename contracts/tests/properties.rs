//! Invariants: a grant is consumed at most once whatever the transactions and their order;
//! execution is deterministic.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};
use proptest::prelude::*;

/// A marketplace with a grade-3 product, two consumers, an enrolled data subject (whose key was
/// rotated once: `old_key` is rotated out), another subject, a second registrar, and the
/// subject's grant for `consumer`.
struct Fixture {
    world: World,
    consumer: Keypair,
    other: Keypair,
    subject: Keypair,
    sid: SubjectId,
    old_key: Keypair,
    other_subject: Keypair,
    other_registrar: Keypair,
    product: ProductId,
    grant: SignedGrant,
}

/// The grant's last valid block time.
const EXPIRES_AT_MS: u64 = T0_MS + 30_000;

fn fixture() -> Fixture {
    let mut world = World::new();
    let provider = kp(1);
    let consumer = kp(2);
    let other = kp(3);
    world.admit(&provider, &[Role::Provider]);
    world.admit(&consumer, &[Role::Consumer]);
    world.admit(&other, &[Role::Consumer]);
    world.rate(&provider.public(), 3);
    let product = world.list(&provider, 3, ProductConditions::default());
    let old_key = kp(4);
    let subject = kp(5);
    let sid = world.enrol(&old_key, "victim");
    world.ok(
        &old_key,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: subject.public(),
            new_key_signature: subject_key_proof(&subject, &sid),
        },
    );
    let other_subject = kp(6);
    world.enrol(&other_subject, "other");
    let other_registrar = kp(7);
    world.admit_registrar(&other_registrar);
    let grant = grant(&subject, sid, 1, &consumer.public(), product, "audit", EXPIRES_AT_MS);
    // A compute node, for jobs that consume the grant as use_grant does.
    world.govern(ProposalAction::AdmitComputeNode { key: kp(8).public(), name: "node".into() });
    Fixture {
        world,
        consumer,
        other,
        subject,
        sid,
        old_key,
        other_subject,
        other_registrar,
        product,
        grant,
    }
}

/// Every kind of transaction that touches the grant, by everyone who might send it.
fn touch(f: &Fixture, kind: u8) -> (Keypair, Operation) {
    let id = f.grant.grant.id();
    let inline = GrantRef::Inline(Box::new(f.grant.clone()));
    let use_op = |grant| Operation::UseGrant {
        grant,
        subject: f.sid,
        product: f.product,
        purpose: "audit".into(),
        request_hash: Hash::digest(&[kind]),
    };
    let job = |grant| Operation::RequestJob {
        products: vec![f.product],
        authorizations: vec![JobAuthorization::Grant(grant)],
        compute_node: kp(8).public(),
        purpose: "audit".into(),
        code_hash: Hash::digest(&[kind]),
    };
    match kind % 11 {
        0 => (f.consumer.clone(), use_op(inline)),
        1 => (f.consumer.clone(), use_op(GrantRef::Id(id))),
        2 => (f.other.clone(), use_op(inline)),
        3 => (f.subject.clone(), Operation::RegisterGrant { grant: Box::new(f.grant.clone()) }),
        4 => (f.subject.clone(), Operation::RevokeGrant { serial: f.grant.grant.serial }),
        5 => (f.other.clone(), Operation::ExpireGrant { grant: id }),
        6 => (
            f.consumer.clone(),
            Operation::PlaceOrder {
                product: f.product,
                grant: Some(inline),
                purpose: "audit".into(),
                demand: None,
            },
        ),
        7 => (
            f.consumer.clone(),
            Operation::PlaceOrder {
                product: f.product,
                grant: Some(GrantRef::Id(id)),
                purpose: "audit".into(),
                demand: None,
            },
        ),
        9 => (f.consumer.clone(), job(GrantRef::Inline(Box::new(f.grant.clone())))),
        10 => (f.consumer.clone(), job(GrantRef::Id(id))),
        _ => (f.other_subject.clone(), Operation::RevokeGrant { serial: f.grant.grant.serial }),
    }
}

/// What every key but the subject's current one might try against the subject's grant:
/// other subjects, participants (the consumer included), the rotated-out key, registrars, a
/// stranger. None of it is the subject's act, so none of it may consume, register or revoke
/// the grant. (The consumer using the genuine grant is left out: that is the use the subject
/// authorized.)
fn attack(f: &Fixture, kind: u8) -> (Keypair, Operation) {
    let g = &f.grant.grant;
    let id = g.id();
    let serial = g.serial;
    // The same grant re-signed by another key (same subject id and serial: the same id).
    let forged = |key: &Keypair| Grant { key: key.public(), ..g.clone() }.sign(key, CHAIN);
    let use_forged = |key: &Keypair| Operation::UseGrant {
        grant: GrantRef::Inline(Box::new(forged(key))),
        subject: f.sid,
        product: f.product,
        purpose: "audit".into(),
        request_hash: Hash::digest(&[kind]),
    };
    let stranger = kp(200);
    let rotate_to = |new: &Keypair| Operation::RotateSubjectKey {
        subject_id: f.sid,
        new_key: new.public(),
        new_key_signature: subject_key_proof(new, &f.sid),
    };
    match kind % 17 {
        0 => {
            (f.other_subject.clone(), Operation::RegisterGrant { grant: Box::new(f.grant.clone()) })
        }
        1 => (f.other_subject.clone(), Operation::RevokeGrant { serial }),
        2 => (f.other_subject.clone(), Operation::RevokeAllGrants),
        3 => (f.other_subject.clone(), rotate_to(&f.other_subject)),
        4 => (
            f.other_subject.clone(),
            Operation::RegisterGrant { grant: Box::new(forged(&f.other_subject)) },
        ),
        5 => (f.old_key.clone(), Operation::RevokeGrant { serial }),
        6 => (f.old_key.clone(), Operation::RevokeAllGrants),
        7 => (f.old_key.clone(), Operation::RegisterGrant { grant: Box::new(forged(&f.old_key)) }),
        8 => (f.consumer.clone(), use_forged(&f.old_key)),
        9 => (f.consumer.clone(), use_forged(&f.consumer)),
        10 => (f.consumer.clone(), Operation::RevokeGrant { serial }),
        11 => (
            f.other.clone(),
            Operation::UseGrant {
                grant: GrantRef::Inline(Box::new(f.grant.clone())),
                subject: f.sid,
                product: f.product,
                purpose: "audit".into(),
                request_hash: Hash::ZERO,
            },
        ),
        12 => (f.other.clone(), Operation::ExpireGrant { grant: id }),
        15 => (
            f.other.clone(),
            Operation::RequestJob {
                products: vec![f.product],
                authorizations: vec![JobAuthorization::Grant(GrantRef::Inline(Box::new(
                    f.grant.clone(),
                )))],
                compute_node: kp(8).public(),
                purpose: "audit".into(),
                code_hash: Hash::ZERO,
            },
        ),
        13 => (f.other_registrar.clone(), rotate_to(&kp(201))),
        14 => (
            f.world.registrar.clone(),
            Operation::EnrolSubject { subject_id: f.sid, subject_key: kp(202).public() },
        ),
        _ => (stranger.clone(), Operation::RevokeGrant { serial }),
    }
}

/// Execute the steps block by block (a step is a transaction kind and whether a new block
/// starts before it); return receipts and the final state.
fn run(f: &Fixture, steps: &[(u8, bool)]) -> (Vec<Receipt>, MemState) {
    // 3 s per block: long runs pass the grant's expiry.
    run_with(f, steps, touch, 3000)
}

fn run_with(
    f: &Fixture,
    steps: &[(u8, bool)],
    pick: fn(&Fixture, u8) -> (Keypair, Operation),
    ms_per_block: u64,
) -> (Vec<Receipt>, MemState) {
    let mut st = f.world.st.clone();
    let mut height = f.world.height;
    let mut block: Vec<Vec<u8>> = Vec::new();
    let mut receipts = Vec::new();
    let mut nonces = std::collections::BTreeMap::new();
    let flush = |st: &mut MemState,
                 block: &mut Vec<Vec<u8>>,
                 height: u64,
                 receipts: &mut Vec<Receipt>| {
        let ctx =
            BlockContext { chain_id: CHAIN.into(), height, time_ms: T0_MS + height * ms_per_block };
        receipts.extend(execute_block(st, &ctx, block));
        block.clear();
    };
    for (kind, new_block) in steps {
        if *new_block {
            flush(&mut st, &mut block, height, &mut receipts);
            height += 1;
        }
        let (who, op) = pick(f, *kind);
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
        let id = f.grant.grant.id().to_string();
        let of = |kind: &str| receipts.iter().flat_map(|r| r.events_of(kind)).filter(|e| e.get("grant") == Some(id.as_str())).count();
        let consumed = of("grant.consumed");
        prop_assert!(consumed <= 1, "consumed {consumed} times");
        // Issued → Consumed | Revoked | Expired happens at most once in total.
        prop_assert!(consumed + of("grant.revoked") + of("grant.expired") <= 1);
        let gid = f.grant.grant.id();
        let state = st.get(&keys::grant(&gid)).and_then(|v| render(&keys::grant(&gid), &v));
        let is_consumed = state.as_ref().is_some_and(|s| s["state"] == "consumed");
        prop_assert_eq!(is_consumed, consumed == 1);
        prop_assert_eq!(st.get(&keys::usage(&gid)).is_some(), consumed == 1);
        // Every receipt is accounted for: one per transaction, in order.
        prop_assert_eq!(receipts.len(), steps.len());
    }

    /// No sequence of transactions by keys other than the subject's current key consumes,
    /// registers or revokes the subject's grant, registered beforehand or not; the subject's
    /// key and epoch are untouched, and the grant still works for its consumer afterwards.
    #[test]
    fn only_the_subject_moves_its_grant(steps in proptest::collection::vec((any::<u8>(), any::<bool>()), 1..24), registered in any::<bool>()) {
        let mut f = fixture();
        let gid = f.grant.grant.id();
        if registered {
            let s = f.subject.clone();
            f.world.ok(&s, Operation::RegisterGrant { grant: Box::new(f.grant.clone()) });
        }
        let before = f.world.st.get(&keys::grant(&gid));
        let (receipts, st) = run_with(&f, &steps, attack, 1000);
        let id = gid.to_string();
        for r in &receipts {
            for e in &r.events {
                let moved = matches!(e.kind.as_str(), "grant.consumed" | "grant.issued" | "grant.revoked" | "grant.expired");
                prop_assert!(!(moved && e.get("grant") == Some(id.as_str())), "{:?}", e);
            }
        }
        prop_assert_eq!(st.get(&keys::grant(&gid)), before, "the grant's record moved");
        prop_assert_eq!(st.get(&keys::usage(&gid)), None);
        let subject = load_subject(&st, &f.sid).unwrap().unwrap();
        prop_assert_eq!((subject.key, subject.grant_epoch), (f.subject.public(), 0));
        // The subject's grant still works, inline or by id.
        let mut w = World { st, ..f.world };
        w.height += steps.len() as u64 + 1;
        w.at_time(EXPIRES_AT_MS);
        let c = f.consumer.clone();
        let op = if registered { use_by_id(&f.grant, b"after") } else { use_inline(&f.grant, b"after") };
        w.ok(&c, op);
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
        push(&f.consumer, cn, use_inline(&f.grant, b""));
        push(&f.consumer, cn + 1, use_by_id(&f.grant, b""));
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
    let ctx = BlockContext {
        chain_id: CHAIN.into(),
        height: f1.world.height + 1,
        time_ms: EXPIRES_AT_MS,
    };
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
