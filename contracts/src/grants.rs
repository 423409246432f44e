//! One use, one authorization (一次使用一次授权), by the person whose data it is.
//!
//! A data subject is enrolled by a registrar ([`crate::subjects`]): a pseudonymous subject id
//! bound to the key on the subject's phone. The subject signs a [`Grant`] offline with that key
//! (shown to the consumer as a QR code via [`SignedGrant::to_compact`]). A grant is valid only
//! if its signing key is the subject's *current* key when it is registered or first used
//! inline, and only under the subject's current grant epoch (a revoke-all bumps it). The
//! consumer submits it to use it once, or the subject registers it first and the consumer uses
//! it later by id. The stored [`GrantRecord`] moves `Issued → Consumed | Revoked | Expired`
//! exactly once: every path that changes it first checks that it is `Issued`, and a
//! transaction that fails changes nothing, so no order of transactions can consume a grant
//! twice.
//!
//! **Ids are the subject's own.** A grant's id is derived from its subject id and a serial the
//! subject chooses ([`grant_id`]), and revocation names the serial, the subject coming from the
//! signer: nobody can occupy or revoke an id in another subject's space, before or after
//! registration.
//!
//! **Time.** A grant expires by block time: it is valid while `time_ms <= expires_at_ms` (the
//! header's agreed time, [`crate::BlockContext::time_ms`]) and refused from
//! `expires_at_ms + 1` on. Integers only, so every node and every audit replay agrees.
//!
//! **Grade 4.** A grant for a grade-4 product must name a purpose whose governed `max_grade` is
//! 4, and must expire at most `Params::grade4_grant_lifetime_ms_max` (default 1 hour) after the
//! block time at which it is registered or used inline; every grade-4 use emits
//! `grant.grade4_used` for regulators.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpx_crypto::{Domain, Hash, HashWriter, Keypair, PublicKey, Signature};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError, GrantRefusal};
use crate::exec::Exec;
use crate::keys;
use crate::params::params;
use crate::policy::{Action, PolicyContext, Resource};
use crate::products::{Product, load_listed};
use crate::receipt::Event;
use crate::state::State;
use crate::subjects::{Subject, load_subject};
use crate::trades::AttestTarget;
use crate::types::{GrantId, GrantState, MAX_GRADE, MAX_TEXT_BYTES, ProductId, SubjectId};

/// Largest encoded signed grant.
pub const MAX_GRANT_BYTES: usize = 1024;
/// Longest compact (base64url) form: 4 characters per 3 bytes.
pub const MAX_COMPACT_CHARS: usize = MAX_GRANT_BYTES.div_ceil(3) * 4;
/// Domain of grant ids derived from (subject id, serial).
pub const GRANT_ID_DOMAIN: Domain = Domain::new("dpx/grant-id/v1");

/// The id of the grant with `serial` in `subject`'s id space.
pub fn grant_id(subject: &SubjectId, serial: &Hash) -> GrantId {
    let mut w = HashWriter::new(GRANT_ID_DOMAIN, "");
    w.update(subject.0.as_bytes()).update(serial.as_bytes());
    GrantId(w.finish())
}

/// An authorization: data subject `subject` lets `consumer` use `product` once, for the
/// governed purpose `purpose`, until block time `expires_at_ms` (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Chosen by the subject (e.g. 32 random bytes); the id is [`grant_id`]`(subject, serial)`.
    pub serial: Hash,
    pub subject: SubjectId,
    /// The subject key that signs; must be the subject's current key when the grant is
    /// registered or first used inline.
    pub key: PublicKey,
    /// The subject's grant epoch when signed; a revoke-all makes every older epoch invalid.
    pub epoch: u64,
    /// The consumer's participant account key.
    pub consumer: PublicKey,
    pub product: ProductId,
    /// A purpose code from `Params::purposes`.
    pub purpose: String,
    /// Last block time (ms since the Unix epoch) at which it can be used.
    pub expires_at_ms: u64,
}

/// A grant with the subject key's signature (Domain::GRANT over [`Grant::signing_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedGrant {
    pub grant: Grant,
    pub signature: Signature,
}

/// How a transaction names the grant it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantRef {
    /// Submit and use in one transaction.
    Inline(Box<SignedGrant>),
    /// Use a grant registered earlier.
    Id(GrantId),
}

impl GrantRef {
    pub fn id(&self) -> GrantId {
        match self {
            Self::Inline(g) => g.grant.id(),
            Self::Id(id) => *id,
        }
    }
}

