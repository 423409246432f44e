//! SPEC.md §4–§6: transactions, grants, ids, state keys, decoding rules and enumerations.

use dpx_contracts::{
    self as contracts, BlockContext, Category, Code, DemandId, DemandStatus, GenesisAgency,
    GenesisApp, Grant, GrantId, GrantRef, GrantState, ListStatus, MemState, OBJECT_ID_DOMAIN,
    Operation, OrderId, OrderStatus, Params, ProductConditions, ProductId, ProductSpec, ProposalId,
    ProposalStatus, ROTATE_KEY_DOMAIN, Role, SUBJECT_KEY_DOMAIN, SignedGrant, SignedTransaction,
    Stage, SubjectId, TransactionBody, Validator, grant_id, keys,
};
use dpx_crypto::{Domain, Hash, Keypair, PublicKey};
use serde_json::{Value, json};

use crate::reference;
use crate::{CHAIN, hx};

pub fn agency() -> Keypair {
    Keypair::from_seed([1; 32])
}
pub fn provider() -> Keypair {
    Keypair::from_seed([2; 32])
}
pub fn consumer() -> Keypair {
    Keypair::from_seed([3; 32])
}
pub fn subject() -> Keypair {
    Keypair::from_seed([4; 32])
}

pub fn product_id() -> ProductId {
    ProductId::derive(CHAIN, &provider().public(), 0)
}

/// The registrar's secret of the vectors (`dpx hash --keyed`).
pub const REGISTRAR_SECRET: [u8; 32] = [0x42; 32];
/// The identifier the subject id commits to.
pub const IDENTIFIER: &str = "110101199003071234";

pub fn subject_id() -> SubjectId {
    SubjectId::keyed(&REGISTRAR_SECRET, IDENTIFIER.as_bytes())
}

pub fn signed_grant() -> SignedGrant {
    Grant {
        serial: Hash::digest(b"serial chosen by the subject"),
        subject: subject_id(),
        key: subject().public(),
        epoch: 0,
        consumer: consumer().public(),
        product: product_id(),
        purpose: "research".into(),
        expires_at_ms: 1_796_083_200_000,
    }
    .sign(&subject(), CHAIN)
}

fn spec() -> ProductSpec {
    ProductSpec {
        name: "Weather history".into(),
        category: Category::DataService,
        domain: "climate".into(),
        grade: 3,
        price: 1000,
        terms_hash: Hash::digest(b"terms"),
        conditions: ProductConditions {
            min_consumer_rating: 0,
            whitelist_only: false,
            purposes: vec!["research".into()],
        },
        retention_days: None,
    }
}

fn tx_vector(name: &str, key: &Keypair, body: &TransactionBody, derived: &Value) -> Value {
    let signed = body.sign(key);
    let bytes = signed.encode();
    let digest = signed.signing_digest(CHAIN);
    // The spec's description of the envelope, the digest and the hash, against the code.
    assert_eq!(
        bytes,
        reference::envelope(&signed.body, &signed.signer.to_bytes(), &signed.signature.0)
    );
    assert_eq!(digest, reference::hash_of(Domain::TRANSACTION.tag(), CHAIN, &[&signed.body]));
    let checked = contracts::check_stateless(&bytes, CHAIN).expect("a valid transaction");
    assert_eq!(checked.hash, Hash::digest(&bytes));
    assert_eq!(&checked.body, body);
    json!({
        "name": name,
        "signer_seed": hx(key.seed()),
        "signer": key.public().to_hex(),
        "body": serde_json::to_value(body).expect("json"),
        "body_bytes": hx(&signed.body),
        "signing_digest": digest.to_hex(),
        "signature": signed.signature.to_hex(),
        "signed_transaction": hx(&bytes),
        "tx_hash": checked.hash.to_hex(),
        "derived": derived,
    })
}

