//! The policy engine: Cedar policies held on the ledger, evaluated deterministically.
//!
//! The schema is built in ([`SCHEMA_TEXT`]); the policy set is stored in state
//! ([`PolicySetRecord`]), written at genesis and replaced only by governance. Every policy must
//! carry an `@id("...")` annotation, which becomes its id in decision receipts. Determinism:
//! Cedar's evaluation is a pure function of (policies, entities, request); the only unordered
//! things it returns — the determining policy ids and erroring policy ids — are sorted here
//! before they reach a receipt.
//!
//! **Fail closed.** A policy that errors during evaluation (an integer overflow, an attribute of
//! an entity that is not there…) denies the request, whatever the other policies say: Cedar
//! itself skips an erroring policy, which would let an erroring `forbid` allow. The receipt's
//! reason names each erroring policy with its error.
//!
//! **Entities.** The principal is the signer's participant record; a product resource brings
//! its provider's record too, so policies may read `resource.provider.rating`,
//! `.suspended`, `.list_status` and `.roles`.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;
use std::str::FromStr;
use std::sync::LazyLock;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use dpx_crypto::{Domain, Hash, HashWriter, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError};
use crate::keys;
use crate::participants::Participant;
use crate::products::Product;
use crate::receipt::DecisionReceipt;
use crate::state::State;
use crate::types::code_enum;

/// The Cedar schema every policy set is validated against.
pub const SCHEMA_TEXT: &str = include_str!("policy/schema.cedarschema");
/// The default policies (used when the genesis file brings none).
pub const DEFAULT_POLICIES: &str = include_str!("policy/default.cedar");
/// Hard upper bound on a policy set's text; `Params::max_policy_bytes` may only lower it.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;
/// Longest policy id.
pub const MAX_POLICY_ID_BYTES: usize = 64;
/// Erroring policies named, with their error, in a receipt's reason (the rest are counted).
pub const MAX_ERRORS_IN_REASON: usize = 8;
/// Longest error text quoted per erroring policy.
pub const MAX_ERROR_TEXT_BYTES: usize = 200;

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    // A constant compiled into the binary; the test `built_in_schema_and_defaults_validate`
    // proves it parses, so a failure here is a broken build, not bad input.
    Schema::from_cedarschema_str(SCHEMA_TEXT).map(|(s, _)| s).expect("built-in Cedar schema parses")
});

static TYPES: LazyLock<[EntityTypeName; 4]> = LazyLock::new(|| {
    ["Participant", "Product", "Market", "Action"]
        .map(|t| EntityTypeName::from_str(t).expect("built-in entity type names parse"))
});

code_enum!(
    /// A policy-guarded action (the Cedar `Action::"<name>"`).
    Action {
        Admit = 1 => "admit",
        RotateKey = 2 => "rotate_key",
        Rate = 3 => "rate",
        SetListStatus = 4 => "set_list_status",
        Suspend = 5 => "suspend",
        Reinstate = 6 => "reinstate",
        ListProduct = 10 => "list_product",
        UpdateProduct = 11 => "update_product",
        DelistProduct = 12 => "delist_product",
        PostDemand = 20 => "post_demand",
        RespondDemand = 21 => "respond_demand",
        AwardDemand = 22 => "award_demand",
        CloseDemand = 23 => "close_demand",
        Order = 30 => "order",
        AcceptOrder = 31 => "accept_order",
        DeliverOrder = 32 => "deliver_order",
        ConfirmOrder = 33 => "confirm_order",
        /// Asked by no operation since `settle_order` was retired (settlement now releases
        /// escrow, see `trades`); kept so policy sets that name it still validate.
        SettleOrder = 34 => "settle_order",
        CancelOrder = 35 => "cancel_order",
        DisputeOrder = 36 => "dispute_order",
        ResolveDispute = 37 => "resolve_dispute",
        Attest = 38 => "attest",
        /// A regulator's verdict on a life-cycle attestation.
        ReviewAttestation = 39 => "review_attestation",
        UseGrant = 41 => "use_grant",
        Read = 60 => "read",
        /// Asked once per product of the job (resource: the product).
        RequestJob = 70 => "request_job",
        /// The job's compute node (resource: the market).
        AttestJob = 71 => "attest_job",
        ConfirmJob = 72 => "confirm_job",
        CancelJob = 73 => "cancel_job",
        RejectJob = 74 => "reject_job",
    }
);