/// A grant as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Absent only when the subject revoked a serial before anyone registered the grant.
    pub grant: Option<SignedGrant>,
    pub subject: SubjectId,
    pub state: GrantState,
    /// Height and block time of the last state change.
    pub state_height: u64,
    pub state_time_ms: u64,
    pub registered_height: u64,
}

/// Proof of a grant's single use, keyed by grant id: a provider checks it (subject, consumer,
/// product, request hash) before serving that person's data, and only that person's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReceipt {
    pub grant: GrantId,
    pub subject: SubjectId,
    pub consumer: PublicKey,
    pub product: ProductId,
    pub purpose: String,
    pub height: u64,
    pub time_ms: u64,
    pub request_hash: Hash,
    pub tx_hash: Hash,
}

impl Grant {
    /// The grant's id: [`grant_id`]`(subject, serial)`.
    pub fn id(&self) -> GrantId {
        grant_id(&self.subject, &self.serial)
    }

    /// The canonical bytes the subject signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }

    /// Sign with the subject key. `key` must be [`Grant::key`].
    pub fn sign(self, key: &Keypair, chain_id: &str) -> SignedGrant {
        assert_eq!(key.public(), self.key, "a grant is signed by the key it names");
        let signature = key.sign(Domain::GRANT, chain_id, &self.signing_bytes());
        SignedGrant { grant: self, signature }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.purpose.is_empty() || self.purpose.len() > MAX_TEXT_BYTES {
            return Err(format!("grant purpose must be 1..={MAX_TEXT_BYTES} bytes"));
        }
        Ok(())
    }
}

impl SignedGrant {
    /// The digest the subject signs.
    pub fn signing_digest(&self, chain_id: &str) -> Hash {
        Hash::of(Domain::GRANT, chain_id, &self.grant.signing_bytes())
    }

    /// This grant's signature, to verify with others (`digest`: from
    /// [`Self::signing_digest`]).
    pub fn signed_digest<'a>(&'a self, digest: &'a Hash) -> dpx_crypto::SignedDigest<'a> {
        dpx_crypto::SignedDigest { key: &self.grant.key, digest, sig: &self.signature }
    }

    /// Whether the signature verifies for the key the grant names (not whether that key is
    /// the subject's current one: that needs state, see execution).
    pub fn verify(&self, chain_id: &str) -> Result<(), GrantRefusal> {
        self.grant
            .key
            .verify(Domain::GRANT, chain_id, &self.grant.signing_bytes(), &self.signature)
            .map_err(|_| GrantRefusal::BadSignature)
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decode; only the canonical encoding is accepted, so one grant has one byte form.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let g: Self = codec::decode_canonical(bytes)?;
        g.grant.validate().map_err(|e| DecodeError::field("grant", e))?;
        Ok(g)
    }

    /// base64url (no padding) of the encoding, small enough for a QR code.
    pub fn to_compact(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.encode())
    }

    pub fn from_compact(text: &str) -> Result<Self, DecodeError> {
        let text = text.trim();
        if text.len() > MAX_COMPACT_CHARS {
            return Err(DecodeError::TooLarge { size: text.len(), max: MAX_COMPACT_CHARS });
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|e| DecodeError::Base64(e.to_string()))?;
        Self::decode(&bytes)
    }
}

