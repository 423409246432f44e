//! Data subjects: the people (or companies) whose data is used, enrolled by a registrar.
//!
//! A registrar — an identity service admitted only by governance (`admit_registrar`) —
//! enrols a subject: a pseudonymous [`SubjectId`] (a keyed commitment of the real identifier,
//! computed off-ledger with the registrar's secret: [`SubjectId::keyed`], `dpx hash --keyed`)
//! bound to the key on the subject's phone. Only the subject's current key signs its grants
//! and its own operations (register or revoke a grant, revoke all, rotate its key). Keys are
//! never shared across kinds: a key that ever belonged to a subject is never a participant's or
//! another subject's key, and a participant's key is never enrolled (every check goes through
//! `participants::key_in_use` and [`subject_key_in_use`]).
//!
//! Rotation: by the subject's registrar (a lost phone) or by the subject with the old key;
//! either way the new key proves possession by signing the subject id
//! ([`SUBJECT_KEY_DOMAIN`]). The old key can sign nothing afterwards.
//!
//! Revoke-all: the subject bumps its grant epoch; every grant carries the epoch it was signed
//! under and is refused unless it equals the subject's current one (O(1), no scan).

use dpx_crypto::{Domain, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError, TxError};
use crate::exec::Exec;
use crate::keys;
use crate::participants::key_in_use;
use crate::receipt::Event;
use crate::state::State;
use crate::types::{Role, SubjectId, SubjectStatus};

/// Domain of a new subject key's proof of possession (it signs the subject id).
pub const SUBJECT_KEY_DOMAIN: Domain = Domain::new("dpx/subject-key/v1");

/// An enrolled data subject as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub id: SubjectId,
    /// The key that signs for the subject now.
    pub key: PublicKey,
    /// The enrolling registrar's account key.
    pub registrar: PublicKey,
    pub enrolled_height: u64,
    pub enrolled_time_ms: u64,
    /// Grants signed under another epoch are refused; `revoke_all_grants` adds one.
    pub grant_epoch: u64,
    pub status: SubjectStatus,
    pub updated_height: u64,
}

impl Wire for Subject {
    type Pb = pb::Subject;
    const MAX_BYTES: usize = 512;
    fn to_pb(&self) -> pb::Subject {
        pb::Subject {
            id: self.id.to_wire(),
            key: self.key.to_bytes().to_vec(),
            registrar: self.registrar.to_bytes().to_vec(),
            enrolled_height: self.enrolled_height,
            enrolled_time_ms: self.enrolled_time_ms,
            grant_epoch: self.grant_epoch,
            status: self.status.code(),
            updated_height: self.updated_height,
        }
    }
    fn from_pb(p: pb::Subject) -> Result<Self, DecodeError> {
        Ok(Self {
            id: SubjectId::from_wire(&p.id, "id")?,
            key: codec::key(&p.key, "key")?,
            registrar: codec::key(&p.registrar, "registrar")?,
            enrolled_height: p.enrolled_height,
            enrolled_time_ms: p.enrolled_time_ms,
            grant_epoch: p.grant_epoch,
            status: SubjectStatus::from_wire(p.status, "status")?,
            updated_height: p.updated_height,
        })
    }
}

/// The message a new subject key signs (with [`SUBJECT_KEY_DOMAIN`]) to prove possession.
pub fn subject_key_message(id: &SubjectId) -> [u8; 32] {
    id.0.0
}

/// Load a subject by id.
pub fn load_subject<S: State + ?Sized>(
    st: &S,
    id: &SubjectId,
) -> Result<Option<Subject>, ContractError> {
    st.get(&keys::subject(id)).map(|b| codec::decode(&b)).transpose().map_err(Into::into)
}

/// Whether `key` is or ever was a data subject's key.
pub fn subject_key_in_use<S: State + ?Sized>(st: &S, key: &PublicKey) -> bool {
    st.get(&keys::subject_key(key)).is_some()
}

/// The subject `key` signs for: `None` for a key no subject ever held, an error for a key that
/// was rotated out.
pub fn resolve_subject<S: State + ?Sized>(
    st: &S,
    key: &PublicKey,
) -> Result<Option<Subject>, TxError> {
    let Some(id) = st.get(&keys::subject_key(key)) else { return Ok(None) };
    let corrupt = |reason: String| TxError::Corrupt { reason };
    let id = codec::hash(&id, "subject key binding")
        .map(SubjectId)
        .map_err(|e| corrupt(e.to_string()))?;
    let subject = load_subject(st, &id)
        .map_err(|e| corrupt(e.to_string()))?
        .ok_or_else(|| corrupt(format!("subject {id} of a bound key is missing")))?;
    if subject.key != *key {
        return Err(TxError::RotatedKey { signer: key.to_hex() });
    }
    Ok(Some(subject))
}

