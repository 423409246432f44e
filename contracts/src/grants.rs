//! One use, one authorization (一次使用一次授权).
//!
//! A data subject, known only by a key, signs a [`Grant`] offline (for instance on a phone,
//! shown to the consumer as a QR code via [`SignedGrant::to_compact`]). The consumer submits it
//! to use it once, or the subject registers it first and the consumer uses it later by id. The
//! stored [`GrantRecord`] moves `Issued → Consumed | Revoked | Expired` exactly once: every path
//! that changes it first checks that it is `Issued`, and a transaction that fails changes
//! nothing, so no order of transactions can consume a grant twice.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dpx_crypto::{Domain, Hash, Keypair, PublicKey, Signature};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError, GrantRefusal};
use crate::exec::Exec;
use crate::keys;
use crate::policy::{Action, PolicyContext, Resource};
use crate::products::load_listed;
use crate::receipt::Event;
use crate::state::State;
use crate::types::{GrantId, GrantState, MAX_TEXT_BYTES, ProductId};

/// Largest encoded signed grant.
pub const MAX_GRANT_BYTES: usize = 1024;
/// Longest compact (base64url) form: 4 characters per 3 bytes.
pub const MAX_COMPACT_CHARS: usize = MAX_GRANT_BYTES.div_ceil(3) * 4;

/// An authorization: `subject` lets `consumer` use `product` once, for `purpose`, until
/// `expiry_height` (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Chosen by the subject (e.g. 32 random bytes); unique per chain.
    pub id: GrantId,
    pub subject: PublicKey,
    /// The consumer's participant account key.
    pub consumer: PublicKey,
    pub product: ProductId,
    pub purpose: String,
    pub expiry_height: u64,
}

/// A grant with the subject's signature (Domain::GRANT over [`Grant::signing_bytes`]).
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
            Self::Inline(g) => g.grant.id,
            Self::Id(id) => *id,
        }
    }
}

/// A grant as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Absent only when the subject revoked an id before anyone registered the grant.
    pub grant: Option<SignedGrant>,
    pub subject: PublicKey,
    pub state: GrantState,
    /// Height of the last state change.
    pub state_height: u64,
    pub registered_height: u64,
}

/// Proof of a grant's single use, keyed by grant id: a provider checks it (consumer, product,
/// request hash) before serving the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReceipt {
    pub grant: GrantId,
    pub consumer: PublicKey,
    pub product: ProductId,
    pub purpose: String,
    pub height: u64,
    pub request_hash: Hash,
    pub tx_hash: Hash,
}

impl Grant {
    /// The canonical bytes the subject signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }

    /// Sign as the subject. `key` must be the subject's key.
    pub fn sign(self, key: &Keypair, chain_id: &str) -> SignedGrant {
        assert_eq!(key.public(), self.subject, "a grant is signed by its subject");
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
        dpx_crypto::SignedDigest { key: &self.grant.subject, digest, sig: &self.signature }
    }