impl Wire for Grant {
    type Pb = pb::Grant;
    const MAX_BYTES: usize = MAX_GRANT_BYTES;
    fn to_pb(&self) -> pb::Grant {
        pb::Grant {
            serial: self.serial.0.to_vec(),
            subject: self.subject.to_wire(),
            key: self.key.to_bytes().to_vec(),
            epoch: self.epoch,
            consumer: self.consumer.to_bytes().to_vec(),
            product: self.product.to_wire(),
            purpose: self.purpose.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }
    fn from_pb(p: pb::Grant) -> Result<Self, DecodeError> {
        Ok(Self {
            serial: codec::hash(&p.serial, "grant.serial")?,
            subject: SubjectId::from_wire(&p.subject, "grant.subject")?,
            key: codec::key(&p.key, "grant.key")?,
            epoch: p.epoch,
            consumer: codec::key(&p.consumer, "grant.consumer")?,
            product: ProductId::from_wire(&p.product, "grant.product")?,
            purpose: p.purpose,
            expires_at_ms: p.expires_at_ms,
        })
    }
}

impl Wire for SignedGrant {
    type Pb = pb::SignedGrant;
    const MAX_BYTES: usize = MAX_GRANT_BYTES;
    fn to_pb(&self) -> pb::SignedGrant {
        pb::SignedGrant {
            grant: Some(self.grant.to_pb()),
            signature: self.signature.to_bytes().to_vec(),
        }
    }
    fn from_pb(p: pb::SignedGrant) -> Result<Self, DecodeError> {
        Ok(Self {
            grant: Grant::from_pb(codec::req(p.grant, "grant")?)?,
            signature: codec::sig(&p.signature, "signature")?,
        })
    }
}

impl Wire for GrantRef {
    type Pb = pb::GrantRef;
    const MAX_BYTES: usize = MAX_GRANT_BYTES;
    fn to_pb(&self) -> pb::GrantRef {
        use pb::grant_ref::Kind;
        let kind = match self {
            Self::Inline(g) => Kind::Inline(g.to_pb()),
            Self::Id(id) => Kind::Id(id.to_wire()),
        };
        pb::GrantRef { kind: Some(kind) }
    }
    fn from_pb(p: pb::GrantRef) -> Result<Self, DecodeError> {
        use pb::grant_ref::Kind;
        Ok(match codec::req(p.kind, "grant_ref")? {
            Kind::Inline(g) => Self::Inline(Box::new(SignedGrant::from_pb(g)?)),
            Kind::Id(id) => Self::Id(GrantId::from_wire(&id, "grant_ref.id")?),
        })
    }
}

impl Wire for GrantRecord {
    type Pb = pb::GrantRecord;
    const MAX_BYTES: usize = MAX_GRANT_BYTES + 256;
    fn to_pb(&self) -> pb::GrantRecord {
        pb::GrantRecord {
            grant: self.grant.as_ref().map(Wire::to_pb),
            subject: self.subject.to_wire(),
            state: self.state.code(),
            state_height: self.state_height,
            registered_height: self.registered_height,
            state_time_ms: self.state_time_ms,
        }
    }
    fn from_pb(p: pb::GrantRecord) -> Result<Self, DecodeError> {
        Ok(Self {
            grant: p.grant.map(SignedGrant::from_pb).transpose()?,
            subject: SubjectId::from_wire(&p.subject, "subject")?,
            state: GrantState::from_wire(p.state, "state")?,
            state_height: p.state_height,
            state_time_ms: p.state_time_ms,
            registered_height: p.registered_height,
        })
    }
}

impl Wire for UsageReceipt {
    type Pb = pb::UsageReceipt;
    const MAX_BYTES: usize = 1024;
    fn to_pb(&self) -> pb::UsageReceipt {
        pb::UsageReceipt {
            grant: self.grant.to_wire(),
            consumer: self.consumer.to_bytes().to_vec(),
            product: self.product.to_wire(),
            purpose: self.purpose.clone(),
            height: self.height,
            request_hash: self.request_hash.0.to_vec(),
            tx_hash: self.tx_hash.0.to_vec(),
            subject: self.subject.to_wire(),
            time_ms: self.time_ms,
        }
    }
    fn from_pb(p: pb::UsageReceipt) -> Result<Self, DecodeError> {
        Ok(Self {
            grant: GrantId::from_wire(&p.grant, "grant")?,
            subject: SubjectId::from_wire(&p.subject, "subject")?,
            consumer: codec::key(&p.consumer, "consumer")?,
            product: ProductId::from_wire(&p.product, "product")?,
            purpose: p.purpose,
            height: p.height,
            time_ms: p.time_ms,
            request_hash: codec::hash(&p.request_hash, "request_hash")?,
            tx_hash: codec::hash(&p.tx_hash, "tx_hash")?,
        })
    }
}

/// The refusal for a record that is no longer `Issued`.
fn settled(record: &GrantRecord) -> GrantRefusal {
    let height = record.state_height;
    match record.state {
        GrantState::Consumed => GrantRefusal::AlreadyConsumed { height },
        GrantState::Revoked => GrantRefusal::Revoked { height },
        GrantState::Expired => GrantRefusal::Expired {
            expires_at_ms: record.grant.as_ref().map_or(0, |g| g.grant.expires_at_ms),
            time_ms: record.state_time_ms,
        },
        GrantState::Issued => GrantRefusal::NotIssued { state: GrantState::Issued },
    }
}

fn load<S: State + ?Sized>(
    x: &Exec<'_, S>,
    id: &GrantId,
) -> Result<Option<GrantRecord>, ContractError> {
    x.load(&keys::grant(id))
}

/// The subject's record, which must be enrolled and active, and its grant epoch must be the
/// grant's. Checked at every registration and use: O(1), no scan.
fn live_subject<S: State + ?Sized>(x: &Exec<'_, S>, g: &Grant) -> Result<Subject, GrantRefusal> {
    let subject = load_subject(&x.st, &g.subject)
        .map_err(|e| GrantRefusal::Unreadable { reason: e.to_string() })?
        .ok_or(GrantRefusal::UnknownSubject)?;
    if g.epoch != subject.grant_epoch {
        return Err(GrantRefusal::WrongEpoch { epoch: g.epoch, current: subject.grant_epoch });
    }
    Ok(subject)
}

/// Block time against the grant's expiry: valid at `time_ms == expires_at_ms`, refused at +1.
fn unexpired<S: State + ?Sized>(x: &Exec<'_, S>, g: &Grant) -> Result<(), GrantRefusal> {
    let time_ms = x.time_ms();
    if time_ms > g.expires_at_ms {
        return Err(GrantRefusal::Expired { expires_at_ms: g.expires_at_ms, time_ms });
    }
    Ok(())
}

/// The purpose and grade rules for `g` on `product`: a governed purpose allowed for the
/// product's grade; for grade 4, an expiry within the governed lifetime of now (`fresh`: the
/// grant is being registered or used inline for the first time).
fn purpose_and_grade<S: State + ?Sized>(
    x: &Exec<'_, S>,
    g: &Grant,
    product: &Product,
    fresh: bool,
) -> Result<(), GrantRefusal> {
    let p = params(&x.st);
    let grade = product.spec.grade;
    let Some(purpose) = p.purpose(&g.purpose) else {
        return Err(GrantRefusal::UnknownPurpose { purpose: g.purpose.clone() });
    };
    if grade > purpose.max_grade {
        return Err(GrantRefusal::PurposeGrade {
            purpose: g.purpose.clone(),
            max_grade: purpose.max_grade,
            grade,
        });
    }
    if fresh && grade >= MAX_GRADE {
        let max = x.time_ms().saturating_add(p.grade4_grant_lifetime_ms_max);
        if g.expires_at_ms > max {
            return Err(GrantRefusal::Grade4Lifetime {
                expires_at_ms: g.expires_at_ms,
                max_expires_at_ms: max,
                lifetime_ms_max: p.grade4_grant_lifetime_ms_max,
            });
        }
    }
    Ok(())
}

/// Every check a grant must pass when the ledger first sees it (registration or a first inline
/// use): its signature, by the subject's current key, under the current epoch, unexpired, for
/// a consumer who is not a data subject, a listed product and a governed purpose.
fn check_new<S: State + ?Sized>(
    x: &Exec<'_, S>,
    sg: &SignedGrant,
) -> Result<Product, ContractError> {
    let g = &sg.grant;
    let refuse = |r| ContractError::grant(g.id(), r);
    x.check_grant_signature(sg).map_err(refuse)?;
    let subject = live_subject(x, g).map_err(refuse)?;
    if g.key != subject.key {
        return Err(refuse(GrantRefusal::NotCurrentKey { key: g.key.to_hex() }));
    }
    if x.st.get(&keys::subject_key(&g.consumer)).is_some() {
        return Err(refuse(GrantRefusal::ConsumerIsSubject));
    }
    unexpired(x, g).map_err(refuse)?;
    let product = load_listed(x, &g.product)?;
    purpose_and_grade(x, g, &product, true).map_err(refuse)?;
    Ok(product)
}

/// Register a signed grant so it can later be used by id. Only the grant's subject, with its
/// current key, may.
pub(crate) fn register<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    sg: &SignedGrant,
) -> Result<(), ContractError> {
    let id = sg.grant.id();
    let refuse = |r| ContractError::grant(id, r);
    if x.subject_id() != Some(sg.grant.subject) {
        return Err(refuse(GrantRefusal::NotSubject));
    }
    if let Some(rec) = load(x, &id)? {
        return Err(refuse(match &rec.grant {
            _ if rec.state != GrantState::Issued => settled(&rec),
            Some(g) if g == sg => GrantRefusal::AlreadyRegistered,
            // The same subject signed two grants with one serial: the first one stands.
            _ => GrantRefusal::IdConflict,
        }));
    }
    check_new(x, sg)?;
    let rec = GrantRecord {
        grant: Some(sg.clone()),
        subject: sg.grant.subject,
        state: GrantState::Issued,
        state_height: x.height(),
        state_time_ms: x.time_ms(),
        registered_height: x.height(),
    };
    x.store(keys::grant(&id), &rec);
    x.emit(issued_event(&sg.grant));
    Ok(())
}

