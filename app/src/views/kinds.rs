//! The kinds of objects the RPC lists (by key prefix) and fetches (by id).

use dpx_contracts::{self as contracts, keys};
use dpx_crypto::{Hash, PublicKey};

/// The kinds the RPC can list, with their key prefixes.
pub const KINDS: &[&str] = &[
    "participants",
    "products",
    "demands",
    "responses",
    "orders",
    "grants",
    "usage",
    "subjects",
    "attestations",
    "proposals",
    "policies",
    "accounts",
    "balances",
    "bank_records",
    "money",
    "destructions",
    "overdue_destructions",
    "jobs",
];

pub fn kind_prefix(kind: &str) -> Option<Vec<u8>> {
    let p: &[u8] = match kind {
        "participants" => keys::PREFIX_PARTICIPANT,
        "products" => keys::PREFIX_PRODUCT,
        "demands" => keys::PREFIX_DEMAND,
        "responses" => keys::PREFIX_RESPONSE,
        "orders" => keys::PREFIX_ORDER,
        "grants" => keys::PREFIX_GRANT,
        "usage" => keys::PREFIX_USAGE,
        "subjects" => keys::PREFIX_SUBJECT,
        "attestations" => keys::PREFIX_ATTESTATION,
        "proposals" => keys::PREFIX_PROPOSAL,
        "policies" => keys::PREFIX_POLICY_VERSION,
        "accounts" => keys::PREFIX_NONCE,
        "balances" => keys::PREFIX_ACCOUNT,
        "bank_records" => keys::PREFIX_BANK_RECORD,
        "money" => keys::PREFIX_MONEY,
        "destructions" => keys::PREFIX_DESTRUCTION,
        "overdue_destructions" => keys::PREFIX_OVERDUE,
        "jobs" => keys::PREFIX_JOB,
        _ => return None,
    };
    Some(p.to_vec())
}

fn id32(id: &str) -> Result<Hash, String> {
    id.parse().map_err(|_| format!("{id:?} is not a 64-character hex id"))
}

fn key32(id: &str) -> Result<PublicKey, String> {
    id.parse().map_err(|_| format!("{id:?} is not a hex public key"))
}

/// The state key of one object.
pub fn object_key(kind: &str, id: &str) -> Result<Vec<u8>, String> {
    Ok(match kind {
        "participants" => keys::participant(&key32(id)?),
        "accounts" => keys::nonce(&key32(id)?),
        "balances" => keys::account(&key32(id)?),
        "money" => match id {
            "treasury" => keys::TREASURY.to_vec(),
            "supply" => keys::SUPPLY.to_vec(),
            _ => return Err(format!("{id:?}: the money objects are `treasury` and `supply`")),
        },
        "products" => keys::product(&contracts::ProductId(id32(id)?)),
        "demands" => keys::demand(&contracts::DemandId(id32(id)?)),
        "orders" => keys::order(&contracts::OrderId(id32(id)?)),
        "grants" => keys::grant(&contracts::GrantId(id32(id)?)),
        "usage" => keys::usage(&contracts::GrantId(id32(id)?)),
        "subjects" => keys::subject(&contracts::SubjectId(id32(id)?)),
        "proposals" => keys::proposal(&contracts::ProposalId(id32(id)?)),
        "jobs" => keys::job(&contracts::JobId(id32(id)?)),
        "policies" => {
            let v: u64 = id.parse().map_err(|_| "policy versions are numbers".to_owned())?;
            keys::policy_version(v)
        }
        other => {
            return Err(format!("{other} objects cannot be fetched by id; list them instead"));
        }
    })
}
