//! Submitting transactions and asking about them.
//!
//! `POST /v1/txs` takes one signed transaction, as protobuf bytes
//! (`Content-Type: application/x-protobuf`) or as JSON `{"tx": "<hex>"}`, and returns when the
//! chosen stage is reached: `wait=admission` (signature and format checked, queued),
//! `wait=check` (stateful checks passed, in the mempool; the default) or `wait=commit`
//! (committed, with its receipt; bounded by `timeout_ms`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{ApiError, ApiQuery, ApiResult, AppState};
use crate::app::{self, CheckedTx};
use crate::driver::DriverMsg;
use crate::wire;
use dpx_crypto::Hash;
use prost::Message as _;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    pub wait: Option<String>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Admission,
    Check,
    Commit,
}

fn parse_wait(q: &SubmitQuery) -> ApiResult<Wait> {
    match q.wait.as_deref() {
        None | Some("check") => Ok(Wait::Check),
        Some("admission") => Ok(Wait::Admission),
        Some("commit") => Ok(Wait::Commit),
        Some(other) => Err(ApiError::bad_request(
            "bad_wait",
            format!("wait must be admission, check or commit, not {other:?}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTx {
    tx: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonBatch {
    txs: Vec<String>,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"))
}

fn parse_hex_tx(s: &str) -> ApiResult<Vec<u8>> {
    hex::decode(s.trim()).map_err(|_| ApiError::bad_request("bad_encoding", "tx must be hex"))
}

/// Stateless checks (decode, chain id, batched signature verification) off the async threads.
async fn check_stateless(
    s: &AppState,
    txs: Vec<Vec<u8>>,
) -> ApiResult<Vec<Result<CheckedTx, String>>> {
    let checker = s.checker.clone();
    tokio::task::spawn_blocking(move || checker.check_batch(txs))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn admit(
    s: &AppState,
    txs: Vec<CheckedTx>,
    wait: Wait,
) -> ApiResult<Vec<Result<Hash, String>>> {
    if wait == Wait::Admission {
        let hashes = txs.iter().map(|t| Ok(t.hash)).collect();
        s.driver_tx
            .try_send(DriverMsg::Admit { txs, from_peer: false, reply: None })
            .map_err(|_| ApiError::unavailable("node is busy; retry shortly"))?;
        return Ok(hashes);
    }
    let (reply, rx) = oneshot::channel();
    s.driver_tx
        .try_send(DriverMsg::Admit { txs, from_peer: false, reply: Some(reply) })
        .map_err(|_| ApiError::unavailable("node is busy; retry shortly"))?;
    rx.await.map_err(|_| ApiError::unavailable("node is shutting down"))
}

fn rejection(reason: &str) -> ApiError {
    if reason.contains("mempool is full") {
        ApiError::unavailable(reason.to_owned())
    } else {
        ApiError::conflict("rejected", reason.to_owned())
    }
}

pub async fn submit(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let wait = parse_wait(&q)?;
    let bytes = if is_json(&headers) {
        let j: JsonTx = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad_json", e.to_string()))?;
        parse_hex_tx(&j.tx)?
    } else {
        body.to_vec()
    };
    let checked = check_stateless(&s, vec![bytes]).await?.pop().expect("one in, one out");
    let tx = checked.map_err(|e| ApiError::bad_request("invalid_tx", e))?;
    let hash = tx.hash;
    // Register for the commit before admitting, so a fast commit is not missed.
    let waiter = if wait == Wait::Commit {
        Some(s.wait_commit(hash).ok_or_else(|| ApiError::unavailable("too many commit waiters"))?)
    } else {
        None
    };
    let result = admit(&s, vec![tx], wait).await?.pop().expect("one in, one out");
    result.map_err(|r| rejection(&r))?;
    let Some(waiter) = waiter else {
        let stage = if wait == Wait::Admission { "admitted" } else { "checked" };
        return Ok(
            (StatusCode::ACCEPTED, Json(json!({ "hash": hash, "status": stage }))).into_response()
        );
    };
    let max = s.config.rpc.commit_wait_max_ms;
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(max).min(max));
    match tokio::time::timeout(timeout, waiter).await {
        Ok(Ok(_height)) => Ok(Json(tx_status(&s, &hash)?).into_response()),
        Ok(Err(_)) => Err(ApiError::unavailable("node is shutting down")),
        Err(_) => Err(ApiError::new(
            StatusCode::ACCEPTED,
            "commit_timeout",
            format!("{hash} is in the mempool but not committed within {} ms", timeout.as_millis()),
        )),
    }
}

fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-protobuf"))
}

fn check_batch_len(s: &AppState, n: usize) -> ApiResult<()> {
    if n > s.config.rpc.max_batch_txs {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("at most {} transactions per batch", s.config.rpc.max_batch_txs),
        ));
    }
    Ok(())
}

/// `POST /v1/txs/batch`: JSON `{"txs": ["<hex>", ...]}` or, with
/// `Content-Type: application/x-protobuf`, the bytes of a `dpx.node.v1.TxBatch` (no hex: half
/// the bytes and no text decoding, for high-rate clients). One result per transaction, in order.
pub async fn submit_batch(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let wait = parse_wait(&q)?;
    if wait == Wait::Commit {
        return Err(ApiError::bad_request(
            "bad_wait",
            "batch submit supports wait=admission or check",
        ));
    }
    let decoded: Vec<Result<Vec<u8>, String>> = if is_json(&headers) {
        let j: JsonBatch = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad_json", e.to_string()))?;
        check_batch_len(&s, j.txs.len())?;
        j.txs
            .iter()
            .map(|t| hex::decode(t.trim()).map_err(|_| "tx must be hex".to_owned()))
            .collect()
    } else if is_protobuf(&headers) {
        let b = wire::TxBatch::decode(body)
            .map_err(|e| ApiError::bad_request("bad_protobuf", e.to_string()))?;
        check_batch_len(&s, b.txs.len())?;
        b.txs.into_iter().map(Ok).collect()
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or application/x-protobuf",
        ));
    };
    let good: Vec<Vec<u8>> = decoded.iter().filter_map(|d| d.as_ref().ok().cloned()).collect();
    let mut checked = check_stateless(&s, good).await?.into_iter();
    let mut results: Vec<Result<CheckedTx, String>> = Vec::with_capacity(decoded.len());
    for d in decoded {
        results.push(match d {
            Ok(_) => checked.next().expect("one per decoded tx"),
            Err(e) => Err(e),
        });
    }
    let ok: Vec<CheckedTx> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut admitted = admit(&s, ok, wait).await?.into_iter();
    let out: Vec<Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(_) => match admitted.next().expect("one per checked tx") {
                Ok(h) => json!({ "hash": h, "status": if wait == Wait::Admission { "admitted" } else { "checked" } }),
                Err(e) => json!({ "error": { "code": "rejected", "message": e } }),
            },
            Err(e) => json!({ "error": { "code": "invalid_tx", "message": e } }),
        })
        .collect();
    Ok(Json(json!({ "results": out })))
}

fn tx_status(s: &AppState, hash: &Hash) -> ApiResult<Value> {
    let store = &s.store;
    if let Some((height, index, receipt)) =
        store.receipt(hash).map_err(|e| ApiError::internal(e.to_string()))?
    {
        let tx = store.tx(hash).map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok(json!({
            "hash": hash,
            "status": "committed",
            "height": height,
            "index": index,
            "receipt": app::receipt_json(&receipt),
            "tx": tx.map(|(_, _, b)| app::tx_json(&b)),
        }));
    }
    Err(ApiError::not_found(format!("transaction {hash} is not committed (it may be pending)")))
}

pub async fn status(
    State(s): State<AppState>,
    caller: super::auth::Caller,
    Path(hash): Path<String>,
) -> ApiResult<Json<Value>> {
    let hash: Hash = hash
        .parse()
        .map_err(|_| ApiError::bad_request("bad_hash", "hash must be 64 hex characters"))?;
    // The read policy: the contents and receipt are for the transaction's parties and
    // supervisors; others see only what blocks show everyone (see `super::auth::tx_read`).
    let v = tx_status(&s, &hash)?;
    Ok(Json(super::auth::tx_read(&s, caller, &hash, v)?))
}
