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
use crate::products::{Product, ProductConditions, ProductSpec};
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

/// A parsed policy set, and whether its decisions are blind to which participant or product
/// they are about (see [`decision_key`]).
struct ParsedSet {
    set: PolicySet,
    identity_blind: bool,
}

impl ParsedSet {
    fn new(set: PolicySet) -> Self {
        // Every policy's condition (its scope constraints included) names only actions and the
        // market: no `Participant::"…"` or `Product::"…"` literal anywhere.
        let identity_blind = set.policies().all(|p| {
            p.entity_literals()
                .iter()
                .all(|u| matches!(u.type_name().to_string().as_str(), "Action" | "Market"))
        });
        Self { set, identity_blind }
    }
}

thread_local! {
    /// Parsed policy set by text hash. A pure cache: the same text always parses to the same set,
    /// so hits and misses cannot change any result.
    static CACHE: RefCell<Option<(Hash, Rc<ParsedSet>)>> = const { RefCell::new(None) };
}

fn cached_set(record: &PolicySetRecord) -> Result<Rc<ParsedSet>, ContractError> {
    if let Some(set) = CACHE
        .with_borrow(|c| c.as_ref().filter(|(h, _)| *h == record.hash).map(|(_, s)| Rc::clone(s)))
    {
        return Ok(set);
    }
    // Stored text was validated when written; re-check the size bound only.
    let set = Rc::new(ParsedSet::new(parse_policies(&record.text, MAX_POLICY_BYTES)?));
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
    let parsed = cached_set(&record)?;
    // A product's provider as it stands now (a missing record leaves the entity out: a policy
    // that reads it then errors, and so denies).
    let provider: Option<Participant> = match resource {
        Resource::Product(p) => st
            .get(&keys::participant(&p.provider))
            .map(|b| codec::decode(&b))
            .transpose()
            .map_err(ContractError::from)?,
        _ => None,
    };
    let r_uid = resource_uid(principal, resource);
    let key =
        decision_key(&record, &parsed, principal, action, resource, provider.as_ref(), context);
    if let Some(verdict) = DECISIONS.with_borrow(|c| c.get(&key).cloned()) {
        return Ok(receipt(&record, principal, action, &r_uid, verdict));
    }
    let verdict =
        evaluate(&parsed.set, principal, action, resource, &r_uid, provider.as_ref(), context)?;
    // An error's text may name an entity, so only error-free verdicts are remembered.
    if verdict.erroring.is_empty() {
        DECISIONS.with_borrow_mut(|c| {
            if c.len() >= DECISIONS_MAX {
                c.clear();
            }
            c.insert(key, verdict.clone());
        });
    }
    Ok(receipt(&record, principal, action, &r_uid, verdict))
}

/// Decisions each thread remembers (a few hundred bytes each).
const DECISIONS_MAX: usize = 4096;

thread_local! {
    /// Verdicts by a digest of everything they depend on ([`decision_key`]). Evaluation is a
    /// pure function of exactly that, so a hit returns what evaluating again would; it saves the
    /// Cedar evaluation whenever a request looks to the policies like an earlier one.
    static DECISIONS: RefCell<HashMap<Hash, Verdict>> = RefCell::new(HashMap::new());
}

/// What Cedar said, before it is put in a receipt.
#[derive(Debug, Clone)]
struct Verdict {
    allowed: bool,
    /// Sorted.
    determining: Vec<String>,
    /// (policy id, error text), sorted, deduplicated.
    erroring: Vec<(String, String)>,
}