/// What an action is performed on. Short-lived (one per decision), so the size difference
/// between variants does not matter.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Resource {
    /// The marketplace as a whole (admissions, demands, attestations, reads).
    Market,
    Participant(Participant),
    Product(Product),
}

/// The request context.
#[derive(Debug, Clone, Default)]
pub struct PolicyContext {
    /// A grant for this use was consumed in this transaction.
    pub grant_consumed: bool,
    pub purpose: String,
}

impl PolicyContext {
    pub fn none() -> Self {
        Self::default()
    }
}

/// The policy set in force, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySetRecord {
    /// 1 at genesis, +1 per governance change.
    pub version: u64,
    pub text: String,
    /// blake3 of `text`.
    pub hash: Hash,
    /// Height it took effect.
    pub height: u64,
}

impl Wire for PolicySetRecord {
    type Pb = pb::PolicySetRecord;
    const MAX_BYTES: usize = MAX_POLICY_BYTES + 256;
    fn to_pb(&self) -> pb::PolicySetRecord {
        pb::PolicySetRecord {
            version: self.version,
            text: self.text.clone(),
            hash: self.hash.0.to_vec(),
            height: self.height,
        }
    }
    fn from_pb(p: pb::PolicySetRecord) -> Result<Self, DecodeError> {
        Ok(Self {
            version: p.version,
            text: p.text,
            hash: codec::hash(&p.hash, "hash")?,
            height: p.height,
        })
    }
}

fn policy_err(reason: impl std::fmt::Display) -> ContractError {
    ContractError::Policy { reason: reason.to_string() }
}

/// Parse and validate a policy set: bounded size, no templates, every policy with a unique
/// `@id`, and strict validation against the schema.
pub fn parse_policies(text: &str, max_bytes: usize) -> Result<PolicySet, ContractError> {
    let max = max_bytes.min(MAX_POLICY_BYTES);
    if text.len() > max {
        return Err(policy_err(format!("{} bytes exceeds the maximum of {max}", text.len())));
    }
    let raw = PolicySet::from_str(text).map_err(|e| policy_err(format!("parse error: {e}")))?;
    if raw.templates().next().is_some() {
        return Err(policy_err("templates are not supported"));
    }
    let mut ids = BTreeSet::new();
    let mut set = PolicySet::new();
    for p in raw.policies() {
        let Some(id) = p.annotation("id") else {
            return Err(policy_err("every policy needs an @id(\"...\") annotation"));
        };
        let id_ok = !id.is_empty()
            && id.len() <= MAX_POLICY_ID_BYTES
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(policy_err(format!(
                "policy id {id:?} must be 1..={MAX_POLICY_ID_BYTES} of [A-Za-z0-9_-]"
            )));
        }
        if !ids.insert(id.to_string()) {
            return Err(policy_err(format!("duplicate policy id {id:?}")));
        }
        set.add(p.new_id(PolicyId::new(id))).map_err(policy_err)?;
    }
    if ids.is_empty() {
        return Err(policy_err("the policy set is empty"));
    }
    let result = Validator::new(SCHEMA.clone()).validate(&set, ValidationMode::Strict);
    if !result.validation_passed() {
        let mut errors: Vec<String> = result.validation_errors().map(ToString::to_string).collect();
        errors.sort();
        return Err(policy_err(format!(
            "does not validate against the schema: {}",
            errors.join("; ")
        )));
    }
    Ok(set)
}

thread_local! {
    /// Parsed policy set by text hash. A pure cache: the same text always parses to the same set,
    /// so hits and misses cannot change any result.
    static CACHE: RefCell<Option<(Hash, Rc<PolicySet>)>> = const { RefCell::new(None) };
}

