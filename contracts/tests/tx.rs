//! The transaction envelope: stateless and stateful checks.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::{Hash, SignedDigest, verify_all};

fn demand_op() -> Operation {
    Operation::PostDemand {
        title: "t".into(),
        domain: "d".into(),
        budget: 1,
        description_hash: Hash::ZERO,
        deadline_ms: None,
    }
}

#[test]
fn stateless_checks_refuse_bad_envelopes() {
    let w = World::new();
    let a = w.agency().clone();
    let good = w.sign(&a, demand_op());
    let tx = check_stateless(&good, CHAIN).unwrap();
    assert_eq!(tx.hash, Hash::digest(&good));
    assert_eq!(tx.signer, a.public());

    assert!(matches!(check_stateless(&good, "other-chain"), Err(TxError::WrongChain { .. })));
    assert!(matches!(
        check_stateless(&vec![0u8; MAX_TX_BYTES + 1], CHAIN),
        Err(TxError::TooLarge { .. })
    ));
    assert!(matches!(check_stateless(b"\xff\xff\xff", CHAIN), Err(TxError::Decode(_))));
    // Signed by one key, claimed by another.
    let mut forged = SignedTransaction::decode(&good).unwrap();
    forged.signer = kp(77).public();
    assert!(matches!(check_stateless(&forged.encode(), CHAIN), Err(TxError::BadSignature)));
    // A body changed after signing.
    let mut changed = SignedTransaction::decode(&good).unwrap();
    let mut body = TransactionBody::decode(&changed.body).unwrap();
    body.nonce += 1;
    changed.body = body.encode();
    assert!(matches!(check_stateless(&changed.encode(), CHAIN), Err(TxError::BadSignature)));
    // Extra bytes give a second encoding of the same transaction: refused.
    let mut padded = good.clone();
    padded.extend_from_slice(&[0x78, 0x00]);
    assert!(matches!(
        check_stateless(&padded, CHAIN),
        Err(TxError::Decode(DecodeError::NotCanonical))
    ));
}

#[test]
fn many_signatures_verification_path() {
    let w = World::new();
    let txs: Vec<Vec<u8>> = (0..4u8)
        .map(|i| TransactionBody::new(CHAIN, 0, demand_op()).sign(&kp(i + 1)).encode())
        .collect();
    let unverified: Vec<UnverifiedTx> =
        txs.iter().map(|b| decode_unverified(b, CHAIN).unwrap()).collect();
    let items: Vec<SignedDigest<'_>> = unverified.iter().map(UnverifiedTx::signed_digest).collect();
    assert!(verify_all(&items).is_ok());
    let verified: Vec<VerifiedTx> =
        unverified.into_iter().map(|u| u.assume_verified(None)).collect();
    assert_eq!(verified[2], check_stateless(&txs[2], CHAIN).unwrap());
    assert_eq!(verified[0].body.op, demand_op());
    drop(w);
}

#[test]
fn stateful_checks_nonce_expiry_signer() {
    let mut w = World::new();
    let a = w.agency().clone();
    let n = w.nonce(&a.public());
    let at = |nonce, expiry: Option<u64>| {
        let mut body = TransactionBody::new(CHAIN, nonce, demand_op());
        body.expiry_height = expiry;
        check_stateless(&body.sign(&a).encode(), CHAIN).unwrap()
    };
    assert!(check_stateful(&w.st, &at(n, None), 1, 0).is_ok());
    assert_eq!(
        check_stateful(&w.st, &at(n + 1, None), 1, 0),
        Err(TxError::NonceTooHigh { expected: n, got: n + 1 })
    );
    assert!(n > 0);
    assert_eq!(
        check_stateful(&w.st, &at(n - 1, None), 1, 0),
        Err(TxError::NonceTooLow { expected: n, got: n - 1 })
    );
    assert!(check_stateful(&w.st, &at(n, Some(5)), 5, 0).is_ok());
    assert_eq!(
        check_stateful(&w.st, &at(n, Some(5)), 6, 0),
        Err(TxError::Expired { expiry_height: 5, height: 6 })
    );
    // Execution refuses the same way and changes nothing.
    let before = w.st.clone();
    let ctx = BlockContext { chain_id: CHAIN.into(), height: 6, time_ms: 0 };
    let r = execute(&mut w.st, &ctx, &at(n, Some(5)));
    assert_eq!(r.code, Code::Invalid);
    assert!(r.reason.contains("expired"));
    assert_eq!(w.st, before);
    // A replay of an executed transaction is refused.
    let tx = at(n, None);
    assert!(execute(&mut w.st, &ctx, &tx).is_ok());
    let again = execute(&mut w.st, &ctx, &tx);
    assert_eq!(again.code, Code::Invalid);
    assert!(again.reason.contains("already used"));
    // A transaction verified for another chain is refused by execution too.
    let other = BlockContext { chain_id: "other".into(), height: 6, time_ms: 0 };
    assert_eq!(execute(&mut w.st, &other, &at(n + 1, None)).code, Code::Invalid);
}

