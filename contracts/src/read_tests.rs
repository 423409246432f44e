//! The read policy's table, row by row, with hostile cases: strangers, rotated-out keys,
//! barred supervisors, undecodable records, governance changing who supervises.

use dpx_crypto::{Hash, Keypair, PublicKey};

use super::*;
use crate::codec::encode;
use crate::grants::{Grant, SignedGrant};
use crate::products::{ProductConditions, ProductSpec};
use crate::receipt::{DecisionReceipt, Event};
use crate::types::{Category, DemandStatus, GrantState, ListStatus, OrderStatus, SubjectStatus};
use crate::{GenesisAgency, GenesisApp, MemState, Params, Validator, init_genesis};

const CHAIN: &str = "dpx-read";

fn k(seed: u8) -> PublicKey {
    Keypair::from_seed([seed; 32]).public()
}

const AGENCY: u8 = 1;
const REGULATOR: u8 = 2;
const AUDITOR: u8 = 3;
const PROVIDER: u8 = 4;
const BUYER: u8 = 5;
const STRANGER: u8 = 6;
const SUBJECT: u8 = 7;
const OTHER_SUBJECT: u8 = 8;
const SUSPENDED_REGULATOR: u8 = 9;
const ROTATED: u8 = 10;
const ROTATED_NEW: u8 = 11;
const BANK: u8 = 12;
const OTHER_BANK: u8 = 13;

fn participant(seed: u8, roles: &[Role]) -> Participant {
    Participant {
        account: k(seed),
        current_key: k(seed),
        name: format!("p{seed}"),
        roles: roles.to_vec(),
        rating: 3,
        list_status: ListStatus::Normal,
        suspended: false,
        suspension_reason: String::new(),
        admitted_by: k(AGENCY),
        admitted_height: 1,
        updated_height: 1,
    }
}

fn put_participant(st: &mut MemState, p: &Participant) {
    st.put(keys::participant(&p.account), encode(p));
}

fn product(listed: bool) -> Product {
    Product {
        id: ProductId(Hash::digest(b"product")),
        provider: k(PROVIDER),
        spec: ProductSpec {
            name: "cv check".into(),
            category: Category::DataService,
            domain: "hr".into(),
            grade: 3,
            price: 10,
            terms_hash: Hash::ZERO,
            conditions: ProductConditions {
                min_consumer_rating: 0,
                whitelist_only: false,
                purposes: Vec::new(),
            },
            retention_days: None,
        },
        listed,
        listed_height: 1,
        updated_height: 1,
        version: 1,
    }
}

/// The pseudonymous id of the data subject whose key is `k(seed)`.
fn sid(seed: u8) -> SubjectId {
    SubjectId(Hash::digest(&[b's', seed]))
}

fn the_grant() -> Grant {
    Grant {
        serial: Hash::digest(b"serial"),
        subject: sid(SUBJECT),
        key: k(SUBJECT),
        epoch: 0,
        consumer: k(BUYER),
        product: product(true).id,
        purpose: "hiring-check".into(),
        expires_at_ms: 1_800_000_000_000,
    }
}

fn grant_id() -> GrantId {
    the_grant().id()
}

fn grant_record() -> GrantRecord {
    let sg: SignedGrant = the_grant().sign(&Keypair::from_seed([SUBJECT; 32]), CHAIN);
    GrantRecord {
        grant: Some(sg),
        subject: sid(SUBJECT),
        state: GrantState::Consumed,
        state_height: 5,
        state_time_ms: 5_000,
        registered_height: 4,
    }
}

/// Enrol `k(seed)` as the current key of subject `sid(seed)`.
fn put_subject(st: &mut MemState, seed: u8) {
    let subject = Subject {
        id: sid(seed),
        key: k(seed),
        registrar: k(AGENCY),
        enrolled_height: 1,
        enrolled_time_ms: 1_000,
        grant_epoch: 0,
        status: SubjectStatus::Active,
        updated_height: 1,
    };
    st.put(keys::subject(&subject.id), encode(&subject));
    st.put(keys::subject_key(&k(seed)), subject.id.0.0.to_vec());
}

