//! Participant registry scenarios: admission, key rotation, rating, lists, suspension.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::Hash;

#[test]
fn admission_is_by_agencies_and_operators_only() {
    let mut w = World::new();
    let acme = kp(1);
    w.admit(&acme, &[Role::Provider, Role::Consumer, Role::Provider]);
    let p = w.participant(&acme.public());
    assert_eq!(p.roles, [Role::Provider, Role::Consumer], "sorted, deduplicated");
    assert_eq!((p.rating, p.list_status, p.suspended), (0, ListStatus::Normal, false));
    assert_eq!(p.admitted_by, w.agency().public());
    // The operator may admit too; a provider may not.
    let op = w.operator.clone();
    w.ok(
        &op,
        Operation::Admit { key: kp(2).public(), name: "b".into(), roles: vec![Role::Consumer] },
    );
    let r = w.fail(
        &acme,
        Operation::Admit { key: kp(3).public(), name: "c".into(), roles: vec![Role::Consumer] },
        Code::Denied,
        "no policy permits admit",
    );
    assert!(r.decision.unwrap().determining.is_empty());
    // Keys are unique; agencies join only through governance.
    let a = w.agency().clone();
    w.fail(
        &a,
        Operation::Admit { key: acme.public(), name: "again".into(), roles: vec![Role::Consumer] },
        Code::Failed,
        "already in use",
    );
    w.fail(
        &a,
        Operation::Admit { key: kp(4).public(), name: "x".into(), roles: vec![Role::Agency] },
        Code::Failed,
        "governance",
    );
}

#[test]
fn unknown_keys_can_only_act_on_grants() {
    let mut w = World::new();
    let stranger = kp(9);
    let bytes = w.sign(
        &stranger,
        Operation::PostDemand {
            title: "t".into(),
            domain: "d".into(),
            budget: 1,
            description_hash: Hash::ZERO,
            deadline_ms: None,
        },
    );
    let tx = check_stateless(&bytes, CHAIN).unwrap();
    assert!(matches!(check_stateful(&w.st, &tx, 1, 0), Err(TxError::UnknownSigner { .. })));
    let before = w.st.clone();
    let ctx = w.ctx();
    let r = execute(&mut w.st, &ctx, &tx);
    assert_eq!(r.code, Code::Invalid);
    assert_eq!(w.st, before, "an invalid transaction changes nothing, not even the nonce");
}

#[test]
fn key_rotation_moves_the_account_to_the_new_key() {
    let mut w = World::new();
    let old = kp(1);
    let new = kp(2);
    let newer = kp(3);
    w.admit(&old, &[Role::Provider]);
    let proof = new.sign(ROTATE_KEY_DOMAIN, CHAIN, &rotation_message(&old.public()));
    // A proof by another key is refused.
    let bad = newer.sign(ROTATE_KEY_DOMAIN, CHAIN, &rotation_message(&old.public()));
    w.fail(
        &old,
        Operation::RotateKey { new_key: new.public(), new_key_signature: bad },
        Code::Failed,
        "proof of possession",
    );
    let r = w.ok(&old, Operation::RotateKey { new_key: new.public(), new_key_signature: proof });
    assert_eq!(r.decision.unwrap().determining, ["own-key-rotation"]);
    assert_eq!(w.participant(&old.public()).current_key, new.public());
    // The old key can no longer sign; the new one acts for the same account.
    let bytes = w.sign(&old, Operation::Reinstate { participant: old.public() });
    let tx = check_stateless(&bytes, CHAIN).unwrap();
    assert!(matches!(check_stateful(&w.st, &tx, w.height, 0), Err(TxError::RotatedKey { .. })));
    assert_eq!(resolve_account(&w.st, &new.public()).unwrap().unwrap().account, old.public());
    w.rate(&old.public(), 1);
    let pid = ProductId::derive(CHAIN, &new.public(), 0);
    w.ok(&new, Operation::ListProduct { spec: spec(1, ProductConditions::default()) });
    let product: Product = w.get(&keys::product(&pid)).unwrap();
    assert_eq!(product.provider, old.public(), "objects stay with the account");
    // Rotate again: the intermediate key's binding goes away.
    let proof = newer.sign(ROTATE_KEY_DOMAIN, CHAIN, &rotation_message(&old.public()));
    w.ok(&new, Operation::RotateKey { new_key: newer.public(), new_key_signature: proof });
    assert!(resolve_account(&w.st, &new.public()).unwrap().is_none());
    assert_eq!(resolve_account(&w.st, &newer.public()).unwrap().unwrap().account, old.public());
    // A key already in use cannot be rotated to.
    let taken = w.operator.clone();
    let proof = taken.sign(ROTATE_KEY_DOMAIN, CHAIN, &rotation_message(&old.public()));
    w.fail(
        &newer,
        Operation::RotateKey { new_key: taken.public(), new_key_signature: proof },
        Code::Failed,
        "already in use",
    );
}

