//! Governance: proposals by agencies, approved by more than 2/3 of them, that change the
//! policy set, the validator set (from a later height) or the parameters, or admit an agency.
//!
//! Governance itself is not policy-guarded — only agencies propose and approve — so no policy
//! set, however wrong, can lock the agencies out of replacing it.

use std::collections::BTreeMap;

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError};
use crate::exec::Exec;
use crate::keys;
use crate::params::{Params, params};
use crate::participants::{Participant, key_in_use};
use crate::policy::{MAX_POLICY_BYTES, PolicySetRecord, current_policies, parse_policies};
use crate::receipt::Event;
use crate::state::State;
use crate::types::{ListStatus, MAX_TEXT_BYTES, ProposalId, ProposalStatus, Role};

/// Most validators in a set.
pub const MAX_VALIDATORS: usize = 256;
/// Most changes in one validator proposal.
pub const MAX_VALIDATOR_CHANGES: usize = 64;
/// Bound on a set's total voting power, far below overflow of any sum consensus computes.
pub const MAX_TOTAL_POWER: u64 = 1 << 60;

/// A validator: key, voting power, name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    pub key: PublicKey,
    pub power: u64,
    pub name: String,
}

/// One change to the validator set: add, change power, or remove (`power` 0).
pub type ValidatorChange = Validator;

/// What a proposal does once approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ProposalAction {
    /// Replace the policy set with this Cedar text.
    SetPolicies {
        text: String,
    },
    /// Change the validator set from `effective_height` on.
    UpdateValidators {
        changes: Vec<ValidatorChange>,
        effective_height: u64,
    },
    SetParams {
        params: Params,
    },
    /// Admit a new agency (also raising the quorum).
    AdmitAgency {
        key: PublicKey,
        name: String,
    },
    /// Admit a registrar: an identity service that enrols data subjects.
    AdmitRegistrar {
        key: PublicKey,
        name: String,
    },
}

/// A proposal as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub id: ProposalId,
    pub proposer: PublicKey,
    pub action: ProposalAction,
    pub approvals: u32,
    pub status: ProposalStatus,
    pub created_height: u64,
    /// Last height at which it can be approved.
    pub expiry_height: u64,
    /// Height it was executed (0 while open).
    pub decided_height: u64,
}

impl ProposalAction {
    /// Checks that need no state (the policy text is parsed at execution, where its cost is paid
    /// only by agencies' proposals).
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Self::SetPolicies { text } if text.is_empty() || text.len() > MAX_POLICY_BYTES => {
                Err(format!("policy text must be 1..={MAX_POLICY_BYTES} bytes"))
            }
            Self::UpdateValidators { changes, .. } => {
                if changes.is_empty() || changes.len() > MAX_VALIDATOR_CHANGES {
                    return Err(format!("1..={MAX_VALIDATOR_CHANGES} validator changes needed"));
                }
                let mut seen = std::collections::BTreeSet::new();
                for c in changes {
                    if !seen.insert(c.key) {
                        return Err(format!("validator {} changed twice", c.key));
                    }
                    if c.name.len() > MAX_TEXT_BYTES || c.power > MAX_TOTAL_POWER {
                        return Err(format!(
                            "validator {}: name too long or power too large",
                            c.key
                        ));
                    }
                }
                Ok(())
            }
            Self::SetParams { params } => params.validate(),
            Self::AdmitAgency { name, .. } | Self::AdmitRegistrar { name, .. }
                if name.is_empty() || name.len() > MAX_TEXT_BYTES =>
            {
                Err(format!("name must be 1..={MAX_TEXT_BYTES} bytes"))
            }
            _ => Ok(()),
        }
    }
}

