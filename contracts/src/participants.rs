//! The participant registry (入驻): admission by an agency, key rotation, certification rating,
//! whitelist / negative list, suspension and reinstatement.
//!
//! An agency's standing is not changed here: suspending, reinstating or listing an agency is a
//! governance act (`ProposalAction::SuspendAgency` and friends), so that no single participant
//! can bar the agencies and lock governance. The plain operations refuse an agency target.

use dpx_crypto::{Domain, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError};
use crate::exec::Exec;
use crate::keys;
use crate::policy::{Action, PolicyContext, Resource};
use crate::receipt::Event;
use crate::state::State;
use crate::types::{ListStatus, MAX_RATING, Role};

/// Domain of the new key's proof of possession in a key rotation.
pub const ROTATE_KEY_DOMAIN: Domain = Domain::new("dpx/rotate-key/v1");

/// An admitted organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The key it was admitted with: its permanent identity.
    pub account: PublicKey,
    /// The key that signs for it now (differs from `account` after a rotation).
    pub current_key: PublicKey,
    pub name: String,
    /// Sorted, without duplicates.
    pub roles: Vec<Role>,
    /// Certification rating, 0 (unrated) to [`MAX_RATING`].
    pub rating: u8,
    pub list_status: ListStatus,
    pub suspended: bool,
    pub suspension_reason: String,
    pub admitted_by: PublicKey,
    pub admitted_height: u64,
    pub updated_height: u64,
}

impl Participant {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Barred participants can do nothing but be reinstated.
    pub fn is_barred(&self) -> bool {
        self.suspended || self.list_status == ListStatus::NegativeListed
    }
}

impl Wire for Participant {
    type Pb = pb::Participant;
    const MAX_BYTES: usize = 4096;
    fn to_pb(&self) -> pb::Participant {
        pb::Participant {
            account: self.account.to_bytes().to_vec(),
            current_key: self.current_key.to_bytes().to_vec(),
            name: self.name.clone(),
            roles: self.roles.iter().map(|r| r.code()).collect(),
            rating: u32::from(self.rating),
            list_status: self.list_status.code(),
            suspended: self.suspended,
            suspension_reason: self.suspension_reason.clone(),
            admitted_by: self.admitted_by.to_bytes().to_vec(),
            admitted_height: self.admitted_height,
            updated_height: self.updated_height,
        }
    }
    fn from_pb(p: pb::Participant) -> Result<Self, DecodeError> {
        Ok(Self {
            account: codec::key(&p.account, "account")?,
            current_key: codec::key(&p.current_key, "current_key")?,
            name: p.name,
            roles: p
                .roles
                .into_iter()
                .map(|r| Role::from_wire(r, "roles"))
                .collect::<Result<_, _>>()?,
            rating: codec::small(p.rating, "rating")?,
            list_status: ListStatus::from_wire(p.list_status, "list_status")?,
            suspended: p.suspended,
            suspension_reason: p.suspension_reason,
            admitted_by: codec::key(&p.admitted_by, "admitted_by")?,
            admitted_height: p.admitted_height,
            updated_height: p.updated_height,
        })
    }
}

/// The message a new key signs to prove possession in a rotation: the account it will serve.
pub fn rotation_message(account: &PublicKey) -> [u8; 32] {
    account.to_bytes()
}

/// Whether `key` is already somebody's account or signing key, or was ever a data subject's.
pub(crate) fn key_in_use<S: State + ?Sized>(st: &S, key: &PublicKey) -> bool {
    st.get(&keys::participant(key)).is_some()
        || st.get(&keys::key_binding(key)).is_some()
        || st.get(&keys::subject_key(key)).is_some()
}

/// Load a participant by account key.
pub fn load_participant<S: State + ?Sized>(
    st: &S,
    account: &PublicKey,
) -> Result<Option<Participant>, ContractError> {
    st.get(&keys::participant(account)).map(|b| codec::decode(&b)).transpose().map_err(Into::into)
}

