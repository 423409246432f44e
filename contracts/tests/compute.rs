//! Computations whose data stays invisible (issue 18, part 4): a compute node admitted by
//! governance runs a job over products' data for a consumer who receives only the result.
//! Every path: the whole job, each unauthorised request, the node's attestation and its
//! refusals, cancellation and rejection, the read policy, policies that make a product
//! compute-only, and determinism.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::read::{Access, state_access, tx_parties, viewer};
use dpx_contracts::*;
use dpx_crypto::{Hash, Keypair, PublicKey};

const MINUTE_MS: u64 = 60_000;

/// A market: a provider rated 4 with an open grade-2 product and a grade-4 product, a funded
/// consumer, a compute node admitted by governance, and an enrolled data subject.
struct Lab {
    w: World,
    provider: Keypair,
    consumer: Keypair,
    node: Keypair,
    person: Keypair,
    sid: SubjectId,
    open: ProductId,
    restricted: ProductId,
}

fn admit_node(w: &mut World, node: &Keypair) {
    w.govern(ProposalAction::AdmitComputeNode { key: node.public(), name: "enclave".into() });
}

fn lab() -> Lab {
    let mut w = World::new();
    let (provider, consumer, node, person) = (kp(1), kp(2), kp(3), kp(4));
    w.admit(&provider, &[Role::Provider]);
    w.admit(&consumer, &[Role::Consumer]);
    w.rate(&provider.public(), 4);
    w.fund(&consumer.public(), 1_000_000);
    admit_node(&mut w, &node);
    let open = w.list(&provider, 2, ProductConditions::default());
    let restricted = w.list(&provider, 4, ProductConditions::default());
    let sid = w.enrol(&person, "person-4");
    Lab { w, provider, consumer, node, person, sid, open, restricted }
}

/// The consumer's settled order for the open product, with no purpose.
fn settled_open(env: &mut Lab) -> OrderId {
    let open = env.open;
    settled_order(env, open, "")
}

/// The consumer's order for `product`, delivered and confirmed.
fn settled_order(env: &mut Lab, product: ProductId, purpose: &str) -> OrderId {
    let (w, buyer, provider) = (&mut env.w, env.consumer.clone(), env.provider.clone());
    let oid = OrderId::derive(CHAIN, &buyer.public(), w.nonce(&buyer.public()));
    w.ok(
        &buyer,
        Operation::PlaceOrder { product, grant: None, purpose: purpose.into(), demand: None },
    );
    w.ok(&provider, Operation::AcceptOrder { order: oid });
    w.ok(&provider, Operation::DeliverOrder { order: oid, delivery_hash: Hash::digest(b"d") });
    w.ok(&buyer, Operation::ConfirmOrder { order: oid });
    oid
}

/// The person's grant number `nk` for `consumer` to use `product` for `purpose`, 5 minutes.
fn person_grant(
    env: &Lab,
    nk: u8,
    consumer: &PublicKey,
    product: ProductId,
    purpose: &str,
) -> SignedGrant {
    grant(&env.person, env.sid, nk, consumer, product, purpose, env.w.time_ms() + 5 * MINUTE_MS)
}

fn inline(sg: &SignedGrant) -> JobAuthorization {
    JobAuthorization::Grant(GrantRef::Inline(Box::new(sg.clone())))
}

fn code() -> Hash {
    Hash::digest(b"wasm: count matching records")
}

fn request(
    products: &[ProductId],
    authorizations: Vec<JobAuthorization>,
    node: &Keypair,
    purpose: &str,
) -> Operation {
    Operation::RequestJob {
        products: products.to_vec(),
        authorizations,
        compute_node: node.public(),
        purpose: purpose.into(),
        code_hash: code(),
    }
}

fn attest(job: JobId, inputs: usize, result: &[u8]) -> Operation {
    Operation::AttestJob {
        job,
        code_hash: code(),
        input_commitments: (0..inputs).map(|i| Hash::digest(&[i as u8])).collect(),
        result_hash: Hash::digest(result),
        inputs_destroyed: true,
    }
}

fn next_job(w: &World, consumer: &Keypair) -> JobId {
    JobId::derive(CHAIN, &consumer.public(), w.nonce(&consumer.public()))
}

fn job(w: &World, id: JobId) -> Job {
    w.get(&keys::job(&id)).unwrap()
}