fn usage() -> UsageReceipt {
    UsageReceipt {
        grant: grant_id(),
        subject: sid(SUBJECT),
        consumer: k(BUYER),
        product: product(true).id,
        purpose: "hiring-check".into(),
        height: 5,
        time_ms: 5_000,
        request_hash: Hash::ZERO,
        tx_hash: Hash::digest(b"tx"),
    }
}

fn order() -> Order {
    Order {
        id: OrderId(Hash::digest(b"order")),
        product: product(true).id,
        buyer: k(BUYER),
        provider: k(PROVIDER),
        price: 10,
        status: OrderStatus::Ordered,
        delivery_hash: None,
        settlement_amount: None,
        dispute_reason_hash: None,
        grant: Some(grant_id()),
        demand: None,
        purpose: "verify CV".into(),
        ordered_height: 5,
        updated_height: 5,
        escrow: 0,
        fee_basis_points: None,
        fee_amount: None,
        refund_amount: None,
        terms_hash: Hash::ZERO,
    }
}

fn account() -> crate::Account {
    crate::Account { owner: k(BUYER), balance: 500, banks: vec![k(BANK)], updated_height: 3 }
}

fn bank_record() -> crate::BankRecord {
    crate::BankRecord {
        bank: k(BANK),
        account: k(BUYER),
        kind: crate::BankRecordKind::Deposit,
        amount: 500,
        reference: "wire-1".into(),
        height: 3,
        tx_hash: Hash::ZERO,
    }
}

fn demand() -> Demand {
    Demand {
        id: DemandId(Hash::digest(b"demand")),
        poster: k(BUYER),
        title: "need data".into(),
        domain: "hr".into(),
        budget: 5,
        description_hash: Hash::ZERO,
        deadline_ms: None,
        status: DemandStatus::Open,
        responses: 1,
        awarded_to: None,
        posted_height: 2,
        updated_height: 2,
    }
}

/// A chain with the default policies and one participant of each kind, and one record of
/// each private kind.
fn world() -> MemState {
    let mut st = MemState::new();
    let app = GenesisApp {
        agencies: vec![GenesisAgency { name: "agency".into(), key: k(AGENCY) }],
        validators: vec![Validator { key: k(AGENCY), power: 1, name: "v".into() }],
        policies: None,
        params: Params::default(),
        currency: crate::Currency::default(),
        platform_fee_basis_points: 0,
    };
    init_genesis(&mut st, CHAIN, &app).unwrap();
    for (seed, roles) in [
        (REGULATOR, &[Role::Regulator][..]),
        (AUDITOR, &[Role::Auditor]),
        (PROVIDER, &[Role::Provider]),
        (BUYER, &[Role::Consumer]),
        (STRANGER, &[Role::Consumer, Role::Provider]),
        (BANK, &[Role::SettlementBank]),
        (OTHER_BANK, &[Role::SettlementBank]),
    ] {
        put_participant(&mut st, &participant(seed, roles));
    }
    let mut barred = participant(SUSPENDED_REGULATOR, &[Role::Regulator]);
    barred.suspended = true;
    put_participant(&mut st, &barred);
    // An auditor that rotated to a new key: the old key binds nothing any more.
    let mut rotated = participant(ROTATED, &[Role::Auditor]);
    rotated.current_key = k(ROTATED_NEW);
    put_participant(&mut st, &rotated);
    st.put(keys::key_binding(&k(ROTATED_NEW)), k(ROTATED).as_bytes().to_vec());
    put_subject(&mut st, SUBJECT);
    put_subject(&mut st, OTHER_SUBJECT);
    let prod = product(true);
    st.put(keys::product(&prod.id), encode(&prod));
    st.put(keys::grant(&grant_id()), encode(&grant_record()));
    st.put(keys::usage(&grant_id()), encode(&usage()));
    let o = order();
    st.put(keys::order(&o.id), encode(&o));
    let d = demand();
    st.put(keys::demand(&d.id), encode(&d));
    st.put(keys::account(&k(BUYER)), encode(&account()));
    st.put(keys::bank_record(&k(BANK), "wire-1"), encode(&bank_record()));
    st.put(keys::TREASURY.to_vec(), encode(&crate::Treasury::default()));
    st
}

