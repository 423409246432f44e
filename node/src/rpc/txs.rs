//! Submitting transactions and asking about them.
//!
//! `POST /v1/txs` takes one signed transaction, as protobuf bytes
//! (`Content-Type: application/x-protobuf`) or as JSON `{"tx": "<hex>"}`, and returns when the
//! chosen stage is reached: `wait=admission` (signature and format checked, queued),
//! `wait=check` (stateful checks passed, in the mempool; the default) or `wait=commit`
//! (committed, with its receipt; bounded by `timeout_ms`, after which the answer is `202` with
//! status `pending`).
//!
//! Submission is idempotent: the same bytes again, while pending, are the same pending
//! transaction; once committed, the answer is the committed transaction and its receipt (200).
//! Each refusal has its own error code (see [`refusal_error`]), whether the transaction came
//! alone or in a batch.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dpx_app::admit::{CheckedTx, Refusal};
use dpx_app::views::{receipt_json, tx_json};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::{ApiError, ApiQuery, ApiResult, AppState};
use crate::driver::{AdmitResult, DriverMsg};
use crate::mempool::Admitted;
use crate::wire;
use dpx_contracts::TxError;
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

/// The error a refused transaction gets: one code per cause, details where a client can act
/// on them, the transaction's hash when it is known.
pub fn refusal_error(r: &Refusal, hash: Option<&Hash>) -> ApiError {
    use StatusCode as S;
    let msg = r.to_string();
    let (e, details) = match r {
        Refusal::Tx(t) => match t {
            TxError::TooLarge { size, max } => {
                (ApiError::bad_request("tx_too_large", msg), json!({ "size": size, "max": max }))
            }
            TxError::Decode(_) => (ApiError::bad_request("malformed_tx", msg), json!({})),
            TxError::WrongChain { expected, got } => (
                ApiError::bad_request("wrong_chain", msg),
                json!({ "expected": expected, "got": got }),
            ),
            TxError::BadSignature => (ApiError::bad_request("bad_signature", msg), json!({})),
            TxError::InvalidOp { .. } => (ApiError::bad_request("invalid_op", msg), json!({})),
            TxError::NonceTooLow { expected, got } => (
                ApiError::conflict("nonce_too_low", msg),
                json!({ "expected": expected, "got": got }),
            ),
            TxError::NonceTooHigh { expected, got } => (
                ApiError::conflict("nonce_too_high", msg),
                json!({ "expected": expected, "got": got }),
            ),
            TxError::Expired { expiry_height, height } => (
                ApiError::conflict("expired", msg),
                json!({ "expiry_height": expiry_height, "height": height }),
            ),
            TxError::UnknownSigner { signer } => {
                (ApiError::new(S::FORBIDDEN, "unknown_signer", msg), json!({ "signer": signer }))
            }
            TxError::RotatedKey { signer } => {
                (ApiError::new(S::FORBIDDEN, "rotated_key", msg), json!({ "signer": signer }))
            }
            TxError::SubjectCannotSign { op } => {
                (ApiError::new(S::FORBIDDEN, "subject_cannot_sign", msg), json!({ "op": op }))
            }
            TxError::SubjectOnly { op } => {
                (ApiError::new(S::FORBIDDEN, "subject_only", msg), json!({ "op": op }))
            }
            TxError::GrantExpired { expires_at_ms, time_ms } => (
                ApiError::conflict("grant_expired", msg),
                json!({ "expires_at_ms": expires_at_ms, "time_ms": time_ms }),
            ),
            TxError::Corrupt { .. } => (ApiError::internal(msg), json!({})),
        },
        Refusal::PayloadSize { len: 0, .. } => {
            (ApiError::bad_request("malformed_tx", msg), json!({}))
        }
        Refusal::PayloadSize { len, max } => {
            (ApiError::bad_request("tx_too_large", msg), json!({ "size": len, "max": max }))
        }
        Refusal::NonceTaken { nonce } => {
            (ApiError::conflict("nonce_taken", msg), json!({ "nonce": nonce }))
        }
        Refusal::MempoolFull { count, bytes } => (
            ApiError::new(S::SERVICE_UNAVAILABLE, "mempool_full", msg),
            json!({ "count": count, "bytes": bytes }),
        ),
        Refusal::SignerQuota { pending } => (
            ApiError::new(S::TOO_MANY_REQUESTS, "signer_quota", msg),
            json!({ "pending": pending }),
        ),
        Refusal::LedgerRead(_) => (ApiError::internal(msg), json!({})),
    };
    let mut details = details;
    if let Some(h) = hash {
        details["hash"] = json!(h);
    }
    if details.as_object().is_some_and(serde_json::Map::is_empty) {
        e
    } else {
        e.with_details(details)
    }
}