fn cached_set(record: &PolicySetRecord) -> Result<Rc<PolicySet>, ContractError> {
    if let Some(set) = CACHE
        .with_borrow(|c| c.as_ref().filter(|(h, _)| *h == record.hash).map(|(_, s)| Rc::clone(s)))
    {
        return Ok(set);
    }
    // Stored text was validated when written; re-check the size bound only.
    let set = Rc::new(parse_policies(&record.text, MAX_POLICY_BYTES)?);
    CACHE.with_borrow_mut(|c| *c = Some((record.hash, Rc::clone(&set))));
    Ok(set)
}

/// The policy set in force.
pub fn current_policies<S: State + ?Sized>(st: &S) -> Result<PolicySetRecord, ContractError> {
    let bytes = st.get(keys::POLICY_CURRENT).ok_or_else(|| ContractError::Corrupt {
        reason: "no policy set (genesis not run?)".into(),
    })?;
    Ok(codec::decode(&bytes)?)
}

fn uid(ty: usize, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(TYPES[ty].clone(), EntityId::new(id))
}

fn participant_uid(key: &PublicKey) -> EntityUid {
    uid(0, &key.to_hex())
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items.into_iter().map(|s| RestrictedExpression::new_string(s.to_string())),
    )
}

fn participant_entity(p: &Participant) -> Result<Entity, ContractError> {
    let attrs = HashMap::from([
        ("roles".to_string(), strings(p.roles.iter().map(|r| r.as_str()))),
        ("rating".to_string(), RestrictedExpression::new_long(i64::from(p.rating))),
        (
            "list_status".to_string(),
            RestrictedExpression::new_string(p.list_status.as_str().to_string()),
        ),
        ("suspended".to_string(), RestrictedExpression::new_bool(p.suspended)),
    ]);
    Entity::new(participant_uid(&p.account), attrs, HashSet::new()).map_err(policy_err)
}

fn product_entity(p: &Product) -> Result<Entity, ContractError> {
    let s = &p.spec;
    let attrs = HashMap::from([
        ("grade".to_string(), RestrictedExpression::new_long(i64::from(s.grade))),
        ("category".to_string(), RestrictedExpression::new_string(s.category.as_str().to_string())),
        ("domain".to_string(), RestrictedExpression::new_string(s.domain.clone())),
        ("listed".to_string(), RestrictedExpression::new_bool(p.listed)),
        (
            "provider".to_string(),
            RestrictedExpression::new_entity_uid(participant_uid(&p.provider)),
        ),
        (
            "min_consumer_rating".to_string(),
            RestrictedExpression::new_long(i64::from(s.conditions.min_consumer_rating)),
        ),
        ("whitelist_only".to_string(), RestrictedExpression::new_bool(s.conditions.whitelist_only)),
        ("purposes".to_string(), strings(s.conditions.purposes.iter().map(String::as_str))),
    ]);
    Entity::new(uid(1, &p.id.to_string()), attrs, HashSet::new()).map_err(policy_err)
}

/// Evaluate `principal` doing `action` on `resource` under the policy set in force.
pub fn decide<S: State + ?Sized>(
    st: &S,
    principal: &Participant,
    action: Action,
    resource: &Resource,
    context: &PolicyContext,
) -> Result<DecisionReceipt, ContractError> {
    let record = current_policies(st)?;
    // A product's provider as it stands now (a missing record leaves the entity out: a policy
    // that reads it then errors, and so denies).
    // The cache key takes the stored bytes; they are decoded only when Cedar has to run.
    let provider_bytes = match resource {
        Resource::Product(p) => st.get(&keys::participant(&p.provider)),
        _ => None,
    };
    let key =
        decision_key(&record, principal, action, resource, provider_bytes.as_deref(), context);
    if let Some(d) = DECISIONS.with_borrow(|c| c.get(&key).cloned()) {
        return Ok(d);
    }
    let provider: Option<Participant> =
        provider_bytes.map(|b| codec::decode(&b)).transpose().map_err(ContractError::from)?;
    let d = evaluate(&record, principal, action, resource, provider.as_ref(), context)?;
    DECISIONS.with_borrow_mut(|c| {
        if c.len() >= DECISIONS_MAX {
            c.clear();
        }
        c.insert(key, d.clone());
    });
    Ok(d)
}