/// Execute `bodies` in order on a fresh genesis state; each receipt's code and the signer's
/// next nonce afterwards (SPEC.md §5.3).
fn nonce_sequence() -> Value {
    let mut st = MemState::new();
    let genesis = GenesisApp {
        agencies: vec![GenesisAgency { name: "Agency".into(), key: agency().public() }],
        validators: vec![Validator { key: agency().public(), power: 1, name: "v".into() }],
        policies: None,
        params: Params::default(),
        currency: contracts::Currency::default(),
        platform_fee_basis_points: 0,
    };
    contracts::init_genesis(&mut st, CHAIN, &genesis).expect("genesis");
    let ctx = BlockContext { chain_id: CHAIN.into(), height: 1, time_ms: 1 };
    let admit = |who: &Keypair| Operation::Admit {
        key: who.public(),
        name: "Org".into(),
        roles: vec![Role::Consumer],
    };
    let steps = [
        (0, admit(&consumer()), "first transaction of a key: nonce 0"),
        (0, admit(&provider()), "nonce already used: refused, nonce unchanged"),
        (2, admit(&provider()), "nonce ahead (gap): refused, nonce unchanged"),
        (
            1,
            admit(&consumer()),
            "valid nonce, the operation fails (already admitted): nonce consumed",
        ),
        (2, admit(&provider()), "next nonce"),
    ];
    let out: Vec<Value> = steps
        .into_iter()
        .map(|(nonce, op, what)| {
            let bytes = TransactionBody::new(CHAIN, nonce, op).sign(&agency()).encode();
            let tx = contracts::check_stateless(&bytes, CHAIN).expect("stateless ok");
            let receipt = contracts::execute(&mut st, &ctx, &tx);
            let next = contracts::next_nonce(&st, &agency().public()).expect("nonce");
            json!({ "nonce": nonce, "code": receipt.code.as_str(), "next_nonce": next, "what": what })
        })
        .collect();
    let codes: Vec<&str> = out.iter().map(|s| s["code"].as_str().expect("code")).collect();
    assert_eq!(codes, ["ok", "invalid", "invalid", "failed", "ok"]);
    Value::Array(out)
}