#[test]
fn ratings_are_set_by_rating_bodies() {
    let mut w = World::new();
    let p = kp(1);
    w.admit(&p, &[Role::Provider]);
    let r = w.run(&w.rater.clone(), Operation::SetRating { participant: p.public(), rating: 4 });
    assert!(r.is_ok());
    assert_eq!(r.decision.unwrap().determining, ["rating-bodies-rate"]);
    assert_eq!(w.participant(&p.public()).rating, 4);
    let reg = w.regulator.clone();
    w.fail(
        &reg,
        Operation::SetRating { participant: p.public(), rating: 5 },
        Code::Denied,
        "no policy permits rate",
    );
    w.fail(
        &p,
        Operation::SetRating { participant: p.public(), rating: 5 },
        Code::Denied,
        "no policy permits",
    );
    let rater = w.rater.clone();
    w.fail(
        &rater,
        Operation::SetRating { participant: kp(50).public(), rating: 1 },
        Code::Failed,
        "not found",
    );
}

#[test]
fn negative_listed_participant_can_do_nothing_until_reinstated() {
    let mut w = World::new();
    let p = kp(1);
    w.admit(&p, &[Role::Provider, Role::Consumer]);
    w.rate(&p.public(), 2);
    let reg = w.regulator.clone();
    let op = w.operator.clone();
    w.fail(
        &op,
        Operation::SetListStatus { participant: p.public(), status: ListStatus::NegativeListed },
        Code::Denied,
        "no policy permits set_list_status",
    );
    w.ok(
        &reg,
        Operation::SetListStatus { participant: p.public(), status: ListStatus::NegativeListed },
    );
    // Everything is denied, naming the policy.
    for op in [
        Operation::ListProduct { spec: spec(1, ProductConditions::default()) },
        Operation::PostDemand {
            title: "t".into(),
            domain: "d".into(),
            budget: 1,
            description_hash: Hash::ZERO,
            deadline_ms: None,
        },
        Operation::SetListStatus { participant: p.public(), status: ListStatus::Normal },
    ] {
        let r = w.fail(&p, op, Code::Denied, "negative-listed-denied");
        assert!(!r.decision.unwrap().allowed);
    }
    w.ok(&reg, Operation::SetListStatus { participant: p.public(), status: ListStatus::Normal });
    w.ok(&p, Operation::ListProduct { spec: spec(1, ProductConditions::default()) });
    w.ok(
        &reg,
        Operation::SetListStatus { participant: p.public(), status: ListStatus::Whitelisted },
    );
    assert_eq!(w.participant(&p.public()).list_status, ListStatus::Whitelisted);
}

#[test]
fn suspension_and_reinstatement() {
    let mut w = World::new();
    let p = kp(1);
    w.admit(&p, &[Role::Consumer]);
    let a = w.agency().clone();
    w.ok(&a, Operation::Suspend { participant: p.public(), reason: "licence lapsed".into() });
    assert!(w.participant(&p.public()).suspended);
    w.fail(
        &a,
        Operation::Suspend { participant: p.public(), reason: "again".into() },
        Code::Failed,
        "already suspended",
    );
    w.fail(
        &p,
        Operation::PostDemand {
            title: "t".into(),
            domain: "d".into(),
            budget: 1,
            description_hash: Hash::ZERO,
            deadline_ms: None,
        },
        Code::Denied,
        "suspended-denied",
    );
    // Cannot reinstate itself.
    w.fail(&p, Operation::Reinstate { participant: p.public() }, Code::Denied, "suspended-denied");
    let reg = w.regulator.clone();
    w.fail(
        &reg,
        Operation::Reinstate { participant: p.public() },
        Code::Denied,
        "no policy permits reinstate",
    );
    w.ok(&a, Operation::Reinstate { participant: p.public() });
    w.fail(&a, Operation::Reinstate { participant: p.public() }, Code::Failed, "not suspended");
    w.ok(
        &p,
        Operation::PostDemand {
            title: "t".into(),
            domain: "d".into(),
            budget: 1,
            description_hash: Hash::ZERO,
            deadline_ms: None,
        },
    );
}

#[test]
fn regulators_and_auditors_read_everything_and_change_nothing() {
    let mut w = World::new();
    let provider = kp(1);
    w.admit(&provider, &[Role::Provider]);
    w.rate(&provider.public(), 2);
    let product = w.list(&provider, 1, ProductConditions::default());
    for who in [w.regulator.clone(), w.auditor.clone()] {
        assert!(authorize_read(&w.st, &who.public()).unwrap().allowed);
        w.fail(
            &who,
            Operation::PlaceOrder { product, grant: None, purpose: String::new(), demand: None },
            Code::Denied,
            "supervisors-change-nothing",
        );
        w.fail(
            &who,
            Operation::PostDemand {
                title: "t".into(),
                domain: "d".into(),
                budget: 1,
                description_hash: Hash::ZERO,
                deadline_ms: None,
            },
            Code::Denied,
            "supervisors-change-nothing",
        );
    }
    let d = authorize_read(&w.st, &provider.public()).unwrap();
    assert!(!d.allowed);
    assert!(authorize_read(&w.st, &kp(77).public()).is_err());
}
