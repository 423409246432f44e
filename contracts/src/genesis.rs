//! The application part of genesis: founding agencies, validators, policies, parameters, the
//! currency and the initial platform fee.
//!
//! The currency and the fee are optional in the file: without them the chain counts in CNY
//! fen with no platform fee, and a genesis file written before money existed builds the very
//! same height-0 state (the defaults are not written; an absent currency or fee reads as the
//! default).

use std::collections::BTreeSet;

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::ContractError;
use crate::governance::{
    MAX_AGENCIES, Validator, check_set, store_agencies, store_initial_validators,
};
use crate::keys;
use crate::money::{Currency, MAX_FEE_BASIS_POINTS, store_platform_fee};
use crate::params::Params;
use crate::participants::Participant;
use crate::policy::{DEFAULT_POLICIES, PolicySetRecord, parse_policies};
use crate::state::State;
use crate::tx::MAX_CHAIN_ID_BYTES;
use crate::types::{ListStatus, MAX_TEXT_BYTES, Role};

/// A founding agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisAgency {
    pub name: String,
    pub key: PublicKey,
}

/// The contracts' section of the genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisApp {
    pub agencies: Vec<GenesisAgency>,
    pub validators: Vec<Validator>,
    /// Cedar policy text; `None` loads [`DEFAULT_POLICIES`].
    #[serde(default)]
    pub policies: Option<String>,
    #[serde(default)]
    pub params: Params,
    /// The currency of every amount; fixed for the chain's life.
    #[serde(default, skip_serializing_if = "is_default_currency")]
    pub currency: Currency,
    /// The platform fee until governance changes it (0..=10 000 basis points).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub platform_fee_basis_points: u32,
}

fn is_default_currency(c: &Currency) -> bool {
    *c == Currency::default()
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn err(reason: impl std::fmt::Display) -> ContractError {
    ContractError::Genesis { reason: reason.to_string() }
}

impl GenesisApp {
    /// Everything `init_genesis` would refuse, without touching state.
    pub fn validate(&self, chain_id: &str) -> Result<(), ContractError> {
        if chain_id.is_empty() || chain_id.len() > MAX_CHAIN_ID_BYTES {
            return Err(err(format!("chain id must be 1..={MAX_CHAIN_ID_BYTES} bytes")));
        }
        self.params.validate_new().map_err(err)?;
        self.currency.validate().map_err(err)?;
        if self.platform_fee_basis_points > MAX_FEE_BASIS_POINTS {
            return Err(err(format!(
                "platform_fee_basis_points must be 0..={MAX_FEE_BASIS_POINTS}"
            )));
        }
        if self.agencies.is_empty() || self.agencies.len() > MAX_AGENCIES {
            return Err(err(format!("1..={MAX_AGENCIES} agencies are needed")));
        }
        let mut keys = BTreeSet::new();
        for a in &self.agencies {
            if a.name.is_empty() || a.name.len() > MAX_TEXT_BYTES {
                return Err(err(format!("agency name must be 1..={MAX_TEXT_BYTES} bytes")));
            }
            if !keys.insert(a.key) {
                return Err(err(format!("agency key {} appears twice", a.key)));
            }
        }
        let mut vkeys = BTreeSet::new();
        for v in &self.validators {
            if !vkeys.insert(v.key) {
                return Err(err(format!("validator key {} appears twice", v.key)));
            }
        }
        check_set(&self.validators).map_err(err)?;
        parse_policies(self.policy_text(), self.params.max_policy_bytes as usize).map_err(err)?;
        Ok(())
    }

    fn policy_text(&self) -> &str {
        self.policies.as_deref().unwrap_or(DEFAULT_POLICIES)
    }
}

/// Write height 0's application state. Refuses an already initialised state.
pub fn init_genesis<S: State + ?Sized>(
    st: &mut S,
    chain_id: &str,
    app: &GenesisApp,
) -> Result<(), ContractError> {
    app.validate(chain_id)?;
    if st.get(keys::CHAIN_ID).is_some() {
        return Err(err("state is already initialised"));
    }
    st.put(keys::CHAIN_ID.to_vec(), chain_id.as_bytes().to_vec());
    for a in &app.agencies {
        let p = Participant {
            account: a.key,
            current_key: a.key,
            name: a.name.clone(),
            roles: vec![Role::Agency],
            rating: 0,
            list_status: ListStatus::Normal,
            suspended: false,
            suspension_reason: String::new(),
            admitted_by: a.key,
            admitted_height: 0,
            updated_height: 0,
        };
        st.put(keys::participant(&a.key), codec::encode(&p));
    }
    store_agencies(st, app.agencies.iter().map(|a| a.key).collect())?;
    let mut validators = app.validators.clone();
    validators.sort_by_key(|v| v.key);
    store_initial_validators(st, validators);
    let text = app.policy_text().to_string();
    let rec = PolicySetRecord { version: 1, hash: Hash::digest(text.as_bytes()), text, height: 0 };
    st.put(keys::policy_version(1), codec::encode(&rec));
    st.put(keys::POLICY_CURRENT.to_vec(), codec::encode(&rec));
    st.put(keys::PARAMS.to_vec(), codec::encode(&app.params));
    if !is_default_currency(&app.currency) {
        st.put(keys::CURRENCY.to_vec(), codec::encode(&app.currency));
    }
    if app.platform_fee_basis_points != 0 {
        store_platform_fee(st, app.platform_fee_basis_points);
    }
    Ok(())
}
