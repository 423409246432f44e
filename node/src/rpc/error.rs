//! RPC errors: JSON `{ "error": { "code": "...", "message": "...", "details": {...} } }` with
//! the right status. Codes are stable strings clients can match on, one per cause; `details`
//! (when present) carries machine-readable fields of the cause, e.g. `{"expected": 5, "got": 7}`
//! for a nonce; messages are for humans.
//!
//! [`CATALOGUE`] lists every code the server can answer with, its HTTP status and when it
//! happens; the OpenAPI document publishes it, and a test checks that the codes in the sources
//! and the catalogue are the same set.

use axum::Json;
use axum::extract::{FromRequestParts, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Machine-readable fields of the cause (a JSON object), if any.
    pub details: Option<Value>,
    /// Seconds to wait before retrying (`Retry-After`), for refusals that pass. (A `u16`
    /// keeps the error small: it travels in every `Result` of the handlers.)
    pub retry_after_s: Option<u16>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after_s: None }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    /// A capacity limit was hit; the client should retry shortly.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub fn shutting_down() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the node is shutting down")
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    /// Attach machine-readable details (a JSON object).
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Answer with `Retry-After: secs` (at most 65,535).
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_s = Some(u16::try_from(secs).unwrap_or(u16::MAX));
        self
    }

    /// The `{"code", "message", "details"?}` object (also used for items of a batch answer).
    pub fn body(&self) -> Value {
        let mut e = json!({ "code": self.code, "message": self.message });
        if let Some(d) = &self.details {
            e["details"] = d.clone();
        }
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.body() });
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_s {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A 32-byte id or key given as 64 hex characters, or a 400 with `code` naming the parameter.
pub fn hex32(name: &str, v: &str, code: &'static str) -> ApiResult<[u8; 32]> {
    let mut out = [0u8; 32];
    if v.len() != 64 || hex::decode_to_slice(v, &mut out).is_err() {
        return Err(ApiError::bad_request(code, format!("{name} must be 64 hex characters")));
    }
    Ok(out)
}

/// Query parameters, refused with a JSON 400 (`bad_query`) when they do not parse; axum's own
/// `Query` answers such requests in plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| Self(q))
            .map_err(|e| ApiError::bad_request("bad_query", e.body_text()))
    }
}

/// The answer to a path no route has (the router's fallback).
pub async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no_route", "no such route; see /v1/openapi.json")
}

/// The answer to a known path asked with a method it does not take (axum's own is an empty
/// body).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take this method; see /v1/openapi.json",
    )
}

// ----- the catalogue ------------------------------------------------------------------------

/// One error code: its HTTP status and when the server answers with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorSpec {
    pub code: &'static str,
    pub status: u16,
    pub when: &'static str,
}

const fn e(code: &'static str, status: u16, when: &'static str) -> ErrorSpec {
    ErrorSpec { code, status, when }
}

