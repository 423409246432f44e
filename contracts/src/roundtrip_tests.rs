//! Round-trip property tests for every encoded type: protobuf and JSON.

use dpx_crypto::{Hash, Keypair, PublicKey, Signature};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::codec::{self, Wire};
use crate::governance::{ScheduledSet, ValidatorSet};
use crate::*;

fn key() -> impl Strategy<Value = PublicKey> {
    any::<u8>().prop_map(|s| Keypair::from_seed([s; 32]).public())
}
fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}
fn sig() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}
fn text() -> impl Strategy<Value = String> {
    "[a-z0-9 ]{1,16}"
}
fn pick<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

fn spec() -> impl Strategy<Value = ProductSpec> {
    (
        text(),
        pick(Category::ALL),
        text(),
        1u8..=4,
        any::<u64>(),
        hash(),
        0u8..=5,
        any::<bool>(),
        vec(text(), 0..3),
        option::of(1u32..=3_650),
    )
        .prop_map(
            |(name, category, domain, grade, price, terms_hash, r, w, purposes, retention_days)| {
                ProductSpec {
                    name,
                    category,
                    domain,
                    grade,
                    price,
                    terms_hash,
                    conditions: ProductConditions {
                        min_consumer_rating: r,
                        whitelist_only: w,
                        purposes,
                    },
                    retention_days,
                }
            },
        )
}

fn attest_target() -> impl Strategy<Value = AttestTarget> {
    prop_oneof![
        hash().prop_map(|h| AttestTarget::Order(OrderId(h))),
        hash().prop_map(|h| AttestTarget::Grant(GrantId(h)))
    ]
}

fn signed_grant() -> impl Strategy<Value = SignedGrant> {
    (hash(), hash(), key(), any::<u64>(), key(), hash(), text(), any::<u64>(), sig()).prop_map(
        |(serial, subject, key, epoch, consumer, product, purpose, expires_at_ms, signature)| {
            SignedGrant {
                grant: Grant {
                    serial,
                    subject: SubjectId(subject),
                    key,
                    epoch,
                    consumer,
                    product: ProductId(product),
                    purpose,
                    expires_at_ms,
                },
                signature,
            }
        },
    )
}

fn purpose() -> impl Strategy<Value = Purpose> {
    ("[a-z0-9_-]{1,32}", "[a-z ]{1,40}", 1u8..=4)
        .prop_map(|(code, description, max_grade)| Purpose { code, description, max_grade })
}

fn params() -> impl Strategy<Value = Params> {
    (vec(purpose(), 1..8), 1000u64..=86_400_000).prop_map(|(mut purposes, lifetime)| {
        purposes.sort_by(|a, b| a.code.cmp(&b.code));
        purposes.dedup_by(|a, b| a.code == b.code);
        Params { purposes, grade4_grant_lifetime_ms_max: lifetime, ..Params::default() }
    })
}

fn grant_ref() -> impl Strategy<Value = GrantRef> {
    prop_oneof![
        signed_grant().prop_map(|g| GrantRef::Inline(Box::new(g))),
        hash().prop_map(|h| GrantRef::Id(GrantId(h)))
    ]
}

fn validator() -> impl Strategy<Value = Validator> {
    (key(), any::<u64>(), text()).prop_map(|(key, power, name)| Validator { key, power, name })
}

fn proposal_action() -> impl Strategy<Value = ProposalAction> {
    prop_oneof![
        text().prop_map(|text| ProposalAction::SetPolicies { text }),
        (vec(validator(), 0..4), any::<u64>()).prop_map(|(changes, effective_height)| {
            ProposalAction::UpdateValidators { changes, effective_height }
        }),
        (1u32..100).prop_map(|n| ProposalAction::SetParams {
            params: Params { max_block_txs: n, ..Params::default() }
        }),
        (key(), text()).prop_map(|(key, name)| ProposalAction::AdmitAgency { key, name }),
        (key(), text()).prop_map(|(key, reason)| ProposalAction::SuspendAgency { key, reason }),
        key().prop_map(|key| ProposalAction::ReinstateAgency { key }),
        (key(), pick(ListStatus::ALL))
            .prop_map(|(key, status)| ProposalAction::SetAgencyListStatus { key, status }),
        (key(), text()).prop_map(|(key, name)| ProposalAction::AdmitRegistrar { key, name }),
        params().prop_map(|params| ProposalAction::SetParams { params }),
        (key(), text()).prop_map(|(key, name)| ProposalAction::AdmitSettlementBank { key, name }),
        any::<u32>().prop_map(|basis_points| ProposalAction::SetPlatformFee { basis_points }),
        (key(), any::<u64>())
            .prop_map(|(account, amount)| ProposalAction::PayFromTreasury { account, amount }),
        (key(), text()).prop_map(|(key, name)| ProposalAction::AdmitComputeNode { key, name }),
    ]
}