pub fn transactions() -> Value {
    let pid = product_id();
    let rotate_to = Keypair::from_seed([5; 32]);
    let proof = rotate_to.sign(
        ROTATE_KEY_DOMAIN,
        CHAIN,
        &contracts::rotation_message(&provider().public()),
    );
    let order_body = TransactionBody::new(
        CHAIN,
        5,
        Operation::PlaceOrder {
            product: pid,
            grant: Some(GrantRef::Inline(Box::new(signed_grant()))),
            purpose: "research".into(),
            demand: None,
        },
    )
    .with_expiry(100);
    let vectors = vec![
        tx_vector(
            "admit",
            &agency(),
            &TransactionBody::new(
                CHAIN,
                0,
                Operation::Admit {
                    key: provider().public(),
                    name: "Acme Data".into(),
                    roles: vec![Role::Provider, Role::Consumer],
                },
            ),
            &Value::Null,
        ),
        tx_vector(
            "list_product",
            &provider(),
            &TransactionBody::new(CHAIN, 0, Operation::ListProduct { spec: spec() }),
            &json!({ "product": pid }),
        ),
        tx_vector(
            "place_order with an inline grant, expiry",
            &consumer(),
            &order_body,
            &json!({ "order": OrderId::derive(CHAIN, &consumer().public(), 5) }),
        ),
        tx_vector(
            "use_grant by id",
            &consumer(),
            &TransactionBody::new(
                CHAIN,
                6,
                Operation::UseGrant {
                    grant: GrantRef::Id(signed_grant().grant.id()),
                    subject: subject_id(),
                    product: pid,
                    purpose: "research".into(),
                    request_hash: Hash::digest(b"request"),
                },
            ),
            &Value::Null,
        ),
        tx_vector(
            "post_demand, zero budget, no deadline",
            &consumer(),
            &TransactionBody::new(
                CHAIN,
                7,
                Operation::PostDemand {
                    title: "Rainfall 1990-2020".into(),
                    domain: "climate".into(),
                    budget: 0,
                    description_hash: Hash::digest(b"description"),
                    deadline_ms: None,
                },
            )
            .with_expiry(0),
            &json!({ "demand": DemandId::derive(CHAIN, &consumer().public(), 7) }),
        ),
        tx_vector(
            "deposit by a settlement bank (amount in minor units)",
            &agency(),
            &TransactionBody::new(
                CHAIN,
                2,
                Operation::Deposit {
                    account: consumer().public(),
                    amount: 1_250_000,
                    reference: "ICBC-2026-11-30-000042".into(),
                },
            ),
            &Value::Null,
        ),
        tx_vector(
            "propose set_platform_fee (250 basis points)",
            &agency(),
            &TransactionBody::new(
                CHAIN,
                3,
                Operation::Propose {
                    action: contracts::ProposalAction::SetPlatformFee { basis_points: 250 },
                },
            ),
            &Value::Null,
        ),
        tx_vector(
            "request_job over two products: an inline grant and an order",
            &consumer(),
            &TransactionBody::new(
                CHAIN,
                8,
                Operation::RequestJob {
                    products: vec![pid, ProductId(Hash::digest(b"second product"))],
                    authorizations: vec![
                        contracts::JobAuthorization::Grant(GrantRef::Inline(Box::new(
                            signed_grant(),
                        ))),
                        contracts::JobAuthorization::Order(OrderId(Hash::digest(b"an order"))),
                    ],
                    compute_node: provider().public(),
                    purpose: "research".into(),
                    code_hash: Hash::digest(b"salary-percentiles v1"),
                },
            ),
            &json!({ "job": contracts::JobId::derive(CHAIN, &consumer().public(), 8) }),
        ),
        tx_vector(
            "attest_job",
            &provider(),
            &TransactionBody::new(
                CHAIN,
                1,
                Operation::AttestJob {
                    job: contracts::JobId::derive(CHAIN, &consumer().public(), 8),
                    code_hash: Hash::digest(b"salary-percentiles v1"),
                    input_commitments: vec![Hash::digest(b"input 0"), Hash::digest(b"input 1")],
                    result_hash: Hash::digest(b"result"),
                    inputs_destroyed: true,
                },
            ),
            &Value::Null,
        ),
        tx_vector(
            "enrol_subject",
            &agency(),
            &TransactionBody::new(
                CHAIN,
                1,
                Operation::EnrolSubject {
                    subject_id: subject_id(),
                    subject_key: subject().public(),
                },
            ),
            &Value::Null,
        ),
        tx_vector(
            "rotate_subject_key, by the subject",
            &subject(),
            &TransactionBody::new(
                CHAIN,
                0,
                Operation::RotateSubjectKey {
                    subject_id: subject_id(),
                    new_key: rotate_to.public(),
                    new_key_signature: rotate_to.sign(
                        SUBJECT_KEY_DOMAIN,
                        CHAIN,
                        &contracts::subject_key_message(&subject_id()),
                    ),
                },
            ),
            &json!({ "new_key_seed": hx(rotate_to.seed()) }),
        ),
        tx_vector(
            "revoke_grant by serial",
            &subject(),
            &TransactionBody::new(
                CHAIN,
                1,
                Operation::RevokeGrant { serial: signed_grant().grant.serial },
            ),
            &json!({ "grant": signed_grant().grant.id() }),
        ),
        tx_vector(
            "revoke_all_grants",
            &subject(),
            &TransactionBody::new(CHAIN, 2, Operation::RevokeAllGrants),
            &Value::Null,
        ),
        tx_vector(
            "rotate_key",
            &provider(),
            &TransactionBody::new(
                CHAIN,
                1,
                Operation::RotateKey { new_key: rotate_to.public(), new_key_signature: proof },
            ),
            &json!({ "new_key_seed": hx(rotate_to.seed()) }),
        ),
    ];
    json!({
        "description": "SPEC.md §5. A TransactionBody (JSON view as the RPC shows it) → body_bytes (protobuf) → signing_digest = H(dpx/tx/v1, chain_id, body_bytes) → ed25519 signature over the digest → signed_transaction (protobuf envelope) → tx_hash = blake3(signed_transaction). `derived`: ids of objects the transaction creates. `nonce_sequence`: one signer's transactions executed in order on a fresh chain, with receipt codes and the next nonce after each.",
        "chain_id": CHAIN,
        "transactions": vectors,
        "nonce_sequence": nonce_sequence(),
    })
}

