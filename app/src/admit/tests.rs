//! Admission tests: each signature verified once, bad ones never cached, the cache bounded,
//! opaque payloads, and the same verdicts as `dpx-contracts`. The transaction builders are
//! shared with the other stages' tests.

use dpx_contracts::{Operation, Role, TransactionBody};
use dpx_crypto::{Domain, Keypair};
use proptest::prelude::*;

use super::*;
use crate::validate::{check_block_txs, first_bad_tx};

fn first_bad(c: &TxChecker, txs: &[Vec<u8>]) -> Option<(usize, String)> {
    first_bad_tx(c, txs, dpx_ledger::TxHashes::of(txs).digests())
}

fn check_txs(c: &TxChecker, txs: &[Vec<u8>]) -> Result<(), String> {
    check_block_txs(c, txs, dpx_ledger::TxHashes::of(txs).digests())
}

pub(crate) const CHAIN: &str = "dpx-test";

pub(crate) fn signed(seed: u8, nonce: u64) -> Vec<u8> {
    let k = Keypair::from_seed([seed; 32]);
    let op = Operation::Admit { key: k.public(), name: "x".into(), roles: vec![Role::Consumer] };
    TransactionBody::new(CHAIN, nonce, op).sign(&k).encode()
}

/// A consumer's use of an inline grant; with `forge_grant` the subject's signature is bad
/// (the transaction's own signature is good).
fn grant_use(seed: u8, forge_grant: bool) -> Vec<u8> {
    use dpx_contracts::{Grant, GrantRef, ProductId, SubjectId};
    let (subject, consumer) = (Keypair::from_seed([seed; 32]), Keypair::from_seed([200; 32]));
    let product = ProductId(Hash::digest(b"product"));
    let sid = SubjectId(Hash::digest(&[seed]));
    let grant = Grant {
        serial: Hash::digest(&[seed]),
        subject: sid,
        key: subject.public(),
        epoch: 0,
        consumer: consumer.public(),
        product,
        purpose: "hiring-check".into(),
        expires_at_ms: 100,
    };
    let mut sg = grant.sign(&subject, CHAIN);
    if forge_grant {
        sg.signature = consumer.sign(Domain::GRANT, CHAIN, &sg.grant.signing_bytes());
    }
    let op = Operation::UseGrant {
        grant: GrantRef::Inline(Box::new(sg)),
        subject: sid,
        product,
        purpose: "hiring-check".into(),
        request_hash: Hash::ZERO,
    };
    TransactionBody::new(CHAIN, u64::from(seed), op).sign(&consumer).encode()
}

/// The same transaction with its signature's last byte flipped.
pub(crate) fn forged(seed: u8, nonce: u64) -> Vec<u8> {
    let mut tx = contracts::SignedTransaction::decode(&signed(seed, nonce)).unwrap();
    let mut sig = tx.signature.to_bytes();
    sig[0] ^= 1;
    tx.signature = dpx_crypto::Signature::from_slice(&sig).unwrap();
    tx.encode()
}

#[test]
fn each_signature_is_verified_once() {
    let c = TxChecker::new(CHAIN, false, 100);
    let txs = vec![signed(1, 0), signed(2, 0), signed(3, 0)];
    assert!(c.check_batch(txs.clone()).iter().all(Result::is_ok));
    assert_eq!(c.verifications(), 3);
    // Validating the block, then executing it: no further verification.
    assert!(check_txs(&c, &txs).is_ok());
    let mut with_new = txs.clone();
    with_new.insert(1, forged(9, 0));
    assert_eq!(first_bad(&c, &with_new).unwrap().0, 1, "an unseen bad one is found");
    assert_eq!(c.verifications(), 4);
    assert!(c.stateless(&txs).iter().all(Result::is_ok));
    assert_eq!(c.verifications(), 4);
    // A new transaction alongside cached ones: only it is verified.
    let mut more = txs.clone();
    more.push(signed(4, 0));
    assert!(c.stateless(&more).iter().all(Result::is_ok));
    assert_eq!(c.verifications(), 5);
}

#[test]
fn a_bad_signature_is_never_cached() {
    let c = TxChecker::new(CHAIN, false, 100);
    let good = signed(1, 0);
    assert!(c.check_batch(vec![good]).pop().unwrap().is_ok());
    let bad = forged(1, 0);
    for _ in 0..2 {
        let r = c.stateless(std::slice::from_ref(&bad)).pop().unwrap();
        assert_eq!(r.unwrap_err(), TxError::BadSignature);
    }
    assert_eq!(c.verifications(), 3, "the forgery is checked every time");
    assert!(check_txs(&c, &[bad]).unwrap_err().contains("transaction 0"));
}

#[test]
fn the_cache_is_bounded() {
    let c = TxChecker::new(CHAIN, false, 2);
    let txs: Vec<_> = (1..=3).map(|i| signed(i, 0)).collect();
    c.stateless(&txs);
    assert_eq!(c.verified.lock().map.len(), 2);
    c.stateless(&txs[..1]);
    assert_eq!(c.verifications(), 4, "the oldest entry was forgotten and re-verified");
}

