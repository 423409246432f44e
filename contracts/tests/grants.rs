//! One use, one authorization, by the person whose data it is: scenario tests for every grant
//! path and refusal.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};

/// Provider (rated 4), employer, a listed product of `grade`.
fn market(
    w: &mut World,
    grade: u8,
    conditions: ProductConditions,
) -> (Keypair, Keypair, ProductId) {
    let provider = kp(1);
    let consumer = kp(2);
    w.admit(&provider, &[Role::Provider]);
    w.admit(&consumer, &[Role::Consumer]);
    w.rate(&provider.public(), 4);
    let product = w.list(&provider, grade, conditions);
    (provider, consumer, product)
}

fn in_hours(w: &World, h: u64) -> u64 {
    w.time_ms() + h * 3_600_000
}

/// The honest-resume flow (诚信简历): a registrar enrols the applicant, who signs a grant on a
/// phone; the employer uses it once, a second use is refused, and an auditor replaying the
/// receipts sees both attempts.
#[test]
fn honest_resume_flow() {
    let mut w = World::new();
    let (_, employer, product) = market(
        &mut w,
        3,
        ProductConditions { purposes: vec!["hiring-check".into()], ..Default::default() },
    );
    let applicant = kp(3);
    let who = w.enrol(&applicant, "110101199003071234");

    // Offline on the phone: sign, show as QR code.
    let exp = in_hours(&w, 24);
    let qr =
        grant(&applicant, who, 1, &employer.public(), product, "hiring-check", exp).to_compact();
    assert!(qr.len() < 600, "fits a QR code: {} chars", qr.len());
    // The employer scans it and uses it once.
    let scanned = SignedGrant::from_compact(&qr).unwrap();
    let gid = scanned.grant.id();
    let use_op = use_inline(&scanned, b"verify cv of applicant");
    let r = w.ok(&employer, use_op.clone());
    let d = r.decision.as_ref().unwrap();
    assert!(d.allowed && d.action == "use_grant" && d.policy_version == 1);
    assert_eq!(r.events_of("grant.issued").count(), 1);
    assert_eq!(r.events_of("grant.consumed").count(), 1);
    assert_eq!(r.events_of("grant.grade4_used").count(), 0, "grade 3");

    // The provider checks the usage receipt before serving the data: whose, to whom, what.
    let usage: UsageReceipt = w.get(&keys::usage(&gid)).unwrap();
    assert_eq!(
        (usage.subject, usage.consumer, usage.product, usage.height, usage.time_ms),
        (who, employer.public(), product, w.height, w.time_ms())
    );
    assert_eq!(usage.request_hash, Hash::digest(b"verify cv of applicant"));
    let rec: GrantRecord = w.get(&keys::grant(&gid)).unwrap();
    assert_eq!(rec.state, GrantState::Consumed);

    // A second use — in the next block, inline again or by id — is refused with the height.
    w.next_block();
    let again = w.fail(&employer, use_op, Code::Failed, "already consumed at height 1");
    assert_eq!(
        again.events_of("grant.refused").next().unwrap().get("grant"),
        Some(gid.to_string().as_str())
    );
    w.fail(&employer, use_by_id(&scanned, b"q"), Code::Failed, "already consumed");

    // The auditor's view from receipts alone: one consumption, two refused attempts.
    let gid_text = gid.to_string();
    let of_grant = |e: &&Event| e.get("grant") == Some(gid_text.as_str());
    let consumed = w.events("grant.consumed").filter(of_grant).count();
    let refused: Vec<_> = w.events("grant.refused").filter(of_grant).collect();
    assert_eq!((consumed, refused.len()), (1, 2));
    assert!(refused.iter().all(|e| e.get("by") == Some(&employer.public().to_hex())
        && e.get("reason").unwrap().contains("already consumed")));

    // JSON views state times in ms and RFC 3339.
    let v = render(&keys::grant(&gid), &w.st.get(&keys::grant(&gid)).unwrap()).unwrap();
    assert_eq!(v["grant"]["grant"]["expires_at_ms"], exp);
    assert_eq!(v["grant"]["grant"]["expires_at_rfc3339"], rfc3339_ms(exp));
    assert_eq!(v["state_time_rfc3339"], "2026-11-30T00:00:01.000Z");
}