fn job_authorization() -> impl Strategy<Value = JobAuthorization> {
    prop_oneof![
        grant_ref().prop_map(JobAuthorization::Grant),
        order_id().prop_map(JobAuthorization::Order)
    ]
}

fn job_authority() -> impl Strategy<Value = JobAuthority> {
    prop_oneof![
        hash().prop_map(|h| JobAuthority::Grant(GrantId(h))),
        order_id().prop_map(JobAuthority::Order)
    ]
}

fn job_id() -> impl Strategy<Value = JobId> {
    hash().prop_map(JobId)
}

/// Every compute-job operation (lists of 0..=MAX_JOB_INPUTS: the decoder's bound; shapes the
/// stateless checks refuse are allowed and must round-trip too).
fn job_operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        (
            vec(hash().prop_map(ProductId), 0..=MAX_JOB_INPUTS),
            vec(job_authorization(), 0..=MAX_JOB_INPUTS),
            key(),
            text(),
            hash()
        )
            .prop_map(|(products, authorizations, compute_node, purpose, code_hash)| {
                Operation::RequestJob { products, authorizations, compute_node, purpose, code_hash }
            }),
        (job_id(), hash(), vec(hash(), 0..=MAX_JOB_INPUTS), hash(), any::<bool>()).prop_map(
            |(job, code_hash, input_commitments, result_hash, inputs_destroyed)| {
                Operation::AttestJob {
                    job,
                    code_hash,
                    input_commitments,
                    result_hash,
                    inputs_destroyed,
                }
            }
        ),
        (job_id(), hash())
            .prop_map(|(job, result_hash)| Operation::ConfirmJob { job, result_hash }),
        job_id().prop_map(|job| Operation::CancelJob { job }),
        (job_id(), hash()).prop_map(|(job, reason_hash)| Operation::RejectJob { job, reason_hash }),
    ]
}

fn job() -> impl Strategy<Value = Job> {
    (
        (job_id(), key(), key(), vec((hash(), key(), job_authority()), 1..=MAX_JOB_INPUTS)),
        (text(), hash(), pick(JobStatus::ALL), any::<u64>(), any::<u64>()),
        (option::of(hash()), any::<bool>(), option::of(any::<u64>()), option::of(hash())),
        (option::of(any::<u64>()), option::of(hash()), any::<u64>()),
    )
        .prop_map(
            |(
                (id, consumer, compute_node, inputs),
                (purpose, code_hash, status, requested_height, requested_time_ms),
                (result_hash, inputs_destroyed, attested_height, attestation_tx),
                (received_height, reject_reason_hash, updated_height),
            )| {
                let input_commitments = if result_hash.is_some() {
                    inputs.iter().map(|i| i.0).collect()
                } else {
                    Vec::new()
                };
                Job {
                    id,
                    consumer,
                    compute_node,
                    products: inputs.iter().map(|i| ProductId(i.0)).collect(),
                    providers: inputs.iter().map(|i| i.1).collect(),
                    authorities: inputs.iter().map(|i| i.2).collect(),
                    purpose,
                    code_hash,
                    status,
                    requested_height,
                    requested_time_ms,
                    input_commitments,
                    result_hash,
                    inputs_destroyed,
                    attested_height,
                    attestation_tx,
                    received_height,
                    reject_reason_hash,
                    updated_height,
                }
            },
        )
}

fn order_id() -> impl Strategy<Value = OrderId> {
    hash().prop_map(OrderId)
}