/// Decisions each thread remembers (a few hundred bytes each).
const DECISIONS_MAX: usize = 4096;

thread_local! {
    /// Decisions by a digest of everything they depend on: the policy set, the principal's and
    /// the resource's records and a product's provider's record (every attribute the entities
    /// are built from), the action and the context. Evaluation is a pure function of exactly these, so a hit returns what
    /// evaluating again would; it saves the Cedar evaluation when, as is typical, one consumer
    /// uses one product many times.
    static DECISIONS: RefCell<HashMap<Hash, DecisionReceipt>> = RefCell::new(HashMap::new());
}

fn decision_key(
    record: &PolicySetRecord,
    principal: &Participant,
    action: Action,
    resource: &Resource,
    provider: Option<&[u8]>,
    context: &PolicyContext,
) -> Hash {
    let mut w = HashWriter::new(Domain::new("dpx/policy-decision-cache/v1"), "");
    w.update(record.hash.as_bytes())
        .update(&record.version.to_le_bytes())
        .update(&codec::encode(principal))
        .update(action.as_str().as_bytes());
    match resource {
        Resource::Market => w.update(b"market"),
        Resource::Participant(p) => w.update(b"participant").update(&codec::encode(p)),
        Resource::Product(p) => w.update(b"product").update(&codec::encode(p)),
    };
    match provider {
        Some(bytes) => w.update(b"provider").update(bytes),
        None => w.update(b"no provider"),
    };
    w.update(&[u8::from(context.grant_consumed)]).update(context.purpose.as_bytes());
    w.finish()
}

/// Evaluate the request with Cedar (what [`decide`] returns on a cache miss).
fn evaluate(
    record: &PolicySetRecord,
    principal: &Participant,
    action: Action,
    resource: &Resource,
    provider: Option<&Participant>,
    context: &PolicyContext,
) -> Result<DecisionReceipt, ContractError> {
    let set = cached_set(record)?;
    let p_entity = participant_entity(principal)?;
    let p_uid = p_entity.uid();
    let (r_uid, r_entity) = match resource {
        Resource::Market => {
            (uid(2, "dpx"), Some(Entity::new_no_attrs(uid(2, "dpx"), HashSet::new())))
        }
        Resource::Participant(p) if p.account == principal.account => (p_uid.clone(), None),
        Resource::Participant(p) => (participant_uid(&p.account), Some(participant_entity(p)?)),
        Resource::Product(p) => {
            let e = product_entity(p)?;
            (e.uid(), Some(e))
        }
    };
    // The provider, unless it is the principal itself (already there, and an entity appears once).
    let provider_entity =
        provider.filter(|p| p.account != principal.account).map(participant_entity).transpose()?;
    let entities = Entities::from_entities(
        std::iter::once(p_entity).chain(r_entity).chain(provider_entity),
        Some(&SCHEMA),
    )
    .map_err(policy_err)?;
    let ctx = Context::from_pairs([
        ("grant_consumed".to_string(), RestrictedExpression::new_bool(context.grant_consumed)),
        ("purpose".to_string(), RestrictedExpression::new_string(context.purpose.clone())),
    ])
    .map_err(policy_err)?;
    let request = Request::new(p_uid, uid(3, action.as_str()), r_uid.clone(), ctx, Some(&SCHEMA))
        .map_err(policy_err)?;
    let response = Authorizer::new().is_authorized(&request, &set, &entities);
    let mut determining: Vec<String> =
        response.diagnostics().reason().map(ToString::to_string).collect();
    determining.sort();
    // (policy id, error text), sorted: Cedar returns them in no particular order.
    let mut erroring: Vec<(String, String)> = response
        .diagnostics()
        .errors()
        .map(|cedar_policy::AuthorizationError::PolicyEvaluationError(e)| {
            (e.policy_id().to_string(), bounded(&e.inner().to_string()))
        })
        .collect();
    erroring.sort();
    erroring.dedup();
    // Fail closed: an erroring policy denies, even if every other policy allows.
    let allowed = response.decision() == Decision::Allow && erroring.is_empty();
    let reason = if erroring.is_empty() {
        match (allowed, determining.is_empty()) {
            (true, _) => format!("allowed by {}", determining.join(", ")),
            (false, false) => format!("forbidden by {}", determining.join(", ")),
            (false, true) => format!("no policy permits {action} on {r_uid}"),
        }
    } else {
        let mut named: Vec<String> = erroring
            .iter()
            .take(MAX_ERRORS_IN_REASON)
            .map(|(id, e)| format!("{id} ({e})"))
            .collect();
        if erroring.len() > MAX_ERRORS_IN_REASON {
            named.push(format!("and {} more", erroring.len() - MAX_ERRORS_IN_REASON));
        }
        format!("denied: policies failed to evaluate (fail closed): {}", named.join("; "))
    };
    Ok(DecisionReceipt {
        action: action.as_str().to_string(),
        principal: principal.account,
        resource: r_uid.to_string(),
        allowed,
        policy_version: record.version,
        policy_hash: record.hash,
        determining,
        reason,
    })
}

