//! One use, one authorization: scenario tests for every grant path and refusal.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::Hash;

/// The honest-resume flow (诚信简历): an applicant signs a grant on a phone, the employer uses it
/// once, a second use is refused, and an auditor replaying the receipts sees both attempts.
#[test]
fn honest_resume_flow() {
    let mut w = World::new();
    let registry = kp(1); // the CV verification service (provider)
    let employer = kp(2);
    let applicant = kp(3); // a citizen: a key only, never admitted
    w.admit(&registry, &[Role::Provider]);
    w.admit(&employer, &[Role::Consumer]);
    w.rate(&registry.public(), 3);
    let product = w.list(
        &registry,
        3,
        ProductConditions { purposes: vec!["hiring".into()], ..Default::default() },
    );

    // Offline on the phone: sign, show as QR code.
    let qr = grant(&applicant, 1, &employer.public(), product, "hiring", 100).to_compact();
    assert!(qr.len() < 600, "fits a QR code: {} chars", qr.len());
    // The employer scans it and uses it once.
    let scanned = SignedGrant::from_compact(&qr).unwrap();
    let gid = scanned.grant.id;
    let request = Hash::digest(b"verify cv of applicant");
    let use_op = Operation::UseGrant {
        grant: GrantRef::Inline(Box::new(scanned)),
        product,
        purpose: "hiring".into(),
        request_hash: request,
    };
    let r = w.ok(&employer, use_op.clone());
    let d = r.decision.as_ref().unwrap();
    assert!(d.allowed && d.action == "use_grant" && d.policy_version == 1);
    assert_eq!(r.events_of("grant.issued").count(), 1);
    assert_eq!(r.events_of("grant.consumed").count(), 1);

    // The provider checks the usage receipt before serving the data.
    let usage: UsageReceipt = w.get(&keys::usage(&gid)).unwrap();
    assert_eq!(
        (usage.consumer, usage.product, usage.request_hash, usage.height),
        (employer.public(), product, request, w.height)
    );
    let rec: GrantRecord = w.get(&keys::grant(&gid)).unwrap();
    assert_eq!(rec.state, GrantState::Consumed);

    // A second use — in the next block, inline again or by id — is refused with the height.
    w.next_block();
    let again = w.fail(&employer, use_op, Code::Failed, "already consumed at height 1");
    assert_eq!(
        again.events_of("grant.refused").next().unwrap().get("grant"),
        Some(gid.to_string().as_str())
    );
    w.fail(
        &employer,
        Operation::UseGrant {
            grant: GrantRef::Id(gid),
            product,
            purpose: "hiring".into(),
            request_hash: request,
        },
        Code::Failed,
        "already consumed",
    );

    // The auditor's view from receipts alone: one consumption, two refused attempts.
    let consumed: Vec<_> =
        w.events("grant.consumed").filter(|e| e.get("grant") == Some(&gid.to_string())).collect();
    let refused: Vec<_> =
        w.events("grant.refused").filter(|e| e.get("grant") == Some(&gid.to_string())).collect();
    assert_eq!(consumed.len(), 1);
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|e| e.get("by") == Some(&employer.public().to_hex())
        && e.get("reason").unwrap().contains("already consumed")));
}

#[test]
fn register_then_use_by_id_and_refusals() {
    let mut w = World::new();
    let provider = kp(1);
    let consumer = kp(2);
    let other = kp(4);
    let subject = kp(3);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&consumer, &[Role::Consumer]);
    w.admit(&other, &[Role::Consumer]);
    w.rate(&provider.public(), 4);
    let product = w.list(&provider, 4, ProductConditions::default());
    let other_product = w.list(&provider, 1, ProductConditions::default());
    let g = grant(&subject, 7, &consumer.public(), product, "credit check", 50);
    let id = g.grant.id;

    // The subject (no participant) registers it.
    let r = w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g.clone()) });
    assert_eq!(r.events_of("grant.issued").count(), 1);
    assert!(r.decision.is_none(), "a subject's own act is not policy-guarded");
    // A second registration fails; the subject is no participant, so it is refused outright.
    w.fail(
        &subject,
        Operation::RegisterGrant { grant: Box::new(g.clone()) },
        Code::Invalid,
        "already registered",
    );

    let use_as = |product, purpose: &str| Operation::UseGrant {
        grant: GrantRef::Id(id),
        product,
        purpose: purpose.into(),
        request_hash: Hash::digest(b"q"),
    };
    w.fail(&other, use_as(product, "credit check"), Code::Failed, "names consumer");
    w.fail(&consumer, use_as(other_product, "credit check"), Code::Failed, "is for product");
    w.fail(&consumer, use_as(product, "marketing"), Code::Failed, "is for purpose");
    w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Id(GrantId(Hash::digest(b"nope"))),
            product,
            purpose: "x".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "unknown grant",
    );
    // A different grant reusing the id is a conflict, not a second grant.
    let forged = grant(&other, 7, &other.public(), product, "credit check", 50);
    w.fail(
        &other,
        Operation::UseGrant {
            grant: GrantRef::Inline(Box::new(forged)),
            product,
            purpose: "credit check".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "different grant",
    );
    // A tampered grant does not verify.
    let mut tampered = grant(&subject, 8, &consumer.public(), product, "credit check", 50);
    tampered.grant.expiry_height = 10_000;
    w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Inline(Box::new(tampered)),
            product,
            purpose: "credit check".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "signature",
    );

    w.ok(&consumer, use_as(product, "credit check"));
    // Consumed: cannot be revoked or expired afterwards (the subject is no participant: its
    // failing operations are refused outright, see `strangers_cannot_write_records_for_nothing`).
    w.fail(&subject, Operation::RevokeGrant { grant: id }, Code::Invalid, "already consumed");
    w.height = 60;
    w.fail(&subject, Operation::ExpireGrant { grant: id }, Code::Invalid, "already consumed");
    w.fail(&consumer, Operation::ExpireGrant { grant: id }, Code::Failed, "already consumed");
}