pub(crate) fn admit<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    key: PublicKey,
    name: &str,
    roles: &[Role],
) -> Result<(), ContractError> {
    x.authorize(Action::Admit, &Resource::Market, &PolicyContext::none())?;
    if roles.contains(&Role::Agency) {
        return Err(ContractError::forbidden(
            "an agency is admitted only by a governance proposal (admit_agency)",
        ));
    }
    if key_in_use(&x.st, &key) {
        return Err(ContractError::conflict(format!("key {key} is already in use")));
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    let by = x.me()?.account;
    let p = Participant {
        account: key,
        current_key: key,
        name: name.to_string(),
        roles,
        rating: 0,
        list_status: ListStatus::Normal,
        suspended: false,
        suspension_reason: String::new(),
        admitted_by: by,
        admitted_height: x.height(),
        updated_height: x.height(),
    };
    x.store(keys::participant(&key), &p);
    let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
    x.emit(
        Event::new("participant.admitted")
            .attr("participant", key)
            .attr("name", name)
            .attr("roles", roles.join(","))
            .attr("by", by),
    );
    Ok(())
}

pub(crate) fn rotate_key<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    new_key: PublicKey,
    proof: &Signature,
) -> Result<(), ContractError> {
    let mut me = x.me()?.clone();
    x.authorize(Action::RotateKey, &Resource::Participant(me.clone()), &PolicyContext::none())?;
    new_key
        .verify(ROTATE_KEY_DOMAIN, x.chain_id(), &rotation_message(&me.account), proof)
        .map_err(|_| ContractError::invalid("the new key's proof of possession does not verify"))?;
    if key_in_use(&x.st, &new_key) {
        return Err(ContractError::conflict(format!("key {new_key} is already in use")));
    }
    if me.current_key != me.account {
        x.st.delete(&keys::key_binding(&me.current_key));
    }
    x.st.put(keys::key_binding(&new_key), me.account.to_bytes().to_vec());
    let old = me.current_key;
    me.current_key = new_key;
    me.updated_height = x.height();
    x.store(keys::participant(&me.account), &me);
    x.emit(
        Event::new("participant.key_rotated")
            .attr("participant", me.account)
            .attr("old_key", old)
            .attr("new_key", new_key),
    );
    Ok(())
}

/// Load `target`, check the policy for `action` on it, let `change` modify it, store it.
fn change_target<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: &PublicKey,
    action: Action,
    change: impl FnOnce(&mut Participant) -> Result<Event, ContractError>,
) -> Result<(), ContractError> {
    let mut p: Participant = x.must(&keys::participant(target), "participant", target)?;
    if p.has_role(Role::Agency)
        && matches!(action, Action::Suspend | Action::Reinstate | Action::SetListStatus)
    {
        return Err(ContractError::forbidden(format!(
            "{target} is an agency: an agency is suspended, reinstated or listed only by a \
             governance proposal (suspend_agency, reinstate_agency, set_agency_list_status)"
        )));
    }
    x.authorize(action, &Resource::Participant(p.clone()), &PolicyContext::none())?;
    let event = change(&mut p)?;
    p.updated_height = x.height();
    x.store(keys::participant(target), &p);
    let by = x.me()?.account;
    x.emit(event.attr("participant", target).attr("by", by));
    Ok(())
}

pub(crate) fn set_rating<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: &PublicKey,
    rating: u8,
) -> Result<(), ContractError> {
    if rating > MAX_RATING {
        return Err(ContractError::invalid(format!("rating {rating} above {MAX_RATING}")));
    }
    change_target(x, target, Action::Rate, |p| {
        p.rating = rating;
        Ok(Event::new("participant.rated").attr("rating", rating))
    })
}

pub(crate) fn set_list_status<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: &PublicKey,
    status: ListStatus,
) -> Result<(), ContractError> {
    change_target(x, target, Action::SetListStatus, |p| {
        p.list_status = status;
        Ok(Event::new("participant.list_status").attr("status", status))
    })
}

pub(crate) fn suspend<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: &PublicKey,
    reason: &str,
) -> Result<(), ContractError> {
    change_target(x, target, Action::Suspend, |p| {
        if p.suspended {
            return Err(ContractError::conflict("participant is already suspended"));
        }
        p.suspended = true;
        p.suspension_reason = reason.to_string();
        Ok(Event::new("participant.suspended").attr("reason", reason))
    })
}

pub(crate) fn reinstate<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: &PublicKey,
) -> Result<(), ContractError> {
    change_target(x, target, Action::Reinstate, |p| {
        if !p.suspended {
            return Err(ContractError::conflict("participant is not suspended"));
        }
        p.suspended = false;
        p.suspension_reason.clear();
        Ok(Event::new("participant.reinstated"))
    })
}