fn issued_event(g: &Grant) -> Event {
    Event::new("grant.issued")
        .attr("grant", g.id())
        .attr("subject", g.subject)
        .attr("consumer", g.consumer)
        .attr("product", g.product)
        .attr("purpose", &g.purpose)
        .attr("expires_at_ms", g.expires_at_ms)
}

/// What a use is for: checked against the grant's own fields.
#[derive(Debug, Clone)]
pub(crate) struct UseRequest<'a> {
    /// The data subject the use names (`use_grant`); `None` where the grant alone names it
    /// (an order's grant).
    pub subject: Option<SubjectId>,
    pub product: ProductId,
    pub purpose: &'a str,
    pub request_hash: Hash,
}

/// The record to consume for `gref`, and whether the ledger sees the grant for the first time.
fn record_to_use<S: State + ?Sized>(
    x: &Exec<'_, S>,
    gref: &GrantRef,
) -> Result<(GrantRecord, bool), ContractError> {
    let id = gref.id();
    let refuse = |r| ContractError::grant(id, r);
    match (gref, load(x, &id)?) {
        (GrantRef::Inline(sg), None) => {
            check_new(x, sg)?;
            let rec = GrantRecord {
                grant: Some((**sg).clone()),
                subject: sg.grant.subject,
                state: GrantState::Issued,
                state_height: x.height(),
                state_time_ms: x.time_ms(),
                registered_height: x.height(),
            };
            Ok((rec, true))
        }
        (GrantRef::Inline(sg), Some(rec)) => match &rec.grant {
            // Revoked by its subject before anyone registered it.
            None => Err(refuse(settled(&rec))),
            Some(g) if g == &**sg => Ok((rec, false)),
            Some(_) => Err(refuse(GrantRefusal::IdConflict)),
        },
        (GrantRef::Id(_), Some(rec)) if rec.grant.is_some() => Ok((rec, false)),
        (GrantRef::Id(_), Some(rec)) => Err(refuse(settled(&rec))),
        (GrantRef::Id(_), None) => Err(refuse(GrantRefusal::Unknown)),
    }
}

