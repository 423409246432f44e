//! Governance: proposals by agencies, approved by more than 2/3 of the *active* ones, that
//! change the policy set, the validator set (from a later height), the parameters or the
//! platform fee, admit an agency, a registrar, a settlement bank or a compute node, pay from
//! the treasury, or suspend, reinstate or (negative-)list an agency.
//!
//! Governance itself is not policy-guarded — only agencies propose and approve — so no policy
//! set, however wrong, can lock the agencies out of replacing it. Nor can a participant: an
//! agency's standing (suspension, list status) changes only by a proposal here; the plain
//! `suspend`, `reinstate` and `set_list_status` operations refuse an agency as their target.
//!
//! **Quorum.** An agency is *active* while it is neither suspended nor negative-listed. Whether
//! a proposal passes is decided at each approval (and at proposing) from the state at that
//! moment: the approvals that count are those of agencies active *now*, and they must be more
//! than 2/3 of the agencies active now. So approvals of an agency suspended since stop counting
//! (and count again if it is reinstated), and a proposal is never judged by a roster that no
//! longer exists. A change in the active set can bring a pending proposal to quorum without a
//! new approver; any active agency that already approved may then approve again to execute it.
//!
//! **No lock-out.** A proposal that would suspend or negative-list the last active agency is
//! refused (when proposed and again when it would execute). With at least one active agency a
//! quorum of the active agencies always exists, and it can reinstate the others.