fn v(st: &MemState, seed: u8) -> Viewer {
    viewer(st, &k(seed))
}

#[test]
fn viewers_are_told_apart_and_supervision_is_the_policys() {
    let st = world();
    assert!(v(&st, REGULATOR).is_supervisor());
    assert!(v(&st, AUDITOR).is_supervisor());
    // Agencies run the chain but do not read people's grants (the default policy).
    assert!(!v(&st, AGENCY).is_supervisor());
    assert!(!v(&st, PROVIDER).is_supervisor());
    // A suspended regulator is denied by `suspended-denied`.
    let barred = v(&st, SUSPENDED_REGULATOR);
    assert!(!barred.is_supervisor());
    assert!(matches!(barred, Viewer::Participant { active: false, .. }));
    // An enrolled subject's current key is a subject; a key nobody holds is anonymous.
    assert_eq!(v(&st, SUBJECT), Viewer::Subject(k(SUBJECT)));
    assert_eq!(viewer(&st, &k(99)), Viewer::Anonymous);
    // A rotated-out key has no rights; the new key has the account's.
    assert_eq!(v(&st, ROTATED), Viewer::Anonymous);
    let new = v(&st, ROTATED_NEW);
    assert!(new.is_supervisor());
    assert_eq!(new.identities(), vec![k(ROTATED), k(ROTATED_NEW)]);
}

/// Standing (what the RPC's replay caches sort keys by) is a viewer other than `Anonymous`:
/// every participant's and enrolled subject's current key has it, suspended or not; a
/// rotated-out key and a stranger's do not.
#[test]
fn only_current_keys_of_participants_and_subjects_have_standing() {
    let st = world();
    let with = [REGULATOR, AUDITOR, AGENCY, PROVIDER, SUSPENDED_REGULATOR, SUBJECT, ROTATED_NEW];
    for seed in with {
        assert_ne!(v(&st, seed), Viewer::Anonymous, "seed {seed}");
    }
    for seed in [ROTATED, 99] {
        assert_eq!(v(&st, seed), Viewer::Anonymous, "seed {seed}");
    }
}

#[test]
fn governance_decides_who_supervises() {
    let mut st = world();
    let text = crate::DEFAULT_POLICIES.replace(
        "principal.roles.contains(\"regulator\") || principal.roles.contains(\"auditor\")",
        "principal.roles.contains(\"regulator\")",
    );
    assert_ne!(text, crate::DEFAULT_POLICIES, "the supervisors-read policy changed shape");
    let rec =
        crate::PolicySetRecord { version: 2, hash: Hash::digest(text.as_bytes()), text, height: 9 };
    st.put(keys::POLICY_CURRENT.to_vec(), encode(&rec));
    assert!(v(&st, REGULATOR).is_supervisor());
    assert!(!v(&st, AUDITOR).is_supervisor(), "auditors no longer supervise");
}