#[test]
fn register_then_use_by_id_and_refusals() {
    let mut w = World::new();
    let (provider, consumer, product) = market(&mut w, 3, ProductConditions::default());
    let other = kp(4);
    w.admit(&other, &[Role::Consumer]);
    let other_product = w.list(&provider, 1, ProductConditions::default());
    let subject = kp(3);
    let sid = w.enrol(&subject, "subject-3");
    let exp = in_hours(&w, 2);
    let g = grant(&subject, sid, 7, &consumer.public(), product, "credit-check", exp);
    let id = g.grant.id();
    assert_eq!(id, grant_id(&sid, &serial(7)));

    // The subject registers it (its own act: not policy-guarded).
    let r = w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g.clone()) });
    assert_eq!(r.events_of("grant.issued").count(), 1);
    assert!(r.decision.is_none());
    w.fail(
        &subject,
        Operation::RegisterGrant { grant: Box::new(g.clone()) },
        Code::Failed,
        "already registered",
    );

    let use_as = |product, purpose: &str, subject| Operation::UseGrant {
        grant: GrantRef::Id(id),
        subject,
        product,
        purpose: purpose.into(),
        request_hash: Hash::digest(b"q"),
    };
    w.fail(&other, use_as(product, "credit-check", sid), Code::Failed, "names consumer");
    w.fail(&consumer, use_as(other_product, "credit-check", sid), Code::Failed, "is for product");
    w.fail(&consumer, use_as(product, "hiring-check", sid), Code::Failed, "is for purpose");
    // The use names the person whose data is served: another subject's id is refused.
    let someone = subject_id("someone else");
    w.fail(&consumer, use_as(product, "credit-check", someone), Code::Failed, "names subject");
    w.fail(
        &consumer,
        Operation::UseGrant {
            grant: GrantRef::Id(GrantId(Hash::digest(b"nope"))),
            subject: sid,
            product,
            purpose: "credit-check".into(),
            request_hash: Hash::ZERO,
        },
        Code::Failed,
        "unknown grant",
    );
    // A tampered grant does not verify.
    let mut tampered = grant(&subject, sid, 8, &consumer.public(), product, "credit-check", exp);
    tampered.grant.expires_at_ms += 1;
    w.fail(&consumer, use_inline(&tampered, b"t"), Code::Failed, "signature");

    let r = w.ok(&consumer, use_as(product, "credit-check", sid));
    assert_eq!(r.events_of("grant.issued").count(), 0, "issued at registration");
    // Consumed: cannot be revoked or expired afterwards.
    w.fail(
        &subject,
        Operation::RevokeGrant { serial: serial(7) },
        Code::Failed,
        "already consumed",
    );
    w.at_time(exp + 1);
    w.fail(&consumer, Operation::ExpireGrant { grant: id }, Code::Failed, "already consumed");
}

