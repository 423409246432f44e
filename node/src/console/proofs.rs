//! What the grant page's script fetches to check proofs in the browser: the genesis validator
//! set (the trust root, public) and a transaction's proof bundle under the session's read
//! policy (`GET /v1/txs/{hash}/proof`'s rule: its parties and supervisors). JSON, with the RPC's
//! error form.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use dpx_crypto::Hash;
use serde_json::json;

use super::{AppState, Ext, who};
use crate::rpc::{ApiError, auth};

/// `GET /console/proofs/genesis`: the chain id and the genesis validator set with its hash.
pub async fn genesis(State(s): State<AppState>) -> Response {
    match s.genesis.validator_set() {
        Ok(set) => Json(json!({
            "chain_id": s.chain_id,
            "validators": set.validators().iter().map(|v| json!({ "key": v.key, "power": v.power })).collect::<Vec<_>>(),
            "validator_set_hash": set.hash(&s.chain_id),
        }))
        .into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

/// `GET /console/proofs/tx/{hash}`: the transaction's proof bundle for this session.
pub async fn tx(
    State(s): State<AppState>,
    axum::Extension(console): Ext,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> Response {
    let Ok(hash) = hash.parse::<Hash>() else {
        return ApiError::bad_request("bad_hash", "a transaction hash is 64 hex characters")
            .into_response();
    };
    let out = tokio::task::spawn_blocking(move || {
        let who = who(&s, &console, &headers).map_err(|e| ApiError::internal(e.to_string()))?;
        if !auth::tx_visible_to(&s.store, &who.reader, &hash)? {
            return Err(auth::forbidden(&format!("transaction {hash}")));
        }
        dpx_app::proofs::prove_tx(&s.store, &s.chain_id, &hash)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("transaction {hash} is not committed")))
    })
    .await;
    match out {
        Ok(Ok(bundle)) => Json(bundle).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}
