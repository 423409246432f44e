//! JSON views of stored values for the RPC and tools, chosen by key prefix.

use serde::Serialize;
use serde_json::{Value, json};

use crate::codec::{self, Wire};
use crate::demands::{Demand, DemandResponse};
use crate::governance::{Proposal, ScheduledSet, ValidatorSet};
use crate::grants::{GrantRecord, UsageReceipt};
use crate::keys;
use crate::params::Params;
use crate::participants::Participant;
use crate::policy::PolicySetRecord;
use crate::products::{Product, catalogue_view};
use crate::state::State;
use crate::trades::{Attestation, Order};

fn as_json<T: Wire + Serialize>(value: &[u8]) -> Option<Value> {
    codec::decode::<T>(value).ok().and_then(|v| serde_json::to_value(v).ok())
}

fn be_u64(value: &[u8]) -> Option<Value> {
    <[u8; 8]>::try_from(value).ok().map(|b| json!(u64::from_be_bytes(b)))
}

/// Decode any stored value by its key into JSON (hashes and keys as hex). `None` for an
/// unknown key or an undecodable value.
pub fn render(key: &[u8], value: &[u8]) -> Option<Value> {
    let p = |prefix: &[u8]| key.starts_with(prefix);
    match key {
        k if k == keys::POLICY_CURRENT => as_json::<PolicySetRecord>(value),
        k if k == keys::PARAMS => as_json::<Params>(value),
        k if k == keys::VALIDATORS => as_json::<ValidatorSet>(value),
        k if k == keys::VALIDATORS_LATEST => as_json::<ScheduledSet>(value),
        k if k == keys::AGENCY_COUNT => be_u64(value),
        k if k == keys::AGENCIES => {
            crate::governance::decode_agencies(value).ok().map(|r| json!({ "agencies": r }))
        }
        k if k == keys::CHAIN_ID => std::str::from_utf8(value).ok().map(|s| json!(s)),
        _ if p(keys::PREFIX_PARTICIPANT) => as_json::<Participant>(value),
        _ if p(keys::PREFIX_KEY_BINDING) => {
            codec::key(value, "account").ok().map(|k| json!({ "account": k }))
        }
        _ if p(keys::PREFIX_NONCE) => be_u64(value).map(|n| json!({ "next_nonce": n })),
        _ if p(keys::PREFIX_PRODUCT) => as_json::<Product>(value),
        _ if p(keys::PREFIX_DEMAND) => as_json::<Demand>(value),
        _ if p(keys::PREFIX_RESPONSE) => as_json::<DemandResponse>(value),
        _ if p(keys::PREFIX_ORDER) => as_json::<Order>(value),
        _ if p(keys::PREFIX_GRANT) => as_json::<GrantRecord>(value),
        _ if p(keys::PREFIX_USAGE) => as_json::<UsageReceipt>(value),
        _ if p(keys::PREFIX_ATTESTATION_COUNT) => {
            <[u8; 4]>::try_from(value).ok().map(|b| json!(u32::from_be_bytes(b)))
        }
        _ if p(keys::PREFIX_ATTESTATION) => as_json::<Attestation>(value),
        _ if p(keys::PREFIX_PROPOSAL) => as_json::<Proposal>(value),
        _ if p(keys::PREFIX_APPROVAL) => Some(json!({ "approved": true })),
        _ if p(keys::PREFIX_POLICY_VERSION) => as_json::<PolicySetRecord>(value),
        _ if p(keys::PREFIX_VALIDATOR_UPDATE) => as_json::<ValidatorSet>(value),
        _ => None,
    }
}

/// [`render`], plus what is computed from the rest of the state: a product's `availability`
/// (the catalogue shows products of suspended, negative-listed or downgraded providers as
/// unavailable). The RPC renders with this when it has the state at hand.
pub fn render_in<S: State + ?Sized>(st: &S, key: &[u8], value: &[u8]) -> Option<Value> {
    if key.starts_with(keys::PREFIX_PRODUCT) {
        return catalogue_view(st, value);
    }
    render(key, value)
}
