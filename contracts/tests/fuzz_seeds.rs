//! Valid inputs for the contracts fuzz targets (fuzz/): signed transactions of many operations,
//! signed grants, and the stored values and receipts of a small marketplace. From valid inputs
//! the fuzzer reaches the checks behind the protobuf layer (operation shapes, signatures,
//! rendering) at once instead of rediscovering the schema byte by byte.
//!
//! The test checks that every seed passes its decoder. With `DPX_FUZZ_SEEDS=1` it also writes
//! them to `fuzz/corpus/<target>/`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair};

/// The chain id the fuzz targets check against.
const FUZZ_CHAIN: &str = "fuzz";

fn write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    if std::env::var_os("DPX_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

fn fuzz_grant(subject: &Keypair, n: u8, consumer: &Keypair, product: ProductId) -> SignedGrant {
    Grant {
        serial: serial(n),
        subject: subject_id("fuzz subject"),
        key: subject.public(),
        epoch: 0,
        consumer: consumer.public(),
        product,
        purpose: "hiring-check".into(),
        expires_at_ms: T0_MS + 3_600_000,
    }
    .sign(subject, FUZZ_CHAIN)
}

/// A marketplace that has seen a trade, a grant use and a revocation, so its state holds a
/// value of every kind the render target reads.
fn busy_world() -> World {
    let mut w = World::new();
    let (provider, buyer, subject) = (kp(1), kp(2), kp(3));
    w.admit(&provider, &[Role::Provider]);
    w.admit(&buyer, &[Role::Consumer]);
    w.rate(&provider.public(), 3);
    w.govern(ProposalAction::SetPlatformFee { basis_points: 250 });
    w.fund(&buyer.public(), 50_000);
    let open = w.list(&provider, 2, ProductConditions::default());
    let oid = OrderId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    w.ok(
        &buyer,
        Operation::PlaceOrder { product: open, grant: None, purpose: "risk".into(), demand: None },
    );
    w.ok(&provider, Operation::AcceptOrder { order: oid });
    w.ok(&provider, Operation::DeliverOrder { order: oid, delivery_hash: Hash::digest(b"v1") });
    w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    // A compute job over the settled order, attested by a compute node.
    let node = kp(4);
    w.govern(ProposalAction::AdmitComputeNode { key: node.public(), name: "enclave".into() });
    let job = JobId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    w.ok(
        &buyer,
        Operation::RequestJob {
            products: vec![open],
            authorizations: vec![JobAuthorization::Order(oid)],
            compute_node: node.public(),
            purpose: "risk".into(),
            code_hash: Hash::digest(b"code"),
        },
    );
    w.ok(
        &node,
        Operation::AttestJob {
            job,
            code_hash: Hash::digest(b"code"),
            input_commitments: vec![Hash::digest(b"input")],
            result_hash: Hash::digest(b"result"),
            inputs_destroyed: true,
        },
    );
    let target = AttestTarget::Order(oid);
    w.ok(&buyer, Operation::Attest { target, stage: Stage::Collected, hash: Hash::digest(b"in") });
    let regulator = w.regulator.clone();
    w.ok(
        &regulator,
        Operation::ReviewAttestation {
            target,
            seq: 0,
            verdict: Verdict::Confirmed,
            reason_hash: Hash::digest(b"seen"),
        },
    );
    let (bank, reference) = (w.bank.clone(), w.next_ref());
    w.ok(&bank, Operation::Withdraw { account: provider.public(), amount: 9_000, reference });

    // Kept 30 days: its use makes a destruction due.
    let restricted = ProductId::derive(CHAIN, &provider.public(), w.nonce(&provider.public()));
    let conditions =
        ProductConditions { purposes: vec!["hiring-check".into()], ..Default::default() };
    let kept = ProductSpec { retention_days: Some(30), ..spec(3, conditions) };
    w.ok(&provider, Operation::ListProduct { spec: kept });
    let sid = w.enrol(&subject, "fuzz subject");
    let exp = T0_MS + 3_600_000;
    let used = grant(&subject, sid, 1, &buyer.public(), restricted, "hiring-check", exp);
    w.ok(&buyer, use_inline(&used, b"request"));
    let revoked = grant(&subject, sid, 2, &buyer.public(), restricted, "hiring-check", exp);
    w.ok(&subject, Operation::RegisterGrant { grant: Box::new(revoked.clone()) });
    w.ok(&subject, Operation::RevokeGrant { serial: revoked.grant.serial });
    w.ok(
        &buyer,
        Operation::PostDemand {
            title: "need".into(),
            domain: "finance".into(),
            budget: 1,
            description_hash: Hash::ZERO,
            deadline_ms: Some(w.ctx().time_ms + 1000),
        },
    );
    w
}

#[test]
fn seeds_pass_their_decoders() {
    let w = busy_world();
    let (provider, buyer, subject) = (kp(1), kp(2), kp(3));
    let product = ProductId::derive(CHAIN, &provider.public(), 0);
    let order = OrderId::derive(CHAIN, &buyer.public(), 0);
    let signed = fuzz_grant(&subject, 7, &buyer, product);
    let job = JobId::derive(CHAIN, &buyer.public(), 1);
    let node = kp(54);

    // Transactions signed for the fuzz targets' chain, so the stateless checks pass in full.
    let ops: Vec<(&Keypair, Operation)> = vec![
        (
            w.agency(),
            Operation::Admit {
                key: buyer.public(),
                name: "buyer".into(),
                roles: vec![Role::Consumer],
            },
        ),
        (&w.rater, Operation::SetRating { participant: provider.public(), rating: 3 }),
        (&provider, Operation::ListProduct { spec: spec(2, ProductConditions::default()) }),
        (
            &buyer,
            Operation::PlaceOrder { product, grant: None, purpose: "risk".into(), demand: None },
        ),
        (&provider, Operation::DeliverOrder { order, delivery_hash: Hash::digest(b"v1") }),
        (&buyer, Operation::ConfirmOrder { order }),
        (
            &buyer,
            Operation::Attest {
                target: AttestTarget::Order(order),
                stage: Stage::Collected,
                hash: Hash::digest(b"received"),
            },
        ),
        (
            &w.regulator,
            Operation::ReviewAttestation {
                target: AttestTarget::Order(order),
                seq: 0,
                verdict: Verdict::Rejected,
                reason_hash: Hash::digest(b"no certificate"),
            },
        ),
        (
            &provider,
            Operation::ListProduct {
                spec: ProductSpec {
                    retention_days: Some(180),
                    ..spec(2, ProductConditions::default())
                },
            },
        ),
        (&w.operator, Operation::ResolveDispute { order, settle_amount: Some(9_500) }),
        (
            &w.bank,
            Operation::Deposit {
                account: buyer.public(),
                amount: 10_000,
                reference: "wire-2026-0001".into(),
            },
        ),
        (
            &w.bank,
            Operation::Withdraw {
                account: provider.public(),
                amount: 9_750,
                reference: "payout-2026-0001".into(),
            },
        ),
        (
            w.agency(),
            Operation::Propose {
                action: ProposalAction::AdmitSettlementBank {
                    key: kp(53).public(),
                    name: "bank".into(),
                },
            },
        ),
        (
            w.agency(),
            Operation::Propose { action: ProposalAction::SetPlatformFee { basis_points: 250 } },
        ),
        (
            w.agency(),
            Operation::Propose {
                action: ProposalAction::PayFromTreasury { account: buyer.public(), amount: 250 },
            },
        ),
        (&subject, Operation::RegisterGrant { grant: Box::new(signed.clone()) }),
        (&buyer, use_inline(&signed, b"request")),
        (&buyer, use_by_id(&signed, b"request")),
        (&subject, Operation::RevokeGrant { serial: signed.grant.serial }),
        (&subject, Operation::RevokeAllGrants),
        (
            &w.registrar,
            Operation::EnrolSubject { subject_id: subject_id("x"), subject_key: kp(50).public() },
        ),
        (
            &subject,
            Operation::RotateSubjectKey {
                subject_id: subject_id("fuzz subject"),
                new_key: kp(51).public(),
                new_key_signature: subject_key_proof(&kp(51), &subject_id("fuzz subject")),
            },
        ),
        (
            w.agency(),
            Operation::Propose {
                action: ProposalAction::AdmitRegistrar { key: kp(52).public(), name: "idp".into() },
            },
        ),
        (
            &buyer,
            Operation::PostDemand {
                title: "need".into(),
                domain: "finance".into(),
                budget: 1,
                description_hash: Hash::ZERO,
                deadline_ms: Some(1_780_000_000_000),
            },
        ),
        (
            w.agency(),
            Operation::Propose {
                action: ProposalAction::SuspendAgency { key: buyer.public(), reason: "r".into() },
            },
        ),
        (
            w.agency(),
            Operation::Propose { action: ProposalAction::ReinstateAgency { key: buyer.public() } },
        ),
        (
            w.agency(),
            Operation::Propose {
                action: ProposalAction::SetAgencyListStatus {
                    key: buyer.public(),
                    status: ListStatus::NegativeListed,
                },
            },
        ),
        (
            w.agency(),
            Operation::Propose { action: ProposalAction::SetParams { params: Params::default() } },
        ),
        (
            w.agency(),
            Operation::Propose {
                action: ProposalAction::AdmitComputeNode {
                    key: node.public(),
                    name: "enclave".into(),
                },
            },
        ),
        (
            &buyer,
            Operation::RequestJob {
                products: vec![product, ProductId::derive(CHAIN, &provider.public(), 1)],
                authorizations: vec![
                    JobAuthorization::Order(order),
                    JobAuthorization::Grant(GrantRef::Inline(Box::new(signed.clone()))),
                ],
                compute_node: node.public(),
                purpose: "hiring-check".into(),
                code_hash: Hash::digest(b"code"),
            },
        ),
        (
            &buyer,
            Operation::RequestJob {
                products: vec![product],
                authorizations: vec![JobAuthorization::Grant(GrantRef::Id(signed.grant.id()))],
                compute_node: node.public(),
                purpose: "hiring-check".into(),
                code_hash: Hash::digest(b"code"),
            },
        ),
        (
            &node,
            Operation::AttestJob {
                job,
                code_hash: Hash::digest(b"code"),
                input_commitments: vec![Hash::digest(b"a"), Hash::digest(b"b")],
                result_hash: Hash::digest(b"result"),
                inputs_destroyed: true,
            },
        ),
        (&buyer, Operation::ConfirmJob { job, result_hash: Hash::digest(b"result") }),
        (&buyer, Operation::CancelJob { job }),
        (&node, Operation::RejectJob { job, reason_hash: Hash::digest(b"reasons") }),
    ];
    let mut txs = Vec::new();
    for (nonce, (who, op)) in ops.into_iter().enumerate() {
        let name = op.name();
        let body = TransactionBody::new(FUZZ_CHAIN, nonce as u64, op);
        let bytes = body.sign(who).encode();
        let tx = check_stateless(&bytes, FUZZ_CHAIN).unwrap();
        assert_eq!(tx.body, body, "{name}");
        txs.push((format!("tx-{name}"), bytes));
    }
    write_seeds("tx_decode", &txs);

    let grant_bytes = signed.encode();
    assert_eq!(SignedGrant::decode(&grant_bytes).unwrap(), signed);
    signed.verify(FUZZ_CHAIN).unwrap();
    let compact = signed.to_compact();
    assert_eq!(SignedGrant::from_compact(&compact).unwrap(), signed);
    write_seeds(
        "grant_decode",
        &[("grant".into(), grant_bytes), ("grant-compact".into(), compact.into_bytes())],
    );

    // The render target's first byte picks the key prefix (same order as in fuzz/); the rest
    // is the value, and also the rest of the key with an empty value.
    let selectors: [(&[u8], bool); 35] = [
        (keys::PREFIX_PARTICIPANT, false),
        (keys::PREFIX_PRODUCT, false),
        (keys::PREFIX_ORDER, false),
        (keys::PREFIX_GRANT, false),
        (keys::PREFIX_PROPOSAL, false),
        (keys::PREFIX_ATTESTATION, false),
        (keys::POLICY_CURRENT, true),
        (keys::VALIDATORS, true),
        (keys::AGENCIES, true),
        (keys::PREFIX_DEMAND, false),
        (keys::PREFIX_SUBJECT, false),
        (keys::PREFIX_USAGE, false),
        (keys::PARAMS, true),
        (keys::PREFIX_ACCOUNT, false),
        (keys::PREFIX_BANK_RECORD, false),
        (keys::TREASURY, true),
        (keys::SUPPLY, true),
        (keys::CURRENCY, true),
        (keys::PREFIX_DESTRUCTION, false),
        (keys::PREFIX_JOB, false),
        (keys::PREFIX_ORDER_JOB, false),
        (keys::PLATFORM_FEE, true),
        (keys::PREFIX_OVERDUE, false),
        (keys::PREFIX_DESTRUCTION_QUEUE, false),
        (keys::PREFIX_ATTESTATION_COUNT, false),
        (keys::VALIDATORS_LATEST, true),
        (keys::AGENCY_COUNT, true),
        (keys::CHAIN_ID, true),
        (keys::PREFIX_KEY_BINDING, false),
        (keys::PREFIX_NONCE, false),
        (keys::PREFIX_RESPONSE, false),
        (keys::PREFIX_SUBJECT_KEY, false),
        (keys::PREFIX_APPROVAL, false),
        (keys::PREFIX_POLICY_VERSION, false),
        (keys::PREFIX_VALIDATOR_UPDATE, false),
    ];
    // A month later a block start reports the due destruction overdue (and takes it off the
    // queue): the overdue report's seed comes from that later state.
    let mut later = w.st.clone();
    let ctx = BlockContext {
        chain_id: CHAIN.into(),
        height: w.height + 1,
        time_ms: T0_MS + 31 * lifecycle::DAY_MS,
    };
    let events = begin_block(&mut later, &ctx);
    assert!(events.iter().any(|e| e.kind == "lifecycle.destruction_overdue"), "{events:?}");
    let overdue: Vec<(&[u8], &[u8])> = later.scan(keys::PREFIX_OVERDUE).collect();
    assert_eq!(overdue.len(), 1);
    let mut values = Vec::new();
    let now = w.st.map.iter().map(|(k, v)| (k.as_slice(), v.as_slice()));
    for (key, value) in now.chain(overdue) {
        let Some(selector) = selectors
            .iter()
            .position(|(p, exact)| if *exact { key == *p } else { key.starts_with(p) })
        else {
            continue;
        };
        assert!(render(key, value).is_some(), "{}", String::from_utf8_lossy(key));
        assert!(render_in(&w.st, key, value).is_some(), "{}", String::from_utf8_lossy(key));
        // A destruction-queue entry is all key: its seed is the rest of the key.
        let (prefix, _) = selectors[selector];
        let body =
            if prefix == keys::PREFIX_DESTRUCTION_QUEUE { &key[prefix.len()..] } else { value };
        values.push((
            format!("value-{selector}-{}", values.len()),
            [&[selector as u8], body].concat(),
        ));
    }
    let kinds: std::collections::BTreeSet<u8> = values.iter().map(|(_, v)| v[0]).collect();
    assert!(kinds.len() >= 12, "values of only {kinds:?}");
    assert!(kinds.contains(&19) && kinds.contains(&20), "a job and its order's marker");
    // The fee, an overdue report, a queued destruction, an attestation count.
    assert!((21..=24).all(|k| kinds.contains(&k)), "values of only {kinds:?}");
    for (i, receipt) in w.receipts.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let bytes = receipt.encode();
        assert_eq!(&Receipt::decode(&bytes).unwrap(), receipt);
        values.push((format!("receipt-{i}"), [&[0], bytes.as_slice()].concat()));
    }
    write_seeds("render", &values);
}