/// `Validator` and `ValidatorChange` are the same three fields on the wire: one conversion
/// pair per message type, written once.
macro_rules! validator_wire {
    ($to:ident, $from:ident, $pb:ident) => {
        fn $to(set: &[Validator]) -> Vec<pb::$pb> {
            set.iter()
                .map(|v| pb::$pb {
                    key: v.key.to_bytes().to_vec(),
                    power: v.power,
                    name: v.name.clone(),
                })
                .collect()
        }

        fn $from(set: Vec<pb::$pb>) -> Result<Vec<Validator>, DecodeError> {
            set.into_iter()
                .map(|v| {
                    Ok(Validator {
                        key: codec::key(&v.key, "validator.key")?,
                        power: v.power,
                        name: v.name,
                    })
                })
                .collect()
        }
    };
}

validator_wire!(validators_to_pb, validators_from_pb, Validator);
validator_wire!(changes_to_pb, changes_from_pb, ValidatorChange);

/// A validator set as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSet(pub Vec<Validator>);

impl Wire for ValidatorSet {
    type Pb = pb::ValidatorSet;
    const MAX_BYTES: usize = MAX_VALIDATORS * 512;
    fn to_pb(&self) -> pb::ValidatorSet {
        pb::ValidatorSet { validators: validators_to_pb(&self.0) }
    }
    fn from_pb(p: pb::ValidatorSet) -> Result<Self, DecodeError> {
        validators_from_pb(p.validators).map(Self)
    }
}

/// The set after every scheduled change, and the height it takes effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledSet {
    pub effective_height: u64,
    pub validators: Vec<Validator>,
}

impl Wire for ScheduledSet {
    type Pb = pb::ValidatorUpdate;
    const MAX_BYTES: usize = MAX_VALIDATORS * 512;
    fn to_pb(&self) -> pb::ValidatorUpdate {
        pb::ValidatorUpdate {
            changes: changes_to_pb(&self.validators),
            effective_height: self.effective_height,
        }
    }
    fn from_pb(p: pb::ValidatorUpdate) -> Result<Self, DecodeError> {
        Ok(Self { effective_height: p.effective_height, validators: changes_from_pb(p.changes)? })
    }
}

impl Wire for ProposalAction {
    type Pb = pb::ProposalAction;
    const MAX_BYTES: usize = MAX_POLICY_BYTES + 1024;
    fn to_pb(&self) -> pb::ProposalAction {
        use pb::proposal_action::Kind as K;
        let kind = match self {
            Self::SetPolicies { text } => K::SetPolicies(text.clone()),
            Self::UpdateValidators { changes, effective_height } => {
                K::UpdateValidators(pb::ValidatorUpdate {
                    changes: changes_to_pb(changes),
                    effective_height: *effective_height,
                })
            }
            Self::SetParams { params } => K::SetParams(params.to_pb()),
            Self::AdmitAgency { key, name } => K::AdmitAgency(pb::AgencyAdmission {
                key: key.to_bytes().to_vec(),
                name: name.clone(),
            }),
            Self::AdmitRegistrar { key, name } => K::AdmitRegistrar(pb::AgencyAdmission {
                key: key.to_bytes().to_vec(),
                name: name.clone(),
            }),
        };
        pb::ProposalAction { kind: Some(kind) }
    }
    fn from_pb(p: pb::ProposalAction) -> Result<Self, DecodeError> {
        use pb::proposal_action::Kind as K;
        Ok(match codec::req(p.kind, "proposal action")? {
            K::SetPolicies(text) => Self::SetPolicies { text },
            K::UpdateValidators(u) => Self::UpdateValidators {
                changes: changes_from_pb(u.changes)?,
                effective_height: u.effective_height,
            },
            K::SetParams(p) => Self::SetParams { params: Params::from_pb(p)? },
            K::AdmitAgency(a) => {
                Self::AdmitAgency { key: codec::key(&a.key, "key")?, name: a.name }
            }
            K::AdmitRegistrar(a) => {
                Self::AdmitRegistrar { key: codec::key(&a.key, "key")?, name: a.name }
            }
        })
    }
}

