//! The node's HTTP API (axum): transactions, blocks, state with proofs, events, health, metrics.
//!
//! Every route sits behind the same limits, all from the config: a body-size cap (413), a
//! per-IP token bucket (429 with `Retry-After`), a global concurrency cap (503 when saturated)
//! and a request deadline (408; [`deadline`]). Connections are capped in number, in total and
//! per address, and in time (header, idle and stalled-write timeouts; [`server`]). Event
//! streams have their own cap and cost O(1) memory each ([`sse`]). Bad input is answered with a
//! JSON error and never reaches the ledger.
//! The OpenAPI document at `/v1/openapi.json` is built in [`openapi`]; a test keeps it in step
//! with the router.
//!
//! Who may read what: a request signed by a key (RFC 9421, [`auth`]) carries the caller's
//! identity; the read policy of `dpx_contracts::read` then decides every state read, list,
//! proof, block, transaction and event. Lists are filtered; a single object the caller may not
//! see is `403 forbidden` whether it exists or not.

mod aggregates;
pub mod auth;
mod catalogue;
mod deadline;
pub mod decisions;
mod error;
pub mod grants;
mod limit;
pub mod openapi;
mod openapi_auth;
pub mod server;
mod sse;
mod state;
mod subscriber;
mod txs;
mod validators;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;
use tower::ServiceBuilder;
use tracing::info;

use crate::node::Shared;
pub use error::{ApiError, ApiQuery, ApiResult};

/// An event cursor `H.N` as the integer pair (H, N) (`Last-Event-ID`; exposed for the fuzz
/// target of the signed-request headers).
pub fn parse_event_cursor(s: &str) -> Option<(u64, u64)> {
    subscriber::parse_cursor(s)
}

type AppState = Arc<Shared>;

/// Every route: (method, path). The OpenAPI test checks the document lists exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/txs"),
    ("post", "/v1/txs/batch"),
    ("get", "/v1/txs/{hash}"),
    ("get", "/v1/txs/{hash}/proof"),
    ("get", "/v1/blocks/latest"),
    ("get", "/v1/blocks/{height}"),
    ("get", "/v1/status"),
    ("get", "/v1/state/{kind}"),
    ("get", "/v1/state/{kind}/{id}"),
    ("get", "/v1/events"),
    ("get", "/v1/evidence"),
    ("get", "/v1/catalogue"),
    ("get", "/v1/decisions"),
    ("get", "/v1/aggregates"),
    ("get", "/v1/grants/{id}/history"),
    ("get", "/v1/validators"),
    ("get", "/v1/validators/pending"),
    ("get", "/v1/openapi.json"),
    ("get", "/health"),
    ("get", "/metrics"),
];

/// The router, without the network listener (tests drive it directly).
pub fn router(shared: AppState) -> Router {
    let rpc = &shared.config.rpc;
    let limiter = Arc::new(limit::IpLimiter::new(rpc.per_ip_requests_per_s, rpc.per_ip_burst));
    let deadlines = deadline::Deadlines {
        request: Duration::from_millis(rpc.request_timeout_ms.max(1)),
        commit_wait_max: Duration::from_millis(rpc.commit_wait_max_ms),
        max_body_bytes: rpc.max_body_bytes,
    };
    let hub = Arc::new(sse::EventsHub::new(rpc, shared.metrics.clone()));
    let auth = Arc::new(auth::Auth {
        chain_id: shared.chain_id.clone(),
        max_skew_s: rpc.auth_max_skew_secs,
        max_body_bytes: rpc.max_body_bytes,
        body_timeout: Duration::from_millis(rpc.request_timeout_ms.max(1)),
        replay: auth::ReplayCache::new(rpc.auth_replay_cache_max, rpc.auth_replay_per_key_max),
        replay_unknown: auth::ReplayCache::new(
            rpc.auth_replay_unknown_max,
            rpc.auth_replay_per_key_max,
        ),
        viewer_of: auth::ViewerOf::latest(shared.store.clone()),
        metrics: shared.metrics.clone(),
    });
    let api = Router::new()
        .route("/v1/txs", post(txs::submit))
        .route("/v1/txs/batch", post(txs::submit_batch))
        .route("/v1/txs/{hash}", get(txs::status))
        .route("/v1/txs/{hash}/proof", get(txs::proof))
        .route("/v1/blocks/latest", get(latest_block))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/status", get(status))
        .route("/v1/state/{kind}", get(state::list))
        .route("/v1/state/{kind}/{id}", get(state::one))
        .route("/v1/evidence", get(evidence))
        .route("/v1/catalogue", get(catalogue::search))
        .route("/v1/decisions", get(decisions::list))
        .route("/v1/aggregates", get(aggregates::get))
        .route("/v1/grants/{id}/history", get(grants::get))
        .route("/v1/validators", get(validators::set))
        .route("/v1/validators/pending", get(validators::pending))
        .route("/v1/openapi.json", get(openapi_doc))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        // The console's HTML pages (not API routes: not in ROUTES or the OpenAPI document),
        // under the same limits.
        .merge(crate::console::router(Arc::new(crate::console::Console::new(&shared.chain_id))))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|e: tower::BoxError| async move {
                    ApiError::unavailable(format!("server busy: {e}"))
                }))
                .load_shed()
                .concurrency_limit(rpc.max_concurrent_requests)
                .layer(axum::middleware::from_fn_with_state(deadlines, deadline::deadline)),
        );
    // Event streams are long-lived: outside the request deadline, capped by subscriber count.
    let events = Router::new().route("/v1/events", get(sse::events)).layer(axum::Extension(hub));
    api.merge(events)
        // Inside the per-IP limit: a flood of bad signatures is rate limited like any other.
        .layer(axum::middleware::from_fn_with_state(auth, auth::authenticate))
        .layer(axum::middleware::from_fn_with_state(limiter, limit::per_ip))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), count_requests))
        .layer(DefaultBodyLimit::max(rpc.max_body_bytes))
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::method_not_allowed)
        .with_state(shared)
}