/// Consume a grant for the signer's account: the single `Issued → Consumed` transition.
pub(crate) fn consume<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    gref: &GrantRef,
    req: &UseRequest<'_>,
) -> Result<GrantId, ContractError> {
    let id = gref.id();
    let refuse = |r| ContractError::grant(id, r);
    let (mut rec, newly_seen) = record_to_use(x, gref)?;
    if rec.state != GrantState::Issued {
        return Err(refuse(settled(&rec)));
    }
    let Some(sg) = rec.grant.clone() else {
        return Err(refuse(GrantRefusal::Unknown));
    };
    let g = &sg.grant;
    unexpired(x, g).map_err(refuse)?;
    // A revoke-all since registration refuses it (the epoch moved).
    live_subject(x, g).map_err(refuse)?;
    if let Some(subject) = req.subject.filter(|s| *s != g.subject) {
        return Err(refuse(GrantRefusal::WrongSubject {
            expected: g.subject.to_string(),
            got: subject.to_string(),
        }));
    }
    let consumer = x.me()?.account;
    if g.consumer != consumer {
        return Err(refuse(GrantRefusal::WrongConsumer {
            expected: g.consumer.to_hex(),
            got: consumer.to_hex(),
        }));
    }
    if g.product != req.product {
        return Err(refuse(GrantRefusal::WrongProduct {
            expected: g.product.0,
            got: req.product.0,
        }));
    }
    if g.purpose != req.purpose {
        return Err(refuse(GrantRefusal::WrongPurpose {
            expected: g.purpose.clone(),
            got: req.purpose.to_string(),
        }));
    }
    let product = load_listed(x, &req.product)?;
    // The purpose list may have changed since registration: a purpose no longer governed (or
    // no longer allowed for this grade) is refused at use too.
    purpose_and_grade(x, g, &product, false).map_err(refuse)?;
    if newly_seen {
        x.emit(issued_event(g));
    }
    let (h, t) = (x.height(), x.time_ms());
    rec.state = GrantState::Consumed;
    rec.state_height = h;
    rec.state_time_ms = t;
    x.store(keys::grant(&id), &rec);
    let usage = UsageReceipt {
        grant: id,
        subject: g.subject,
        consumer,
        product: req.product,
        purpose: g.purpose.clone(),
        height: h,
        time_ms: t,
        request_hash: req.request_hash,
        tx_hash: x.tx_hash,
    };
    x.store(keys::usage(&id), &usage);
    x.emit(
        Event::new("grant.consumed")
            .attr("grant", id)
            .attr("subject", g.subject)
            .attr("consumer", consumer)
            .attr("product", req.product)
            .attr("purpose", &g.purpose)
            .attr("request_hash", req.request_hash),
    );
    if product.spec.grade >= MAX_GRADE {
        x.emit(
            Event::new("grant.grade4_used")
                .attr("grant", id)
                .attr("subject", g.subject)
                .attr("consumer", consumer)
                .attr("product", req.product)
                .attr("purpose", &g.purpose)
                .attr("time_ms", t),
        );
    }
    Ok(id)
}