impl Wire for Proposal {
    type Pb = pb::Proposal;
    const MAX_BYTES: usize = MAX_POLICY_BYTES + 2048;
    fn to_pb(&self) -> pb::Proposal {
        pb::Proposal {
            id: self.id.to_wire(),
            proposer: self.proposer.to_bytes().to_vec(),
            action: Some(self.action.to_pb()),
            approvals: self.approvals,
            status: self.status.code(),
            created_height: self.created_height,
            expiry_height: self.expiry_height,
            decided_height: self.decided_height,
        }
    }
    fn from_pb(p: pb::Proposal) -> Result<Self, DecodeError> {
        Ok(Self {
            id: ProposalId::from_wire(&p.id, "id")?,
            proposer: codec::key(&p.proposer, "proposer")?,
            action: ProposalAction::from_pb(codec::req(p.action, "action")?)?,
            approvals: p.approvals,
            status: ProposalStatus::from_wire(p.status, "status")?,
            created_height: p.created_height,
            expiry_height: p.expiry_height,
            decided_height: p.decided_height,
        })
    }
}

fn read<T: Wire, S: State + ?Sized>(st: &S, key: &[u8]) -> Option<T> {
    st.get(key).and_then(|b| codec::decode(&b).ok())
}

/// The validator set in force, with names.
pub fn validator_set<S: State + ?Sized>(st: &S) -> Vec<Validator> {
    read::<ValidatorSet, _>(st, keys::VALIDATORS).map(|s| s.0).unwrap_or_default()
}

/// The validator set in force: (key, power), sorted by key.
pub fn current_validators<S: State + ?Sized>(st: &S) -> Vec<(PublicKey, u64)> {
    validator_set(st).into_iter().map(|v| (v.key, v.power)).collect()
}

/// The full new validator set that takes effect at `height`, if governance scheduled one.
pub fn validator_updates<S: State + ?Sized>(st: &S, height: u64) -> Option<Vec<(PublicKey, u64)>> {
    read::<ValidatorSet, _>(st, &keys::validator_update(height))
        .map(|s| s.0.into_iter().map(|v| (v.key, v.power)).collect())
}

/// Make the set scheduled for `height` (if any) the one in force.
pub(crate) fn activate_validators<S: State + ?Sized>(st: &mut S, height: u64) {
    if let Some(bytes) = st.get(&keys::validator_update(height)) {
        st.put(keys::VALIDATORS.to_vec(), bytes);
    }
}

/// Number of agencies (the quorum's denominator).
pub fn agency_count<S: State + ?Sized>(st: &S) -> u64 {
    st.get(keys::AGENCY_COUNT)
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes)
}

pub(crate) fn set_agency_count<S: State + ?Sized>(st: &mut S, n: u64) {
    st.put(keys::AGENCY_COUNT.to_vec(), n.to_be_bytes().to_vec());
}

/// Sorted, validated set after applying `changes` to `base`.
pub(crate) fn apply_changes(
    base: &[Validator],
    changes: &[ValidatorChange],
) -> Result<Vec<Validator>, ContractError> {
    let mut set: BTreeMap<PublicKey, Validator> = base.iter().map(|v| (v.key, v.clone())).collect();
    for c in changes {
        if c.power == 0 {
            if set.remove(&c.key).is_none() {
                return Err(ContractError::invalid(format!(
                    "validator {} to remove is not in the set",
                    c.key
                )));
            }
        } else {
            set.insert(c.key, c.clone());
        }
    }
    let out: Vec<Validator> = set.into_values().collect();
    check_set(&out).map_err(ContractError::invalid)?;
    Ok(out)
}

pub(crate) fn check_set(set: &[Validator]) -> Result<(), String> {
    if set.is_empty() || set.len() > MAX_VALIDATORS {
        return Err(format!("a validator set has 1..={MAX_VALIDATORS} members"));
    }
    let total = set
        .iter()
        .try_fold(0u64, |acc, v| acc.checked_add(v.power))
        .filter(|t| *t <= MAX_TOTAL_POWER);
    if total.is_none() || set.iter().any(|v| v.power == 0) {
        return Err(format!(
            "validator powers must be positive with a total of at most {MAX_TOTAL_POWER}"
        ));
    }
    Ok(())
}

