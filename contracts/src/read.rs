//! The read policy: who may see which part of the ledger. Pure and deterministic, like the
//! rest of the crate; the RPC asks it about every state read, list, proof, block, transaction
//! and event (see ARCHITECTURE.md, "Identity and reads").
//!
//! Three questions, each answered in one place:
//! - **who is asking** ([`viewer`]): an RPC request signed by a key becomes a [`Viewer`]; a
//!   participant's current key is a [`Viewer::Participant`] (a *supervisor* when the Cedar
//!   policy in force permits it the action `read`, by default regulators and auditors), an
//!   enrolled data subject's current key a [`Viewer::Subject`], an unsigned request or any
//!   other key [`Viewer::Anonymous`];
//! - **who may see a record** ([`state_access`], [`absent_access`], [`tx_parties`]): an
//!   [`Access`] computed from the record alone, with one function per record kind listing the
//!   keys that are parties to it (a data subject by its *current* key, looked up from its
//!   subject id, so a rotated-out key stops reading) ([`grant_parties`], [`usage_parties`], [`order_parties`],
//!   [`response_parties`], [`attestation_parties`], [`account_parties`],
//!   [`bank_record_parties`], [`job_parties`], [`tx_parties`]); money totals (treasury,
//!   supply) are for participants;
//! - **may this viewer see it** ([`Viewer::may`]).
//!
//! A record that cannot be decoded, or a key of no known kind, is for supervisors only: the
//! policy fails closed.

use std::collections::BTreeSet;

use dpx_crypto::PublicKey;

use crate::codec;
use crate::compute::{Job, JobAuthority, JobAuthorization};
use crate::demands::{Demand, DemandResponse};
use crate::grants::{GrantRecord, GrantRef, UsageReceipt};
use crate::keys;
use crate::lifecycle::DestructionDue;
use crate::money::{Account, BankRecord};
use crate::ops::Operation;
use crate::participants::Participant;
use crate::products::Product;
use crate::receipt::Receipt;
use crate::state::State;
use crate::subjects::{Subject, load_subject, resolve_subject};
use crate::trades::{AttestTarget, Attestation, Order};
use crate::types::{DemandId, GrantId, JobId, OrderId, ProductId, Role, SubjectId};

/// Who is reading. One per request, so the size difference between variants does not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Viewer {
    /// No identity (an unsigned request), or a key the ledger gives no reading rights.
    Anonymous,
    /// An admitted participant, by its current key.
    Participant {
        account: PublicKey,
        /// The key the request was signed with (the participant's current key).
        key: PublicKey,
        roles: Vec<Role>,
        /// Neither suspended nor negative-listed.
        active: bool,
        /// The policy in force permits it to read everything (Cedar action `read`).
        supervisor: bool,
    },
    /// An enrolled data subject, by its current key. It sees its own subject record and the
    /// records whose parties include it (its grants, their usage receipts and orders).
    Subject(PublicKey),
}

/// Who may see one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed or not.
    Public,
    /// Active participants (and supervisors).
    Participants,
    /// The keys that are parties to the record (and supervisors).
    Parties(BTreeSet<PublicKey>),
    /// Supervisors only.
    Supervisors,
}

/// The viewer behind an authenticated key, under `st` (the latest state).
///
/// A key that was a participant's before a rotation, or whose account record cannot be read,
/// gets no rights ([`Viewer::Anonymous`]): a rotated-out key must not keep reading.
pub fn viewer<S: State + ?Sized>(st: &S, key: &PublicKey) -> Viewer {
    match crate::exec::resolve_account(st, key) {
        Ok(Some(p)) if p.current_key == *key => participant_viewer(st, &p, key),
        Ok(None) => match resolve_subject(st, key) {
            Ok(Some(subject)) if subject.key == *key => Viewer::Subject(*key),
            // No subject's key, or a rotated-out one: no reading rights.
            _ => Viewer::Anonymous,
        },
        Ok(Some(_)) | Err(_) => Viewer::Anonymous,
    }
}

fn participant_viewer<S: State + ?Sized>(st: &S, p: &Participant, key: &PublicKey) -> Viewer {
    // The decision is the policy's: governance can change who supervises. An evaluation error
    // denies.
    let supervisor = crate::policy::authorize_read(st, key).is_ok_and(|d| d.allowed);
    Viewer::Participant {
        account: p.account,
        key: *key,
        roles: p.roles.clone(),
        active: !p.is_barred(),
        supervisor,
    }
}