/// Load shedding at the door (`mempool.shed_wait_ms`, 0: off): how long the pool's
/// `SHED_RANK`-th transaction from the front has waited (admitted at `oldest`), when that is
/// over the limit. The pool is served in admission order, so this is the queueing delay a new
/// transaction would add to; a burst on an idle chain does not trip it, a node that cannot
/// keep up does, and a few stragglers do not.
fn over_wait_limit(
    oldest: Option<std::time::Instant>,
    now: std::time::Instant,
    limit_ms: u64,
) -> Option<Duration> {
    let waited = now.saturating_duration_since(oldest?);
    (limit_ms > 0 && waited > Duration::from_millis(limit_ms)).then_some(waited)
}

/// Refuse a submission before any decoding or signature check while the node is overloaded
/// (see [`over_wait_limit`]): 503 `overloaded` with `Retry-After`, counted. The client learns
/// it at once and the node's CPU goes to what it already took.
///
/// Only a validator of the set in force sheds: its pool drains through the blocks it and the
/// others propose. A full node (or a validator out of the set) proposes nothing, so
/// transactions its relay could not deliver would wait in its pool for ever and keep its door
/// shut; the validators it relays to shed for it.
fn shed(s: &AppState) -> ApiResult<()> {
    let limit_ms = s.config.mempool.shed_wait_ms;
    let (oldest, pending, proposes) = {
        let st = s.status.read();
        let proposes = st.signing_key.is_some_and(|k| st.validators.iter().any(|(v, _)| *v == k));
        (st.mempool_waiting_since, st.mempool_txs, proposes)
    };
    if !proposes {
        return Ok(());
    }
    let Some(waited) = over_wait_limit(oldest, std::time::Instant::now(), limit_ms) else {
        return Ok(());
    };
    s.metrics.rpc_overloaded.inc();
    let waited_ms = waited.as_millis() as u64;
    // Roughly how long the excess takes to drain, in whole seconds (1 to 30).
    let retry_after = (waited_ms - limit_ms).div_ceil(1000).clamp(1, 30);
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        format!(
            "the node is overloaded: its pending transactions have waited {waited_ms} ms \
             (the limit is {limit_ms} ms); retry after {retry_after} s or submit elsewhere"
        ),
    )
    .with_details(json!({ "waited_ms": waited_ms, "limit_ms": limit_ms, "pending": pending }))
    .with_retry_after(retry_after))
}

/// Stateless checks (decode, chain id, batched signature verification) off the async threads.
async fn check_stateless(
    s: &AppState,
    txs: Vec<Vec<u8>>,
) -> ApiResult<Vec<Result<CheckedTx, Refusal>>> {
    let checker = s.checker.clone();
    tokio::task::spawn_blocking(move || checker.check_batch(txs))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

async fn admit(s: &AppState, txs: Vec<CheckedTx>, wait: Wait) -> ApiResult<Vec<AdmitResult>> {
    if wait == Wait::Admission {
        let queued = txs.iter().map(|t| Ok(Admitted::Pending(t.hash))).collect();
        s.driver_tx
            .try_send(DriverMsg::Admit { txs, from_peer: false, reply: None })
            .map_err(|_| ApiError::unavailable("node is busy; retry shortly"))?;
        return Ok(queued);
    }
    let (reply, rx) = oneshot::channel();
    s.driver_tx
        .try_send(DriverMsg::Admit { txs, from_peer: false, reply: Some(reply) })
        .map_err(|_| ApiError::unavailable("node is busy; retry shortly"))?;
    rx.await.map_err(|_| ApiError::shutting_down())
}

fn stage(wait: Wait) -> &'static str {
    if wait == Wait::Admission { "admitted" } else { "checked" }
}

