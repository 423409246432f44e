//! `GET /v1/validators` (the set validating a height) and `GET /v1/validators/pending` (the
//! changes governance scheduled), for operators and `dpx validator set|pending`. Both are
//! public, like the certificates they explain.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiQuery, ApiResult, AppState};
use crate::membership::{self, Scheduled};
use dpx_contracts::Validator;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SetQuery {
    /// The height whose set is wanted; default the next height (the set in force now).
    pub height: Option<u64>,
}

fn member(v: &Validator) -> Value {
    json!({ "key": v.key, "power": v.power, "name": v.name })
}

fn members(set: &[Validator]) -> Value {
    Value::Array(set.iter().map(member).collect())
}

/// The set that validates `height` (committed heights, and the next one).
pub async fn set(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SetQuery>,
) -> ApiResult<Json<Value>> {
    let tip = s.store.tip_height();
    let height = q.height.unwrap_or(tip + 1);
    if height > tip + 1 {
        return Err(ApiError::bad_request(
            "bad_height",
            format!(
                "the set for height {height} is not decided yet (the tip is {tip}): governance may \
                 still change it; see /v1/validators/pending"
            ),
        ));
    }
    if height <= tip && height < s.store.oldest_version() {
        return Err(ApiError::not_found(format!(
            "the state at height {height} was pruned (oldest kept: {})",
            s.store.oldest_version()
        )));
    }
    let set =
        membership::set_at(&s.store, height).map_err(|e| ApiError::internal(e.to_string()))?;
    let total: u64 = set.iter().map(|v| v.power).sum();
    Ok(Json(json!({
        "height": height,
        "tip": tip,
        "total_power": total,
        "validators": members(&set),
    })))
}

fn scheduled_json(p: &Scheduled) -> Value {
    json!({
        "effective_height": p.effective_height,
        "validators": members(&p.validators),
        "added": members(&p.added),
        "removed": p.removed,
    })
}

/// The sets governance scheduled for heights after the next one, oldest first.
pub async fn pending(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let tip = s.store.tip_height();
    let pending = membership::pending(&s.store).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({
        "tip": tip,
        "pending": pending.iter().map(scheduled_json).collect::<Vec<_>>(),
    })))
}