impl Viewer {
    /// Whether this viewer reads everything.
    pub fn is_supervisor(&self) -> bool {
        matches!(self, Self::Participant { supervisor: true, .. })
    }

    /// The keys this viewer is known by when matched against a record's parties (at most two:
    /// a participant's account and its current signing key).
    pub fn identities(&self) -> Vec<PublicKey> {
        match self {
            Self::Anonymous => Vec::new(),
            Self::Participant { account, key, .. } if account == key => vec![*account],
            Self::Participant { account, key, .. } => vec![*account, *key],
            Self::Subject(k) => vec![*k],
        }
    }

    /// May this viewer see a record with `access`?
    pub fn may(&self, access: &Access) -> bool {
        if self.is_supervisor() {
            return true;
        }
        match access {
            Access::Public => true,
            Access::Participants => matches!(self, Self::Participant { active: true, .. }),
            Access::Parties(keys) => self.identities().iter().any(|k| keys.contains(k)),
            Access::Supervisors => false,
        }
    }
}

// ----- state records ------------------------------------------------------------------------

/// Who may see the stored `value` at state key `key`.
pub fn state_access<S: State + ?Sized>(st: &S, key: &[u8], value: &[u8]) -> Access {
    let p = |prefix: &[u8]| key.starts_with(prefix);
    let parties =
        |set: Option<BTreeSet<PublicKey>>| set.map_or(Access::Supervisors, Access::Parties);
    match key {
        _ if public_key_space(key) => Access::Public,
        _ if p(keys::PREFIX_PRODUCT) => match codec::decode::<Product>(value) {
            Ok(prod) if prod.listed => Access::Public,
            Ok(_) => Access::Participants,
            Err(_) => Access::Supervisors,
        },
        _ if p(keys::PREFIX_DEMAND) => match codec::decode::<Demand>(value) {
            Ok(_) => Access::Participants,
            Err(_) => Access::Supervisors,
        },
        _ if p(keys::PREFIX_RESPONSE) => {
            parties(codec::decode::<DemandResponse>(value).ok().map(|r| response_parties(st, &r)))
        }
        _ if p(keys::PREFIX_ORDER) => {
            parties(codec::decode::<Order>(value).ok().map(|o| order_parties(st, &o)))
        }
        _ if p(keys::PREFIX_GRANT) => {
            parties(codec::decode::<GrantRecord>(value).ok().map(|g| grant_parties(st, &g)))
        }
        _ if p(keys::PREFIX_SUBJECT) => {
            parties(codec::decode::<Subject>(value).ok().map(|s| subject_parties(&s)))
        }
        _ if p(keys::PREFIX_USAGE) => {
            parties(codec::decode::<UsageReceipt>(value).ok().map(|u| usage_parties(st, &u)))
        }
        _ if p(keys::PREFIX_ATTESTATION_COUNT) => parties(
            attestation_target(&key[keys::PREFIX_ATTESTATION_COUNT.len()..])
                .map(|t| target_parties(st, &t)),
        ),
        // Due destructions, their overdue reports and the due-queue: the holder, the parties
        // to the target, and supervisors.
        _ if p(keys::PREFIX_DESTRUCTION) || p(keys::PREFIX_OVERDUE) => {
            parties(codec::decode::<DestructionDue>(value).ok().map(|d| {
                let mut s = target_parties(st, &d.target);
                s.insert(d.holder);
                s
            }))
        }
        _ if p(keys::PREFIX_DESTRUCTION_QUEUE) => {
            parties(keys::parse_destruction_queue(key).map(|(_, t)| target_parties(st, &t)))
        }
        _ if p(keys::PREFIX_ATTESTATION) => {
            parties(codec::decode::<Attestation>(value).ok().map(|a| attestation_parties(st, &a)))
        }
        _ if p(keys::PREFIX_ACCOUNT) => {
            parties(codec::decode::<Account>(value).ok().map(|a| account_parties(st, &a)))
        }
        _ if p(keys::PREFIX_JOB) => {
            parties(codec::decode::<Job>(value).ok().map(|j| job_parties(st, &j)))
        }
        // An order's job marker: the parties to the job it names.
        _ if p(keys::PREFIX_ORDER_JOB) => parties(
            codec::hash(value, "job")
                .ok()
                .and_then(|id| load::<S, Job>(st, &keys::job(&JobId(id))))
                .map(|j| job_parties(st, &j)),
        ),
        _ if p(keys::PREFIX_BANK_RECORD) => {
            parties(codec::decode::<BankRecord>(value).ok().map(|r| bank_record_parties(st, &r)))
        }
        // Ledger-wide totals (treasury, supply): no one participant's business.
        _ if p(keys::PREFIX_MONEY) => Access::Participants,
        _ => Access::Supervisors,
    }
}