/// Every error code the server answers with. Status 200 marks a code that is sent inside an
/// event stream, not as an HTTP answer.
pub const CATALOGUE: &[ErrorSpec] = &[
    // The request itself.
    e(
        "bad_query",
        400,
        "the query string does not parse: an unknown parameter, or a value of the wrong type",
    ),
    e("bad_json", 400, "the JSON body does not parse, or has missing or unknown fields"),
    e("bad_protobuf", 400, "the protobuf body of a batch is not a dpx.node.v1.TxBatch"),
    e("bad_body", 400, "the request body could not be read (the connection failed mid-body)"),
    e(
        "unsupported_media_type",
        415,
        "a batch body that is neither application/json nor application/x-protobuf",
    ),
    e(
        "body_too_large",
        413,
        "the request body is larger than rpc.max_body_bytes (the connection is closed)",
    ),
    e("batch_too_large", 413, "a batch holds more than rpc.max_batch_txs transactions"),
    e("bad_wait", 400, "wait is not admission, check or commit (batches: admission or check)"),
    e("bad_hash", 400, "a transaction hash in the path is not 64 hex characters"),
    e(
        "bad_height",
        400,
        "a block height in the path is not a non-negative integer, an event stream's from_height is too far past the tip, or a validator set is asked for a height after the next one (not decided yet)",
    ),
    e(
        "bad_cursor",
        400,
        "a list cursor (after, before) is not of the form the list gave: hex of a state key (at most its length), a product id, or <height>.<index>",
    ),
    e(
        "bad_id",
        400,
        "an object id in the path is not of the kind's form (64 hex characters, or a number)",
    ),
    e(
        "bad_filter",
        400,
        "an event-stream filter (kinds, participant, product) is malformed or names an unknown kind",
    ),
    e(
        "unauthenticated",
        401,
        "a signed request failed a check of SPEC.md §14 (the message names it: headers, skew, digest, signature, or a replayed nonce); WWW-Authenticate: Signature realm=\"dpx\"",
    ),
    e(
        "forbidden",
        403,
        "the read policy does not let the caller see this object (sign with a party's or a supervisor's key); whether it exists is not disclosed",
    ),
    e("no_route", 404, "no route has this path"),
    e("method_not_allowed", 405, "the path exists but does not take this method"),
    e(
        "not_found",
        404,
        "the named block, transaction (neither committed nor in this node's mempool), object or state kind does not exist",
    ),
    e(
        "not_provable",
        409,
        "a proof was asked at a height no committed header certifies yet (or before the first block)",
    ),
    e(
        "timeout",
        408,
        "the request body did not arrive, or the answer was not ready, within rpc.request_timeout_ms (the connection is closed)",
    ),
    e(
        "rate_limited",
        429,
        "this address sent more than rpc.per_ip_requests_per_s requests (beyond the burst); see Retry-After",
    ),
    e(
        "key_rate_limited",
        429,
        "the signing key made rpc.auth_replay_per_key_max signed requests within the signature window (its nonces are still remembered); that key alone waits, see Retry-After",
    ),
    e(
        "unavailable",
        503,
        "a capacity limit: the admission queue, commit waiters, concurrent requests, event subscribers or the per-address table is full; retry shortly",
    ),
    e("shutting_down", 503, "the node is shutting down"),
    e(
        "too_many_connections",
        503,
        "the node or this address has as many open connections as allowed; the connection is closed",
    ),
    e("internal", 500, "the node could not read its own store; a bug or a failing disk"),
    e(
        "lagged",
        200,
        "the last event of a stream whose subscriber fell behind; resume with from_height",
    ),
    // A transaction, alone or in a batch (same code either way).
    e("bad_encoding", 400, "a transaction in a JSON body is not hex"),
    e(
        "malformed_tx",
        400,
        "the bytes are not a canonical SignedTransaction (or an empty payload on a consensus-only chain)",
    ),
    e(
        "tx_too_large",
        400,
        "the transaction is larger than the most a transaction may be (details: size, max)",
    ),
    e("wrong_chain", 400, "the transaction is signed for another chain (details: expected, got)"),
    e("bad_signature", 400, "the transaction's signature does not verify for its signer"),
    e(
        "invalid_op",
        400,
        "the operation is invalid whatever the state (e.g. an empty name, a grade out of range)",
    ),
    e(
        "nonce_too_low",
        409,
        "the nonce is used: the account's next nonce is higher (details: expected, got); if these are your bytes, they committed under another hash's nonce or not at all",
    ),
    e(
        "nonce_too_high",
        409,
        "the nonce is ahead of the account's next one and the ones between are not pending here (details: expected, got)",
    ),
    e(
        "nonce_taken",
        409,
        "another transaction of the signer with this nonce is pending in this node's mempool (details: nonce)",
    ),
    e(
        "expired",
        409,
        "the transaction's expiry height has passed (details: expiry_height, height)",
    ),
    e(
        "unknown_signer",
        403,
        "the signer is neither a participant nor an enrolled data subject (details: signer)",
    ),
    e("rotated_key", 403, "the signer's key was rotated out (details: signer)"),
    e(
        "subject_cannot_sign",
        403,
        "a data subject's key signed an operation only participants may sign (details: op)",
    ),
    e(
        "subject_only",
        403,
        "a participant's key signed an operation only an enrolled data subject may sign (details: op)",
    ),
    e(
        "grant_expired",
        409,
        "the grant the transaction carries expired by the last block's time (details: expires_at_ms, time_ms)",
    ),
    e(
        "signer_quota",
        429,
        "the signer already has as many pending transactions as one signer may (details: pending)",
    ),
    e(
        "overloaded",
        503,
        "load shedding: the pool's 64th transaction from the front has waited longer than mempool.shed_wait_ms, so submissions are refused before any check (details: waited_ms, limit_ms, pending); see Retry-After",
    ),
    e(
        "mempool_full",
        503,
        "this node's mempool is at its count or byte limit (details: count, bytes); retry later or elsewhere",
    ),
];