/// Who sees each record: (record key, value) against every viewer.
#[test]
fn the_table() {
    let st = world();
    let anon = Viewer::Anonymous;
    let viewers = [
        ("anonymous", anon.clone()),
        ("stranger", v(&st, STRANGER)),
        ("subject", v(&st, SUBJECT)),
        ("other subject", v(&st, OTHER_SUBJECT)),
        ("buyer", v(&st, BUYER)),
        ("provider", v(&st, PROVIDER)),
        ("regulator", v(&st, REGULATOR)),
        ("auditor", v(&st, AUDITOR)),
        ("barred regulator", v(&st, SUSPENDED_REGULATOR)),
        ("rotated-out auditor key", v(&st, ROTATED)),
        ("agency", v(&st, AGENCY)),
        ("bank", v(&st, BANK)),
        ("other bank", v(&st, OTHER_BANK)),
    ];
    let get = |key: Vec<u8>| {
        let value = st.get(&key).unwrap();
        state_access(&st, &key, &value)
    };
    let delisted = {
        let p = product(false);
        state_access(&st, &keys::product(&p.id), &encode(&p))
    };
    let rows: Vec<(&str, Access, &[&str])> = vec![
        ("participant", get(keys::participant(&k(BUYER))), &["*"]),
        ("policy", get(keys::POLICY_CURRENT.to_vec()), &["*"]),
        ("params", get(keys::PARAMS.to_vec()), &["*"]),
        ("listed product", get(keys::product(&product(true).id)), &["*"]),
        (
            "delisted product",
            delisted,
            &[
                "stranger",
                "buyer",
                "provider",
                "regulator",
                "auditor",
                "agency",
                "bank",
                "other bank",
            ],
        ),
        (
            "demand",
            get(keys::demand(&demand().id)),
            &[
                "stranger",
                "buyer",
                "provider",
                "regulator",
                "auditor",
                "agency",
                "bank",
                "other bank",
            ],
        ),
        ("grant", get(keys::grant(&grant_id())), &["subject", "buyer", "regulator", "auditor"]),
        (
            "usage",
            get(keys::usage(&grant_id())),
            &["subject", "buyer", "provider", "regulator", "auditor"],
        ),
        (
            "order",
            get(keys::order(&order().id)),
            &["subject", "buyer", "provider", "regulator", "auditor"],
        ),
        // A bank sees the accounts it recorded transfers for, never another's.
        (
            "account",
            get(keys::account(&k(BUYER))),
            &["buyer", "regulator", "auditor", "agency", "bank"],
        ),
        (
            "bank record",
            get(keys::bank_record(&k(BANK), "wire-1")),
            &["buyer", "regulator", "auditor", "agency", "bank"],
        ),
        (
            "treasury",
            get(keys::TREASURY.to_vec()),
            &[
                "stranger",
                "buyer",
                "provider",
                "regulator",
                "auditor",
                "agency",
                "bank",
                "other bank",
            ],
        ),
        ("currency", state_access(&st, keys::CURRENCY, &[]), &["*"]),
    ];
    for (what, access, allowed) in rows {
        for (who, viewer) in &viewers {
            let want = allowed == ["*"] || allowed.contains(who);
            assert_eq!(viewer.may(&access), want, "{who} reading a {what} ({access:?})");
        }
    }
}

#[test]
fn absent_and_undecodable_records_fail_closed() {
    let st = world();
    let stranger = v(&st, STRANGER);
    let regulator = v(&st, REGULATOR);
    let missing_grant = keys::grant(&GrantId(Hash::digest(b"nope")));
    assert_eq!(absent_access(&missing_grant), Access::Supervisors);
    assert!(!stranger.may(&absent_access(&missing_grant)));
    assert!(regulator.may(&absent_access(&missing_grant)));
    assert_eq!(absent_access(&keys::participant(&k(99))), Access::Public);
    assert_eq!(absent_access(&keys::product(&product(true).id)), Access::Participants);
    for key in [
        keys::grant(&grant_id()),
        keys::usage(&grant_id()),
        keys::order(&order().id),
        keys::product(&product(true).id),
        keys::demand(&demand().id),
        b"unknown/kind".to_vec(),
    ] {
        assert_eq!(state_access(&st, &key, b"\xff\xff garbage"), Access::Supervisors, "{key:?}");
    }
}