pub async fn submit(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let wait = parse_wait(&q)?;
    shed(&s)?;
    let bytes = if is_json(&headers) {
        let j: JsonTx = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad_json", e.to_string()))?;
        parse_hex_tx(&j.tx)?
    } else {
        body.to_vec()
    };
    let checked = check_stateless(&s, vec![bytes]).await?.pop().expect("one in, one out");
    let tx = checked.map_err(|r| refusal_error(&r, None))?;
    let hash = tx.hash;
    // Register for the commit before admitting, so a fast commit is not missed.
    let waiter = if wait == Wait::Commit {
        Some(s.wait_commit(hash).ok_or_else(|| ApiError::unavailable("too many commit waiters"))?)
    } else {
        None
    };
    let admitted = admit(&s, vec![tx], wait).await?.pop().expect("one in, one out");
    match admitted.map_err(|r| refusal_error(&r, Some(&hash)))? {
        // The same bytes committed before: the answer is their receipt, as if just committed.
        Admitted::Committed(_) => return Ok(Json(committed(&s, &hash)?).into_response()),
        Admitted::Pending(_) => {}
    }
    let Some(waiter) = waiter else {
        let status = stage(wait);
        return Ok(
            (StatusCode::ACCEPTED, Json(json!({ "hash": hash, "status": status }))).into_response()
        );
    };
    let max = s.config.rpc.commit_wait_max_ms;
    let timeout = Duration::from_millis(q.timeout_ms.unwrap_or(max).min(max));
    match tokio::time::timeout(timeout, waiter).await {
        Ok(Ok(_height)) => Ok(Json(committed(&s, &hash)?).into_response()),
        Ok(Err(_)) => Err(ApiError::shutting_down()),
        Err(_) => Ok((StatusCode::ACCEPTED, Json(pending(&hash, Some(timeout)))).into_response()),
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
/// the bytes and no text decoding, for high-rate clients). One result per transaction, in order:
/// `{"hash", "status"}` (`admitted`, `checked`, or `committed` with its `height` for bytes
/// committed before) or `{"error": {...}}` with the code the transaction would get alone.
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
    shed(&s)?;
    let decoded: Vec<ApiResult<Vec<u8>>> = if is_json(&headers) {
        let j: JsonBatch = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad_json", e.to_string()))?;
        check_batch_len(&s, j.txs.len())?;
        j.txs.iter().map(|t| parse_hex_tx(t)).collect()
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
    let mut results: Vec<ApiResult<CheckedTx>> = Vec::with_capacity(decoded.len());
    for d in decoded {
        results.push(match d {
            Ok(_) => {
                checked.next().expect("one per decoded tx").map_err(|r| refusal_error(&r, None))
            }
            Err(e) => Err(e),
        });
    }
    let ok: Vec<CheckedTx> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut admitted = admit(&s, ok, wait).await?.into_iter();
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        out.push(match r {
            Ok(tx) => match admitted.next().expect("one per checked tx") {
                Ok(Admitted::Pending(h)) => json!({ "hash": h, "status": stage(wait) }),
                Ok(Admitted::Committed(h)) => {
                    let height = s
                        .store
                        .receipt(&h)
                        .map_err(|e| ApiError::internal(e.to_string()))?
                        .map(|(height, _, _)| height);
                    json!({ "hash": h, "status": "committed", "height": height })
                }
                Err(r) => json!({ "error": refusal_error(&r, Some(&tx.hash)).body() }),
            },
            Err(e) => json!({ "error": e.body() }),
        });
    }
    Ok(Json(json!({ "results": out })))
}

/// The status document of a pending transaction; `waited` when a commit wait timed out.
fn pending(hash: &Hash, waited: Option<Duration>) -> Value {
    let mut v = json!({ "hash": hash, "status": "pending" });
    if let Some(w) = waited {
        v["waited_ms"] = json!(w.as_millis() as u64);
        v["message"] = json!(format!(
            "in the mempool but not committed within {} ms; ask GET /v1/txs/{hash}",
            w.as_millis()
        ));
    }
    v
}

/// The status document of a committed transaction, if it is committed.
fn committed_status(s: &AppState, hash: &Hash) -> ApiResult<Option<Value>> {
    let store = &s.store;
    let Some((height, index, receipt)) =
        store.receipt(hash).map_err(|e| ApiError::internal(e.to_string()))?
    else {
        return Ok(None);
    };
    let tx = store.tx(hash).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Some(json!({
        "hash": hash,
        "status": "committed",
        "height": height,
        "index": index,
        "receipt": receipt_json(&receipt),
        "tx": tx.map(|(_, _, b)| tx_json(&b)),
    })))
}

