//! State queries: list objects of a kind with cursor pagination, or fetch one, optionally with
//! its Merkle proof and the certified header it is proved against.
//!
//! Proofs are against the state root committed in the header of the block *after* the proved
//! version (headers carry the state root after the previous block), and that header's
//! certificate, so a client can check the value with nothing but the validator set.
//!
//! The read policy (`dpx_contracts::read`) decides what the caller sees: a list holds only the
//! objects the caller may read (a page may then be short: continue while `next` is not null);
//! one object the caller may not read is `403 forbidden` whether or not it exists, and so is
//! its proof (present or absent).

use axum::Json;
use axum::extract::{Path, State};
use dpx_app::proofs::prove;
use dpx_app::views::{KINDS, kind_prefix, object_key, render_state};
use serde::Deserialize;
use serde_json::{Value, json};

use dpx_app::LatestState;

use super::auth::{Caller, Reader, forbidden, read_ok};
use super::{ApiError, ApiQuery, ApiResult, AppState};
use dpx_contracts::read;

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
    caller: Caller,
    Path(kind): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    let prefix = kind_prefix(&kind).ok_or_else(|| {
        ApiError::not_found(format!("unknown kind {kind:?}; kinds: {}", KINDS.join(", ")))
    })?;
    let reader = Reader::of(s.checker.is_opaque(), caller);
    let st = LatestState::new(&s.store);
    let after = q.after.as_deref().map(parse_cursor).transpose()?;
    let limit = q.limit.unwrap_or(100).clamp(1, PAGE_MAX);
    let mut items = Vec::new();
    let mut cursor = after;
    let mut last_key = None;
    let mut exhausted = false;
    // Filters and the read policy are applied after the scan; keep scanning (bounded) until
    // the page is full.
    for _ in 0..20 {
        let batch =
            s.store.scan_prefix(&prefix, cursor.as_deref(), limit).map_err(|e| match e {
                // Bounds on what the client sent, should one get past the checks above.
                dpx_ledger::LedgerError::TooLarge { .. } => {
                    ApiError::bad_request("bad_cursor", e.to_string())
                }
                e => ApiError::internal(e.to_string()),
            })?;
        let done = batch.len() < limit;
        for (k, v) in batch {
            last_key = Some(k.clone());
            if !reader.may(&read::state_access(&st, &k, &v)) {
                continue;
            }
            let Some(view) = render_state(&k, &v) else { continue };
            if q.filters.iter().all(|(f, want)| field_matches(&view, f, want)) {
                items.push(view);
                if items.len() == limit {
                    break;
                }
            }
        }
        cursor.clone_from(&last_key);
        if done {
            exhausted = true;
            break;
        }
        if items.len() == limit {
            break;
        }
    }
    read_ok(&st)?;
    // More keys may follow unless the scan reached the end of the kind: a page cut short by
    // the scan budget still names where to continue.
    let next = if exhausted && items.len() < limit { None } else { last_key.map(hex::encode) };
    Ok(Json(json!({ "kind": kind, "items": items, "next": next })))
}

/// A list cursor: the hex of a state key, so never longer than the longest key (a longer one
/// could not name a key, and the store refuses it).
fn parse_cursor(hex_key: &str) -> ApiResult<Vec<u8>> {
    let max = dpx_ledger::MAX_KEY_BYTES;
    if hex_key.len() > 2 * max {
        return Err(ApiError::bad_request(
            "bad_cursor",
            format!("after is longer than a state key ({max} bytes)"),
        ));
    }
    hex::decode(hex_key).map_err(|_| ApiError::bad_request("bad_cursor", "after must be hex"))
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

/// May `reader` see what is stored at `key` (`value`, or nothing)? Forbidden whether or not
/// it exists when the answer is no.
pub(super) fn check_read(
    s: &AppState,
    reader: &Reader,
    key: &[u8],
    value: Option<&[u8]>,
    what: &str,
) -> ApiResult<()> {
    let st = LatestState::new(&s.store);
    let access = match value {
        Some(v) => read::state_access(&st, key, v),
        None => read::absent_access(key),
    };
    read_ok(&st)?;
    if reader.may(&access) { Ok(()) } else { Err(forbidden(what)) }
}

pub async fn one(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<OneQuery>,
) -> ApiResult<Json<Value>> {
    let key = object_key(&kind, &id).map_err(|e| ApiError::bad_request("bad_id", e))?;
    if !q.prove && q.height.is_some() {
        return Err(ApiError::bad_request(
            "bad_query",
            "height selects the version a proof is made at: use it with prove=true",
        ));
    }
    let reader = Reader::of(s.checker.is_opaque(), caller);
    let what = format!("{kind} {id}");
    if !q.prove {
        let v = s.store.get_latest(&key).map_err(|e| ApiError::internal(e.to_string()))?;
        check_read(&s, &reader, &key, v.as_deref(), &what)?;
        let v = v.ok_or_else(|| ApiError::not_found(format!("no {kind} {id}")))?;
        let view = render_state(&key, &v).unwrap_or(Value::Null);
        return Ok(Json(json!({ "kind": kind, "id": id, "value": view })));
    }
    let proof = prove(&s.store, &s.chain_id, &key, q.height);
    // The proof's value decides, at the proved version; a caller that may not see the object
    // does not learn whether it is provable either.
    let proof = match proof {
        Ok(p) => {
            check_read(&s, &reader, &key, p.value_bytes().as_deref(), &what)?;
            p
        }
        Err(e) => {
            let v = s.store.get_latest(&key).map_err(|e| ApiError::internal(e.to_string()))?;
            check_read(&s, &reader, &key, v.as_deref(), &what)?;
            return Err(ApiError::new(axum::http::StatusCode::CONFLICT, "not_provable", e));
        }
    };
    let view = proof.value_bytes().and_then(|v| render_state(&key, &v));
    Ok(Json(json!({ "kind": kind, "id": id, "value": view, "proof": proof })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_longer_than_a_key_are_refused() {
        let max = dpx_ledger::MAX_KEY_BYTES;
        assert_eq!(parse_cursor(&"ab".repeat(max)).unwrap().len(), max);
        let e = parse_cursor(&"ab".repeat(max + 1)).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "bad_cursor"));
        assert_eq!(parse_cursor("zz").unwrap_err().code, "bad_cursor");
    }
}