#[test]
fn responses_and_attestations_follow_their_objects() {
    let mut st = world();
    let r = DemandResponse {
        demand: demand().id,
        responder: k(PROVIDER),
        product: None,
        price: 3,
        proposal_hash: Hash::ZERO,
        height: 3,
    };
    assert_eq!(
        state_access(&st, &keys::response(&r.demand, &r.responder), &encode(&r)),
        Access::Parties(BTreeSet::from([k(PROVIDER), k(BUYER)]))
    );
    let a = Attestation {
        target: AttestTarget::Grant(grant_id()),
        stage: crate::Stage::Destroyed,
        hash: Hash::ZERO,
        attester: k(BUYER),
        height: 7,
        tx_hash: Hash::ZERO,
        seq: 0,
        review: None,
    };
    let (tag, id) = a.target.key_parts();
    st.put(keys::attestation(tag, &id, 0), encode(&a));
    let Access::Parties(p) = state_access(&st, &keys::attestation(tag, &id, 0), &encode(&a)) else {
        panic!("attestations are party records")
    };
    assert_eq!(p, BTreeSet::from([k(BUYER), k(SUBJECT), k(PROVIDER)]));
    let count = keys::attestation_count(tag, &id);
    assert_eq!(state_access(&st, &count, &1u32.to_be_bytes()), Access::Parties(p));
    assert_eq!(
        state_access(&st, &keys::attestation_count(b'z', &id), &[0; 4]),
        Access::Supervisors
    );
}

#[test]
fn transaction_parties() {
    let st = world();
    let signer = k(BUYER);
    // Named by id: the order's parties come from state, the grant's subject included.
    let accept = Operation::AcceptOrder { order: order().id };
    assert_eq!(
        tx_parties(&st, &k(PROVIDER), Some(&accept), None),
        BTreeSet::from([k(PROVIDER), k(BUYER), k(SUBJECT)])
    );
    // Without state the receipt's events still name the parties.
    let receipt = Receipt {
        tx_hash: Hash::ZERO,
        code: crate::Code::Ok,
        reason: String::new(),
        events: vec![
            Event::new("grant.consumed")
                .attr("subject", sid(SUBJECT))
                .attr("consumer", k(BUYER))
                .attr("product", product(true).id)
                .attr("purpose", "not a key"),
        ],
        decision: Some(DecisionReceipt {
            action: "use_grant".into(),
            principal: k(BUYER),
            resource: String::new(),
            allowed: true,
            policy_version: 1,
            policy_hash: Hash::ZERO,
            determining: Vec::new(),
            reason: String::new(),
        }),
    };
    let use_by_id = Operation::UseGrant {
        grant: GrantRef::Id(grant_id()),
        subject: sid(SUBJECT),
        product: product(true).id,
        purpose: "verify CV".into(),
        request_hash: Hash::ZERO,
    };
    let none = MemState::new();
    // Without state the receipt names the consumer; the subject (named by id) needs state.
    assert_eq!(
        tx_parties(&none, &signer, Some(&use_by_id), Some(&receipt)),
        BTreeSet::from([k(BUYER)])
    );
    assert_eq!(
        tx_parties(&st, &signer, Some(&use_by_id), Some(&receipt)),
        BTreeSet::from([k(BUYER), k(SUBJECT), k(PROVIDER)])
    );
    // A subject id is never read as a key, even one whose bytes are a valid key.
    let lookalike = SubjectId(Hash(k(STRANGER).to_bytes()));
    let odd = Receipt {
        events: vec![Event::new("grant.consumed").attr("subject", lookalike)],
        ..receipt.clone()
    };
    assert!(!tx_parties(&none, &signer, None, Some(&odd)).contains(&k(STRANGER)));
    assert_eq!(
        tx_parties(&st, &signer, Some(&use_by_id), None),
        BTreeSet::from([k(BUYER), k(SUBJECT), k(PROVIDER)])
    );
    // An undecodable body: the signer only.
    assert_eq!(tx_parties(&st, &signer, None, None), BTreeSet::from([signer]));
    // A stranger is party to none of these.
    let stranger = v(&st, STRANGER);
    assert!(!stranger.may(&Access::Parties(tx_parties(&st, &signer, Some(&use_by_id), None))));
    assert!(v(&st, SUBJECT).may(&Access::Parties(tx_parties(&st, &signer, Some(&accept), None))));
}