fn committed(s: &AppState, hash: &Hash) -> ApiResult<Value> {
    committed_status(s, hash)?
        .ok_or_else(|| ApiError::internal(format!("{hash} committed but its receipt is missing")))
}

/// Whether `hash` is in this node's mempool (asked of the driver, which owns it).
async fn in_mempool(s: &AppState, hash: Hash) -> ApiResult<bool> {
    let (reply, rx) = oneshot::channel();
    s.driver_tx
        .try_send(DriverMsg::Pending { hash, reply })
        .map_err(|_| ApiError::unavailable("node is busy; retry shortly"))?;
    rx.await.map_err(|_| ApiError::shutting_down())
}

/// A transaction hash from the path: 400 `bad_hash` unless it is 64 hex characters.
fn path_hash(hash: &str) -> ApiResult<Hash> {
    hash.parse().map_err(|_| ApiError::bad_request("bad_hash", "hash must be 64 hex characters"))
}

/// `GET /v1/txs/{hash}`: `committed` (with height and receipt), `pending` (in this node's
/// mempool), or 404 `not_found`.
///
/// The read policy applies: the contents and receipt are for the transaction's parties and
/// supervisors; others see only what blocks show everyone (see `super::auth::tx_read`).
pub async fn status(
    State(s): State<AppState>,
    caller: super::auth::Caller,
    Path(hash): Path<String>,
) -> ApiResult<Json<Value>> {
    let hash = path_hash(&hash)?;
    if let Some(v) = committed_status(&s, &hash)? {
        return Ok(Json(super::auth::tx_read(&s.store, s.checker.is_opaque(), caller, &hash, v)?));
    }
    if in_mempool(&s, hash).await? {
        return Ok(Json(pending(&hash, None)));
    }
    // It may have committed between the two looks.
    if let Some(v) = committed_status(&s, &hash)? {
        return Ok(Json(super::auth::tx_read(&s.store, s.checker.is_opaque(), caller, &hash, v)?));
    }
    Err(ApiError::not_found(format!(
        "transaction {hash} is neither committed nor in this node's mempool"
    )))
}