/// Who may learn that nothing is stored at `key`. For kinds whose records are open by kind
/// the absence is no secret; for records seen only by their parties it is (answering "not
/// found" to some and "forbidden" to others would reveal which ids exist), so only
/// supervisors learn it.
pub fn absent_access(key: &[u8]) -> Access {
    if public_key_space(key) {
        Access::Public
    } else if [keys::PREFIX_PRODUCT, keys::PREFIX_DEMAND, keys::PREFIX_MONEY]
        .iter()
        .any(|p| key.starts_with(p))
    {
        Access::Participants
    } else {
        Access::Supervisors
    }
}

/// Key spaces that are public whatever their value: the participant registry (public
/// profiles), key bindings, account nonces, governance (proposals, approvals, policy
/// versions, scheduled validator sets) and the chain's metadata (policy, parameters,
/// validators, agency count, chain id, currency, platform fee).
fn public_key_space(key: &[u8]) -> bool {
    [
        keys::PREFIX_PARTICIPANT,
        keys::PREFIX_KEY_BINDING,
        keys::PREFIX_NONCE,
        keys::PREFIX_PROPOSAL,
        keys::PREFIX_APPROVAL,
        keys::PREFIX_POLICY_VERSION,
        keys::PREFIX_VALIDATOR_UPDATE,
        keys::PREFIX_META,
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

fn load<S: State + ?Sized, T: codec::Wire>(st: &S, key: &[u8]) -> Option<T> {
    st.get(key).and_then(|b| codec::decode(&b).ok())
}

/// A grant: its subject (by the subject's current key) and its consumer (unknown only when
/// the subject revoked a serial before the grant was registered).
pub fn grant_parties<S: State + ?Sized>(st: &S, g: &GrantRecord) -> BTreeSet<PublicKey> {
    let mut s: BTreeSet<PublicKey> = subject_key(st, &g.subject).into_iter().collect();
    if let Some(sg) = &g.grant {
        s.insert(sg.grant.consumer);
    }
    s
}

/// A money account: its owner, the settlement banks that recorded transfers for it, and the
/// agencies (which govern the market and its treasury). Regulators and auditors read it as
/// supervisors. A bank that never touched the account does not see its balance.
pub fn account_parties<S: State + ?Sized>(st: &S, a: &Account) -> BTreeSet<PublicKey> {
    let mut s = BTreeSet::from([a.owner]);
    s.extend(a.banks.iter().copied());
    s.extend(crate::governance::agencies(st).unwrap_or_default());
    s
}

/// A bank's record of a transfer: the bank, the account's owner and the agencies.
pub fn bank_record_parties<S: State + ?Sized>(st: &S, r: &BankRecord) -> BTreeSet<PublicKey> {
    let mut s = BTreeSet::from([r.bank, r.account]);
    s.extend(crate::governance::agencies(st).unwrap_or_default());
    s
}

/// A data subject's record (the link between a pseudonymous subject id and a key): the
/// subject itself (current key) and the registrar that enrolled it.
pub fn subject_parties(subject: &Subject) -> BTreeSet<PublicKey> {
    BTreeSet::from([subject.key, subject.registrar])
}

/// The current key of an enrolled subject.
fn subject_key<S: State + ?Sized>(st: &S, id: &SubjectId) -> Option<PublicKey> {
    load_subject(st, id).ok().flatten().map(|s| s.key)
}

/// A usage receipt: the grant's subject and consumer, and the product's provider, who checks
/// the receipt before serving the data.
pub fn usage_parties<S: State + ?Sized>(st: &S, u: &UsageReceipt) -> BTreeSet<PublicKey> {
    let mut s = BTreeSet::from([u.consumer]);
    s.extend(subject_key(st, &u.subject));
    s.extend(grant_id_parties(st, &u.grant));
    s.extend(provider_of(st, &u.product));
    s
}

/// An order: its buyer and provider, and the subject of the grant it consumed, if any.
pub fn order_parties<S: State + ?Sized>(st: &S, o: &Order) -> BTreeSet<PublicKey> {
    let mut s = BTreeSet::from([o.buyer, o.provider]);
    if let Some(g) = &o.grant {
        s.extend(grant_id_parties(st, g));
    }
    s
}

/// A compute job: its consumer, its compute node, the providers of its products, and the
/// data subjects whose grants it consumed (by current key). Nobody else: who computed what
/// over whose data is the parties' and the supervisors' business.
pub fn job_parties<S: State + ?Sized>(st: &S, j: &Job) -> BTreeSet<PublicKey> {
    let mut s = BTreeSet::from([j.consumer, j.compute_node]);
    s.extend(j.providers.iter().copied());
    for a in &j.authorities {
        if let JobAuthority::Grant(g) = a {
            s.extend(grant_id_parties(st, g));
        }
    }
    s
}

fn job_id_parties<S: State + ?Sized>(st: &S, id: &JobId) -> BTreeSet<PublicKey> {
    load::<S, Job>(st, &keys::job(id)).map(|j| job_parties(st, &j)).unwrap_or_default()
}

/// A response to a demand: the responder and the demand's poster.
pub fn response_parties<S: State + ?Sized>(st: &S, r: &DemandResponse) -> BTreeSet<PublicKey> {
    let mut s = BTreeSet::from([r.responder]);
    if let Some(d) = load::<S, Demand>(st, &keys::demand(&r.demand)) {
        s.insert(d.poster);
    }
    s
}

/// A life-cycle attestation: its attester and the parties to what it is about.
pub fn attestation_parties<S: State + ?Sized>(st: &S, a: &Attestation) -> BTreeSet<PublicKey> {
    let mut s = target_parties(st, &a.target);
    s.insert(a.attester);
    s
}

fn target_parties<S: State + ?Sized>(st: &S, t: &AttestTarget) -> BTreeSet<PublicKey> {
    match t {
        AttestTarget::Order(id) => order_id_parties(st, id),
        AttestTarget::Grant(id) => match load::<S, UsageReceipt>(st, &keys::usage(id)) {
            Some(u) => usage_parties(st, &u),
            None => grant_id_parties(st, id),
        },
    }
}

/// `<tag><32-byte id>` of an attestation-count key.
fn attestation_target(rest: &[u8]) -> Option<AttestTarget> {
    keys::parse_target(rest)
}

fn grant_id_parties<S: State + ?Sized>(st: &S, id: &GrantId) -> BTreeSet<PublicKey> {
    load::<S, GrantRecord>(st, &keys::grant(id)).map(|g| grant_parties(st, &g)).unwrap_or_default()
}

fn order_id_parties<S: State + ?Sized>(st: &S, id: &OrderId) -> BTreeSet<PublicKey> {
    load::<S, Order>(st, &keys::order(id)).map(|o| order_parties(st, &o)).unwrap_or_default()
}

fn provider_of<S: State + ?Sized>(st: &S, id: &ProductId) -> Option<PublicKey> {
    load::<S, Product>(st, &keys::product(id)).map(|p| p.provider)
}

fn poster_of<S: State + ?Sized>(st: &S, id: &DemandId) -> Option<PublicKey> {
    load::<S, Demand>(st, &keys::demand(id)).map(|d| d.poster)
}

// ----- transactions -------------------------------------------------------------------------

/// Event attributes whose value names a party (a hex key) in receipts. Not `subject`: grant
/// events name the data subject by its [`SubjectId`](crate::SubjectId), a hash, never by key
/// (its key comes from state, see `subject_key`); parsing it as a key would cost a point
/// decompression per event for nothing, and one id in sixteen or so would decode to a curve
/// point that is nobody's key.
const PARTY_ATTRS: &[&str] = &[
    "consumer",
    "provider",
    "buyer",
    "poster",
    "responder",
    "participant",
    "principal",
    "by",
    "account",
    "bank",
    "compute_node",
];

/// A transaction (its body, receipt and events): its signer, every key its operation names,
/// the parties to the objects it names, and every party its receipt's events name.
///
/// `st` is used only to find the parties to objects named by id (an order's buyer and
/// provider, a grant's subject and consumer, a demand's poster, a product's provider); those
/// never change once an object exists, so any state at or after the transaction's block gives
/// the same answer. Pass `&MemState::new()` (no lookups) where no state is at hand: the
/// receipt's events still name the participants of every transaction that succeeded (a data
/// subject, named by id in grant events, is then found only through state).
pub fn tx_parties<S: State + ?Sized>(
    st: &S,
    signer: &PublicKey,
    op: Option<&Operation>,
    receipt: Option<&Receipt>,
) -> BTreeSet<PublicKey> {
    let mut s = BTreeSet::from([*signer]);
    if let Some(op) = op {
        op_parties(st, op, &mut s);
    }
    for e in receipt.map_or(&[][..], |r| &r.events[..]) {
        for a in &e.attrs {
            if PARTY_ATTRS.contains(&a.key.as_str())
                && let Ok(k) = a.value.parse::<PublicKey>()
            {
                s.insert(k);
            }
        }
    }
    if let Some(d) = receipt.and_then(|r| r.decision.as_ref()) {
        s.insert(d.principal);
    }
    s
}

fn op_parties<S: State + ?Sized>(st: &S, op: &Operation, s: &mut BTreeSet<PublicKey>) {
    use Operation as O;
    match op {
        O::Admit { key, .. } | O::EnrolSubject { subject_key: key, .. } => {
            s.insert(*key);
        }
        O::RotateKey { new_key, .. } => {
            s.insert(*new_key);
        }
        O::SetRating { participant, .. }
        | O::SetListStatus { participant, .. }
        | O::Suspend { participant, .. }
        | O::Reinstate { participant } => {
            s.insert(*participant);
        }
        // The signer (already in the set) is the only party; for the grant operations a
        // subject signs, the signer is the subject.
        O::ListProduct { .. }
        | O::PostDemand { .. }
        | O::Propose { .. }
        | O::Approve { .. }
        | O::RevokeGrant { .. }
        | O::RevokeAllGrants => {}
        O::UpdateProduct { product, .. } | O::DelistProduct { product } => {
            s.extend(provider_of(st, product));
        }
        O::RespondDemand { demand, product, .. } => {
            s.extend(poster_of(st, demand));
            s.extend(product.as_ref().and_then(|p| provider_of(st, p)));
        }
        O::AwardDemand { demand, responder } => {
            s.extend(poster_of(st, demand));
            s.insert(*responder);
        }
        O::CloseDemand { demand } => s.extend(poster_of(st, demand)),
        O::PlaceOrder { product, grant, .. } => {
            s.extend(provider_of(st, product));
            s.extend(grant.as_ref().map(|g| grant_ref_parties(st, g)).unwrap_or_default());
        }
        O::AcceptOrder { order }
        | O::DeliverOrder { order, .. }
        | O::ConfirmOrder { order }
        | O::CancelOrder { order }
        | O::DisputeOrder { order, .. }
        | O::ResolveDispute { order, .. } => s.extend(order_id_parties(st, order)),
        O::Attest { target, .. } | O::ReviewAttestation { target, .. } => {
            s.extend(target_parties(st, target));
        }
        O::RegisterGrant { grant } => {
            s.extend(subject_key(st, &grant.grant.subject));
            s.insert(grant.grant.key);
            s.insert(grant.grant.consumer);
        }
        O::UseGrant { grant, product, .. } => {
            s.extend(grant_ref_parties(st, grant));
            s.extend(provider_of(st, product));
        }
        O::ExpireGrant { grant } => s.extend(grant_id_parties(st, grant)),
        O::RotateSubjectKey { subject_id, new_key, .. } => {
            s.extend(subject_key(st, subject_id));
            s.insert(*new_key);
        }
        O::Deposit { account, .. } | O::Withdraw { account, .. } => {
            s.insert(*account);
        }
        O::RequestJob { products, authorizations, compute_node, .. } => {
            s.insert(*compute_node);
            for p in products {
                s.extend(provider_of(st, p));
            }
            for a in authorizations {
                match a {
                    JobAuthorization::Grant(g) => s.extend(grant_ref_parties(st, g)),
                    JobAuthorization::Order(o) => s.extend(order_id_parties(st, o)),
                }
            }
        }
        O::AttestJob { job, .. }
        | O::ConfirmJob { job, .. }
        | O::CancelJob { job }
        | O::RejectJob { job, .. } => s.extend(job_id_parties(st, job)),
    }
}

fn grant_ref_parties<S: State + ?Sized>(st: &S, g: &GrantRef) -> BTreeSet<PublicKey> {
    match g {
        GrantRef::Inline(sg) => {
            let mut s = BTreeSet::from([sg.grant.key, sg.grant.consumer]);
            s.extend(subject_key(st, &sg.grant.subject));
            s
        }
        GrantRef::Id(id) => grant_id_parties(st, id),
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