#[test]
fn the_policy_is_deterministic() {
    let a = world();
    let b = world();
    for seed in [AGENCY, REGULATOR, STRANGER, SUBJECT, ROTATED] {
        assert_eq!(v(&a, seed), v(&b, seed));
    }
    let key = keys::order(&order().id);
    let val = a.get(&key).unwrap();
    assert_eq!(state_access(&a, &key, &val), state_access(&b, &key, &val));
}

const NODE: u8 = 14;

fn job() -> crate::Job {
    crate::Job {
        id: crate::JobId(Hash::digest(b"job")),
        consumer: k(BUYER),
        compute_node: k(NODE),
        products: vec![product(true).id],
        providers: vec![k(PROVIDER)],
        authorities: vec![crate::JobAuthority::Grant(grant_id())],
        purpose: "audit".into(),
        code_hash: Hash::digest(b"code"),
        status: crate::JobStatus::Requested,
        requested_height: 7,
        requested_time_ms: 7_000,
        input_commitments: Vec::new(),
        result_hash: None,
        inputs_destroyed: false,
        attested_height: None,
        attestation_tx: None,
        received_height: None,
        reject_reason_hash: None,
        updated_height: 7,
    }
}

/// A compute job, its order marker and its transactions: the consumer, the compute node, the
/// providers, the grant's subject, and supervisors; no other participant, not another node.
#[test]
fn jobs_are_for_their_parties() {
    let mut st = world();
    put_participant(&mut st, &participant(NODE, &[Role::ComputeNode]));
    let j = job();
    st.put(keys::job(&j.id), encode(&j));
    let marker = keys::order_job(&order().id);
    st.put(marker.clone(), j.id.0.as_bytes().to_vec());
    let allowed = ["buyer", "node", "provider", "subject", "regulator", "auditor"];
    let viewers = [
        ("anonymous", Viewer::Anonymous),
        ("stranger", v(&st, STRANGER)),
        ("subject", v(&st, SUBJECT)),
        ("other subject", v(&st, OTHER_SUBJECT)),
        ("buyer", v(&st, BUYER)),
        ("provider", v(&st, PROVIDER)),
        ("node", v(&st, NODE)),
        ("regulator", v(&st, REGULATOR)),
        ("auditor", v(&st, AUDITOR)),
        ("agency", v(&st, AGENCY)),
        ("bank", v(&st, BANK)),
    ];
    for key in [keys::job(&j.id), marker] {
        let access = state_access(&st, &key, &st.get(&key).unwrap());
        for (who, viewer) in &viewers {
            assert_eq!(viewer.may(&access), allowed.contains(who), "{who} reading {key:?}");
        }
    }
    // Undecodable, absent: supervisors only.
    assert_eq!(state_access(&st, &keys::job(&j.id), b"\xff garbage"), Access::Supervisors);
    assert_eq!(absent_access(&keys::job(&j.id)), Access::Supervisors);
    // The job's transactions name the same parties, from the state or from the receipt.
    let op = Operation::CancelJob { job: j.id };
    let parties = tx_parties(&st, &k(BUYER), Some(&op), None);
    assert_eq!(parties, BTreeSet::from([k(BUYER), k(NODE), k(PROVIDER), k(SUBJECT)]));
    let receipt = Receipt {
        tx_hash: Hash::ZERO,
        code: crate::Code::Ok,
        reason: String::new(),
        events: vec![
            Event::new("job.attested")
                .attr("job", j.id)
                .attr("consumer", k(BUYER))
                .attr("compute_node", k(NODE)),
        ],
        decision: None,
    };
    let parties = tx_parties(&MemState::new(), &k(NODE), None, Some(&receipt));
    assert_eq!(parties, BTreeSet::from([k(BUYER), k(NODE)]));
}