/// Registrars come only from governance; only registrars enrol; subject keys and participant
/// keys never mix, in either direction, rotated-in keys included.
#[test]
fn enrolment_and_key_separation() {
    let mut w = World::new();
    let (provider, consumer, _) = market(&mut w, 3, ProductConditions::default());
    let agency = w.agency().clone();
    let registrar = w.registrar.clone();
    let subject = kp(3);

    // The ordinary admission refuses the registrar role.
    let bytes = w.sign(
        &agency,
        Operation::Admit { key: kp(60).public(), name: "idp".into(), roles: vec![Role::Registrar] },
    );
    assert!(matches!(check_stateless(&bytes, CHAIN), Err(TxError::InvalidOp { .. })));
    // Only a registrar enrols.
    let sid = subject_id("subject-3");
    for who in [&agency, &provider, &consumer] {
        w.fail(
            who,
            Operation::EnrolSubject { subject_id: sid, subject_key: subject.public() },
            Code::Failed,
            "only registrars",
        );
    }
    let r = w
        .ok(&registrar, Operation::EnrolSubject { subject_id: sid, subject_key: subject.public() });
    assert_eq!(r.events_of("subject.enrolled").count(), 1);
    let s = w.subject(&sid);
    assert_eq!(
        (s.key, s.registrar, s.grant_epoch, s.status),
        (subject.public(), registrar.public(), 0, SubjectStatus::Active)
    );
    assert_eq!((s.enrolled_height, s.enrolled_time_ms), (w.height, w.time_ms()));
    // Once per subject id and per key.
    w.fail(
        &registrar,
        Operation::EnrolSubject { subject_id: sid, subject_key: kp(61).public() },
        Code::Failed,
        "already enrolled",
    );
    w.fail(
        &registrar,
        Operation::EnrolSubject { subject_id: subject_id("twin"), subject_key: subject.public() },
        Code::Failed,
        "already a subject's key",
    );
    // A participant's key is never enrolled.
    w.fail(
        &registrar,
        Operation::EnrolSubject { subject_id: subject_id("p"), subject_key: consumer.public() },
        Code::Failed,
        "is a participant's key",
    );
    // A subject's key is never admitted, made an agency, or rotated into a participant.
    w.fail(
        &agency,
        Operation::Admit { key: subject.public(), name: "x".into(), roles: vec![Role::Consumer] },
        Code::Failed,
        "already in use",
    );
    w.fail(
        &agency,
        Operation::Propose {
            action: ProposalAction::AdmitAgency { key: subject.public(), name: "x".into() },
        },
        Code::Failed,
        "already in use",
    );
    let proof = subject.sign(ROTATE_KEY_DOMAIN, CHAIN, &rotation_message(&consumer.public()));
    w.fail(
        &consumer,
        Operation::RotateKey { new_key: subject.public(), new_key_signature: proof },
        Code::Failed,
        "already in use",
    );
    // A participant's rotated-in key is never enrolled either.
    let fresh = kp(62);
    let proof = fresh.sign(ROTATE_KEY_DOMAIN, CHAIN, &rotation_message(&consumer.public()));
    w.ok(&consumer, Operation::RotateKey { new_key: fresh.public(), new_key_signature: proof });
    w.fail(
        &registrar,
        Operation::EnrolSubject { subject_id: subject_id("q"), subject_key: fresh.public() },
        Code::Failed,
        "is a participant's key",
    );
    // A subject signs only its own operations; a participant never signs a subject's.
    let bytes = w.sign(&subject, Operation::ExpireGrant { grant: GrantId(Hash::ZERO) });
    let tx = check_stateless(&bytes, CHAIN).unwrap();
    assert!(matches!(
        check_stateful(&w.st, &tx, w.height, 0),
        Err(TxError::SubjectCannotSign { .. })
    ));
    w.fail(
        &subject,
        Operation::DelistProduct { product: ProductId(Hash::ZERO) },
        Code::Invalid,
        "data subject's key may sign only",
    );
    w.fail(&provider, Operation::RevokeAllGrants, Code::Invalid, "only an enrolled data subject");
    w.fail(
        &provider,
        Operation::RevokeGrant { serial: serial(1) },
        Code::Invalid,
        "only an enrolled data subject",
    );
}

