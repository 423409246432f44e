//! `GET /v1/grants/{id}/history`: one grant's life in order — registered (or issued inline),
//! consumed, revoked or expired, and the life-cycle attestations of the data it released —
//! each step with its block, time and transaction, and where to fetch the transaction's proof
//! bundle (`/v1/txs/{hash}/proof`, which also proves its receipt).
//!
//! Read from the grant's record, its usage receipt and its attestations; the transaction of a
//! step whose record names only a height is found among that block's receipts (one block read
//! per step). Refused attempts to use a grant twice (`grant.refused`) name no height in any
//! record, so they are not here: the event stream shows them (`grant.refused`), and the
//! aggregate counter of that name counts them. (They are refused by the grant rules, not by a
//! policy decision, so `GET /v1/decisions` does not list them.)
//!
//! The read policy of `GET /v1/state/grants/{id}`: the grant's subject, its consumer and
//! supervisors; anyone else gets 403 whether or not it exists.

use axum::Json;
use axum::extract::{Path, State};
use dpx_contracts::{Attestation, GrantId, GrantRecord, GrantState, Receipt, UsageReceipt, keys};
use dpx_crypto::Hash;
use dpx_ledger::Store;
use serde_json::{Value, json};

use dpx_app::views::decode_view as decode;

use super::auth::{Caller, Reader};
use super::{ApiError, ApiResult, AppState};

/// Attestations listed at most (a grant's data has six stages; reviews do not add records).
const ATTESTATIONS_MAX: usize = 64;

/// The transaction of block `height` whose receipt has an event `kind` naming `grant`.
fn find_tx(
    store: &Store,
    height: u64,
    kind: &str,
    grant: &str,
) -> anyhow::Result<Option<(u32, Hash)>> {
    for (i, bytes) in store.receipts(height)?.iter().enumerate() {
        let Ok(r) = Receipt::decode(bytes) else { continue };
        if r.events.iter().any(|e| e.kind == kind && e.get("grant") == Some(grant)) {
            return Ok(Some((i as u32, r.tx_hash)));
        }
    }
    Ok(None)
}

fn step(
    store: &Store,
    name: &str,
    height: u64,
    tx: Option<(u32, Hash)>,
    mut extra: Value,
) -> anyhow::Result<Value> {
    let time_ms = store.header(height)?.map(|h| h.time_ms);
    let mut v = json!({ "step": name, "height": height, "time_ms": time_ms });
    if let Some((index, hash)) = tx {
        v["index"] = json!(index);
        v["tx_hash"] = json!(hash);
        v["tx_proof"] = json!(format!("/v1/txs/{hash}/proof"));
    }
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object_mut()) {
        m.append(e);
    }
    Ok(v)
}

/// The history of the grant stored as `record` under `id`.
pub fn history(store: &Store, id: &GrantId, record: &GrantRecord) -> anyhow::Result<Value> {
    let hex_id = id.to_string();
    let mut steps = Vec::new();
    // A serial revoked before anyone registered it has a height but no grant: no such step.
    if record.registered_height > 0 && record.grant.is_some() {
        let h = record.registered_height;
        steps.push(step(
            store,
            "registered",
            h,
            find_tx(store, h, "grant.issued", &hex_id)?,
            json!({}),
        )?);
    }
    let uk = keys::usage(id);
    if let Some(u) = store.get_latest(&uk)?.and_then(|v| decode::<UsageReceipt>(&uk, &v)) {
        let tx = store.tx(&u.tx_hash)?.map(|(_, i, _)| (i, u.tx_hash));
        steps.push(step(
            store,
            "consumed",
            u.height,
            tx,
            json!({ "purpose": u.purpose, "request_hash": u.request_hash, "consumer": u.consumer }),
        )?);
    }
    let ended = match record.state {
        GrantState::Revoked => Some(("revoked", "grant.revoked")),
        GrantState::Expired => Some(("expired", "grant.expired")),
        _ => None,
    };
    if let Some((name, kind)) = ended {
        let h = record.state_height;
        steps.push(step(store, name, h, find_tx(store, h, kind, &hex_id)?, json!({}))?);
    }
    let prefix = [keys::PREFIX_ATTESTATION, &[keys::TARGET_GRANT], &id.0.0[..]].concat();
    for (k, v) in store.scan_prefix(&prefix, None, ATTESTATIONS_MAX)? {
        // The count record shares the prefix; only attestations decode as one.
        let Some(a) = decode::<Attestation>(&k, &v) else { continue };
        let tx = store.tx(&a.tx_hash)?.map(|(_, i, _)| (i, a.tx_hash));
        let review = a.review.as_ref().map(|r| serde_json::to_value(r).unwrap_or(Value::Null));
        steps.push(step(
            store,
            "attested",
            a.height,
            tx,
            json!({ "stage": a.stage.as_str(), "attester": a.attester, "hash": a.hash, "seq": a.seq, "review": review }),
        )?);
    }
    steps.sort_by_key(|s| (s["height"].as_u64(), s["index"].as_u64()));
    let g = record.grant.as_ref().map(|sg| &sg.grant);
    Ok(json!({
        "grant": hex_id,
        "state": record.state.as_str(),
        "subject": record.subject,
        "consumer": g.map(|g| g.consumer),
        "product": g.map(|g| g.product),
        "purpose": g.map(|g| g.purpose.clone()),
        "expires_at_ms": g.map(|g| g.expires_at_ms),
        "steps": steps,
    }))
}

/// The handler.
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = id
        .parse::<Hash>()
        .map(GrantId)
        .map_err(|_| ApiError::bad_request("bad_id", "a grant id is 64 hex characters"))?;
    let reader = Reader::of(s.checker.is_opaque(), caller);
    let key = keys::grant(&id);
    let v = s.store.get_latest(&key).map_err(|e| ApiError::internal(e.to_string()))?;
    super::state::check_read(&s, &reader, &key, v.as_deref(), &format!("grant {id}"))?;
    let v = v.ok_or_else(|| ApiError::not_found(format!("no grant {id}")))?;
    let record = decode::<GrantRecord>(&key, &v)
        .ok_or_else(|| ApiError::internal("the grant record does not decode"))?;
    let store = s.store.clone();
    let out = tokio::task::spawn_blocking(move || history(&store, &id, &record))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(Json(out))
}