async fn count_requests(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    s.metrics.rpc_requests.inc();
    let resp = next.run(req).await;
    if resp.status().is_client_error() || resp.status().is_server_error() {
        s.metrics.rpc_errors.inc();
    }
    resp
}

/// Bind and serve until `shutdown` flips. Returns the server task.
pub async fn serve(
    shared: AppState,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let addr: SocketAddr = shared.config.rpc.listen.parse().context("rpc.listen")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding RPC on {addr}"))?;
    info!(%addr, "RPC listening");
    let limits = server::ConnLimits::from_config(&shared.config.rpc);
    let metrics = shared.metrics.clone();
    let app = router(shared);
    Ok(tokio::spawn(server::serve_on(listener, app, limits, metrics, shutdown)))
}

async fn health(State(s): State<AppState>) -> Response {
    let st = s.status.read().clone();
    let age_ms = crate::driver::now_ms().saturating_sub(st.tip_time_ms);
    let body = json!({ "status": "ok", "height": st.height, "last_block_age_ms": age_ms });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    s.metrics.observe_store(&s.store);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}

async fn openapi_doc() -> axum::Json<Value> {
    axum::Json(openapi::document())
}

async fn status(State(s): State<AppState>) -> axum::Json<Value> {
    let st = s.status.read().clone();
    axum::Json(json!({
        "chain_id": s.chain_id,
        "version": env!("CARGO_PKG_VERSION"),
        "moniker": s.config.node.moniker,
        "node_key": s.node_key,
        // Configured to validate and in the set of the next height: signing now.
        "validator": s.validator
            && st.signing_key.is_some_and(|me| st.validators.iter().any(|(k, _)| *k == me)),
        // The validator key it signs with (differs from node_key during a key rotation).
        "signing_key": st.signing_key,
        "height": st.height,
        "latest_block_id": st.tip_id,
        "latest_block_time_ms": st.tip_time_ms,
        "round": st.round,
        "mempool_txs": st.mempool_txs,
        "peers": s.metrics.peers.get(),
        "validators": st.validators.iter()
            .map(|(k, p)| json!({"key": k, "power": p})).collect::<Vec<_>>(),
    }))
}

async fn evidence(State(s): State<AppState>) -> axum::Json<Value> {
    let ev: Vec<String> = s.evidence().iter().map(hex::encode).collect();
    axum::Json(json!({ "evidence": ev }))
}

/// A block as `reader` may see it: the header and certificate always; each transaction's
/// bytes and decoded form only for its parties (signer, keys it names, parties to the objects
/// it names and to its receipt's events) and supervisors. Others get the hash alone, with
/// `"hidden": true`, so the shape (and the transaction count) stays the same for everyone.
fn block_json(s: &Shared, height: u64, reader: &auth::Reader) -> ApiResult<Value> {
    let store = &s.store;
    let block = store
        .block(height)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no block at height {height}")))?;
    let cert = store.certificate(height).map_err(|e| ApiError::internal(e.to_string()))?;
    let receipts = if reader.sees_all() {
        Vec::new()
    } else {
        store.receipts(height).map_err(|e| ApiError::internal(e.to_string()))?
    };
    let st = dpx_app::LatestState::new(store);
    let mut txs = Vec::with_capacity(block.txs.len());
    for (i, t) in block.txs.iter().enumerate() {
        let hash = dpx_crypto::Hash::digest(t);
        let visible = reader.sees_all()
            || reader.may(&crate::events::tx_access(&st, t, receipts.get(i).map(Vec::as_slice)));
        txs.push(if visible {
            json!({
                "hash": hash,
                "bytes": hex::encode(t),
                // A consensus-only chain's payloads are opaque: nothing to decode.
                "tx": if s.checker.is_opaque() { Value::Null } else { dpx_app::views::tx_json(t) },
            })
        } else {
            json!({ "hash": hash, "hidden": true })
        });
    }
    auth::read_ok(&st)?;
    Ok(json!({
        "height": height,
        "id": block.id(),
        "header": block.header,
        "txs": txs,
        "certificate": cert.map(hex::encode),
    }))
}

async fn block(
    State(s): State<AppState>,
    caller: auth::Caller,
    Path(height): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let height: u64 = height.parse().map_err(|_| {
        ApiError::bad_request("bad_height", "height must be a non-negative integer")
    })?;
    let reader = auth::Reader::of(s.checker.is_opaque(), caller);
    Ok(axum::Json(block_json(&s, height, &reader)?))
}

async fn latest_block(
    State(s): State<AppState>,
    caller: auth::Caller,
) -> ApiResult<axum::Json<Value>> {
    let tip = s.store.tip_height();
    let reader = auth::Reader::of(s.checker.is_opaque(), caller);
    Ok(axum::Json(block_json(&s, tip, &reader)?))
}