fn totals(w: &World) -> JobTotals {
    JobTotals::from_values(w.st.scan(keys::PREFIX_JOB).map(|(_, view)| view)).unwrap()
}

/// The stateless checks' refusal of `op` signed by `who`.
fn refused_statelessly(w: &World, who: &Keypair, op: Operation) -> String {
    match check_stateless(&w.sign(who, op), CHAIN) {
        Err(TxError::InvalidOp { reason }) => reason,
        other => panic!("expected an invalid operation, got {other:?}"),
    }
}

#[test]
fn compute_nodes_are_admitted_only_by_governance() {
    let mut w = World::new();
    let node = kp(3);
    let agency = w.agency().clone();
    let op = Operation::Admit {
        key: node.public(),
        name: "enclave".into(),
        roles: vec![Role::ComputeNode],
    };
    let reason = refused_statelessly(&w, &agency, op);
    assert!(reason.contains("admit_compute_node"), "{reason}");
    admit_node(&mut w, &node);
    let prod = w.participant(&node.public());
    assert_eq!(prod.roles, [Role::ComputeNode]);
    let ev = w.events("participant.admitted").last().unwrap();
    assert_eq!(ev.get("roles"), Some("compute_node"));
    let ev = w.events("governance.executed").last().unwrap();
    assert_eq!(ev.get("kind"), Some("admit_compute_node"));
    // A key in use is refused.
    let action = w.agency().clone();
    w.fail(
        &action,
        Operation::Propose {
            action: ProposalAction::AdmitComputeNode { key: node.public(), name: "again".into() },
        },
        Code::Failed,
        "already in use",
    );
}

/// The whole path: two products (one by a settled order, one by a person's grade-4 grant),
/// attested by the node, received by the consumer. No money moves; the consumer holds no data.
#[test]
fn a_job_over_two_products_from_request_to_receipt() {
    let mut env = lab();
    let oid = settled_open(&mut env);
    let sg = person_grant(&env, 1, &env.consumer.public(), env.restricted, "audit");
    let (consumer, node) = (env.consumer.clone(), env.node.clone());
    let w = &mut env.w;
    let balances = |w: &World| [kp(1), kp(2), kp(3)].map(|k| w.balance(&k.public()));
    let before = balances(w);
    let id = next_job(w, &consumer);
    let products = [env.open, env.restricted];
    let rcpt = w.ok(
        &consumer,
        request(&products, vec![JobAuthorization::Order(oid), inline(&sg)], &node, "audit"),
    );
    let dec = rcpt.decision.as_ref().unwrap();
    assert_eq!((dec.action.as_str(), dec.allowed), ("request_job", true));
    assert!(
        dec.determining.contains(&"participants-request-jobs".to_string()),
        "{:?}",
        dec.determining
    );
    let ev = rcpt.events_of("job.requested").next().unwrap();
    assert_eq!(ev.get("job"), Some(id.to_string().as_str()));
    assert_eq!(ev.get("consumer"), Some(consumer.public().to_string().as_str()));
    assert_eq!(ev.get("compute_node"), Some(node.public().to_string().as_str()));
    assert_eq!(ev.get("provider"), Some(env.provider.public().to_string().as_str()));
    assert_eq!(ev.get("orders"), Some(oid.to_string().as_str()));
    assert_eq!(ev.get("grants"), Some(sg.grant.id().to_string().as_str()));
    // The grant is consumed by the job, exactly as use_grant consumes it.
    let used = rcpt.events_of("grant.consumed").next().unwrap();
    assert_eq!(used.get("request_hash"), Some(id.0.to_string().as_str()));
    assert_eq!(rcpt.events_of("grant.grade4_used").count(), 1);
    let usage: UsageReceipt = w.get(&keys::usage(&sg.grant.id())).unwrap();
    assert_eq!((usage.request_hash, usage.consumer), (id.0, consumer.public()));
    let rec: GrantRecord = w.get(&keys::grant(&sg.grant.id())).unwrap();
    assert_eq!(rec.state, GrantState::Consumed);
    let jb = job(w, id);
    assert_eq!(jb.status, JobStatus::Requested);
    assert_eq!(jb.products, products);
    assert_eq!(jb.providers, [env.provider.public(), env.provider.public()]);
    assert_eq!(jb.authorities, [JobAuthority::Order(oid), JobAuthority::Grant(sg.grant.id())]);
    assert_eq!(
        (jb.code_hash, jb.purpose.as_str(), jb.requested_time_ms),
        (code(), "audit", w.time_ms())
    );

    let rcpt = w.ok(&node, attest(id, 2, b"42"));
    let ev = rcpt.events_of("job.attested").next().unwrap();
    assert_eq!(ev.get("inputs_destroyed"), Some("true"));
    assert_eq!(ev.get("result_hash"), Some(Hash::digest(b"42").to_string().as_str()));
    let jb = job(w, id);
    assert_eq!(jb.status, JobStatus::Attested);
    assert!(jb.inputs_destroyed);
    assert_eq!(jb.input_commitments.len(), 2);
    assert_eq!(jb.attestation_tx, Some(rcpt.tx_hash));

    let rcpt = w.ok(&consumer, Operation::ConfirmJob { job: id, result_hash: Hash::digest(b"42") });
    assert_eq!(rcpt.events_of("job.received").count(), 1);
    let jb = job(w, id);
    assert_eq!((jb.status, jb.received_height), (JobStatus::Received, Some(w.height)));

    // No money moved, and nobody holds the data: no destruction is due for the job's grant.
    assert_eq!(balances(w), before);
    assert_conserved(&w.st);
    let gid = sg.grant.id();
    assert!(w.st.get(&keys::destruction(keys::TARGET_GRANT, &gid.0.0)).is_none());
    let collected = Operation::Attest {
        target: AttestTarget::Grant(gid),
        stage: Stage::Collected,
        hash: Hash::digest(b"x"),
    };
    w.fail(&consumer, collected, Code::Failed, "consumed by compute job");
    let tot = totals(w);
    assert_eq!(
        (tot.jobs(), tot.received, tot.inputs, tot.grant_inputs, tot.order_inputs),
        (1, 1, 2, 1, 1)
    );
    assert_eq!(tot.inputs_destroyed, 1);
    // The JSON view carries the request time in RFC 3339 too.
    let view = render(&keys::job(&id), &w.st.get(&keys::job(&id)).unwrap()).unwrap();
    assert!(view["requested_time_rfc3339"].as_str().unwrap().ends_with('Z'));
    assert_eq!(view["status"], "received");
    for (k, view) in &w.st.map {
        assert!(render(k, view).is_some(), "key {:?} does not render", String::from_utf8_lossy(k));
    }
    let marker = render(&keys::order_job(&oid), &w.st.get(&keys::order_job(&oid)).unwrap());
    assert_eq!(marker.unwrap()["job"], id.to_string());
}