pub fn grants() -> Value {
    let sg = signed_grant();
    let bytes = sg.grant.signing_bytes();
    let digest = sg.signing_digest(CHAIN);
    assert_eq!(digest, reference::hash_of(Domain::GRANT.tag(), CHAIN, &[&bytes]));
    sg.verify(CHAIN).expect("valid grant");
    let compact = sg.to_compact();
    assert_eq!(SignedGrant::from_compact(&compact).expect("compact"), sg);
    let sid = subject_id();
    assert_eq!(sid.0.0, *blake3::keyed_hash(&REGISTRAR_SECRET, IDENTIFIER.as_bytes()).as_bytes());
    let id = sg.grant.id();
    let parts: [&[u8]; 2] = [sid.0.as_bytes(), sg.grant.serial.as_bytes()];
    assert_eq!(id.0, reference::hash_of(contracts::grants::GRANT_ID_DOMAIN.tag(), "", &parts));
    assert_eq!(id, grant_id(&sid, &sg.grant.serial));
    json!({
        "description": "SPEC.md §6. subject_id = blake3::keyed_hash(registrar_secret, identifier). Grant → grant_bytes (protobuf Grant) → digest = H(dpx/grant/v1, chain_id, grant_bytes) → signature by the subject's current key → signed_grant (protobuf SignedGrant) → compact = unpadded base64url of signed_grant. id = H(dpx/grant-id/v1, \"\", subject_id, serial) (empty chain id); the grant's state key is `grant/` ‖ id.",
        "chain_id": CHAIN,
        "registrar_secret": hx(REGISTRAR_SECRET),
        "identifier": IDENTIFIER,
        "subject_id": sid,
        "id": id,
        "subject_seed": hx(subject().seed()),
        "grant": serde_json::to_value(&sg.grant).expect("json"),
        "grant_bytes": hx(&bytes),
        "digest": digest.to_hex(),
        "signature": sg.signature.to_hex(),
        "signed_grant": hx(sg.encode()),
        "compact": compact,
        "state_key": hx(keys::grant(&id)),
    })
}

fn id_vector(kind: &str, signer: &PublicKey, nonce: u64, id: Hash) -> Value {
    let parts: [&[u8]; 3] = [kind.as_bytes(), signer.as_bytes(), &nonce.to_le_bytes()];
    assert_eq!(id, reference::hash_of(OBJECT_ID_DOMAIN.tag(), CHAIN, &parts));
    json!({
        "kind": kind,
        "chain_id": CHAIN,
        "signer": signer.to_hex(),
        "nonce": nonce,
        "preimage": hx(reference::preimage(OBJECT_ID_DOMAIN.tag(), CHAIN, &parts)),
        "id": id.to_hex(),
    })
}

pub fn ids() -> Value {
    let p = provider().public();
    let c = consumer().public();
    let a = agency().public();
    let ids = vec![
        id_vector("product", &p, 0, ProductId::derive(CHAIN, &p, 0).0),
        id_vector("demand", &c, 7, DemandId::derive(CHAIN, &c, 7).0),
        id_vector("order", &c, 5, OrderId::derive(CHAIN, &c, 5).0),
        id_vector("proposal", &a, 300, ProposalId::derive(CHAIN, &a, 300).0),
    ];
    let id = Hash::digest(b"an id");
    let gid = GrantId(id);
    let key = |what: &str, k: Vec<u8>| json!({ "what": what, "key": hx(&k), "text": String::from_utf8_lossy(&k) });
    let state_keys = vec![
        key("participant(account)", keys::participant(&p)),
        key("key_binding(rotated-in key)", keys::key_binding(&c)),
        key("nonce(signing key)", keys::nonce(&p)),
        key("product(id)", keys::product(&ProductId(id))),
        key("demand(id)", keys::demand(&DemandId(id))),
        key("response(demand, responder)", keys::response(&DemandId(id), &p)),
        key("order(id)", keys::order(&OrderId(id))),
        key("grant(id)", keys::grant(&gid)),
        key("usage(grant id)", keys::usage(&gid)),
        key("subject(subject id)", keys::subject(&SubjectId(id))),
        key("subject_key(key)", keys::subject_key(&c)),
        key("attestation(order, id, seq 2)", keys::attestation(keys::TARGET_ORDER, &id.0, 2)),
        key("attestation(grant, id, seq 0)", keys::attestation(keys::TARGET_GRANT, &id.0, 0)),
        key("attestation_count(order, id)", keys::attestation_count(keys::TARGET_ORDER, &id.0)),
        key("proposal(id)", keys::proposal(&ProposalId(id))),
        key("approval(proposal, agency)", keys::approval(&ProposalId(id), &a)),
        key("policy_version(3)", keys::policy_version(3)),
        key("validator_update(height 1000)", keys::validator_update(1000)),
        key("POLICY_CURRENT", keys::POLICY_CURRENT.to_vec()),
        key("PARAMS", keys::PARAMS.to_vec()),
        key("VALIDATORS", keys::VALIDATORS.to_vec()),
        key("VALIDATORS_LATEST", keys::VALIDATORS_LATEST.to_vec()),
        key("AGENCY_COUNT", keys::AGENCY_COUNT.to_vec()),
        key("CHAIN_ID", keys::CHAIN_ID.to_vec()),
        key("account(account key)", keys::account(&p)),
        key("bank_record(bank, \"ICBC-000042\")", keys::bank_record(&a, "ICBC-000042")),
        key("TREASURY", keys::TREASURY.to_vec()),
        key("SUPPLY", keys::SUPPLY.to_vec()),
        key("CURRENCY", keys::CURRENCY.to_vec()),
        key("PLATFORM_FEE", keys::PLATFORM_FEE.to_vec()),
        key("destruction(order, id)", keys::destruction(keys::TARGET_ORDER, &id.0)),
        key(
            "destruction_queue(due 1764489600000 ms, order, id)",
            keys::destruction_queue(1_764_489_600_000, keys::TARGET_ORDER, &id.0),
        ),
        key("overdue(height 1234, grant, id)", keys::overdue(1234, keys::TARGET_GRANT, &id.0)),
    ];
    json!({
        "description": "SPEC.md §5.4 and §8.1. Object ids: H(dpx/object-id/v1, chain_id, kind, signer, u64le(nonce)) with three parts. State keys: ASCII prefix ‖ fixed-width binary (ids and keys 32 bytes, numbers big-endian); `text` is the key shown as lossy UTF-8.",
        "object_ids": ids,
        "state_keys": state_keys,
    })
}