#[test]
fn opaque_payloads_are_pooled_in_arrival_order() {
    let c = TxChecker::new(CHAIN, true, 0);
    let r = c.check_batch(vec![vec![9; 512], Vec::new(), vec![8; 512], signed(1, 0)]);
    assert!(r[1].as_ref().unwrap_err().to_string().contains("1..="));
    let nonces: Vec<u64> = r.iter().flatten().map(|t| t.nonce).collect();
    assert_eq!(nonces, vec![0, 1, 2], "any bytes, even a signed transaction, are opaque");
    assert!(r.iter().flatten().all(|t| t.tx.is_none()));
    assert_eq!(c.verifications(), 0);
}

#[test]
fn grant_signatures_are_batched_and_remembered_too() {
    let c = TxChecker::new(CHAIN, false, 100);
    let txs = vec![grant_use(1, false), grant_use(2, true)];
    let r = c.stateless(&txs);
    assert_eq!(r[0].as_ref().unwrap().grant_signature, Some(true));
    assert_eq!(r[1].as_ref().unwrap().grant_signature, Some(false), "refused at execution");
    assert_eq!(c.verifications(), 4);
    assert_eq!(c.stateless(&txs), r);
    assert_eq!(c.verifications(), 4);
}

/// A grant use whose subject (the attacker here) signed with torsion component `t` in `R`.
fn grant_use_with_torsion_r(seed: u8, t: usize) -> Vec<u8> {
    let mut tx = contracts::SignedTransaction::decode(&grant_use(seed, false)).unwrap();
    let body = contracts::TransactionBody::decode(&tx.body).unwrap();
    let Operation::UseGrant {
        grant: contracts::GrantRef::Inline(mut sg),
        subject: sid,
        product,
        purpose,
        request_hash,
    } = body.op
    else {
        unreachable!("grant_use builds an inline use")
    };
    let subject = Keypair::from_seed([seed; 32]);
    let digest = sg.signing_digest(CHAIN);
    sg.signature = dpx_crypto::testing::sign_with_torsion_r(&subject, &digest, t, 0);
    let op = Operation::UseGrant {
        grant: contracts::GrantRef::Inline(sg),
        subject: sid,
        product,
        purpose,
        request_hash,
    };
    tx = TransactionBody::new(CHAIN, body.nonce, op).sign(&Keypair::from_seed([200; 32]));
    tx.encode()
}

/// Two nodes that meet the same crafted grant signature in different company (an RPC batch
/// on one, a relayed batch or a proposal on the other) give it the same verdict, which is
/// what execution then carries into the receipt. With a cofactorless batch equation the
/// verdict depended on the company (a chain split).
#[test]
fn crafted_grant_signatures_get_one_verdict_whatever_the_batch() {
    for t in 1..8 {
        for seed in 1..=12u8 {
            let crafted = grant_use_with_torsion_r(seed, t);
            let company = vec![grant_use(seed + 100, false), signed(seed, 0)];
            let alone = TxChecker::new(CHAIN, false, 100);
            let batched = TxChecker::new(CHAIN, false, 100);
            let proposal = TxChecker::new(CHAIN, false, 100);
            let a = alone.check_batch(vec![crafted.clone()]);
            let mut in_batch = company.clone();
            in_batch.insert(1, crafted.clone());
            let b = batched.check_batch(in_batch);
            assert!(a[0].is_ok() && b[1].is_ok(), "the transaction's own signature is good");
            let mut block = company.clone();
            block.push(crafted.clone());
            let verdicts: Vec<_> = [&alone, &batched, &proposal]
                .iter()
                .map(|c| c.stateless(&block).pop().unwrap().unwrap().grant_signature)
                .collect();
            assert_eq!(verdicts, vec![Some(false); 3], "torsion {t}, seed {seed}");
        }
    }
}

proptest! {
    /// Cached, batched checking gives exactly `contracts::check_stateless`'s answers, on
    /// first sight and again from the cache.
    #[test]
    fn same_verdicts_as_the_contracts(kinds in proptest::collection::vec(0u8..5, 1..12)) {
        let c = TxChecker::new(CHAIN, false, 1000);
        let txs: Vec<Vec<u8>> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| match k {
                0 => signed(i as u8 + 1, 0),
                1 => forged(i as u8 + 1, 0),
                2 => grant_use(i as u8 + 1, false),
                3 => grant_use(i as u8 + 1, true),
                _ => vec![i as u8; 40],
            })
            .collect();
        let expected: Vec<_> =
            txs.iter().map(|t| contracts::check_stateless(t, CHAIN)).collect();
        prop_assert_eq!(&c.stateless(&txs), &expected);
        prop_assert_eq!(&c.stateless(&txs), &expected);
    }
}