/// The `use_grant` operation: consume, then ask the policy (grant present, purpose).
pub(crate) fn use_grant<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    gref: &GrantRef,
    req: &UseRequest<'_>,
) -> Result<(), ContractError> {
    let id = consume(x, gref, req)?;
    let product = load_listed(x, &req.product)?;
    let retention_days = product.spec.retention_days;
    x.authorize(
        Action::UseGrant,
        &Resource::Product(product),
        &PolicyContext { grant_consumed: true, purpose: req.purpose.to_string() },
    )?;
    // The consumer now holds the data: its retention period starts.
    let consumer = x.me()?.account;
    crate::lifecycle::make_due(x, AttestTarget::Grant(id), consumer, retention_days)
}

/// Revoke before use, registered or not: only the subject, with its current key. The grant is
/// named by its serial in the signer's own id space, so a revocation can only ever touch the
/// signer's grants; one recorded before registration makes the grant unusable for good.
pub(crate) fn revoke<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    serial: &Hash,
) -> Result<(), ContractError> {
    let Some(subject) = x.subject_id() else {
        return Err(ContractError::forbidden("only a data subject revokes its grants"));
    };
    let id = grant_id(&subject, serial);
    let refuse = |r| ContractError::grant(id, r);
    let (h, t) = (x.height(), x.time_ms());
    let rec = match load(x, &id)? {
        Some(rec) => {
            if rec.state != GrantState::Issued {
                return Err(refuse(settled(&rec)));
            }
            GrantRecord { state: GrantState::Revoked, state_height: h, state_time_ms: t, ..rec }
        }
        None => GrantRecord {
            grant: None,
            subject,
            state: GrantState::Revoked,
            state_height: h,
            state_time_ms: t,
            registered_height: h,
        },
    };
    x.store(keys::grant(&id), &rec);
    x.emit(Event::new("grant.revoked").attr("grant", id).attr("subject", subject));
    Ok(())
}

/// Record the expiry of an unused registered grant; any participant may, once its time has
/// passed (block time above `expires_at_ms`).
pub(crate) fn expire<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &GrantId,
) -> Result<(), ContractError> {
    let refuse = |r| ContractError::grant(*id, r);
    x.me()?;
    let Some(rec) = load(x, id)? else { return Err(refuse(GrantRefusal::Unknown)) };
    if rec.state != GrantState::Issued {
        return Err(refuse(settled(&rec)));
    }
    let expires_at_ms = rec.grant.as_ref().map_or(0, |g| g.grant.expires_at_ms);
    let time_ms = x.time_ms();
    if time_ms <= expires_at_ms {
        return Err(refuse(GrantRefusal::NotYetExpired { expires_at_ms, time_ms }));
    }
    let rec = GrantRecord {
        state: GrantState::Expired,
        state_height: x.height(),
        state_time_ms: time_ms,
        ..rec
    };
    x.store(keys::grant(id), &rec);
    x.emit(
        Event::new("grant.expired")
            .attr("grant", id)
            .attr("subject", rec.subject)
            .attr("expires_at_ms", expires_at_ms),
    );
    Ok(())
}

/// Grants a transaction carries whose expiry has passed at `time_ms` — the mempool's cheap
/// check with the last committed block's time. Execution, with the block's own time, decides.
pub(crate) fn expired_at(sg: &SignedGrant, time_ms: u64) -> bool {
    time_ms > sg.grant.expires_at_ms
}