/// Unknown keys cannot create state: every operation from a key that is neither a
/// participant's nor an enrolled subject's is refused before execution, nonce included.
#[test]
fn unknown_keys_create_nothing() {
    let mut w = World::new();
    let (_, consumer, product) = market(&mut w, 3, ProductConditions::default());
    let stranger = kp(9);
    let subject = kp(3);
    let sid = w.enrol(&subject, "s");
    let g = grant(&subject, sid, 1, &consumer.public(), product, "audit", in_hours(&w, 1));
    let ops = [
        Operation::RevokeGrant { serial: serial(1) },
        Operation::RevokeAllGrants,
        Operation::ExpireGrant { grant: g.grant.id() },
        Operation::RegisterGrant { grant: Box::new(g.clone()) },
        Operation::EnrolSubject { subject_id: subject_id("x"), subject_key: kp(70).public() },
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: stranger.public(),
            new_key_signature: subject_key_proof(&stranger, &sid),
        },
    ];
    for op in ops {
        let bytes = w.sign(&stranger, op.clone());
        let tx = check_stateless(&bytes, CHAIN).unwrap();
        let err = check_stateful(&w.st, &tx, w.height, 0).unwrap_err();
        assert!(matches!(err, TxError::UnknownSigner { .. }), "{err}");
        w.fail(&stranger, op, Code::Invalid, "neither a participant nor an enrolled data subject");
    }
    assert_eq!(w.nonce(&stranger.public()), 0);
    assert_eq!(w.st.get(&keys::grant(&g.grant.id())), None);
}

/// Key rotation, by the registrar and by the subject itself; the old key signs nothing after.
#[test]
fn subject_key_rotation_both_ways() {
    let mut w = World::new();
    let (_, consumer, product) = market(&mut w, 3, ProductConditions::default());
    let registrar = w.registrar.clone();
    let phone1 = kp(3);
    let phone2 = kp(4);
    let phone3 = kp(5);
    let sid = w.enrol(&phone1, "subject");
    let exp = in_hours(&w, 5);
    // Signed with phone 1 and registered: stays valid after a rotation.
    let registered = grant(&phone1, sid, 1, &consumer.public(), product, "audit", exp);
    w.ok(&phone1, Operation::RegisterGrant { grant: Box::new(registered.clone()) });
    // Signed with phone 1 but never registered: must be signed by the current key when first
    // seen.
    let pending = grant(&phone1, sid, 2, &consumer.public(), product, "audit", exp);

    // Bad proofs and wrong rotators are refused.
    w.fail(
        &phone1,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: phone2.public(),
            new_key_signature: subject_key_proof(&phone3, &sid),
        },
        Code::Failed,
        "proof of possession",
    );
    let other_registrar = kp(95);
    w.admit_registrar(&other_registrar);
    w.fail(
        &other_registrar,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: phone2.public(),
            new_key_signature: subject_key_proof(&phone2, &sid),
        },
        Code::Failed,
        "own registrar",
    );
    w.fail(
        &consumer,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: phone2.public(),
            new_key_signature: subject_key_proof(&phone2, &sid),
        },
        Code::Failed,
        "only registrars",
    );
    // Another subject cannot rotate this one's key.
    let other = kp(6);
    w.enrol(&other, "other");
    w.fail(
        &other,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: phone2.public(),
            new_key_signature: subject_key_proof(&phone2, &sid),
        },
        Code::Failed,
        "only the subject or its registrar",
    );

    // The subject rotates with its old key.
    let r = w.ok(
        &phone1,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: phone2.public(),
            new_key_signature: subject_key_proof(&phone2, &sid),
        },
    );
    assert_eq!(r.events_of("subject.key_rotated").next().unwrap().get("by"), Some("subject"));
    assert_eq!(w.subject(&sid).key, phone2.public());
    // The old key can sign nothing.
    let bytes = w.sign(&phone1, Operation::RevokeAllGrants);
    let tx = check_stateless(&bytes, CHAIN).unwrap();
    assert!(matches!(check_stateful(&w.st, &tx, w.height, 0), Err(TxError::RotatedKey { .. })));
    w.fail(&phone1, Operation::RevokeAllGrants, Code::Invalid, "rotated out");
    // A grant signed with the old key and first seen now is refused; the registered one works.
    w.fail(&consumer, use_inline(&pending, b"p"), Code::Failed, "not its subject's current key");
    w.ok(&consumer, use_by_id(&registered, b"r"));
    // A key once a subject's is never reused.
    w.fail(
        &registrar,
        Operation::EnrolSubject { subject_id: subject_id("new"), subject_key: phone1.public() },
        Code::Failed,
        "already a subject's key",
    );

    // The phone is lost: the registrar rotates to a third key.
    let r = w.ok(
        &registrar,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: phone3.public(),
            new_key_signature: subject_key_proof(&phone3, &sid),
        },
    );
    assert_eq!(r.events_of("subject.key_rotated").next().unwrap().get("by"), Some("registrar"));
    w.fail(&phone2, Operation::RevokeAllGrants, Code::Invalid, "rotated out");
    // Back to a former key: refused.
    w.fail(
        &registrar,
        Operation::RotateSubjectKey {
            subject_id: sid,
            new_key: phone1.public(),
            new_key_signature: subject_key_proof(&phone1, &sid),
        },
        Code::Failed,
        "already a subject's key",
    );
    let fresh = grant(&phone3, sid, 3, &consumer.public(), product, "audit", exp);
    w.ok(&consumer, use_inline(&fresh, b"f"));
}