fn decode_case(what: &str, name: &str, bytes: &[u8], accepted: bool) -> Value {
    json!({ "what": what, "name": name, "bytes": hx(bytes), "accepted": accepted })
}

fn tx_accepted(bytes: &[u8]) -> bool {
    contracts::check_stateless(bytes, CHAIN).is_ok()
}

pub fn decoding() -> Value {
    let key = agency();
    let body =
        TransactionBody::new(CHAIN, 0, Operation::Reinstate { participant: provider().public() });
    let good = body.sign(&key).encode();
    let mut cases = vec![decode_case("signed_transaction", "canonical", &good, tx_accepted(&good))];
    // The envelope must be exactly the canonical encoding.
    let mut trailing = good.clone();
    trailing.extend_from_slice(&[0x20, 0x01]); // field 4, varint 1: unknown
    cases.push(decode_case(
        "signed_transaction",
        "unknown envelope field",
        &trailing,
        tx_accepted(&trailing),
    ));
    let st = SignedTransaction::decode(&good).expect("decodes");
    let mut reordered = Vec::new();
    reference::field_bytes(2, st.signer.as_bytes(), &mut reordered);
    reference::field_bytes(1, &st.body, &mut reordered);
    reference::field_bytes(3, &st.signature.0, &mut reordered);
    cases.push(decode_case(
        "signed_transaction",
        "envelope fields out of order",
        &reordered,
        tx_accepted(&reordered),
    ));
    let mut long_len = vec![0x0a, 0x80 | st.body.len() as u8, 0x00];
    long_len.extend_from_slice(&good[2..]);
    assert!(st.body.len() < 0x80);
    cases.push(decode_case(
        "signed_transaction",
        "non-minimal length varint",
        &long_len,
        tx_accepted(&long_len),
    ));
    // The body must be canonical too (issue 14: no padding a signed transaction).
    let mut odd_body = body.encode();
    odd_body.extend_from_slice(&[0x28, 0x07]); // field 5, varint 7: unknown
    let sig = key.sign(Domain::TRANSACTION, CHAIN, &odd_body);
    let odd = SignedTransaction { body: odd_body, signer: key.public(), signature: sig }.encode();
    cases.push(decode_case(
        "signed_transaction",
        "unknown field inside the signed body",
        &odd,
        tx_accepted(&odd),
    ));
    let other_chain =
        TransactionBody::new("other", 0, Operation::Reinstate { participant: provider().public() })
            .sign(&key)
            .encode();
    cases.push(decode_case(
        "signed_transaction",
        "body for another chain",
        &other_chain,
        tx_accepted(&other_chain),
    ));
    // Grants: canonical only.
    let sg = signed_grant().encode();
    let grant_ok = |b: &[u8]| SignedGrant::decode(b).is_ok();
    cases.push(decode_case("signed_grant", "canonical", &sg, grant_ok(&sg)));
    let mut sg_extra = sg.clone();
    sg_extra.extend_from_slice(&[0x18, 0x01]);
    cases.push(decode_case("signed_grant", "unknown field", &sg_extra, grant_ok(&sg_extra)));
    // Headers and blocks: canonical only.
    let header = crate::chain::sample_header();
    let hb = header.encode();
    let header_ok = |b: &[u8]| dpx_ledger::Header::decode(b, 4096).is_ok();
    cases.push(decode_case("header", "canonical", &hb, header_ok(&hb)));
    let mut hb_extra = hb.clone();
    hb_extra.extend_from_slice(&[0x58, 0x01]); // field 11
    cases.push(decode_case("header", "unknown field", &hb_extra, header_ok(&hb_extra)));
    let mut hb_zero = Vec::new();
    reference::varint(2 << 3, &mut hb_zero); // height written explicitly as 0: not canonical
    reference::varint(0, &mut hb_zero);
    let mut h0 = header.clone();
    h0.height = 0;
    let mut explicit_zero = h0.encode();
    let at = h0.chain_id.len() + 2;
    explicit_zero.splice(at..at, hb_zero);
    cases.push(decode_case(
        "header",
        "a zero field written explicitly",
        &explicit_zero,
        header_ok(&explicit_zero),
    ));
    // Compact grant strings.
    let compact = signed_grant().to_compact();
    let compact_ok = |s: &str| SignedGrant::from_compact(s).is_ok();
    let padded = format!("{compact}{}", "=".repeat((4 - compact.len() % 4) % 4));
    let cases_text = vec![
        json!({ "what": "compact_grant", "name": "as produced", "text": compact, "accepted": compact_ok(&compact) }),
        json!({ "what": "compact_grant", "name": "surrounding whitespace", "text": format!(" {compact}\n"), "accepted": compact_ok(&format!(" {compact}\n")) }),
        json!({ "what": "compact_grant", "name": "with = padding", "text": padded, "accepted": compact_ok(&padded) }),
        json!({ "what": "compact_grant", "name": "standard base64 alphabet", "text": compact.replace('-', "+").replace('_', "/"), "accepted": compact_ok(&compact.replace('-', "+").replace('_', "/")) }),
    ];
    let standard = compact.replace('-', "+").replace('_', "/");
    assert!(padded != compact && standard != compact, "the cases exercise what they name");
    let compact_got: Vec<bool> =
        cases_text.iter().map(|c| c["accepted"].as_bool().expect("bool")).collect();
    assert_eq!(compact_got, [true, true, false, false]);
    let expected = [true, false, false, false, false, false, true, false, true, false, false];
    let got: Vec<bool> = cases.iter().map(|c| c["accepted"].as_bool().expect("bool")).collect();
    assert_eq!(got, expected, "the decoding rules SPEC.md §4.2 states");
    json!({
        "description": "SPEC.md §4.2. Byte strings and whether a dpx node accepts them (`signed_transaction`: the stateless checks for chain dpx-spec; `signed_grant`, `header`: the decoders). `compact_grant`: texts and whether they parse.",
        "cases": cases,
        "compact_cases": cases_text,
    })
}