/// `text` cut to at most [`MAX_ERROR_TEXT_BYTES`] on a character boundary.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT_BYTES {
        return text.to_string();
    }
    let mut end = MAX_ERROR_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// May the holder of `reader` (a participant's current key) read ledger state? The RPC asks
/// this before serving restricted views; regulators and auditors may read everything.
pub fn authorize_read<S: State + ?Sized>(
    st: &S,
    reader: &PublicKey,
) -> Result<DecisionReceipt, ContractError> {
    let account = crate::exec::resolve_account(st, reader)
        .map_err(|e| ContractError::forbidden(e.to_string()))?
        .ok_or_else(|| ContractError::forbidden(format!("{reader} is not a participant")))?;
    decide(st, &account, Action::Read, &Resource::Market, &PolicyContext::none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_schema_and_defaults_validate() {
        let _ = &*SCHEMA;
        let set = parse_policies(DEFAULT_POLICIES, MAX_POLICY_BYTES).unwrap();
        assert!(set.policy(&PolicyId::new("restricted-needs-consumed-grant")).is_some());
        assert!(set.policy(&PolicyId::new("negative-listed-denied")).is_some());
        for a in Action::ALL {
            assert!(SCHEMA.actions().any(|u| u.id().unescaped() == a.as_str()), "{a} in schema");
        }
    }

    #[test]
    fn error_texts_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(MAX_ERROR_TEXT_BYTES); // 2 bytes each
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_ERROR_TEXT_BYTES + "…".len());
        assert!(cut.ends_with('…') && cut.starts_with("éé"));
        let odd = format!("a{long}"); // the limit falls inside a character
        assert!(bounded(&odd).len() <= MAX_ERROR_TEXT_BYTES + "…".len());
    }

    #[test]
    fn bad_policy_sets_are_refused_with_reasons() {
        let cases = [
            ("permit(principal, action, resource);", "@id"),
            (
                "@id(\"a\") permit(principal, action, resource); @id(\"a\") permit(principal, action, resource);",
                "duplicate",
            ),
            ("@id(\"a\") permit(principal, action == Action::\"fly\", resource);", "schema"),
            ("@id(\"a\") permit(principal, action, resource) when { principal.nope };", "schema"),
            ("not cedar", "parse"),
            ("", "empty"),
            ("@id(\"bad id\") permit(principal, action, resource);", "must be"),
        ];
        for (text, want) in cases {
            let err = parse_policies(text, MAX_POLICY_BYTES).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
        let big = format!("@id(\"a\") permit(principal, action, resource);{}", " ".repeat(2000));
        assert!(parse_policies(&big, 1024).unwrap_err().to_string().contains("exceeds"));
    }
}