#[test]
fn revoke_one_and_revoke_all() {
    let mut w = World::new();
    let (_, consumer, product) = market(&mut w, 3, ProductConditions::default());
    let subject = kp(3);
    let sid = w.enrol(&subject, "subject");
    let exp = in_hours(&w, 5);
    let g = |n| grant(&subject, sid, n, &consumer.public(), product, "audit", exp);

    // Revoked before anyone registered it (only the consumer holds it).
    let r = w.ok(&subject, Operation::RevokeGrant { serial: serial(1) });
    assert_eq!(r.events_of("grant.revoked").count(), 1);
    w.fail(&consumer, use_inline(&g(1), b"a"), Code::Failed, "revoked at height");
    w.fail(&subject, Operation::RegisterGrant { grant: Box::new(g(1)) }, Code::Failed, "revoked");
    w.fail(&subject, Operation::RevokeGrant { serial: serial(1) }, Code::Failed, "revoked");
    // Registered, then revoked, then used by id.
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g(2)) });
    w.ok(&subject, Operation::RevokeGrant { serial: serial(2) });
    w.fail(&consumer, use_by_id(&g(2), b"b"), Code::Failed, "revoked");

    // Revoke all: registered and unregistered grants of the old epoch are refused, O(1).
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g(3)) });
    let r = w.ok(&subject, Operation::RevokeAllGrants);
    assert_eq!(r.events_of("subject.grants_revoked").next().unwrap().get("grant_epoch"), Some("1"));
    assert_eq!(w.subject(&sid).grant_epoch, 1);
    w.fail(&consumer, use_by_id(&g(3), b"c"), Code::Failed, "grant epoch 0; the subject's is 1");
    w.fail(&consumer, use_inline(&g(4), b"d"), Code::Failed, "grant epoch 0");
    // A grant "from the future" epoch is refused too (it cannot survive the next revoke-all).
    let future = grant_at_epoch(&subject, sid, 2, 5, &consumer.public(), product, "audit", exp);
    w.fail(&consumer, use_inline(&future, b"e"), Code::Failed, "grant epoch 2");
    // New grants under the new epoch work.
    let fresh = grant_at_epoch(&subject, sid, 1, 6, &consumer.public(), product, "audit", exp);
    w.ok(&consumer, use_inline(&fresh, b"f"));
}