use std::collections::BTreeMap;

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError};
use crate::exec::Exec;
use crate::keys;
use crate::money::{self, MAX_FEE_BASIS_POINTS};
use crate::params::{Params, params};
use crate::participants::{Participant, key_in_use, load_participant};
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
/// Most agencies: the roster is read whole at every governance decision.
pub const MAX_AGENCIES: usize = 256;

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
    /// Suspend an agency: it can neither propose nor approve, and its approvals stop counting.
    SuspendAgency {
        key: PublicKey,
        reason: String,
    },
    /// Lift an agency's suspension.
    ReinstateAgency {
        key: PublicKey,
    },
    /// Whitelist, normalise or negative-list an agency (negative-listed agencies do not govern).
    SetAgencyListStatus {
        key: PublicKey,
        status: ListStatus,
    },
    /// Admit a registrar: an identity service that enrols data subjects.
    AdmitRegistrar {
        key: PublicKey,
        name: String,
    },
    /// Admit a settlement bank: it records deposits and withdrawals made off the ledger.
    AdmitSettlementBank {
        key: PublicKey,
        name: String,
    },
    /// Admit a compute node: it runs compute jobs over products' data and attests what ran
    /// (see `compute`).
    AdmitComputeNode {
        key: PublicKey,
        name: String,
    },
    /// Set the platform fee charged on providers' shares of settled escrows, in basis points
    /// (0..=10 000). Orders already accepted keep the rate fixed on them.
    SetPlatformFee {
        basis_points: u32,
    },
    /// Pay `amount` (minor units) from the treasury into a participant's account.
    PayFromTreasury {
        account: PublicKey,
        amount: u64,
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
            Self::SetParams { params } => params.validate_new(),
            Self::AdmitAgency { name, .. }
            | Self::AdmitRegistrar { name, .. }
            | Self::AdmitSettlementBank { name, .. }
            | Self::AdmitComputeNode { name, .. }
                if name.is_empty() || name.len() > MAX_TEXT_BYTES =>
            {
                Err(format!("name must be 1..={MAX_TEXT_BYTES} bytes"))
            }
            Self::SuspendAgency { reason, .. }
                if reason.is_empty() || reason.len() > MAX_TEXT_BYTES =>
            {
                Err(format!("suspension reason must be 1..={MAX_TEXT_BYTES} bytes"))
            }
            Self::SetPlatformFee { basis_points } if *basis_points > MAX_FEE_BASIS_POINTS => {
                Err(format!("the platform fee must be 0..={MAX_FEE_BASIS_POINTS} basis points"))
            }
            Self::PayFromTreasury { amount: 0, .. } => Err("a payout must be positive".into()),
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
            Self::SuspendAgency { key, reason } => K::SuspendAgency(pb::AgencySuspension {
                key: key.to_bytes().to_vec(),
                reason: reason.clone(),
            }),
            Self::ReinstateAgency { key } => K::ReinstateAgency(key.to_bytes().to_vec()),
            Self::SetAgencyListStatus { key, status } => {
                K::SetAgencyListStatus(pb::AgencyListStatus {
                    key: key.to_bytes().to_vec(),
                    status: status.code(),
                })
            }
            Self::AdmitRegistrar { key, name } => K::AdmitRegistrar(pb::AgencyAdmission {
                key: key.to_bytes().to_vec(),
                name: name.clone(),
            }),
            Self::AdmitSettlementBank { key, name } => {
                K::AdmitSettlementBank(pb::AgencyAdmission {
                    key: key.to_bytes().to_vec(),
                    name: name.clone(),
                })
            }
            Self::AdmitComputeNode { key, name } => K::AdmitComputeNode(pb::AgencyAdmission {
                key: key.to_bytes().to_vec(),
                name: name.clone(),
            }),
            Self::SetPlatformFee { basis_points } => K::SetPlatformFee(*basis_points),
            Self::PayFromTreasury { account, amount } => K::PayFromTreasury(pb::TreasuryPayout {
                account: account.to_bytes().to_vec(),
                amount: *amount,
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
            K::SuspendAgency(a) => {
                Self::SuspendAgency { key: codec::key(&a.key, "key")?, reason: a.reason }
            }
            K::ReinstateAgency(k) => Self::ReinstateAgency { key: codec::key(&k, "key")? },
            K::SetAgencyListStatus(a) => Self::SetAgencyListStatus {
                key: codec::key(&a.key, "key")?,
                status: ListStatus::from_wire(a.status, "status")?,
            },
            K::AdmitRegistrar(a) => {
                Self::AdmitRegistrar { key: codec::key(&a.key, "key")?, name: a.name }
            }
            K::AdmitSettlementBank(a) => {
                Self::AdmitSettlementBank { key: codec::key(&a.key, "key")?, name: a.name }
            }
            K::AdmitComputeNode(a) => {
                Self::AdmitComputeNode { key: codec::key(&a.key, "key")?, name: a.name }
            }
            K::SetPlatformFee(basis_points) => Self::SetPlatformFee { basis_points },
            K::PayFromTreasury(p) => Self::PayFromTreasury {
                account: codec::key(&p.account, "account")?,
                amount: p.amount,
            },
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
    scheduled_validator_set(st, height).map(|s| s.into_iter().map(|v| (v.key, v.power)).collect())
}

/// [`validator_updates`] with names: the set governance scheduled for `height`, if any.
pub fn scheduled_validator_set<S: State + ?Sized>(st: &S, height: u64) -> Option<Vec<Validator>> {
    read::<ValidatorSet, _>(st, &keys::validator_update(height)).map(|s| s.0)
}

/// Make the set scheduled for `height` (if any) the one in force.
pub(crate) fn activate_validators<S: State + ?Sized>(st: &mut S, height: u64) {
    if let Some(bytes) = st.get(&keys::validator_update(height)) {
        st.put(keys::VALIDATORS.to_vec(), bytes);
    }
}

/// Number of agencies, active or not (the quorum's denominator is [`active_agencies`]).
pub fn agency_count<S: State + ?Sized>(st: &S) -> u64 {
    st.get(keys::AGENCY_COUNT)
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes)
}

fn set_agency_count<S: State + ?Sized>(st: &mut S, n: u64) {
    st.put(keys::AGENCY_COUNT.to_vec(), n.to_be_bytes().to_vec());
}

fn corrupt(reason: impl std::fmt::Display) -> ContractError {
    ContractError::Corrupt { reason: reason.to_string() }
}

/// Every agency's account key, suspended and negative-listed ones too, sorted.
pub fn agencies<S: State + ?Sized>(st: &S) -> Result<Vec<PublicKey>, ContractError> {
    st.get(keys::AGENCIES).map_or(Ok(Vec::new()), |b| decode_agencies(&b))
}

/// The stored roster: concatenated 32-byte keys, at most [`MAX_AGENCIES`].
pub(crate) fn decode_agencies(bytes: &[u8]) -> Result<Vec<PublicKey>, ContractError> {
    if !bytes.len().is_multiple_of(32) || bytes.len() / 32 > MAX_AGENCIES {
        return Err(corrupt(format!("agency roster of {} bytes", bytes.len())));
    }
    bytes.chunks_exact(32).map(|c| codec::key(c, "agency roster").map_err(corrupt)).collect()
}

/// Write the roster (and the agency count) for `roster`, sorted and without duplicates.
pub(crate) fn store_agencies<S: State + ?Sized>(
    st: &mut S,
    mut roster: Vec<PublicKey>,
) -> Result<(), ContractError> {
    roster.sort();
    roster.dedup();
    if roster.len() > MAX_AGENCIES {
        return Err(ContractError::conflict(format!("at most {MAX_AGENCIES} agencies")));
    }
    set_agency_count(st, roster.len() as u64);
    st.put(keys::AGENCIES.to_vec(), roster.iter().flat_map(PublicKey::to_bytes).collect());
    Ok(())
}

/// An agency that governs: holds the agency role, neither suspended nor negative-listed.
pub fn is_active_agency(p: &Participant) -> bool {
    p.has_role(Role::Agency) && !p.is_barred()
}

/// The agencies whose approvals count, and whose number is the quorum's denominator, now.
/// Computed from the participants' records at every call, so it cannot drift from them.
pub fn active_agencies<S: State + ?Sized>(st: &S) -> Result<Vec<PublicKey>, ContractError> {
    let mut out = Vec::new();
    for key in agencies(st)? {
        let p = load_participant(st, &key)?
            .ok_or_else(|| corrupt(format!("agency {key} on the roster has no record")))?;
        if is_active_agency(&p) {
            out.push(key);
        }
    }
    Ok(out)
}

/// More than 2/3 of `active`.
pub fn quorum_reached(approvals: u64, active: u64) -> bool {
    active > 0 && approvals.saturating_mul(3) > active.saturating_mul(2)
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
        ProposalAction::AdmitAgency { key, .. }
        | ProposalAction::AdmitRegistrar { key, .. }
        | ProposalAction::AdmitSettlementBank { key, .. }
        | ProposalAction::AdmitComputeNode { key, .. }
            if key_in_use(&x.st, key) =>
        {
            Err(ContractError::conflict(format!("key {key} is already in use")))
        }
        ProposalAction::AdmitAgency { .. } if agencies(&x.st)?.len() >= MAX_AGENCIES => {
            Err(ContractError::conflict(format!("at most {MAX_AGENCIES} agencies")))
        }
        ProposalAction::SetParams { .. }
        | ProposalAction::AdmitAgency { .. }
        | ProposalAction::AdmitRegistrar { .. }
        | ProposalAction::AdmitSettlementBank { .. }
        | ProposalAction::AdmitComputeNode { .. }
        | ProposalAction::SetPlatformFee { .. } => Ok(()),
        ProposalAction::PayFromTreasury { account, amount } => {
            money::check_payout(x, account, *amount)
        }
        ProposalAction::SuspendAgency { key, .. } => {
            let t = target_agency(x, key)?;
            if t.suspended {
                return Err(ContractError::conflict(format!("agency {key} is already suspended")));
            }
            keep_one_active(x, &t)
        }
        ProposalAction::ReinstateAgency { key } => {
            if !target_agency(x, key)?.suspended {
                return Err(ContractError::conflict(format!("agency {key} is not suspended")));
            }
            Ok(())
        }
        ProposalAction::SetAgencyListStatus { key, status } => {
            let t = target_agency(x, key)?;
            if t.list_status == *status {
                return Err(ContractError::conflict(format!("agency {key} is already {status}")));
            }
            if *status == ListStatus::NegativeListed { keep_one_active(x, &t) } else { Ok(()) }
        }
    }
}