#[test]
fn failed_transactions_move_only_the_nonce() {
    let mut w = World::new();
    let p = kp(1);
    w.admit(&p, &[Role::Consumer]);
    let n = w.nonce(&p.public());
    // `fail` itself checks that nothing but the nonce changed.
    let r = w.fail(
        &p,
        Operation::ListProduct { spec: spec(1, ProductConditions::default()) },
        Code::Denied,
        "no policy permits",
    );
    assert_eq!(w.nonce(&p.public()), n + 1);
    assert!(r.events_of("tx.failed").next().is_some());
    assert!(r.events_of("policy.denied").next().is_some());
}

#[test]
fn genesis_is_validated_and_runs_once() {
    let a = kp(1);
    let mk =
        |agencies: Vec<GenesisAgency>, validators: Vec<Validator>, policies: Option<String>| {
            GenesisApp {
                agencies,
                validators,
                policies,
                params: Params::default(),
                currency: Currency::default(),
                platform_fee_basis_points: 0,
            }
        };
    let ag = || vec![GenesisAgency { name: "a".into(), key: a.public() }];
    let vs = || vec![Validator { key: a.public(), power: 1, name: "v".into() }];
    let mut st = MemState::new();
    assert!(init_genesis(&mut st, CHAIN, &mk(vec![], vs(), None)).is_err());
    assert!(init_genesis(&mut st, CHAIN, &mk(ag(), vec![], None)).is_err());
    assert!(
        init_genesis(
            &mut st,
            CHAIN,
            &mk(ag(), vec![Validator { key: a.public(), power: 0, name: "v".into() }], None)
        )
        .is_err()
    );
    let mut dup = ag();
    dup.extend(ag());
    assert!(init_genesis(&mut st, CHAIN, &mk(dup, vs(), None)).is_err());
    assert!(init_genesis(&mut st, CHAIN, &mk(ag(), vs(), Some("nonsense".into()))).is_err());
    assert!(init_genesis(&mut st, "", &mk(ag(), vs(), None)).is_err());
    assert!(st.map.is_empty(), "a refused genesis writes nothing");
    init_genesis(&mut st, CHAIN, &mk(ag(), vs(), None)).unwrap();
    assert!(init_genesis(&mut st, CHAIN, &mk(ag(), vs(), None)).is_err());
    assert_eq!(current_validators(&st), vec![(a.public(), 1)]);
    assert_eq!(agency_count(&st), 1);
    // The JSON form the genesis file uses.
    let json = serde_json::to_string(&mk(ag(), vs(), None)).unwrap();
    let back: GenesisApp = serde_json::from_str(&json).unwrap();
    assert_eq!(back, mk(ag(), vs(), None));
    assert!(
        serde_json::from_str::<GenesisApp>(&json.replace("\"agencies\"", "\"agencys\"")).is_err()
    );
}

#[test]
fn every_stored_value_renders_as_json() {
    let mut w = World::new();
    let p = kp(1);
    w.admit(&p, &[Role::Provider]);
    w.rate(&p.public(), 1);
    w.list(&p, 1, ProductConditions::default());
    for (k, v) in &w.st.map {
        let json = render(k, v);
        assert!(json.is_some(), "key {:?} does not render", String::from_utf8_lossy(k));
    }
    assert!(render(b"nope/", b"").is_none());
    // Operations can be written as JSON by a CLI.
    let op: Operation = serde_json::from_str(&format!(
        r#"{{"type":"set_rating","participant":"{}","rating":3}}"#,
        p.public()
    ))
    .unwrap();
    assert_eq!(op, Operation::SetRating { participant: p.public(), rating: 3 });
}

/// The body is what the signer signs, so a signer could pad it (unknown fields, explicit
/// defaults, a second copy) and still sign it: one transaction, up to 64 KiB, for free. Only
/// the canonical body encoding is accepted.
#[test]
fn body_decoding_is_canonical_only() {
    let w = World::new();
    let a = w.agency().clone();
    let body = TransactionBody::new(CHAIN, w.nonce(&a.public()), demand_op()).encode();
    assert!(TransactionBody::decode(&body).is_ok());
    let variants: Vec<Vec<u8>> = vec![
        [body.as_slice(), &[0x78, 0x00]].concat(),
        [body.as_slice(), &[0xfa, 0x07, 0x03, 1, 2, 3]].concat(),
        [body.as_slice(), body.as_slice()].concat(),
        // A nonce field written twice (the last one counts).
        [&[0x10, 0x00][..], body.as_slice()].concat(),
    ];
    for padded in variants {
        assert!(
            matches!(TransactionBody::decode(&padded), Err(DecodeError::NotCanonical)),
            "body {padded:?} decoded"
        );
        let signature = a.sign(dpx_crypto::Domain::TRANSACTION, CHAIN, &padded);
        let tx = SignedTransaction { body: padded, signer: a.public(), signature };
        assert!(
            matches!(
                check_stateless(&tx.encode(), CHAIN),
                Err(TxError::Decode(DecodeError::NotCanonical))
            ),
            "a padded body passed the stateless checks"
        );
    }
}