/// The reported attack: a fresh key revoked the id of a grant the applicant had signed, and the
/// employer's use then failed with "a different grant with this id is already recorded". Now a
/// revocation names a serial in the signer's own id space: another subject, the consumer or a
/// stranger can never touch it.
#[test]
fn nobody_else_can_block_or_revoke_a_subjects_grant() {
    let mut w = World::new();
    let (_, employer, product) = market(&mut w, 3, ProductConditions::default());
    let applicant = kp(3);
    let attacker = kp(4);
    let sid = w.enrol(&applicant, "applicant");
    let aid = w.enrol(&attacker, "attacker");
    let exp = in_hours(&w, 5);
    let g = grant(&applicant, sid, 1, &employer.public(), product, "hiring-check", exp);

    // The attacker (an enrolled subject) "revokes" the same serial and registers its own grant
    // with the same serial: both land in its own id space.
    w.ok(&attacker, Operation::RevokeGrant { serial: serial(1) });
    let squat = grant(&attacker, aid, 1, &employer.public(), product, "hiring-check", exp);
    assert_ne!(squat.grant.id(), g.grant.id());
    w.fail(&attacker, Operation::RegisterGrant { grant: Box::new(squat) }, Code::Failed, "revoked");
    // The attacker cannot register the applicant's grant either (only its subject may).
    w.fail(
        &attacker,
        Operation::RegisterGrant { grant: Box::new(g.clone()) },
        Code::Failed,
        "only the grant's subject",
    );
    // The consumer and strangers cannot revoke at all.
    w.fail(
        &employer,
        Operation::RevokeGrant { serial: serial(1) },
        Code::Invalid,
        "only an enrolled data subject",
    );
    w.fail(&kp(9), Operation::RevokeGrant { serial: serial(1) }, Code::Invalid, "neither");
    // The employer's use works.
    w.ok(&employer, use_inline(&g, b"cv"));
}

#[test]
fn consumer_is_never_the_subject_and_only_subject_keys_sign_grants() {
    let mut w = World::new();
    let (provider, consumer, product) = market(&mut w, 3, ProductConditions::default());
    let subject = kp(3);
    let other_subject = kp(4);
    let sid = w.enrol(&subject, "subject");
    let oid = w.enrol(&other_subject, "other");
    let exp = in_hours(&w, 5);

    // A grant naming a subject key as consumer is refused (a subject never consumes).
    let selfish = grant(&subject, sid, 1, &subject.public(), product, "audit", exp);
    w.fail(
        &subject,
        Operation::RegisterGrant { grant: Box::new(selfish) },
        Code::Failed,
        "a subject can never be the consumer",
    );
    let sideways = grant(&subject, sid, 2, &other_subject.public(), product, "audit", exp);
    w.fail(
        &subject,
        Operation::RegisterGrant { grant: Box::new(sideways) },
        Code::Failed,
        "a subject can never be the consumer",
    );

    // Grants for this subject signed by any other key are refused: the buyer's throwaway key,
    // the buyer itself, another subject, the provider.
    for (n, key) in
        [(3u8, kp(9)), (4, consumer.clone()), (5, other_subject.clone()), (6, provider.clone())]
    {
        let forged = grant(&key, sid, n, &consumer.public(), product, "audit", exp);
        w.fail(&consumer, use_inline(&forged, &[n]), Code::Failed, "not its subject's current key");
    }
    // A grant for an unenrolled subject id is refused.
    let ghost = grant(&kp(9), subject_id("ghost"), 7, &consumer.public(), product, "audit", exp);
    w.fail(&consumer, use_inline(&ghost, b"g"), Code::Failed, "not enrolled");
    // The other subject's own grant works for the other subject only.
    let theirs = grant(&other_subject, oid, 8, &consumer.public(), product, "audit", exp);
    w.ok(&consumer, use_inline(&theirs, b"t"));
}