#[test]
fn revocation_before_use_even_before_registration() {
    let mut w = World::new();
    let provider = kp(1);
    let consumer = kp(2);
    let subject = kp(3);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&consumer, &[Role::Consumer]);
    w.rate(&provider.public(), 2);
    let product = w.list(&provider, 2, ProductConditions::default());

    // Revoked while only the consumer holds it (never registered): the subject, a key only,
    // registers it and revokes it at once.
    let g = grant(&subject, 1, &consumer.public(), product, "audit", 100);
    w.fail(
        &subject,
        Operation::RevokeGrant { grant: g.grant.id },
        Code::Invalid,
        "register it first",
    );
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g.clone()) });
    let r = w.ok(&subject, Operation::RevokeGrant { grant: g.grant.id });
    assert_eq!(r.events_of("grant.revoked").count(), 1);
    w.fail(
        &consumer,
        Operation::RevokeGrant { grant: g.grant.id },
        Code::Failed,
        "only the grant's subject",
    );
    w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Inline(Box::new(g.clone())),
            product,
            purpose: "audit".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "revoked at height",
    );
    w.fail(
        &subject,
        Operation::RegisterGrant { grant: Box::new(g.clone()) },
        Code::Invalid,
        "revoked",
    );
    w.fail(&subject, Operation::RevokeGrant { grant: g.grant.id }, Code::Invalid, "revoked");

    // Registered, then revoked, then used by id.
    let g2 = grant(&subject, 2, &consumer.public(), product, "audit", 100);
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g2.clone()) });
    w.ok(&subject, Operation::RevokeGrant { grant: g2.grant.id });
    w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Id(g2.grant.id),
            product,
            purpose: "audit".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "revoked",
    );

    // Somebody else "revoking" an id they learned before it was registered only records a
    // revocation under their own key: the real grant is then refused as a conflict. It fails
    // closed — never a use.
    let g3 = grant(&subject, 3, &consumer.public(), product, "audit", 100);
    w.ok(&consumer, Operation::RevokeGrant { grant: g3.grant.id });
    w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Inline(Box::new(g3)),
            product,
            purpose: "audit".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "different grant",
    );
}

#[test]
fn expiry_is_refused_and_recorded_once() {
    let mut w = World::new();
    let provider = kp(1);
    let consumer = kp(2);
    let subject = kp(3);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&consumer, &[Role::Consumer]);
    w.rate(&provider.public(), 1);
    let product = w.list(&provider, 1, ProductConditions::default());
    let g = grant(&subject, 1, &consumer.public(), product, "gate check", 5);
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g.clone()) });
    w.fail(
        &consumer,
        Operation::ExpireGrant { grant: g.grant.id },
        Code::Failed,
        "does not expire before",
    );
    w.height = 6;
    w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Id(g.grant.id),
            product,
            purpose: "gate check".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "expired (expiry height 5, now 6)",
    );
    // Anyone may record the expiry, once.
    let r = w.ok(&consumer, Operation::ExpireGrant { grant: g.grant.id });
    assert_eq!(r.events_of("grant.expired").count(), 1);
    w.fail(&consumer, Operation::ExpireGrant { grant: g.grant.id }, Code::Failed, "expired");
    let rec: GrantRecord = w.get(&keys::grant(&g.grant.id)).unwrap();
    assert_eq!((rec.state, rec.state_height), (GrantState::Expired, 6));
    // An inline grant past its expiry is refused too.
    let late = grant(&subject, 2, &consumer.public(), product, "gate check", 5);
    w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Inline(Box::new(late)),
            product,
            purpose: "gate check".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "expired",
    );
}