/// A key may become a subject's only if no subject ever held it and no participant holds it.
fn key_free<S: State + ?Sized>(st: &S, key: &PublicKey) -> Result<(), ContractError> {
    if subject_key_in_use(st, key) {
        return Err(ContractError::conflict(format!("key {key} was already a subject's key")));
    }
    if key_in_use(st, key) {
        return Err(ContractError::conflict(format!("key {key} is a participant's key")));
    }
    Ok(())
}

/// A registrar's `enrol_subject`.
pub(crate) fn enrol<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &SubjectId,
    key: PublicKey,
) -> Result<(), ContractError> {
    let registrar = registrar(x)?;
    if load_subject(&x.st, id)?.is_some() {
        return Err(ContractError::conflict(format!("subject {id} is already enrolled")));
    }
    key_free(&x.st, &key)?;
    let (h, t) = (x.height(), x.time_ms());
    let subject = Subject {
        id: *id,
        key,
        registrar,
        enrolled_height: h,
        enrolled_time_ms: t,
        grant_epoch: 0,
        status: SubjectStatus::Active,
        updated_height: h,
    };
    x.store(keys::subject(id), &subject);
    x.st.put(keys::subject_key(&key), id.to_wire());
    x.emit(Event::new("subject.enrolled").attr("subject", id).attr("registrar", registrar));
    Ok(())
}

/// The signer's account, which must be an active registrar's.
fn registrar<S: State + ?Sized>(x: &Exec<'_, S>) -> Result<PublicKey, ContractError> {
    let me = x.me()?;
    if !me.has_role(Role::Registrar) {
        return Err(ContractError::forbidden("only registrars enrol data subjects"));
    }
    if me.is_barred() {
        return Err(ContractError::forbidden(
            "a suspended or negative-listed registrar acts no more",
        ));
    }
    Ok(me.account)
}

/// `rotate_subject_key`, by the subject's current key or by its registrar.
pub(crate) fn rotate<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &SubjectId,
    new_key: PublicKey,
    proof: &Signature,
) -> Result<(), ContractError> {
    let mut subject =
        load_subject(&x.st, id)?.ok_or_else(|| ContractError::not_found("subject", id))?;
    let by = if x.subject_id() == Some(*id) {
        "subject"
    } else if x.is_participant() {
        if registrar(x)? != subject.registrar {
            return Err(ContractError::forbidden(format!(
                "only subject {id}'s own registrar may rotate its key"
            )));
        }
        "registrar"
    } else {
        return Err(ContractError::forbidden("only the subject or its registrar rotates its key"));
    };
    new_key
        .verify(SUBJECT_KEY_DOMAIN, x.chain_id(), &subject_key_message(id), proof)
        .map_err(|_| ContractError::invalid("the new key's proof of possession does not verify"))?;
    key_free(&x.st, &new_key)?;
    let old = subject.key;
    subject.key = new_key;
    subject.updated_height = x.height();
    x.store(keys::subject(id), &subject);
    // The old key's binding stays: it resolves to this subject and is refused as rotated out,
    // and nobody can ever enrol or admit it again.
    x.st.put(keys::subject_key(&new_key), id.to_wire());
    x.emit(
        Event::new("subject.key_rotated")
            .attr("subject", id)
            .attr("old_key", old)
            .attr("new_key", new_key)
            .attr("by", by),
    );
    Ok(())
}

/// `revoke_all_grants`: the subject's grant epoch moves on, so every grant it signed before —
/// registered or not — is refused from now on.
pub(crate) fn revoke_all<S: State + ?Sized>(x: &mut Exec<'_, S>) -> Result<(), ContractError> {
    let id = x
        .subject_id()
        .ok_or_else(|| ContractError::forbidden("only a data subject revokes its grants"))?;
    let mut subject =
        load_subject(&x.st, &id)?.ok_or_else(|| ContractError::not_found("subject", id))?;
    subject.grant_epoch = subject
        .grant_epoch
        .checked_add(1)
        .ok_or_else(|| ContractError::invalid("grant epoch exhausted"))?;
    subject.updated_height = x.height();
    x.store(keys::subject(&id), &subject);
    x.emit(
        Event::new("subject.grants_revoked")
            .attr("subject", id)
            .attr("grant_epoch", subject.grant_epoch),
    );
    Ok(())
}