    pub fn verify(&self, chain_id: &str) -> Result<(), GrantRefusal> {
        self.grant
            .subject
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
            id: self.id.to_wire(),
            subject: self.subject.to_bytes().to_vec(),
            consumer: self.consumer.to_bytes().to_vec(),
            product: self.product.to_wire(),
            purpose: self.purpose.clone(),
            expiry_height: self.expiry_height,
        }
    }
    fn from_pb(p: pb::Grant) -> Result<Self, DecodeError> {
        Ok(Self {
            id: GrantId::from_wire(&p.id, "grant.id")?,
            subject: codec::key(&p.subject, "grant.subject")?,
            consumer: codec::key(&p.consumer, "grant.consumer")?,
            product: ProductId::from_wire(&p.product, "grant.product")?,
            purpose: p.purpose,
            expiry_height: p.expiry_height,
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
            subject: self.subject.to_bytes().to_vec(),
            state: self.state.code(),
            state_height: self.state_height,
            registered_height: self.registered_height,
        }
    }
    fn from_pb(p: pb::GrantRecord) -> Result<Self, DecodeError> {
        Ok(Self {
            grant: p.grant.map(SignedGrant::from_pb).transpose()?,
            subject: codec::key(&p.subject, "subject")?,
            state: GrantState::from_wire(p.state, "state")?,
            state_height: p.state_height,
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
        }
    }
    fn from_pb(p: pb::UsageReceipt) -> Result<Self, DecodeError> {
        Ok(Self {
            grant: GrantId::from_wire(&p.grant, "grant")?,
            consumer: codec::key(&p.consumer, "consumer")?,
            product: ProductId::from_wire(&p.product, "product")?,
            purpose: p.purpose,
            height: p.height,
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
            expiry_height: record.grant.as_ref().map_or(0, |g| g.grant.expiry_height),
            height,
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

/// Register a signed grant so it can later be used by id.
pub(crate) fn register<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    sg: &SignedGrant,
) -> Result<(), ContractError> {
    let id = sg.grant.id;
    let refuse = |r| ContractError::grant(id, r);
    x.check_grant_signature(sg).map_err(refuse)?;
    if let Some(rec) = load(x, &id)? {
        return Err(refuse(match &rec.grant {
            None if rec.subject == sg.grant.subject => settled(&rec),
            Some(g) if g == sg && rec.state == GrantState::Issued => {
                GrantRefusal::AlreadyRegistered
            }
            Some(g) if g == sg => settled(&rec),
            _ => GrantRefusal::IdConflict,
        }));
    }
    let h = x.height();
    if h > sg.grant.expiry_height {
        return Err(refuse(GrantRefusal::Expired {
            expiry_height: sg.grant.expiry_height,
            height: h,
        }));
    }
    let rec = GrantRecord {
        grant: Some(sg.clone()),
        subject: sg.grant.subject,
        state: GrantState::Issued,
        state_height: h,
        registered_height: h,
    };
    x.store(keys::grant(&id), &rec);
    x.emit(issued_event(&sg.grant));
    Ok(())
}

fn issued_event(g: &Grant) -> Event {
    Event::new("grant.issued")
        .attr("grant", g.id)
        .attr("subject", g.subject)
        .attr("consumer", g.consumer)
        .attr("product", g.product)
        .attr("purpose", &g.purpose)
        .attr("expiry_height", g.expiry_height)
}

/// What a use is for: checked against the grant's own fields.
#[derive(Debug, Clone)]
pub(crate) struct UseRequest<'a> {
    pub product: ProductId,
    pub purpose: &'a str,
    pub request_hash: Hash,
}

/// Consume a grant for the signer's account: the single `Issued → Consumed` transition.
pub(crate) fn consume<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    gref: &GrantRef,
    req: &UseRequest<'_>,
) -> Result<GrantId, ContractError> {
    let id = gref.id();
    let refuse = |r| ContractError::grant(id, r);
    let h = x.height();
    let existing = load(x, &id)?;
    let (mut rec, newly_seen) = match (gref, existing) {
        (GrantRef::Inline(sg), None) => {
            x.check_grant_signature(sg).map_err(refuse)?;
            let rec = GrantRecord {
                grant: Some((**sg).clone()),
                subject: sg.grant.subject,
                state: GrantState::Issued,
                state_height: h,
                registered_height: h,
            };
            (rec, true)
        }
        (GrantRef::Inline(sg), Some(rec)) => {
            let same = match &rec.grant {
                Some(g) => g == &**sg,
                None => rec.subject == sg.grant.subject,
            };
            if !same {
                return Err(refuse(GrantRefusal::IdConflict));
            }
            (rec, false)
        }
        (GrantRef::Id(_), Some(rec)) if rec.grant.is_some() => (rec, false),
        (GrantRef::Id(_), Some(rec)) => return Err(refuse(settled(&rec))),
        (GrantRef::Id(_), None) => return Err(refuse(GrantRefusal::Unknown)),
    };
    if rec.state != GrantState::Issued {
        return Err(refuse(settled(&rec)));
    }
    let Some(sg) = rec.grant.clone() else {
        return Err(refuse(GrantRefusal::Unknown));
    };
    let g = &sg.grant;
    if h > g.expiry_height {
        return Err(refuse(GrantRefusal::Expired { expiry_height: g.expiry_height, height: h }));
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
    load_listed(x, &req.product)?;
    if newly_seen {
        x.emit(issued_event(g));
    }
    rec.state = GrantState::Consumed;
    rec.state_height = h;
    x.store(keys::grant(&id), &rec);
    let usage = UsageReceipt {
        grant: id,
        consumer,
        product: req.product,
        purpose: g.purpose.clone(),
        height: h,
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
    Ok(id)
}

/// The `use_grant` operation: consume, then ask the policy (grant present, purpose).
pub(crate) fn use_grant<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    gref: &GrantRef,
    req: &UseRequest<'_>,
) -> Result<(), ContractError> {
    consume(x, gref, req)?;
    let product = load_listed(x, &req.product)?;
    x.authorize(
        Action::UseGrant,
        &Resource::Product(product),
        &PolicyContext { grant_consumed: true, purpose: req.purpose.to_string() },
    )
}

/// Revoke before use; only the subject's key may. A participant may revoke an id nobody
/// registered yet (the revocation is recorded so the grant can never be used). A key that is
/// no participant's (a data subject known only by its key) revokes only a grant the ledger
/// holds: to revoke one nobody registered, it registers it and then revokes it. Otherwise any
/// fresh key could write a permanent record per made-up id, for free.
pub(crate) fn revoke<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &GrantId,
) -> Result<(), ContractError> {
    let refuse = |r| ContractError::grant(*id, r);
    let h = x.height();
    let existing = load(x, id)?;
    if existing.is_none() && !x.is_participant() {
        return Err(refuse(GrantRefusal::RevokeUnregistered));
    }
    let rec = match existing {
        Some(rec) => {
            if rec.subject != x.signer {
                return Err(refuse(GrantRefusal::NotSubject));
            }
            if rec.state != GrantState::Issued {
                return Err(refuse(settled(&rec)));
            }
            GrantRecord { state: GrantState::Revoked, state_height: h, ..rec }
        }
        None => GrantRecord {
            grant: None,
            subject: x.signer,
            state: GrantState::Revoked,
            state_height: h,
            registered_height: h,
        },
    };
    x.store(keys::grant(id), &rec);
    x.emit(Event::new("grant.revoked").attr("grant", id).attr("subject", rec.subject));
    Ok(())
}

/// Record the expiry of an unused registered grant; anyone may, once its height has passed.
pub(crate) fn expire<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &GrantId,
) -> Result<(), ContractError> {
    let refuse = |r| ContractError::grant(*id, r);
    let h = x.height();
    let Some(rec) = load(x, id)? else { return Err(refuse(GrantRefusal::Unknown)) };
    if rec.state != GrantState::Issued {
        return Err(refuse(settled(&rec)));
    }
    let expiry_height = rec.grant.as_ref().map_or(0, |g| g.grant.expiry_height);
    if h <= expiry_height {
        return Err(refuse(GrantRefusal::NotYetExpired { expiry_height, height: h }));
    }
    let rec = GrantRecord { state: GrantState::Expired, state_height: h, ..rec };
    x.store(keys::grant(id), &rec);
    x.emit(
        Event::new("grant.expired")
            .attr("grant", id)
            .attr("subject", rec.subject)
            .attr("expiry_height", expiry_height),
    );
    Ok(())
}