#[test]
fn grant_for_delisted_product_or_by_barred_consumer_is_refused() {
    let mut w = World::new();
    let provider = kp(1);
    let consumer = kp(2);
    let subject = kp(3);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&consumer, &[Role::Consumer]);
    w.rate(&provider.public(), 2);
    let product = w.list(&provider, 2, ProductConditions::default());
    let g = grant(&subject, 1, &consumer.public(), product, "p", 100);
    let op = Operation::UseGrant {
        grant: GrantRef::Inline(Box::new(g)),
        product,
        purpose: "p".into(),
        request_hash: Hash::ZERO,
    };
    let reg = w.regulator.clone();
    w.ok(
        &reg,
        Operation::SetListStatus {
            participant: consumer.public(),
            status: ListStatus::NegativeListed,
        },
    );
    let r = w.fail(&consumer, op.clone(), Code::Denied, "negative-listed-denied");
    assert_eq!(r.decision.as_ref().unwrap().determining, ["negative-listed-denied"]);
    assert_eq!(r.events_of("policy.denied").count(), 1);
    w.ok(
        &reg,
        Operation::SetListStatus { participant: consumer.public(), status: ListStatus::Normal },
    );
    w.ok(&provider, Operation::DelistProduct { product });
    w.fail(&consumer, op, Code::Failed, "delisted");
}

#[test]
fn product_purposes_restrict_grants() {
    let mut w = World::new();
    let provider = kp(1);
    let consumer = kp(2);
    let subject = kp(3);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&consumer, &[Role::Consumer]);
    w.rate(&provider.public(), 2);
    let product = w.list(
        &provider,
        2,
        ProductConditions { purposes: vec!["hiring".into()], ..Default::default() },
    );
    let g = grant(&subject, 1, &consumer.public(), product, "marketing", 100);
    let r = w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Inline(Box::new(g)),
            product,
            purpose: "marketing".into(),
            request_hash: Hash::ZERO,
        },
        Code::Denied,
        "grant-purpose-allowed",
    );
    assert!(!r.decision.unwrap().allowed);
}

#[test]
fn compact_form_is_bounded_and_canonical() {
    let subject = kp(3);
    let g = grant(&subject, 1, &kp(2).public(), ProductId(Hash::digest(b"p")), "hiring", 9);
    let text = g.to_compact();
    assert_eq!(SignedGrant::from_compact(&text).unwrap(), g);
    assert!(SignedGrant::from_compact(&"A".repeat(5000)).is_err());
    assert!(SignedGrant::from_compact("!!!").is_err());
    // Trailing junk (an unknown field) makes a second byte form: refused.
    let mut bytes = g.encode();
    bytes.extend_from_slice(&[0x78, 0x01]);
    assert!(matches!(SignedGrant::decode(&bytes), Err(DecodeError::NotCanonical)));
}

/// A key that is no participant's cannot write for nothing: a revocation of an id the ledger
/// does not hold, an expiry of an unknown or unexpired grant, any grant operation that would
/// fail, is refused like a bad nonce (no record, no nonce, no receipt in an honest block).
/// Participants keep the pre-emptive revocation; a subject registers, then revokes.
#[test]
fn strangers_cannot_write_records_for_nothing() {
    let mut w = World::new();
    let provider = kp(1);
    let consumer = kp(2);
    let subject = kp(3);
    let stranger = kp(9);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&consumer, &[Role::Consumer]);
    w.rate(&provider.public(), 2);
    let product = w.list(&provider, 2, ProductConditions::default());

    // Made-up ids: refused, and the mempool's check refuses them before any block.
    for i in 0..3u8 {
        let id = GrantId(Hash::digest(&[0xee, i]));
        let bytes = w.sign(&stranger, Operation::RevokeGrant { grant: id });
        let tx = check_stateless(&bytes, CHAIN).unwrap();
        let err = check_stateful(&w.st, &tx, w.height).unwrap_err();
        assert!(matches!(err, TxError::StrangerRefused { .. }), "{err}");
        w.fail(&stranger, Operation::RevokeGrant { grant: id }, Code::Invalid, "register it first");
        w.fail(&stranger, Operation::ExpireGrant { grant: id }, Code::Invalid, "unknown grant");
    }
    assert_eq!(w.nonce(&stranger.public()), 0, "no nonce written for a stranger's refusals");
    assert_eq!(w.get::<GrantRecord>(&keys::grant(&GrantId(Hash::digest(&[0xee, 0])))), None);

    // The subject's way to revoke a grant nobody registered: register it, then revoke it.
    let g = grant(&subject, 1, &consumer.public(), product, "audit", 100);
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g.clone()) });
    // Someone else's key cannot revoke it, nor record an expiry before its time.
    w.fail(&stranger, Operation::RevokeGrant { grant: g.grant.id }, Code::Invalid, "subject");
    w.fail(&stranger, Operation::ExpireGrant { grant: g.grant.id }, Code::Invalid, "expire");
    w.ok(&subject, Operation::RevokeGrant { grant: g.grant.id });
    // Settled: a second revocation by the subject is refused without a trace either.
    w.fail(&subject, Operation::RevokeGrant { grant: g.grant.id }, Code::Invalid, "revoked");
    assert_eq!(w.nonce(&subject.public()), 2, "only the two successful operations");

    // A participant may still revoke an id nobody registered yet.
    let unseen = GrantId(Hash::digest(b"not registered yet"));
    w.ok(&consumer, Operation::RevokeGrant { grant: unseen });
}