/// The participant record of the agency a standing proposal is about.
fn target_agency<S: State + ?Sized>(
    x: &Exec<'_, S>,
    key: &PublicKey,
) -> Result<Participant, ContractError> {
    let t: Participant = x.must(&keys::participant(key), "participant", key)?;
    if !t.has_role(Role::Agency) {
        return Err(ContractError::invalid(format!(
            "{key} is not an agency (other participants are suspended and listed by the plain operations)"
        )));
    }
    Ok(t)
}

/// Refuse to bar `target` if it is the last active agency: nobody would be left to govern.
fn keep_one_active<S: State + ?Sized>(
    x: &Exec<'_, S>,
    target: &Participant,
) -> Result<(), ContractError> {
    if is_active_agency(target) && active_agencies(&x.st)?.len() <= 1 {
        return Err(ContractError::conflict(format!(
            "agency {} is the last active agency; barring it would leave nobody to govern",
            target.account
        )));
    }
    Ok(())
}

fn action_kind(a: &ProposalAction) -> &'static str {
    match a {
        ProposalAction::SetPolicies { .. } => "set_policies",
        ProposalAction::UpdateValidators { .. } => "update_validators",
        ProposalAction::SetParams { .. } => "set_params",
        ProposalAction::AdmitAgency { .. } => "admit_agency",
        ProposalAction::SuspendAgency { .. } => "suspend_agency",
        ProposalAction::ReinstateAgency { .. } => "reinstate_agency",
        ProposalAction::SetAgencyListStatus { .. } => "set_agency_list_status",
        ProposalAction::AdmitRegistrar { .. } => "admit_registrar",
        ProposalAction::AdmitSettlementBank { .. } => "admit_settlement_bank",
        ProposalAction::AdmitComputeNode { .. } => "admit_compute_node",
        ProposalAction::SetPlatformFee { .. } => "set_platform_fee",
        ProposalAction::PayFromTreasury { .. } => "pay_from_treasury",
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
        // The active set may have shrunk since (a suspension, a negative listing), bringing the
        // approvals it has to quorum: approving again executes it then, and only then.
        let (counted, active) = tally(x, &p)?;
        if quorum_reached(counted, active) {
            return decide(x, p);
        }
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

/// (approvals by agencies active now, agencies active now).
fn tally<S: State + ?Sized>(x: &Exec<'_, S>, p: &Proposal) -> Result<(u64, u64), ContractError> {
    let active = active_agencies(&x.st)?;
    let counted = active.iter().filter(|a| x.st.get(&keys::approval(&p.id, a)).is_some()).count();
    Ok((counted as u64, active.len() as u64))
}

/// Execute the proposal if more than 2/3 of the active agencies approved it (counting only
/// the approvals of active agencies); store it either way.
fn decide<S: State + ?Sized>(x: &mut Exec<'_, S>, mut p: Proposal) -> Result<(), ContractError> {
    let (counted, agencies) = tally(x, &p)?;
    if quorum_reached(counted, agencies) {
        check_action(x, &p.action)?;
        execute_action(x, &p.action)?;
        p.status = ProposalStatus::Executed;
        p.decided_height = x.height();
        x.emit(
            Event::new("governance.executed")
                .attr("proposal", p.id)
                .attr("kind", action_kind(&p.action))
                .attr("approvals", counted)
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
            let event = admit_by_governance(x, key, name, Role::Registrar, h)?;
            x.emit(event);
        }
        ProposalAction::AdmitSettlementBank { key, name } => {
            let event = admit_by_governance(x, key, name, Role::SettlementBank, h)?;
            x.emit(event);
        }
        ProposalAction::AdmitComputeNode { key, name } => {
            let event = admit_by_governance(x, key, name, Role::ComputeNode, h)?;
            x.emit(event);
        }
        ProposalAction::SetPlatformFee { basis_points } => {
            money::set_platform_fee(x, *basis_points);
        }
        ProposalAction::PayFromTreasury { account, amount } => {
            money::pay_from_treasury(x, account, *amount)?;
        }
        ProposalAction::AdmitAgency { key, name } => {
            let event = admit_by_governance(x, key, name, Role::Agency, h)?;
            let mut roster = agencies(&x.st)?;
            roster.push(*key);
            store_agencies(&mut x.st, roster)?;
            x.emit(event);
        }
        ProposalAction::SuspendAgency { key, reason } => {
            change_agency(x, key, |t| {
                t.suspended = true;
                t.suspension_reason.clone_from(reason);
                Event::new("participant.suspended").attr("reason", reason)
            })?;
        }
        ProposalAction::ReinstateAgency { key } => {
            change_agency(x, key, |t| {
                t.suspended = false;
                t.suspension_reason.clear();
                Event::new("participant.reinstated")
            })?;
        }
        ProposalAction::SetAgencyListStatus { key, status } => {
            change_agency(x, key, |t| {
                t.list_status = *status;
                Event::new("participant.list_status").attr("status", status)
            })?;
        }
    }
    Ok(())
}

/// Apply a standing change to an agency's record and emit its event, as the plain operations
/// do for other participants (with `by` = `governance`).
/// Store a participant admitted by governance with its one `role`; returns its
/// `participant.admitted` event (the executing proposal's approver as `by`).
fn admit_by_governance<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    key: &PublicKey,
    name: &str,
    role: Role,
    h: u64,
) -> Result<Event, ContractError> {
    let by = x.me()?.account;
    let p = Participant {
        account: *key,
        current_key: *key,
        name: name.to_owned(),
        roles: vec![role],
        rating: 0,
        list_status: ListStatus::Normal,
        suspended: false,
        suspension_reason: String::new(),
        admitted_by: by,
        admitted_height: h,
        updated_height: h,
    };
    x.store(keys::participant(key), &p);
    Ok(Event::new("participant.admitted")
        .attr("participant", key)
        .attr("name", name)
        .attr("roles", role.as_str())
        .attr("by", by))
}

fn change_agency<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    key: &PublicKey,
    change: impl FnOnce(&mut Participant) -> Event,
) -> Result<(), ContractError> {
    let mut t = target_agency(x, key)?;
    let event = change(&mut t);
    t.updated_height = x.height();
    x.store(keys::participant(key), &t);
    x.emit(event.attr("participant", key).attr("by", "governance"));
    Ok(())
}