/// Expiry by block time, exact to the millisecond: valid at `time_ms == expires_at_ms`,
/// refused at `expires_at_ms + 1`; the expiry is recorded once.
#[test]
fn expiry_at_the_boundary_ms() {
    let mut w = World::new();
    let (_, consumer, product) = market(&mut w, 2, ProductConditions::default());
    let subject = kp(3);
    let sid = w.enrol(&subject, "subject");
    let exp = w.time_ms() + 10_000;
    let g = |n| grant(&subject, sid, n, &consumer.public(), product, "audit", exp);

    w.at_time(exp);
    w.ok(&consumer, use_inline(&g(1), b"a"));
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g(2)) });
    w.fail(
        &consumer,
        Operation::ExpireGrant { grant: g(2).grant.id() },
        Code::Failed,
        "valid until",
    );
    w.at_time(exp + 1);
    w.fail(&consumer, use_inline(&g(3), b"b"), Code::Failed, "expired (expires at");
    w.fail(&consumer, use_by_id(&g(2), b"c"), Code::Failed, "expired");
    w.fail(&subject, Operation::RegisterGrant { grant: Box::new(g(4)) }, Code::Failed, "expired");
    // Any participant records the expiry, once; the subject cannot (not a participant).
    w.fail(
        &subject,
        Operation::ExpireGrant { grant: g(2).grant.id() },
        Code::Invalid,
        "data subject's key may sign only",
    );
    let r = w.ok(&consumer, Operation::ExpireGrant { grant: g(2).grant.id() });
    assert_eq!(r.events_of("grant.expired").count(), 1);
    w.fail(&consumer, Operation::ExpireGrant { grant: g(2).grant.id() }, Code::Failed, "expired");
    let rec: GrantRecord = w.get(&keys::grant(&g(2).grant.id())).unwrap();
    assert_eq!((rec.state, rec.state_time_ms), (GrantState::Expired, exp + 1));

    // The mempool's check uses the last committed block's time: refused there too.
    w.at_time(exp - 5);
    let bytes = w.sign(&consumer, use_inline(&g(5), b"d"));
    let tx = check_stateless(&bytes, CHAIN).unwrap();
    assert!(check_stateful(&w.st, &tx, w.height, exp).is_ok());
    assert!(matches!(
        check_stateful(&w.st, &tx, w.height, exp + 1),
        Err(TxError::GrantExpired { .. })
    ));
    // Execution decides with the block's own time, whatever admission saw.
    w.ok(&consumer, use_inline(&g(5), b"d"));
}

#[test]
fn grade_4_limits() {
    let mut w = World::new();
    let (_, checkpoint, product) = market(&mut w, 4, ProductConditions::default());
    let person = kp(3);
    let sid = w.enrol(&person, "person");
    let lifetime = params(&w.st).grade4_grant_lifetime_ms_max;
    assert_eq!(lifetime, 3_600_000, "one hour by default");
    let now = w.time_ms();
    let g =
        |n, purpose: &str, exp| grant(&person, sid, n, &checkpoint.public(), product, purpose, exp);

    // A purpose not flagged for grade 4 is refused.
    w.fail(
        &checkpoint,
        use_inline(&g(1, "hiring-check", now + 60_000), b"a"),
        Code::Failed,
        "allowed up to grade 3",
    );
    // A lifetime longer than the governed maximum is refused, at registration and inline.
    w.fail(
        &checkpoint,
        use_inline(&g(2, "health-check", now + lifetime + 1), b"b"),
        Code::Failed,
        "grade-4 grant may expire at most",
    );
    w.fail(
        &person,
        Operation::RegisterGrant { grant: Box::new(g(3, "health-check", now + lifetime + 1)) },
        Code::Failed,
        "grade-4",
    );
    // Exactly the maximum is fine; the use emits the regulators' event.
    let r = w.ok(&checkpoint, use_inline(&g(4, "health-check", now + lifetime), b"c"));
    let e = r.events_of("grant.grade4_used").next().unwrap();
    assert_eq!(e.get("subject"), Some(sid.to_string().as_str()));
    assert_eq!(e.get("purpose"), Some("health-check"));
    assert_eq!(e.get("time_ms"), Some(now.to_string().as_str()));
    // Registered, it can be used only within its short lifetime.
    let reg = g(5, "health-check", now + 1000);
    w.ok(&person, Operation::RegisterGrant { grant: Box::new(reg.clone()) });
    w.at_time(now + 1001);
    w.fail(&checkpoint, use_by_id(&reg, b"d"), Code::Failed, "expired");
}