/// The memo's key: a digest of every input of [`evaluate`] as the policies can see it — the
/// policy set, the action, the context, every attribute the entities are built from, and which
/// of the entities are the same one.
///
/// **Identities are left out when the policies cannot tell them apart.** Cedar can compare
/// entity identifiers only with each other (`==`, `in`; these entities have no parents), with
/// literals, and by type; it cannot read an identifier's text. So when no policy names a
/// `Participant` or `Product` literal, renaming the entities consistently cannot change a
/// decision, and the key needs only their attributes and the equalities between them (the
/// principal and a participant resource; a product's provider and the principal; the provider
/// record and the product's provider). Then two consumers with the same roles, rating and
/// status asking to use two products with the same terms share one evaluation: the typical
/// marketplace load, where the old identity-keyed memo almost never hit. A set that names a
/// literal keys every identity too. Error texts can name an entity, so verdicts with errors are
/// never remembered (see [`decide`]); the receipt's identities come from the request itself.
fn decision_key(
    record: &PolicySetRecord,
    parsed: &ParsedSet,
    principal: &Participant,
    action: Action,
    resource: &Resource,
    provider: Option<&Participant>,
    context: &PolicyContext,
) -> Hash {
    let ids = !parsed.identity_blind;
    let mut w = HashWriter::new(Domain::new("dpx/policy-decision-cache/v2"), "");
    w.update(record.hash.as_bytes()).update(&[u8::from(ids)]);
    put_str(&mut w, action.as_str());
    put_participant(&mut w, principal, ids);
    match resource {
        Resource::Market => {
            w.update(b"M");
        }
        Resource::Participant(p) if p.account == principal.account => {
            w.update(b"S");
        }
        Resource::Participant(p) => {
            w.update(b"P");
            put_participant(&mut w, p, ids);
        }
        Resource::Product(p) => {
            // Every field named, so a new one does not compile until it is either keyed here
            // or known not to reach `product_entity` (the test
            // `every_attribute_the_entities_carry_is_in_the_key` checks what is keyed).
            let Product {
                id,
                provider: provider_key,
                spec,
                listed,
                listed_height: _,
                updated_height: _,
                version: _,
            } = p;
            let ProductSpec {
                name: _,
                category,
                domain,
                grade,
                price: _,
                terms_hash: _,
                conditions,
                retention_days: _,
            } = spec;
            let ProductConditions { min_consumer_rating, whitelist_only, purposes } = conditions;
            w.update(b"R").update(&[
                *grade,
                u8::from(*listed),
                *min_consumer_rating,
                u8::from(*whitelist_only),
                u8::from(*provider_key == principal.account),
            ]);
            put_str(&mut w, category.as_str());
            put_str(&mut w, domain);
            put_strs(&mut w, purposes.iter().map(String::as_str));
            if ids {
                put_str(&mut w, &id.to_string());
                w.update(provider_key.as_bytes());
            }
            // The provider's entity, as `evaluate` adds it.
            match provider.filter(|q| q.account != principal.account) {
                Some(q) => {
                    w.update(&[1, u8::from(q.account == p.provider)]);
                    put_participant(&mut w, q, ids);
                }
                None => {
                    w.update(&[0]);
                }
            }
        }
    }
    w.update(&[u8::from(context.grant_consumed)]);
    put_str(&mut w, &context.purpose);
    w.finish()
}

fn put_str(w: &mut HashWriter, s: &str) {
    w.update(&(s.len() as u64).to_le_bytes()).update(s.as_bytes());
}

fn put_strs<'a>(w: &mut HashWriter, items: impl ExactSizeIterator<Item = &'a str>) {
    w.update(&(items.len() as u64).to_le_bytes());
    for s in items {
        put_str(w, s);
    }
}

/// The attributes of [`participant_entity`], and with `ids` its identity.
fn put_participant(w: &mut HashWriter, p: &Participant, ids: bool) {
    // Every field named: see the product's in `decision_key`.
    let Participant {
        account,
        current_key: _,
        name: _,
        roles,
        rating,
        list_status,
        suspended,
        suspension_reason: _,
        admitted_by: _,
        admitted_height: _,
        updated_height: _,
    } = p;
    put_strs(w, roles.iter().map(|r| r.as_str()));
    w.update(&[*rating, u8::from(*suspended)]);
    put_str(w, list_status.as_str());
    if ids {
        w.update(account.as_bytes());
    }
}

/// The Cedar resource of a request.
fn resource_uid(principal: &Participant, resource: &Resource) -> EntityUid {
    match resource {
        Resource::Market => uid(2, "dpx"),
        Resource::Participant(p) if p.account == principal.account => {
            participant_uid(&principal.account)
        }
        Resource::Participant(p) => participant_uid(&p.account),
        Resource::Product(p) => uid(1, &p.id.to_string()),
    }
}