/// `GET /v1/txs/{hash}/proof`: a committed transaction's proof bundle (SPEC.md §11.2): the
/// transaction, its Merkle proof against its block's certified `tx_root`, and its receipt's
/// against the next block's certified `prev_receipts_hash` (`receipt: null` with
/// `receipt_pending` while that block is not committed).
///
/// The read policy of `GET /v1/txs/{hash}`, with a refusal instead of a redacted answer: a
/// caller who may not see the transaction gets 403 `forbidden`, and so does anyone but a
/// supervisor asking for a hash that is not committed (whether it exists is not disclosed);
/// a supervisor gets 404 `not_found` for it.
pub async fn proof(
    State(s): State<AppState>,
    caller: super::auth::Caller,
    Path(hash): Path<String>,
) -> ApiResult<Json<Value>> {
    let hash = path_hash(&hash)?;
    if !super::auth::tx_visible(&s.store, s.checker.is_opaque(), caller, &hash)? {
        return Err(super::auth::forbidden(&format!("transaction {hash}")));
    }
    let store = s.store.clone();
    let chain_id = s.chain_id.clone();
    let bundle =
        tokio::task::spawn_blocking(move || dpx_app::proofs::prove_tx(&store, &chain_id, &hash))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(ApiError::internal)?;
    let bundle = bundle
        .ok_or_else(|| ApiError::not_found(format!("transaction {hash} is not committed")))?;
    Ok(Json(serde_json::to_value(bundle).map_err(|e| ApiError::internal(e.to_string()))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shedding goes by how long the oldest pooled transaction has waited: never on an empty
    /// pool, never when turned off, only strictly past the limit.
    #[test]
    fn the_door_closes_only_past_the_wait_limit() {
        let t0 = std::time::Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(over_wait_limit(None, at(10_000), 1), None, "an empty pool");
        assert_eq!(over_wait_limit(Some(t0), at(2_000), 2_000), None, "at the limit");
        assert_eq!(over_wait_limit(Some(t0), at(2_001), 2_000), Some(Duration::from_millis(2_001)));
        assert_eq!(over_wait_limit(Some(t0), at(60_000), 0), None, "off");
        // A clock read before the admission (another thread's `now`) is no wait at all.
        assert_eq!(over_wait_limit(Some(at(5)), t0, 1), None);
    }

    /// Every refusal maps to a catalogued code whose status is the one answered.
    #[test]
    fn each_refusal_has_its_own_catalogued_code() {
        let s = |v: &str| v.to_owned();
        let refusals = vec![
            Refusal::Tx(TxError::TooLarge { size: 9, max: 8 }),
            Refusal::Tx(TxError::Decode(dpx_contracts::DecodeError::NotCanonical)),
            Refusal::Tx(TxError::WrongChain { expected: s("a"), got: s("b") }),
            Refusal::Tx(TxError::BadSignature),
            Refusal::Tx(TxError::InvalidOp { reason: s("r") }),
            Refusal::Tx(TxError::NonceTooLow { expected: 5, got: 3 }),
            Refusal::Tx(TxError::NonceTooHigh { expected: 5, got: 7 }),
            Refusal::Tx(TxError::Expired { expiry_height: 3, height: 4 }),
            Refusal::Tx(TxError::UnknownSigner { signer: s("ab") }),
            Refusal::Tx(TxError::RotatedKey { signer: s("ab") }),
            Refusal::Tx(TxError::SubjectCannotSign { op: "list_product" }),
            Refusal::Tx(TxError::SubjectOnly { op: "register_grant" }),
            Refusal::Tx(TxError::GrantExpired { expires_at_ms: 1, time_ms: 2 }),
            Refusal::Tx(TxError::Corrupt { reason: s("r") }),
            Refusal::PayloadSize { len: 0, max: 8 },
            Refusal::PayloadSize { len: 9, max: 8 },
            Refusal::NonceTaken { nonce: 1 },
            Refusal::MempoolFull { count: 1, bytes: 2 },
            Refusal::SignerQuota { pending: 3 },
            Refusal::LedgerRead(s("disk")),
        ];
        let mut codes = Vec::new();
        for r in &refusals {
            let e = refusal_error(r, None);
            let spec = super::super::error::spec(e.code).unwrap_or_else(|| panic!("{}", e.code));
            assert_eq!(spec.status, e.status.as_u16(), "{}", e.code);
            assert_eq!(e.message, r.to_string());
            codes.push(e.code);
        }
        // Distinct causes, distinct codes (the two internal failures and the two spellings
        // of a bad size share theirs on purpose).
        let mut distinct = codes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len() - 3, "{codes:?}");
        let e = refusal_error(&refusals[6], Some(&Hash([1; 32])));
        assert_eq!(e.details, Some(json!({"expected": 5, "got": 7, "hash": Hash([1; 32])})));
    }
}