/// The JSON a CLI writes for the job operations.
#[test]
fn job_operations_are_written_as_json() {
    let (prod, ord, nk, hh) = (
        ProductId(Hash::digest(b"p")),
        OrderId(Hash::digest(b"o")),
        kp(3).public(),
        Hash::digest(b"h"),
    );
    let op: Operation = serde_json::from_str(&format!(
        r#"{{"type":"request_job","products":["{prod}"],"authorizations":[{{"order":"{ord}"}}],"compute_node":"{nk}","purpose":"audit","code_hash":"{hh}"}}"#
    ))
    .unwrap();
    assert_eq!(
        op,
        Operation::RequestJob {
            products: vec![prod],
            authorizations: vec![JobAuthorization::Order(ord)],
            compute_node: nk,
            purpose: "audit".into(),
            code_hash: hh,
        }
    );
    let op: Operation = serde_json::from_str(&format!(
        r#"{{"type":"attest_job","job":"{hh}","code_hash":"{hh}","input_commitments":["{hh}"],"result_hash":"{hh}","inputs_destroyed":true}}"#
    ))
    .unwrap();
    assert_eq!(op.name(), "attest_job");
    let op: Operation = serde_json::from_str(&format!(
        r#"{{"type":"confirm_job","job":"{hh}","result_hash":"{hh}"}}"#
    ))
    .unwrap();
    assert_eq!(op, Operation::ConfirmJob { job: JobId(hh), result_hash: hh });
    let op: Operation =
        serde_json::from_str(&format!(r#"{{"type":"cancel_job","job":"{hh}"}}"#)).unwrap();
    assert_eq!(op, Operation::CancelJob { job: JobId(hh) });
    let op: Operation = serde_json::from_str(&format!(
        r#"{{"type":"reject_job","job":"{hh}","reason_hash":"{hh}"}}"#
    ))
    .unwrap();
    assert_eq!(op, Operation::RejectJob { job: JobId(hh), reason_hash: hh });
    let action: ProposalAction = serde_json::from_str(&format!(
        r#"{{"admit_compute_node":{{"key":"{nk}","name":"enclave"}}}}"#
    ))
    .unwrap();
    assert_eq!(action, ProposalAction::AdmitComputeNode { key: nk, name: "enclave".into() });
}

#[test]
fn malformed_requests_are_refused_before_a_block() {
    let env = lab();
    let (w, used, nk) = (&env.w, &env.consumer, &env.node);
    let order = || JobAuthorization::Order(OrderId(Hash::ZERO));
    let cases = [
        (request(&[], vec![], nk, "audit"), "1..=8 products"),
        (
            request(&[env.open, env.restricted], vec![order()], nk, "audit"),
            "one authorization per product",
        ),
        (request(&[env.open, env.open], vec![order(), order()], nk, "audit"), "each product once"),
        (request(&[env.open], vec![order()], nk, ""), "purpose"),
        (
            request(
                &(0..9).map(|i| ProductId(Hash::digest(&[i]))).collect::<Vec<_>>(),
                (0..9).map(|_| order()).collect(),
                nk,
                "audit",
            ),
            "more than 8",
        ),
    ];
    for (op, want) in cases {
        let got = match check_stateless(&w.sign(used, op), CHAIN) {
            Err(ev) => ev.to_string(),
            Ok(_) => panic!("accepted"),
        };
        assert!(got.contains(want), "{got} lacks {want}");
    }
    // A node that did not destroy the inputs cannot attest.
    let mut op = attest(JobId(Hash::ZERO), 1, b"r");
    if let Operation::AttestJob { inputs_destroyed, .. } = &mut op {
        *inputs_destroyed = false;
    }
    let reason = refused_statelessly(w, nk, op);
    assert!(reason.contains("inputs_destroyed must be true"), "{reason}");
    let reason = refused_statelessly(w, nk, attest(JobId(Hash::ZERO), 0, b"r"));
    assert!(reason.contains("input commitments"), "{reason}");
}

/// Every way a job can lack authority; each one changes nothing but the signer's nonce.
#[test]
fn unauthorised_jobs_are_refused() {
    let mut env = lab();
    let oid = settled_open(&mut env);
    let (consumer, node, provider) = (env.consumer.clone(), env.node.clone(), env.provider.clone());
    let stranger = kp(9);
    env.w.admit(&stranger, &[Role::Consumer]);
    let (open, restricted) = (env.open, env.restricted);
    let sg =
        |env: &Lab, nk, who: &PublicKey, prod, purpose| person_grant(env, nk, who, prod, purpose);

    // A grade-4 product is never ordered: jobs (or one person's grant) only.
    env.w.fail(
        &consumer,
        Operation::PlaceOrder {
            product: restricted,
            grant: None,
            purpose: "audit".into(),
            demand: None,
        },
        Code::Denied,
        "grade4-jobs-not-orders",
    );

    // Grants that do not authorise this job.
    let cases = [
        (sg(&env, 1, &stranger.public(), restricted, "audit"), "audit", "names consumer"),
        (sg(&env, 2, &consumer.public(), open, "audit"), "audit", "is for product"),
        (sg(&env, 3, &consumer.public(), restricted, "health-check"), "audit", "for purpose"),
        (sg(&env, 4, &consumer.public(), restricted, "research"), "research", "up to grade 2"),
    ];
    for (sg, purpose, want) in cases {
        let op = request(&[restricted], vec![inline(&sg)], &node, purpose);
        env.w.fail(&consumer, op, Code::Failed, want);
    }
    // A used grant is used: once by use_grant, never again by a job (and the other way round).
    let used = sg(&env, 5, &consumer.public(), restricted, "audit");
    env.w.ok(&consumer, use_inline(&used, b"one use"));
    env.w.fail(
        &consumer,
        request(&[restricted], vec![inline(&used)], &node, "audit"),
        Code::Failed,
        "already consumed",
    );
    let by_job = sg(&env, 6, &consumer.public(), restricted, "audit");
    env.w.ok(&consumer, request(&[restricted], vec![inline(&by_job)], &node, "audit"));
    env.w.fail(&consumer, use_inline(&by_job, b"again"), Code::Failed, "already consumed");
    // A revoked grant, by id.
    let revoked = sg(&env, 7, &consumer.public(), restricted, "audit");
    let person = env.person.clone();
    env.w.ok(&person, Operation::RegisterGrant { grant: Box::new(revoked.clone()) });
    env.w.ok(&person, Operation::RevokeGrant { serial: revoked.grant.serial });
    let by_id = JobAuthorization::Grant(GrantRef::Id(revoked.grant.id()));
    env.w.fail(
        &consumer,
        request(&[restricted], vec![by_id], &node, "audit"),
        Code::Failed,
        "revoked",
    );
    // An expired one.
    let late = grant(
        &env.person,
        env.sid,
        8,
        &consumer.public(),
        restricted,
        "audit",
        env.w.time_ms() - 1,
    );
    env.w.fail(
        &consumer,
        request(&[restricted], vec![inline(&late)], &node, "audit"),
        Code::Failed,
        "expired",
    );

    // Orders that do not authorise this job.
    let by_order = |ord| vec![JobAuthorization::Order(ord)];
    env.w.fail(
        &stranger,
        request(&[open], by_order(oid), &node, "audit"),
        Code::Failed,
        "not the consumer's own",
    );
    let other = env.w.list(&provider, 1, ProductConditions::default());
    env.w.fail(
        &consumer,
        request(&[other], by_order(oid), &node, "audit"),
        Code::Failed,
        "is for product",
    );
    let pending = OrderId::derive(CHAIN, &consumer.public(), env.w.nonce(&consumer.public()));
    env.w.ok(
        &consumer,
        Operation::PlaceOrder { product: other, grant: None, purpose: "risk".into(), demand: None },
    );
    env.w.fail(
        &consumer,
        request(&[other], by_order(pending), &node, "audit"),
        Code::Failed,
        "delivered, confirmed or settled",
    );
    env.w.fail(
        &consumer,
        request(&[open], by_order(OrderId(Hash::ZERO)), &node, "audit"),
        Code::Failed,
        "not found",
    );
    let risk = settled_order(&mut env, other, "risk");
    env.w.fail(
        &consumer,
        request(&[other], by_order(risk), &node, "audit"),
        Code::Failed,
        "is for purpose \"risk\"",
    );
    // One job per order.
    let first = next_job(&env.w, &consumer);
    env.w.ok(&consumer, request(&[open], by_order(oid), &node, "audit"));
    let rcpt = env.w.fail(
        &consumer,
        request(&[open], by_order(oid), &node, "audit"),
        Code::Failed,
        "already authorises job",
    );
    assert!(rcpt.reason.contains(&first.to_string()), "{}", rcpt.reason);

    // The compute node must be an admitted compute node in good standing, and not the consumer.
    let oid2 = settled_order(&mut env, open, "");
    env.w.fail(
        &consumer,
        request(&[open], by_order(oid2), &provider, "audit"),
        Code::Failed,
        "is not a compute node",
    );
    env.w.fail(
        &consumer,
        request(&[open], by_order(oid2), &kp(77), "audit"),
        Code::Failed,
        "compute node",
    );
    env.w.fail(&node, request(&[open], by_order(oid2), &node, "audit"), Code::Failed, "for itself");
    let op = env.w.operator.clone();
    env.w
        .ok(&op, Operation::Suspend { participant: node.public(), reason: "audit finding".into() });
    env.w.fail(
        &consumer,
        request(&[open], by_order(oid2), &node, "audit"),
        Code::Failed,
        "suspended or negative-listed",
    );
    env.w.ok(&op, Operation::Reinstate { participant: node.public() });

    // The product's own rules, per product: a provider out of business, a whitelist.
    env.w.ok(&op, Operation::Suspend { participant: provider.public(), reason: "r".into() });
    env.w.fail(
        &consumer,
        request(&[open], by_order(oid2), &node, "audit"),
        Code::Failed,
        "provider_suspended",
    );
    env.w.ok(&op, Operation::Reinstate { participant: provider.public() });
    let white =
        env.w.list(&provider, 2, ProductConditions { whitelist_only: true, ..Default::default() });
    let wg = sg(&env, 9, &consumer.public(), white, "research");
    let rcpt = env.w.fail(
        &consumer,
        request(&[white], vec![inline(&wg)], &node, "research"),
        Code::Denied,
        "whitelist-only-products",
    );
    assert_eq!(rcpt.decision.as_ref().unwrap().action, "request_job");
    assert_eq!(rcpt.events_of("policy.denied").count(), 1);
    // The denied job consumed nothing: the grant is still unknown to the ledger.
    assert!(env.w.st.get(&keys::grant(&wg.grant.id())).is_none());
    // A negative-listed consumer asks for nothing.
    let reg = env.w.regulator.clone();
    env.w.ok(
        &reg,
        Operation::SetListStatus {
            participant: consumer.public(),
            status: ListStatus::NegativeListed,
        },
    );
    env.w.fail(
        &consumer,
        request(&[open], by_order(oid2), &node, "audit"),
        Code::Denied,
        "negative-listed-denied",
    );
    // Only two jobs exist: the grant's and the first order's.
    assert_eq!(totals(&env.w).requested, 2);
}

#[test]
fn only_the_jobs_compute_node_attests_and_only_what_was_asked() {
    let mut env = lab();
    let (consumer, node) = (env.consumer.clone(), env.node.clone());
    let other_node = kp(5);
    admit_node(&mut env.w, &other_node);
    let oid = settled_open(&mut env);
    let w = &mut env.w;
    let id = next_job(w, &consumer);
    w.ok(&consumer, request(&[env.open], vec![JobAuthorization::Order(oid)], &node, "research"));
    let confirm = |rcpt: &[u8]| Operation::ConfirmJob { job: id, result_hash: Hash::digest(rcpt) };

    w.fail(&consumer, confirm(b"r"), Code::Failed, "needs attested");
    w.fail(&consumer, attest(id, 1, b"r"), Code::Failed, "compute node may attest_job");
    w.fail(&other_node, attest(id, 1, b"r"), Code::Failed, "compute node may attest_job");
    let mut other_code = attest(id, 1, b"r");
    if let Operation::AttestJob { code_hash, .. } = &mut other_code {
        *code_hash = Hash::digest(b"something else");
    }
    w.fail(&node, other_code, Code::Failed, "asked for code");
    w.fail(&node, attest(id, 2, b"r"), Code::Failed, "one input commitment each, 2 given");
    w.fail(&node, attest(JobId(Hash::ZERO), 1, b"r"), Code::Failed, "not found");
    // A suspended node attests nothing (policy), until reinstated.
    let op = w.operator.clone();
    w.ok(&op, Operation::Suspend { participant: node.public(), reason: "r".into() });
    w.fail(&node, attest(id, 1, b"r"), Code::Denied, "suspended-denied");
    w.ok(&op, Operation::Reinstate { participant: node.public() });

    w.ok(&node, attest(id, 1, b"r"));
    w.fail(&node, attest(id, 1, b"r"), Code::Failed, "is attested");
    w.fail(&node, Operation::CancelJob { job: id }, Code::Failed, "consumer may cancel_job");
    w.fail(&consumer, Operation::CancelJob { job: id }, Code::Failed, "needs requested");
    w.fail(
        &consumer,
        Operation::RejectJob { job: id, reason_hash: Hash::ZERO },
        Code::Failed,
        "compute node may reject_job",
    );
    w.fail(&node, confirm(b"r"), Code::Failed, "consumer may confirm_job");
    w.fail(&consumer, confirm(b"not it"), Code::Failed, "is not the result attested");
    w.ok(&consumer, confirm(b"r"));
    w.fail(&consumer, confirm(b"r"), Code::Failed, "is received");
    // Once attested, the order never authorises another job.
    w.fail(
        &consumer,
        request(&[env.open], vec![JobAuthorization::Order(oid)], &node, "research"),
        Code::Failed,
        "already authorises",
    );
}

#[test]
fn cancelled_and_rejected_jobs_free_their_orders_not_their_grants() {
    let mut env = lab();
    let (consumer, node) = (env.consumer.clone(), env.node.clone());
    let oid = settled_open(&mut env);
    let sg = person_grant(&env, 1, &consumer.public(), env.restricted, "audit");
    let products = [env.open, env.restricted];
    let w = &mut env.w;
    let id = next_job(w, &consumer);
    w.ok(
        &consumer,
        request(&products, vec![JobAuthorization::Order(oid), inline(&sg)], &node, "audit"),
    );
    let rcpt = w.ok(&consumer, Operation::CancelJob { job: id });
    assert_eq!(rcpt.events_of("job.cancelled").count(), 1);
    assert_eq!(job(w, id).status, JobStatus::Cancelled);
    w.fail(&node, attest(id, 2, b"r"), Code::Failed, "is cancelled");
    // The grant was used by the request: one use.
    let g2 = JobAuthorization::Grant(GrantRef::Id(sg.grant.id()));
    w.fail(
        &consumer,
        request(&products, vec![JobAuthorization::Order(oid), g2], &node, "audit"),
        Code::Failed,
        "already consumed",
    );
    // The order is free again: a new job may use it, and the node may reject that one.
    let again = next_job(w, &consumer);
    w.ok(&consumer, request(&[products[0]], vec![JobAuthorization::Order(oid)], &node, "audit"));
    let rcpt =
        w.ok(&node, Operation::RejectJob { job: again, reason_hash: Hash::digest(b"too big") });
    let ev = rcpt.events_of("job.rejected").next().unwrap();
    assert_eq!(ev.get("reason_hash"), Some(Hash::digest(b"too big").to_string().as_str()));
    let jb = job(w, again);
    assert_eq!(
        (jb.status, jb.reject_reason_hash),
        (JobStatus::Rejected, Some(Hash::digest(b"too big")))
    );
    w.fail(&consumer, Operation::CancelJob { job: again }, Code::Failed, "is rejected");
    let third = next_job(w, &consumer);
    w.ok(&consumer, request(&[products[0]], vec![JobAuthorization::Order(oid)], &node, "audit"));
    let tot = totals(w);
    assert_eq!((tot.cancelled, tot.rejected, tot.requested, tot.jobs()), (1, 1, 1, 3));
    assert_eq!(job(w, third).status, JobStatus::Requested);
}

/// Who sees a job: its consumer, its compute node, its products' providers, the subjects of
/// the grants it consumed, and supervisors; nobody else.
#[test]
fn a_job_is_seen_by_its_parties_and_supervisors_only() {
    let mut env = lab();
    let (consumer, node) = (env.consumer.clone(), env.node.clone());
    let stranger = kp(9);
    env.w.admit(&stranger, &[Role::Consumer]);
    let other_node = kp(5);
    admit_node(&mut env.w, &other_node);
    let sg = person_grant(&env, 1, &consumer.public(), env.restricted, "audit");
    let w = &mut env.w;
    let id = next_job(w, &consumer);
    let rcpt = w.ok(&consumer, request(&[env.restricted], vec![inline(&sg)], &node, "audit"));
    let key = keys::job(&id);
    let value = w.st.get(&key).unwrap();
    let access = state_access(&w.st, &key, &value);
    let sees = |who: &Keypair| viewer(&w.st, &who.public()).may(&access);
    for who in [&consumer, &node, &env.provider, &env.person, &w.regulator, &w.auditor] {
        assert!(sees(who), "{}", who.public());
    }
    for who in [&stranger, &other_node, &w.operator, &w.bank] {
        assert!(!sees(who), "{}", who.public());
    }
    assert!(matches!(access, Access::Parties(_)));
    // The transaction too: its parties come from the operation and from the receipt alone.
    let tx = check_stateless(
        &w.sign(&consumer, request(&[env.restricted], vec![inline(&sg)], &node, "audit")),
        CHAIN,
    )
    .unwrap();
    let from_state = tx_parties(&w.st, &consumer.public(), Some(&tx.body.op), Some(&rcpt));
    let from_receipt = tx_parties(&MemState::new(), &consumer.public(), None, Some(&rcpt));
    for prod in [node.public(), env.provider.public(), env.person.public()] {
        assert!(from_state.contains(&prod));
    }
    for prod in [node.public(), env.provider.public()] {
        assert!(from_receipt.contains(&prod));
    }
    assert!(!from_state.contains(&stranger.public()));
    let rcpt = w.ok(&node, attest(id, 1, b"r"));
    let attest_op = attest(id, 1, b"r");
    let parties = tx_parties(&w.st, &node.public(), Some(&attest_op), Some(&rcpt));
    assert!(parties.contains(&consumer.public()) && parties.contains(&env.provider.public()));
    assert!(!parties.contains(&stranger.public()));
}

/// Policies decide which products are compute-only: governance forbids raw use of grade 4
/// (use_grant too), and the same person's grant then works only through a job.
#[test]
fn policies_make_products_compute_only() {
    let mut env = lab();
    let (consumer, node) = (env.consumer.clone(), env.node.clone());
    let raw = person_grant(&env, 1, &consumer.public(), env.restricted, "audit");
    let text = format!(
        "{DEFAULT_POLICIES}\n@id(\"grade4-compute-only\")\nforbid (principal, action in [Action::\"order\", Action::\"use_grant\"], resource) when {{ resource.grade >= 4 }};\n"
    );
    env.w.govern(ProposalAction::SetPolicies { text });
    env.w.fail(&consumer, use_inline(&raw, b"raw"), Code::Denied, "grade4-compute-only");
    let rcpt = env.w.ok(&consumer, request(&[env.restricted], vec![inline(&raw)], &node, "audit"));
    assert_eq!(rcpt.events_of("grant.consumed").count(), 1);
    // And a policy may keep a domain out of jobs altogether.
    let text = format!(
        "{DEFAULT_POLICIES}\n@id(\"no-finance-jobs\")\nforbid (principal, action == Action::\"request_job\", resource) when {{ resource.domain == \"finance\" }};\n"
    );
    env.w.govern(ProposalAction::SetPolicies { text });
    let sg = person_grant(&env, 2, &consumer.public(), env.restricted, "audit");
    env.w.fail(
        &consumer,
        request(&[env.restricted], vec![inline(&sg)], &node, "audit"),
        Code::Denied,
        "no-finance-jobs",
    );
    env.w.ok(&consumer, use_inline(&sg, b"raw is fine here"));
}

/// The same transactions in the same blocks give the same receipts and the same state, bit
/// for bit, on every run.
#[test]
fn jobs_are_deterministic() {
    fn run() -> (Hash, Vec<Receipt>) {
        let mut env = lab();
        let (consumer, node) = (env.consumer.clone(), env.node.clone());
        let oid = settled_open(&mut env);
        let sg = person_grant(&env, 1, &consumer.public(), env.restricted, "audit");
        let w = &mut env.w;
        let id = next_job(w, &consumer);
        let txs = vec![w.sign(
            &consumer,
            request(
                &[env.open, env.restricted],
                vec![JobAuthorization::Order(oid), inline(&sg)],
                &node,
                "audit",
            ),
        )];
        w.next_block();
        let ctx = w.ctx();
        let mut receipts = execute_block(&mut w.st, &ctx, &txs);
        let txs = vec![w.sign(&node, attest(id, 2, b"r"))];
        w.next_block();
        let ctx = w.ctx();
        receipts.extend(execute_block(&mut w.st, &ctx, &txs));
        let txs =
            vec![w.sign(
                &consumer,
                Operation::ConfirmJob { job: id, result_hash: Hash::digest(b"r") },
            )];
        w.next_block();
        let ctx = w.ctx();
        receipts.extend(execute_block(&mut w.st, &ctx, &txs));
        assert!(receipts.iter().all(Receipt::is_ok), "{receipts:?}");
        (w.st.root(), receipts)
    }
    let (action, ra) = run();
    let (b, rb) = run();
    assert_eq!(action, b);
    assert_eq!(ra, rb);
}

/// `check_stateful` keeps a job whose inline grant already expired out of the mempool.
#[test]
fn the_mempool_sees_a_jobs_inline_grants() {
    let env = lab();
    let sg = person_grant(&env, 1, &env.consumer.public(), env.restricted, "audit");
    let bytes = env
        .w
        .sign(&env.consumer, request(&[env.restricted], vec![inline(&sg)], &env.node, "audit"));
    let tx = check_stateless(&bytes, CHAIN).unwrap();
    let exp = sg.grant.expires_at_ms;
    assert!(check_stateful(&env.w.st, &tx, env.w.height, exp).is_ok());
    assert!(matches!(
        check_stateful(&env.w.st, &tx, env.w.height, exp + 1),
        Err(TxError::GrantExpired { .. })
    ));
}

/// A bad signature on one of a job's inline grants refuses the job, whatever else is fine.
#[test]
fn a_forged_inline_grant_refuses_the_job() {
    let mut env = lab();
    let (consumer, node) = (env.consumer.clone(), env.node.clone());
    let mut sg = person_grant(&env, 1, &consumer.public(), env.restricted, "audit");
    sg.signature = kp(66).sign(dpx_crypto::Domain::GRANT, CHAIN, &sg.grant.signing_bytes());
    env.w.fail(
        &consumer,
        request(&[env.restricted], vec![inline(&sg)], &node, "audit"),
        Code::Failed,
        "signature",
    );
}