/// Every operation variant.
pub(crate) fn operation() -> impl Strategy<Value = Operation> {
    let participants = prop_oneof![
        (key(), text(), vec(pick(Role::ALL), 0..4))
            .prop_map(|(key, name, roles)| Operation::Admit { key, name, roles }),
        (key(), sig()).prop_map(|(new_key, new_key_signature)| Operation::RotateKey {
            new_key,
            new_key_signature
        }),
        (key(), any::<u8>())
            .prop_map(|(participant, rating)| Operation::SetRating { participant, rating }),
        (key(), pick(ListStatus::ALL))
            .prop_map(|(participant, status)| Operation::SetListStatus { participant, status }),
        (key(), text())
            .prop_map(|(participant, reason)| Operation::Suspend { participant, reason }),
        key().prop_map(|participant| Operation::Reinstate { participant }),
        spec().prop_map(|spec| Operation::ListProduct { spec }),
        (hash(), spec())
            .prop_map(|(p, spec)| Operation::UpdateProduct { product: ProductId(p), spec }),
        hash().prop_map(|p| Operation::DelistProduct { product: ProductId(p) }),
    ];
    let market = prop_oneof![
        (text(), text(), any::<u64>(), hash(), option::of(any::<u64>())).prop_map(
            |(title, domain, budget, description_hash, deadline_ms)| Operation::PostDemand {
                title,
                domain,
                budget,
                description_hash,
                deadline_ms
            }
        ),
        (hash(), option::of(hash()), any::<u64>(), hash()).prop_map(
            |(d, p, price, proposal_hash)| Operation::RespondDemand {
                demand: DemandId(d),
                product: p.map(ProductId),
                price,
                proposal_hash
            }
        ),
        (hash(), key())
            .prop_map(|(d, responder)| Operation::AwardDemand { demand: DemandId(d), responder }),
        hash().prop_map(|d| Operation::CloseDemand { demand: DemandId(d) }),
        (hash(), option::of(grant_ref()), text(), option::of(hash())).prop_map(
            |(p, grant, purpose, d)| Operation::PlaceOrder {
                product: ProductId(p),
                grant,
                purpose,
                demand: d.map(DemandId)
            }
        ),
        order_id().prop_map(|order| Operation::AcceptOrder { order }),
        (order_id(), hash())
            .prop_map(|(order, delivery_hash)| Operation::DeliverOrder { order, delivery_hash }),
        order_id().prop_map(|order| Operation::ConfirmOrder { order }),
        order_id().prop_map(|order| Operation::CancelOrder { order }),
        (order_id(), hash())
            .prop_map(|(order, reason_hash)| Operation::DisputeOrder { order, reason_hash }),
        (order_id(), option::of(any::<u64>()))
            .prop_map(|(order, settle_amount)| Operation::ResolveDispute { order, settle_amount }),
    ];
    let rest = prop_oneof![
        (
            prop_oneof![
                order_id().prop_map(AttestTarget::Order),
                hash().prop_map(|h| AttestTarget::Grant(GrantId(h)))
            ],
            pick(Stage::ALL),
            hash()
        )
            .prop_map(|(target, stage, hash)| Operation::Attest { target, stage, hash }),
        (attest_target(), any::<u32>(), pick(Verdict::ALL), hash()).prop_map(
            |(target, seq, verdict, reason_hash)| Operation::ReviewAttestation {
                target,
                seq,
                verdict,
                reason_hash
            }
        ),
        signed_grant().prop_map(|g| Operation::RegisterGrant { grant: Box::new(g) }),
        (grant_ref(), hash(), hash(), text(), hash()).prop_map(
            |(grant, s, p, purpose, request_hash)| Operation::UseGrant {
                grant,
                subject: SubjectId(s),
                product: ProductId(p),
                purpose,
                request_hash
            }
        ),
        hash().prop_map(|serial| Operation::RevokeGrant { serial }),
        hash().prop_map(|h| Operation::ExpireGrant { grant: GrantId(h) }),
        (hash(), key()).prop_map(|(s, subject_key)| Operation::EnrolSubject {
            subject_id: SubjectId(s),
            subject_key
        }),
        (hash(), key(), sig()).prop_map(|(s, new_key, new_key_signature)| {
            Operation::RotateSubjectKey { subject_id: SubjectId(s), new_key, new_key_signature }
        }),
        Just(Operation::RevokeAllGrants),
        proposal_action().prop_map(|action| Operation::Propose { action }),
        hash().prop_map(|h| Operation::Approve { proposal: ProposalId(h) }),
    ];
    let money = prop_oneof![
        (key(), any::<u64>(), ".{0,80}").prop_map(|(account, amount, reference)| {
            Operation::Deposit { account, amount, reference }
        }),
        (key(), any::<u64>(), ".{0,80}").prop_map(|(account, amount, reference)| {
            Operation::Withdraw { account, amount, reference }
        }),
    ];
    prop_oneof![participants, market, rest, money, job_operation()]
}