#[test]
fn purposes_come_from_the_governed_list() {
    let mut w = World::new();
    let (_, consumer, product) = market(
        &mut w,
        2,
        ProductConditions { purposes: vec!["hiring-check".into()], ..Default::default() },
    );
    let subject = kp(3);
    let sid = w.enrol(&subject, "s");
    let exp = in_hours(&w, 1);
    let g = |n, p: &str| grant(&subject, sid, n, &consumer.public(), product, p, exp);
    w.fail(
        &consumer,
        use_inline(&g(1, "marketing"), b"a"),
        Code::Failed,
        "not in the governed purpose list",
    );
    w.fail(
        &subject,
        Operation::RegisterGrant { grant: Box::new(g(2, "free text")) },
        Code::Failed,
        "not in the governed purpose list",
    );
    // A governed purpose the product's own conditions exclude: the policy denies it.
    let r = w.fail(
        &consumer,
        use_inline(&g(3, "credit-check"), b"b"),
        Code::Denied,
        "grant-purpose-allowed",
    );
    assert!(!r.decision.unwrap().allowed);
    // Governance changes the list; a registered grant whose purpose left it is refused at use.
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(g(4, "hiring-check")) });
    let mut p = params(&w.st);
    p.purposes.retain(|q| q.code != "hiring-check");
    let agency = w.agency().clone();
    w.ok(&agency, Operation::Propose { action: ProposalAction::SetParams { params: p.clone() } });
    w.fail(
        &consumer,
        use_by_id(&g(4, "hiring-check"), b"c"),
        Code::Failed,
        "not in the governed purpose list",
    );
    // Governance cannot set an invalid list.
    let mut bad = p;
    bad.purposes.reverse();
    let bytes =
        w.sign(&agency, Operation::Propose { action: ProposalAction::SetParams { params: bad } });
    assert!(check_stateless(&bytes, CHAIN).is_err());
}

#[test]
fn grant_for_delisted_product_or_by_barred_consumer_is_refused() {
    let mut w = World::new();
    let (provider, consumer, product) = market(&mut w, 2, ProductConditions::default());
    let subject = kp(3);
    let sid = w.enrol(&subject, "s");
    let g = grant(&subject, sid, 1, &consumer.public(), product, "audit", in_hours(&w, 1));
    let op = use_inline(&g, b"x");
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
fn compact_form_is_bounded_and_canonical() {
    let subject = kp(3);
    let g = grant(
        &subject,
        subject_id("s"),
        1,
        &kp(2).public(),
        ProductId(Hash::digest(b"p")),
        "hiring-check",
        T0_MS,
    );
    let text = g.to_compact();
    assert!(text.len() < 400, "{} chars", text.len());
    assert_eq!(SignedGrant::from_compact(&text).unwrap(), g);
    assert!(SignedGrant::from_compact(&"A".repeat(5000)).is_err());
    assert!(SignedGrant::from_compact("!!!").is_err());
    // Trailing junk (an unknown field) makes a second byte form: refused.
    let mut bytes = g.encode();
    bytes.extend_from_slice(&[0x78, 0x01]);
    assert!(matches!(SignedGrant::decode(&bytes), Err(DecodeError::NotCanonical)));
}

/// Two fresh states fed the same transactions give the same receipts and the same state.
#[test]
fn grant_execution_is_deterministic() {
    let run = || {
        let mut w = World::new();
        let (_, consumer, product) = market(&mut w, 4, ProductConditions::default());
        let subject = kp(3);
        let sid = w.enrol(&subject, "s");
        let now = w.time_ms();
        for n in 0..6u8 {
            let g = grant(
                &subject,
                sid,
                n,
                &consumer.public(),
                product,
                "health-check",
                now + 2000 * u64::from(n),
            );
            if n % 2 == 0 {
                w.run(&subject, Operation::RegisterGrant { grant: Box::new(g.clone()) });
            }
            w.next_block();
            w.run(&consumer, use_inline(&g, &[n]));
            if n == 3 {
                w.run(&subject, Operation::RevokeAllGrants);
            }
        }
        (w.receipts, w.st.root())
    };
    let (a, root_a) = run();
    let (b, root_b) = run();
    assert_eq!(a, b);
    assert_eq!(root_a, root_b);
    assert!(a.iter().any(|r| r.code == Code::Failed), "the run includes refusals");
    assert!(a.iter().any(|r| r.events_of("grant.consumed").count() == 1));
}