fn table<T: Copy>(all: &[T], code: impl Fn(T) -> u32, name: impl Fn(T) -> &'static str) -> Value {
    all.iter().map(|v| json!({ "code": code(*v), "name": name(*v) })).collect()
}

pub fn enums() -> Value {
    macro_rules! t {
        ($e:ty) => {
            table(<$e>::ALL, <$e>::code, <$e>::as_str)
        };
    }
    json!({
        "description": "SPEC.md §9. The numeric codes of every enumeration carried as uint32 in the .proto files, and their JSON names.",
        "enums": {
            "Role": t!(Role),
            "ListStatus": t!(ListStatus),
            "Category": t!(Category),
            "DemandStatus": t!(DemandStatus),
            "OrderStatus": t!(OrderStatus),
            "GrantState": t!(GrantState),
            "SubjectStatus": t!(contracts::SubjectStatus),
            "Stage": t!(Stage),
            "ProposalStatus": t!(ProposalStatus),
            "Code": t!(Code),
            "BankRecordKind": t!(contracts::BankRecordKind),
            "Verdict": t!(contracts::Verdict),
            "JobStatus": t!(contracts::JobStatus),
            "VoteKind": [{ "code": 1, "name": "prevote" }, { "code": 2, "name": "precommit" }],
        },
    })
}