fn wire_round_trip<T: Wire + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = codec::encode(v);
    assert_eq!(&codec::decode::<T>(&bytes).unwrap(), v);
}

fn json_round_trip<
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
>(
    v: &T,
) {
    let json = serde_json::to_string(v).unwrap();
    assert_eq!(&serde_json::from_str::<T>(&json).unwrap(), v, "{json}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn operations_and_transactions_round_trip(op in operation(), nonce in any::<u64>(), expiry in option::of(any::<u64>()), seed in any::<u8>()) {
        wire_round_trip(&op);
        json_round_trip(&op);
        let body = TransactionBody { chain_id: "c".into(), nonce, expiry_height: expiry, op };
        prop_assert_eq!(&TransactionBody::decode(&body.encode()).unwrap(), &body);
        json_round_trip(&body);
        let signed = body.sign(&Keypair::from_seed([seed; 32]));
        let bytes = signed.encode();
        prop_assert_eq!(&SignedTransaction::decode(&bytes).unwrap(), &signed);
        prop_assert_eq!(signed.hash(), Hash::digest(&bytes));
        match decode_unverified(&bytes, "c") {
            Ok(u) => {
                prop_assert_eq!(u.hash, signed.hash());
                prop_assert!(u.verify().is_ok());
            }
            Err(e) => prop_assert!(matches!(e, TxError::InvalidOp { .. }), "{e}"),
        }
    }

    #[test]
    fn grants_round_trip(g in signed_grant()) {
        prop_assert_eq!(&SignedGrant::decode(&g.encode()).unwrap(), &g);
        prop_assert_eq!(&SignedGrant::from_compact(&g.to_compact()).unwrap(), &g);
        prop_assert!(g.to_compact().len() <= grants::MAX_COMPACT_CHARS);
        json_round_trip(&g);
        let rec = GrantRecord { grant: Some(g.clone()), subject: g.grant.subject, state: GrantState::Consumed, state_height: 3, state_time_ms: g.grant.expires_at_ms, registered_height: 2 };
        wire_round_trip(&rec);
        json_round_trip(&rec);
        let tomb = GrantRecord { grant: None, ..rec };
        wire_round_trip(&tomb);
        let usage = UsageReceipt { grant: g.grant.id(), subject: g.grant.subject, consumer: g.grant.consumer, product: g.grant.product, purpose: g.grant.purpose.clone(), height: 9, time_ms: g.grant.epoch, request_hash: Hash::ZERO, tx_hash: Hash::digest(b"t") };
        wire_round_trip(&usage);
        json_round_trip(&usage);
    }

    #[test]
    fn receipts_round_trip(tx_hash in hash(), code in pick(Code::ALL), reason in text(), kinds in vec((text(), text(), text()), 0..4), who in key(), allowed in any::<bool>(), ids in vec(text(), 0..3)) {
        let events = kinds.into_iter().map(|(k, a, v)| Event::new(&k).attr(&a, v)).collect();
        let decision = DecisionReceipt { action: "order".into(), principal: who, resource: "Market::\"dpx\"".into(), allowed, policy_version: 4, policy_hash: tx_hash, determining: ids, reason: reason.clone() };
        for decision in [None, Some(decision)] {
            let r = Receipt { tx_hash, code, reason: reason.clone(), events: Vec::clone(&events), decision };
            prop_assert_eq!(&Receipt::decode(&r.encode()).unwrap(), &r);
            json_round_trip(&r);
        }
    }

    #[test]
    fn state_objects_round_trip(k1 in key(), k2 in key(), h in hash(), s in spec(), n in any::<u64>(), t in text(), roles in vec(pick(Role::ALL), 0..3), status in pick(OrderStatus::ALL), action in proposal_action(), vs in vec(validator(), 0..4)) {
        let p = Participant { account: k1, current_key: k2, name: t.clone(), roles, rating: 3, list_status: ListStatus::Whitelisted, suspended: true, suspension_reason: t.clone(), admitted_by: k2, admitted_height: n, updated_height: n };
        wire_round_trip(&p);
        json_round_trip(&p);
        let product = Product { id: ProductId(h), provider: k1, spec: s, listed: false, listed_height: n, updated_height: 1, version: 7 };
        wire_round_trip(&product);
        json_round_trip(&product);
        let d = Demand { id: DemandId(h), poster: k1, title: t.clone(), domain: t.clone(), budget: n, description_hash: h, deadline_ms: Some(n), status: DemandStatus::Awarded, responses: 2, awarded_to: Some(k2), posted_height: 1, updated_height: 2 };
        wire_round_trip(&d);
        json_round_trip(&d);
        let resp = DemandResponse { demand: DemandId(h), responder: k2, product: Some(ProductId(h)), price: n, proposal_hash: h, height: 4 };
        wire_round_trip(&resp);
        let o = Order { id: OrderId(h), product: ProductId(h), buyer: k1, provider: k2, price: n, status, delivery_hash: Some(h), settlement_amount: Some(n), dispute_reason_hash: None, grant: Some(GrantId(h)), demand: None, purpose: t.clone(), ordered_height: 1, updated_height: n, escrow: n / 2, fee_basis_points: Some(250), fee_amount: None, refund_amount: Some(n), terms_hash: h };
        wire_round_trip(&o);
        json_round_trip(&o);
        let a = Attestation { target: AttestTarget::Grant(GrantId(h)), stage: Stage::Destroyed, hash: h, attester: k1, height: n, tx_hash: h, seq: 3, review: None };
        wire_round_trip(&a);
        json_round_trip(&a);
        let prop = Proposal { id: ProposalId(h), proposer: k1, action, approvals: 2, status: ProposalStatus::Open, created_height: 1, expiry_height: n, decided_height: 0 };
        wire_round_trip(&prop);
        json_round_trip(&prop);
        wire_round_trip(&ValidatorSet(vs.clone()));
        wire_round_trip(&ScheduledSet { effective_height: n, validators: vs });
        let rec = PolicySetRecord { version: n, text: t, hash: h, height: 2 };
        wire_round_trip(&rec);
        json_round_trip(&rec);
        wire_round_trip(&Params::default());
    }

    #[test]
    fn subjects_and_params_round_trip(id in hash(), k1 in key(), k2 in key(), n in any::<u64>(), t in any::<u64>(), p in params()) {
        let s = Subject { id: SubjectId(id), key: k1, registrar: k2, enrolled_height: n, enrolled_time_ms: t, grant_epoch: n ^ t, status: SubjectStatus::Active, updated_height: n };
        wire_round_trip(&s);
        json_round_trip(&s);
        wire_round_trip(&p);
        json_round_trip(&p);
        prop_assert!(render(&keys::subject(&s.id), &codec::encode(&s)).is_some());
    }

    #[test]
    fn money_objects_round_trip(k1 in key(), k2 in key(), h in hash(), n in any::<u64>(), m in any::<u64>(), banks in vec(key(), 0..4), reference in "[ -~]{1,64}", kind in pick(BankRecordKind::ALL)) {
        let mut banks = banks;
        banks.sort();
        banks.dedup();
        let a = Account { owner: k1, balance: n, banks, updated_height: m };
        wire_round_trip(&a);
        json_round_trip(&a);
        prop_assert!(render(&keys::account(&k1), &codec::encode(&a)).is_some());
        let r = BankRecord { bank: k2, account: k1, kind, amount: n, reference: reference.clone(), height: m, tx_hash: h };
        wire_round_trip(&r);
        json_round_trip(&r);
        prop_assert!(render(&keys::bank_record(&k2, &reference), &codec::encode(&r)).is_some());
        let t = Treasury { balance: n, fees_collected: m, paid_out: n ^ m };
        wire_round_trip(&t);
        prop_assert!(render(keys::TREASURY, &codec::encode(&t)).is_some());
        let s = Supply { deposited: n.max(m), withdrawn: n.min(m) };
        wire_round_trip(&s);
        prop_assert!(render(keys::SUPPLY, &codec::encode(&s)).is_some());
        // A supply that withdrew more than was deposited is not a state the ledger can hold.
        if n != m {
            let bad = Supply { deposited: n.min(m), withdrawn: n.max(m) };
            prop_assert!(codec::decode::<Supply>(&codec::encode(&bad)).is_err());
        }
        let c = Currency::default();
        wire_round_trip(&c);
        json_round_trip(&c);
    }

    #[test]
    fn lifecycle_objects_round_trip(k1 in key(), k2 in key(), h in hash(), n in any::<u64>(), target in attest_target(), stage in pick(Stage::ALL), verdict in pick(Verdict::ALL), overdue in option::of(any::<u64>()), reopened in any::<bool>()) {
        let review = Review { reviewer: k2, verdict, reason_hash: h, height: n };
        wire_round_trip(&review);
        json_round_trip(&review);
        let a = Attestation { target, stage, hash: h, attester: k1, height: n, tx_hash: h, seq: 9, review: Some(review) };
        wire_round_trip(&a);
        json_round_trip(&a);
        let (tag, tid) = target.key_parts();
        prop_assert!(render(&keys::attestation(tag, &tid, 9), &codec::encode(&a)).is_some());
        let d = DestructionDue { target, due_ms: n, queued_height: n / 3, overdue_height: overdue, reopened, holder: k1 };
        wire_round_trip(&d);
        json_round_trip(&d);
        prop_assert!(render(&keys::destruction(tag, &tid), &codec::encode(&d)).is_some());
        let q = keys::destruction_queue(n, tag, &tid);
        prop_assert_eq!(keys::parse_destruction_queue(&q), Some((n, target)));
        prop_assert!(render(&q, &[]).is_some());
    }

    #[test]
    fn jobs_round_trip(j in job(), a in job_authorization(), op in job_operation()) {
        wire_round_trip(&j);
        json_round_trip(&j);
        wire_round_trip(&a);
        json_round_trip(&a);
        for x in &j.authorities {
            wire_round_trip(x);
            json_round_trip(x);
        }
        wire_round_trip(&op);
        json_round_trip(&op);
        let bytes = codec::encode(&j);
        prop_assert!(bytes.len() <= compute::MAX_JOB_BYTES);
        let v = render(&keys::job(&j.id), &bytes).unwrap();
        prop_assert_eq!(serde_json::from_value::<Job>(v).unwrap(), j.clone());
        prop_assert!(render(&keys::order_job(&OrderId(j.code_hash)), &j.id.to_wire()).is_some());
        let t = JobTotals::from_values([bytes.as_slice()]).unwrap();
        prop_assert_eq!(t.jobs(), 1);
        prop_assert_eq!(t.inputs, j.authorities.len() as u64);
        prop_assert_eq!(t.grant_inputs + t.order_inputs, t.inputs);
        // More inputs than a job may have are refused by the decoder.
        let mut big = j.clone();
        big.products = vec![ProductId(Hash::ZERO); MAX_JOB_INPUTS + 1];
        prop_assert!(codec::decode::<Job>(&codec::encode(&big)).is_err());
        let mut big = j;
        big.input_commitments = vec![Hash::ZERO; MAX_JOB_INPUTS + 1];
        prop_assert!(codec::decode::<Job>(&codec::encode(&big)).is_err());
        let too_many = Operation::AttestJob { job: JobId(Hash::ZERO), code_hash: Hash::ZERO, input_commitments: vec![Hash::ZERO; MAX_JOB_INPUTS + 1], result_hash: Hash::ZERO, inputs_destroyed: true };
        prop_assert!(codec::decode::<Operation>(&codec::encode(&too_many)).is_err());
    }

    /// Whatever bytes arrive, the decoders return an error or a value — never a panic.
    #[test]
    fn decoders_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = check_stateless(&bytes, "c");
        let _ = SignedGrant::decode(&bytes);
        let _ = Receipt::decode(&bytes);
        let _ = SignedGrant::from_compact(&String::from_utf8_lossy(&bytes));
        for prefix in [keys::PREFIX_PARTICIPANT, keys::PREFIX_GRANT, keys::PREFIX_ORDER, keys::PREFIX_PROPOSAL, keys::POLICY_CURRENT, keys::PREFIX_SUBJECT, keys::PREFIX_SUBJECT_KEY, keys::PREFIX_USAGE, keys::PARAMS, keys::PREFIX_ACCOUNT, keys::PREFIX_BANK_RECORD, keys::TREASURY, keys::SUPPLY, keys::CURRENCY, keys::PLATFORM_FEE, keys::PREFIX_ATTESTATION, keys::PREFIX_DESTRUCTION, keys::PREFIX_DESTRUCTION_QUEUE, keys::PREFIX_JOB, keys::PREFIX_ORDER_JOB] {
            let _ = render(prefix, &bytes);
        }
    }
}