pub(crate) fn store_initial_validators<S: State + ?Sized>(st: &mut S, set: Vec<Validator>) {
    st.put(keys::VALIDATORS.to_vec(), codec::encode(&ValidatorSet(set.clone())));
    st.put(
        keys::VALIDATORS_LATEST.to_vec(),
        codec::encode(&ScheduledSet { effective_height: 0, validators: set }),
    );
}

fn agency<S: State + ?Sized>(x: &Exec<'_, S>) -> Result<Participant, ContractError> {
    let me = x.me()?;
    if !me.has_role(Role::Agency) {
        return Err(ContractError::forbidden("only agencies propose and approve"));
    }
    if me.is_barred() {
        return Err(ContractError::forbidden(
            "a suspended or negative-listed agency cannot take part in governance",
        ));
    }
    Ok(me.clone())
}

/// State-dependent checks, run when proposing and again when executing.
fn check_action<S: State + ?Sized>(
    x: &Exec<'_, S>,
    action: &ProposalAction,
) -> Result<(), ContractError> {
    match action {
        ProposalAction::SetPolicies { text } => {
            parse_policies(text, params(&x.st).max_policy_bytes as usize).map(|_| ())
        }
        ProposalAction::UpdateValidators { changes, effective_height } => {
            let earliest = x.height().saturating_add(params(&x.st).validator_update_delay);
            let latest: ScheduledSet =
                x.must(keys::VALIDATORS_LATEST, "validator set", "latest")?;
            if *effective_height < earliest.max(latest.effective_height) {
                return Err(ContractError::invalid(format!(
                    "effective height {effective_height} is before {} (delay, or a change already scheduled)",
                    earliest.max(latest.effective_height)
                )));
            }
            apply_changes(&latest.validators, changes).map(|_| ())
        }
        ProposalAction::AdmitAgency { key, .. } | ProposalAction::AdmitRegistrar { key, .. }
            if key_in_use(&x.st, key) =>
        {
            Err(ContractError::conflict(format!("key {key} is already in use")))
        }
        ProposalAction::SetParams { .. }
        | ProposalAction::AdmitAgency { .. }
        | ProposalAction::AdmitRegistrar { .. } => Ok(()),
    }
}

fn action_kind(a: &ProposalAction) -> &'static str {
    match a {
        ProposalAction::SetPolicies { .. } => "set_policies",
        ProposalAction::UpdateValidators { .. } => "update_validators",
        ProposalAction::SetParams { .. } => "set_params",
        ProposalAction::AdmitAgency { .. } => "admit_agency",
        ProposalAction::AdmitRegistrar { .. } => "admit_registrar",
    }
}

pub(crate) fn propose<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    action: &ProposalAction,
) -> Result<(), ContractError> {
    let me = agency(x)?;
    check_action(x, action)?;
    let id = ProposalId::derive(x.chain_id(), &x.signer, x.nonce);
    let h = x.height();
    let ttl = params(&x.st).proposal_ttl_blocks;
    let p = Proposal {
        id,
        proposer: me.account,
        action: action.clone(),
        approvals: 1,
        status: ProposalStatus::Open,
        created_height: h,
        expiry_height: h.saturating_add(ttl),
        decided_height: 0,
    };
    x.st.put(keys::approval(&id, &me.account), vec![1]);
    x.emit(
        Event::new("governance.proposed")
            .attr("proposal", id)
            .attr("kind", action_kind(action))
            .attr("by", me.account)
            .attr("expiry_height", p.expiry_height),
    );
    decide(x, p)
}

pub(crate) fn approve<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &ProposalId,
) -> Result<(), ContractError> {
    let me = agency(x)?;
    let mut p: Proposal = x.must(&keys::proposal(id), "proposal", id)?;
    if p.status != ProposalStatus::Open {
        return Err(ContractError::WrongState {
            kind: "proposal",
            id: id.to_string(),
            state: p.status.to_string(),
            action: "approve",
            expected: "open".into(),
        });
    }
    if x.height() > p.expiry_height {
        return Err(ContractError::conflict(format!(
            "proposal {id} expired at height {}",
            p.expiry_height
        )));
    }
    let marker = keys::approval(id, &me.account);
    if x.st.get(&marker).is_some() {
        return Err(ContractError::conflict(format!(
            "agency {} already approved proposal {id}",
            me.account
        )));
    }
    x.st.put(marker, vec![1]);
    p.approvals += 1;
    x.emit(
        Event::new("governance.approved")
            .attr("proposal", id)
            .attr("by", me.account)
            .attr("approvals", p.approvals),
    );
    decide(x, p)
}