/// Evaluate the request with Cedar (what [`decide`] does on a memo miss).
fn evaluate(
    set: &PolicySet,
    principal: &Participant,
    action: Action,
    resource: &Resource,
    r_uid: &EntityUid,
    provider: Option<&Participant>,
    context: &PolicyContext,
) -> Result<Verdict, ContractError> {
    let p_entity = participant_entity(principal)?;
    let p_uid = p_entity.uid();
    let r_entity = match resource {
        Resource::Market => Some(Entity::new_no_attrs(r_uid.clone(), HashSet::new())),
        Resource::Participant(p) if p.account == principal.account => None,
        Resource::Participant(p) => Some(participant_entity(p)?),
        Resource::Product(p) => Some(product_entity(p)?),
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
    let response = Authorizer::new().is_authorized(&request, set, &entities);
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
    Ok(Verdict { allowed, determining, erroring })
}

/// The receipt of a verdict on `principal` doing `action` on `r_uid`.
fn receipt(
    record: &PolicySetRecord,
    principal: &Participant,
    action: Action,
    r_uid: &EntityUid,
    verdict: Verdict,
) -> DecisionReceipt {
    let Verdict { allowed, determining, erroring } = verdict;
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
    DecisionReceipt {
        action: action.as_str().to_string(),
        principal: principal.account,
        resource: r_uid.to_string(),
        allowed,
        policy_version: record.version,
        policy_hash: record.hash,
        determining,
        reason,
    }
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
    use proptest::prelude::*;

    use crate::products::{ProductConditions, ProductSpec};
    use crate::state::MemState;
    use crate::types::{Category, ListStatus, ProductId, Role};

    fn key(i: u8) -> PublicKey {
        dpx_crypto::Keypair::from_seed([i + 1; 32]).public()
    }

    fn participant(
        i: u8,
        roles: Vec<Role>,
        rating: u8,
        status: ListStatus,
        suspended: bool,
    ) -> Participant {
        Participant {
            account: key(i),
            current_key: key(i),
            name: format!("participant {i}"),
            roles,
            rating,
            list_status: status,
            suspended,
            suspension_reason: String::new(),
            admitted_by: key(0),
            admitted_height: 1,
            updated_height: u64::from(i),
        }
    }

    fn product(
        i: u8,
        provider: u8,
        grade: u8,
        min_rating: u8,
        whitelist: bool,
        purposes: Vec<String>,
    ) -> Product {
        Product {
            id: ProductId(Hash::digest(&[i])),
            provider: key(provider),
            spec: ProductSpec {
                name: format!("product {i}"),
                category: Category::Report,
                domain: "finance".into(),
                grade,
                price: u64::from(i) * 100,
                terms_hash: Hash::digest(b"terms"),
                conditions: ProductConditions {
                    min_consumer_rating: min_rating,
                    whitelist_only: whitelist,
                    purposes,
                },
                retention_days: None,
            },
            listed: true,
            listed_height: 1,
            updated_height: 1,
            version: 1,
        }
    }

    fn with_policies(text: &str, version: u64) -> MemState {
        let mut st = MemState::new();
        let rec = PolicySetRecord {
            version,
            hash: Hash::digest(text.as_bytes()),
            text: text.to_string(),
            height: 1,
        };
        st.put(keys::POLICY_CURRENT.to_vec(), codec::encode(&rec));
        st
    }

    /// What `decide` would return with no memo at all.
    fn fresh(
        st: &MemState,
        principal: &Participant,
        action: Action,
        resource: &Resource,
        context: &PolicyContext,
    ) -> Result<DecisionReceipt, ContractError> {
        let record = current_policies(st)?;
        let set = parse_policies(&record.text, MAX_POLICY_BYTES)?;
        let provider: Option<Participant> = match resource {
            Resource::Product(p) => {
                st.get(&keys::participant(&p.provider)).map(|b| codec::decode(&b).unwrap())
            }
            _ => None,
        };
        let r_uid = resource_uid(principal, resource);
        let v = evaluate(&set, principal, action, resource, &r_uid, provider.as_ref(), context)?;
        Ok(receipt(&record, principal, action, &r_uid, v))
    }

    fn memo_len() -> usize {
        DECISIONS.with_borrow(HashMap::len)
    }

    /// Bans participant 1 by name, so identities matter to this set's decisions.
    fn naming_set() -> String {
        format!(
            "{DEFAULT_POLICIES}\n@id(\"ban-one\")\nforbid (principal == Participant::\"{}\", action, resource);\n",
            key(1).to_hex()
        )
    }

    #[test]
    fn a_set_that_names_a_participant_or_product_is_not_identity_blind() {
        let blind =
            |t: &str| ParsedSet::new(parse_policies(t, MAX_POLICY_BYTES).unwrap()).identity_blind;
        assert!(blind(DEFAULT_POLICIES), "the defaults name only actions");
        assert!(!blind(&naming_set()));
        let in_body = format!(
            "{DEFAULT_POLICIES}\n@id(\"x\") forbid (principal, action, resource) when {{ resource == Product::\"{}\" }};",
            ProductId(Hash::digest(&[7]))
        );
        assert!(!blind(&in_body), "a literal in a condition counts");
        let market = format!(
            "{DEFAULT_POLICIES}\n@id(\"x\") forbid (principal, action, resource) when {{ resource == Market::\"other\" }};"
        );
        assert!(blind(&market), "the market is never renamed");
    }

    #[test]
    fn look_alike_consumers_share_a_verdict_but_not_a_receipt() {
        let st = with_policies(DEFAULT_POLICIES, 1);
        let mut st = st;
        let prov = participant(9, vec![Role::Provider], 3, ListStatus::Normal, false);
        st.put(keys::participant(&prov.account), codec::encode(&prov));
        let (a, b) = (
            participant(2, vec![Role::Consumer], 2, ListStatus::Normal, false),
            participant(3, vec![Role::Consumer], 2, ListStatus::Normal, false),
        );
        let (pa, pb) = (product(1, 9, 3, 0, false, vec![]), product(2, 9, 3, 0, false, vec![]));
        let ctx = PolicyContext { grant_consumed: false, purpose: String::new() };
        let ra = decide(&st, &a, Action::UseGrant, &Resource::Product(pa.clone()), &ctx).unwrap();
        let before = memo_len();
        let rb = decide(&st, &b, Action::UseGrant, &Resource::Product(pb.clone()), &ctx).unwrap();
        assert_eq!(memo_len(), before, "the second request is answered from the memo");
        assert!(!ra.allowed && !rb.allowed, "grade 3 needs a consumed grant");
        assert_eq!(rb, fresh(&st, &b, Action::UseGrant, &Resource::Product(pb), &ctx).unwrap());
        assert_eq!(rb.principal, b.account);
        assert_ne!(ra.resource, rb.resource);
        // Rotating one's own key is allowed; on someone else's, refused (`resource == principal`).
        let own =
            decide(&st, &a, Action::RotateKey, &Resource::Participant(a.clone()), &ctx).unwrap();
        let other =
            decide(&st, &a, Action::RotateKey, &Resource::Participant(b.clone()), &ctx).unwrap();
        assert!(own.allowed && !other.allowed, "{own:?} {other:?}");
    }

    /// A field's name and a change to it.
    type Change<T> = (&'static str, fn(&mut T));

    /// The memo key lists attributes by hand, so it must change exactly when an attribute the
    /// entities carry changes: every field of a participant and of a product is changed in
    /// turn (identities aside: they are keyed only for sets that name them).
    #[test]
    fn every_attribute_the_entities_carry_is_in_the_key() {
        let record = PolicySetRecord {
            version: 1,
            hash: Hash::digest(DEFAULT_POLICIES.as_bytes()),
            text: DEFAULT_POLICIES.to_string(),
            height: 1,
        };
        let parsed = ParsedSet::new(parse_policies(DEFAULT_POLICIES, MAX_POLICY_BYTES).unwrap());
        assert!(parsed.identity_blind);
        let ctx = PolicyContext { grant_consumed: true, purpose: "hiring".into() };
        let prov = participant(9, vec![Role::Provider], 3, ListStatus::Normal, false);
        let memo_key = |p: &Participant, r: &Product| {
            let res = Resource::Product(r.clone());
            decision_key(&record, &parsed, p, Action::UseGrant, &res, Some(&prov), &ctx)
        };
        let attrs = |e: Entity| {
            let mut v = e.to_json_value().unwrap()["attrs"].clone();
            // A product's provider is an identity; the key keeps only how it relates.
            v.as_object_mut().unwrap().remove("provider");
            v
        };
        let p0 = participant(2, vec![Role::Consumer], 1, ListStatus::Normal, false);
        let r0 = product(1, 9, 3, 1, false, vec!["hiring".into()]);
        let participant_changes: [Change<Participant>; 10] = [
            ("current_key", |p| p.current_key = key(7)),
            ("name", |p| p.name.push('!')),
            ("roles", |p| p.roles.push(Role::Provider)),
            ("rating", |p| p.rating += 1),
            ("list_status", |p| p.list_status = ListStatus::Whitelisted),
            ("suspended", |p| p.suspended = true),
            ("suspension_reason", |p| p.suspension_reason.push('!')),
            ("admitted_by", |p| p.admitted_by = key(7)),
            ("admitted_height", |p| p.admitted_height += 1),
            ("updated_height", |p| p.updated_height += 1),
        ];
        for (field, change) in participant_changes {
            let mut p = p0.clone();
            change(&mut p);
            let seen =
                attrs(participant_entity(&p).unwrap()) != attrs(participant_entity(&p0).unwrap());
            assert_eq!(memo_key(&p, &r0) != memo_key(&p0, &r0), seen, "participant.{field}");
        }
        let product_changes: [Change<Product>; 14] = [
            ("name", |r| r.spec.name.push('!')),
            ("category", |r| r.spec.category = Category::Software),
            ("domain", |r| r.spec.domain.push('!')),
            ("grade", |r| r.spec.grade += 1),
            ("price", |r| r.spec.price += 1),
            ("terms_hash", |r| r.spec.terms_hash = Hash::digest(b"other")),
            ("min_consumer_rating", |r| r.spec.conditions.min_consumer_rating += 1),
            ("whitelist_only", |r| r.spec.conditions.whitelist_only = true),
            ("purposes", |r| r.spec.conditions.purposes.push("credit".into())),
            ("retention_days", |r| r.spec.retention_days = Some(30)),
            ("listed", |r| r.listed = false),
            ("listed_height", |r| r.listed_height += 1),
            ("updated_height", |r| r.updated_height += 1),
            ("version", |r| r.version += 1),
        ];
        for (field, change) in product_changes {
            let mut r = r0.clone();
            change(&mut r);
            let seen = attrs(product_entity(&r).unwrap()) != attrs(product_entity(&r0).unwrap());
            assert_eq!(memo_key(&p0, &r) != memo_key(&p0, &r0), seen, "product.{field}");
        }
    }

    #[test]
    fn a_product_of_ones_own_is_not_one_whose_provider_is_missing() {
        // The same provider-reading policies, once on the principal's own product (its entity
        // is the provider) and once on a product whose provider has no record (the policy
        // errors, so denies): look-alike requests that must not share a verdict.
        let st = with_policies(DEFAULT_POLICIES, 1);
        let me = participant(2, vec![Role::Provider], 3, ListStatus::Normal, false);
        let ctx = PolicyContext { grant_consumed: true, purpose: String::new() };
        let own = product(1, 2, 3, 0, false, vec![]);
        let orphan = product(1, 5, 3, 0, false, vec![]);
        let own = decide(&st, &me, Action::UseGrant, &Resource::Product(own), &ctx).unwrap();
        let orphan = decide(&st, &me, Action::UseGrant, &Resource::Product(orphan), &ctx).unwrap();
        assert!(own.allowed, "{own:?}");
        assert!(!orphan.allowed && orphan.reason.contains("fail closed"), "{orphan:?}");
    }

    #[test]
    fn a_set_that_names_a_participant_keys_identities() {
        let st = with_policies(&naming_set(), 2);
        let (banned, twin) = (
            participant(1, vec![Role::Agency], 0, ListStatus::Normal, false),
            participant(2, vec![Role::Agency], 0, ListStatus::Normal, false),
        );
        let ctx = PolicyContext::none();
        // In both orders: whichever is asked first, the other is not answered from its verdict.
        for (first, second) in [(&twin, &banned), (&banned, &twin)] {
            DECISIONS.with_borrow_mut(HashMap::clear);
            let r1 = decide(&st, first, Action::Admit, &Resource::Market, &ctx).unwrap();
            let r2 = decide(&st, second, Action::Admit, &Resource::Market, &ctx).unwrap();
            for (p, r) in [(first, r1), (second, r2)] {
                assert_eq!(r.allowed, p.account != banned.account, "{r:?}");
            }
        }
    }

    fn arb_participant(i: u8) -> impl Strategy<Value = Participant> {
        (
            prop::sample::subsequence(vec![Role::Agency, Role::Provider], 0..=2),
            0u8..3,
            prop::sample::select(vec![
                ListStatus::Normal,
                ListStatus::Normal,
                ListStatus::Whitelisted,
                ListStatus::NegativeListed,
            ]),
            prop::bool::weighted(0.1),
        )
            .prop_map(move |(roles, rating, status, suspended)| {
                participant(i, roles, rating, status, suspended)
            })
    }

    fn arb_set() -> impl Strategy<Value = (String, u64)> {
        prop_oneof![Just((DEFAULT_POLICIES.to_string(), 1)), Just((naming_set(), 2))]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Whatever the memo holds from earlier cases (this thread's, across every case), a
        /// decision is exactly what evaluating afresh gives: small attribute domains make
        /// look-alike requests, and so memo hits, common.
        #[test]
        fn a_remembered_decision_is_the_fresh_one(
            (text, version) in arb_set(),
            who in 0u8..4,
            principal_seed in arb_participant(0),
            others in prop::collection::vec(arb_participant(0), 4),
            resource_kind in 0u8..4,
            res_who in 0u8..4,
            prov_who in 0u8..4,
            provider_stored in any::<bool>(),
            grade in 2u8..4,
            min_rating in 0u8..2,
            whitelist in prop::bool::weighted(0.2),
            purposes in prop::sample::subsequence(vec!["hiring".to_string()], 0..=1),
            action in prop::sample::select(vec![Action::UseGrant, Action::Order, Action::RotateKey, Action::Rate, Action::Admit, Action::Read, Action::ListProduct]),
            grant_consumed in any::<bool>(),
            purpose in prop::sample::select(vec!["hiring".to_string(), "credit".to_string(), String::new()]),
        ) {
            let mut st = with_policies(&text, version);
            let account = |i: u8, p: &Participant| Participant { account: key(i), current_key: key(i), ..p.clone() };
            let principal = account(who, &principal_seed);
            let other = |i: u8| if i == who { principal.clone() } else { account(i, &others[usize::from(i)]) };
            if provider_stored {
                st.put(keys::participant(&key(prov_who)), codec::encode(&other(prov_who)));
            }
            let resource = match resource_kind {
                0 => Resource::Market,
                1 => Resource::Participant(other(res_who)),
                _ => Resource::Product(product(res_who, prov_who, grade, min_rating, whitelist, purposes)),
            };
            let action = match (&resource, action) {
                (Resource::Market, _) => Action::Admit,
                (Resource::Participant(_), a) if [Action::RotateKey, Action::Rate].contains(&a) => a,
                (Resource::Participant(_), _) => Action::RotateKey,
                (Resource::Product(_), a) if [Action::UseGrant, Action::Order, Action::ListProduct].contains(&a) => a,
                (Resource::Product(_), _) => Action::UseGrant,
            };
            let ctx = PolicyContext { grant_consumed, purpose };
            let got = decide(&st, &principal, action, &resource, &ctx).map_err(|e| e.to_string());
            let want = fresh(&st, &principal, action, &resource, &ctx).map_err(|e| e.to_string());
            prop_assert_eq!(got, want);
        }
    }

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
