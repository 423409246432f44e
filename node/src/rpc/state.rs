//! State queries: list objects of a kind with cursor pagination, or fetch one, optionally with
//! its Merkle proof and the certified header it is proved against.
//!
//! Proofs are against the state root committed in the header of the block *after* the proved
//! version (headers carry the state root after the previous block), and that header's
//! certificate, so a client can check the value with nothing but the validator set.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, AppState};
use crate::app;

/// Most items one list call returns.
const PAGE_MAX: usize = 500;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    /// The `next` cursor of the previous page (hex of the last key).
    pub after: Option<String>,
    pub limit: Option<usize>,
    /// Equality filters on top-level fields of the JSON view, `field=value`.
    #[serde(flatten)]
    pub filters: std::collections::BTreeMap<String, String>,
}

pub async fn list(
    State(s): State<AppState>,
    Path(kind): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let prefix = app::kind_prefix(&kind).ok_or_else(|| {
        ApiError::not_found(format!("unknown kind {kind:?}; kinds: {}", app::KINDS.join(", ")))
    })?;
    let after = match &q.after {
        Some(a) => Some(
            hex::decode(a).map_err(|_| ApiError::bad_request("bad_cursor", "after must be hex"))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, PAGE_MAX);
    let mut items = Vec::new();
    let mut cursor = after;
    let mut last_key = None;
    // Filters are applied after the scan; keep scanning (bounded) until the page is full.
    for _ in 0..20 {
        let batch = s
            .store
            .scan_prefix(&prefix, cursor.as_deref(), limit)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let done = batch.len() < limit;
        for (k, v) in batch {
            last_key = Some(k.clone());
            let Some(view) = app::render_state(&k, &v) else { continue };
            if q.filters.iter().all(|(f, want)| field_matches(&view, f, want)) {
                items.push(view);
                if items.len() == limit {
                    break;
                }
            }
        }
        cursor.clone_from(&last_key);
        if done || items.len() == limit {
            break;
        }
    }
    let next = if items.len() == limit { last_key.map(hex::encode) } else { None };
    Ok(Json(json!({ "kind": kind, "items": items, "next": next })))
}

fn field_matches(v: &Value, field: &str, want: &str) -> bool {
    match v.get(field) {
        Some(Value::String(s)) => s == want,
        Some(Value::Number(n)) => n.to_string() == want,
        Some(Value::Bool(b)) => b.to_string() == want,
        _ => false,
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct OneQuery {
    #[serde(default)]
    pub prove: bool,
    /// Prove at this state version (a block height); default the latest provable one.
    pub height: Option<u64>,
}

pub async fn one(
    State(s): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<OneQuery>,
) -> ApiResult<Json<Value>> {
    let key = app::object_key(&kind, &id).map_err(|e| ApiError::bad_request("bad_id", e))?;
    if !q.prove {
        let v = s.store.get_latest(&key).map_err(|e| ApiError::internal(e.to_string()))?;
        let v = v.ok_or_else(|| ApiError::not_found(format!("no {kind} {id}")))?;
        let view = app::render_state(&key, &v).unwrap_or(Value::Null);
        return Ok(Json(json!({ "kind": kind, "id": id, "value": view })));
    }
    let proof = crate::app::prove(&s.store, &s.chain_id, &key, q.height)
        .map_err(|e| ApiError::new(axum::http::StatusCode::CONFLICT, "not_provable", e))?;
    let view = proof.value_bytes().and_then(|v| app::render_state(&key, &v));
    Ok(Json(json!({ "kind": kind, "id": id, "value": view, "proof": proof })))
}