/// Execute the proposal if more than 2/3 of the agencies approved it; store it either way.
fn decide<S: State + ?Sized>(x: &mut Exec<'_, S>, mut p: Proposal) -> Result<(), ContractError> {
    let agencies = agency_count(&x.st);
    if u64::from(p.approvals) * 3 > agencies * 2 {
        check_action(x, &p.action)?;
        execute_action(x, &p.action)?;
        p.status = ProposalStatus::Executed;
        p.decided_height = x.height();
        x.emit(
            Event::new("governance.executed")
                .attr("proposal", p.id)
                .attr("kind", action_kind(&p.action))
                .attr("approvals", p.approvals)
                .attr("agencies", agencies),
        );
    }
    x.store(keys::proposal(&p.id), &p);
    Ok(())
}

fn execute_action<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    action: &ProposalAction,
) -> Result<(), ContractError> {
    let h = x.height();
    match action {
        ProposalAction::SetPolicies { text } => {
            let old = current_policies(&x.st)?;
            let rec = PolicySetRecord {
                version: old.version + 1,
                text: text.clone(),
                hash: Hash::digest(text.as_bytes()),
                height: h,
            };
            x.store(keys::policy_version(rec.version), &rec);
            x.store(keys::POLICY_CURRENT.to_vec(), &rec);
            x.emit(
                Event::new("policy.updated").attr("version", rec.version).attr("hash", rec.hash),
            );
        }
        ProposalAction::UpdateValidators { changes, effective_height } => {
            let latest: ScheduledSet =
                x.must(keys::VALIDATORS_LATEST, "validator set", "latest")?;
            let set = apply_changes(&latest.validators, changes)?;
            x.store(keys::validator_update(*effective_height), &ValidatorSet(set.clone()));
            let size = set.len();
            x.store(
                keys::VALIDATORS_LATEST.to_vec(),
                &ScheduledSet { effective_height: *effective_height, validators: set },
            );
            x.emit(
                Event::new("validators.scheduled")
                    .attr("effective_height", effective_height)
                    .attr("validators", size),
            );
        }
        ProposalAction::SetParams { params } => {
            x.store(keys::PARAMS.to_vec(), params);
            x.emit(Event::new("params.updated"));
        }
        ProposalAction::AdmitRegistrar { key, name } => {
            let by = x.me()?.account;
            let p = Participant {
                account: *key,
                current_key: *key,
                name: name.clone(),
                roles: vec![Role::Registrar],
                rating: 0,
                list_status: ListStatus::Normal,
                suspended: false,
                suspension_reason: String::new(),
                admitted_by: by,
                admitted_height: h,
                updated_height: h,
            };
            x.store(keys::participant(key), &p);
            x.emit(
                Event::new("participant.admitted")
                    .attr("participant", key)
                    .attr("name", name)
                    .attr("roles", "registrar")
                    .attr("by", by),
            );
        }
        ProposalAction::AdmitAgency { key, name } => {
            let by = x.me()?.account;
            let p = Participant {
                account: *key,
                current_key: *key,
                name: name.clone(),
                roles: vec![Role::Agency],
                rating: 0,
                list_status: ListStatus::Normal,
                suspended: false,
                suspension_reason: String::new(),
                admitted_by: by,
                admitted_height: h,
                updated_height: h,
            };
            x.store(keys::participant(key), &p);
            let n = agency_count(&x.st) + 1;
            set_agency_count(&mut x.st, n);
            x.emit(
                Event::new("participant.admitted")
                    .attr("participant", key)
                    .attr("name", name)
                    .attr("roles", "agency")
                    .attr("by", by),
            );
        }
    }
    Ok(())
}