/// The catalogue entry of `code`.
#[cfg(test)]
pub fn spec(code: &str) -> Option<&'static ErrorSpec> {
    CATALOGUE.iter().find(|s| s.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rpc source, for the catalogue check.
    const SOURCES: &[(&str, &str)] = &[
        ("error.rs", include_str!("error.rs")),
        ("txs.rs", include_str!("txs.rs")),
        ("auth.rs", include_str!("auth.rs")),
        ("mod.rs", include_str!("mod.rs")),
        ("state.rs", include_str!("state.rs")),
        ("sse.rs", include_str!("sse.rs")),
        ("subscriber.rs", include_str!("subscriber.rs")),
        ("server.rs", include_str!("server.rs")),
        ("limit.rs", include_str!("limit.rs")),
        ("deadline.rs", include_str!("deadline.rs")),
        ("validators.rs", include_str!("validators.rs")),
    ];

    /// Calls whose first string argument is an error code, and constructors with a fixed code.
    const CODE_SITES: &[&str] =
        &["bad_request(", "conflict(", "ApiError::new(", "Self::new(", "\"code\": \"", "code: \""];
    const FIXED: &[(&str, &str)] = &[
        ("ApiError::not_found(", "not_found"),
        ("ApiError::unavailable(", "unavailable"),
        ("ApiError::internal(", "internal"),
        ("ApiError::shutting_down(", "shutting_down"),
    ];

    /// The first `"snake_case"` literal within a short distance after `at`.
    fn literal_after(src: &str, at: usize) -> Option<&str> {
        let mut end = src.len().min(at + 120);
        while !src.is_char_boundary(end) {
            end -= 1;
        }
        let rest = &src[at..end];
        let start = rest.find('"')? + 1;
        let len = rest[start..].find('"')?;
        let lit = &rest[start..start + len];
        (!lit.is_empty() && lit.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')).then_some(lit)
    }

    /// (file, code) for every code the sources emit; the catalogue itself and tests excluded.
    fn emitted() -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (file, src) in SOURCES {
            let src = src.split("#[cfg(test)]").next().unwrap_or(src);
            let src = src.split("// ----- the catalogue").next().unwrap_or(src);
            for site in CODE_SITES {
                for (i, _) in src.match_indices(site) {
                    let at = if site.ends_with('"') { i + site.len() - 1 } else { i + site.len() };
                    if let Some(code) = literal_after(src, at) {
                        out.push((*file, code.to_owned()));
                    }
                }
            }
            for (site, code) in FIXED {
                if src.contains(site) {
                    out.push((*file, (*code).to_owned()));
                }
            }
        }
        out
    }

    #[test]
    fn the_catalogue_and_the_sources_name_the_same_codes() {
        let emitted = emitted();
        for (file, code) in &emitted {
            assert!(spec(code).is_some(), "{file} emits {code:?}, which is not in the catalogue");
        }
        for s in CATALOGUE {
            assert!(
                emitted.iter().any(|(_, c)| c == s.code),
                "{} is in the catalogue but nothing emits it",
                s.code
            );
        }
        let mut codes: Vec<&str> = CATALOGUE.iter().map(|s| s.code).collect();
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n, "a code is listed twice");
    }

    #[test]
    fn the_scan_sees_what_it_should() {
        // The scanner is what the test above relies on: check it against known lines.
        let src = "x ApiError::bad_request(\n  \"bad_thing\", 1) json!({\"code\": \"odd_one\"}) \
                   ApiError::new(StatusCode::GONE, \"gone_away\", m) ApiError::new(s, code, m)";
        let found: Vec<&str> = CODE_SITES
            .iter()
            .flat_map(|site| {
                src.match_indices(site).filter_map(|(i, _)| {
                    let at = if site.ends_with('"') { i + site.len() - 1 } else { i + site.len() };
                    literal_after(src, at)
                })
            })
            .collect();
        assert_eq!(found, vec!["bad_thing", "gone_away", "odd_one"]);
    }

    #[test]
    fn statuses_match_the_constructors() {
        for (e, code) in [
            (ApiError::not_found("x"), "not_found"),
            (ApiError::unavailable("x"), "unavailable"),
            (ApiError::shutting_down(), "shutting_down"),
            (ApiError::internal("x"), "internal"),
            (ApiError::bad_request("bad_query", "x"), "bad_query"),
        ] {
            assert_eq!(e.code, code);
            assert_eq!(spec(code).unwrap().status, e.status.as_u16(), "{code}");
        }
        let d = ApiError::conflict("nonce_too_low", "m").with_details(json!({"expected": 5}));
        assert_eq!(
            d.body(),
            json!({"code": "nonce_too_low", "message": "m", "details": {"expected": 5}})
        );
    }
}
