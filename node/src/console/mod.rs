//! The supervision console: HTML pages served by the node at `/console` for regulators,
//! auditors and agencies (issue 17, first slice).
//!
//! - Server-rendered with maud, charts as SVG made here ([`svg`]), style and a small script
//!   inline ([`page`]): nothing is fetched from anywhere else, there is no build step, and the
//!   pages work offline. The script follows the node's public event stream (`/v1/events`,
//!   block events) and, when a block commits, fetches the page again and swaps its `#live`
//!   part, so the page updates without a reload.
//! - **Who sees what** is the RPC's read policy, unchanged: each page turns the visitor into a
//!   [`Reader`] (anonymous, or the signed-in key's `Viewer` resolved under the latest state at
//!   every request) and shows a record only if `Reader::may(read::state_access(..))` says so.
//!   Counts are over what the viewer may read, and say so.
//! - **Sign-in** ([`login`]): `dpx console login --key FILE --rpc URL` prints a one-time URL
//!   carrying a login token signed by the key; `GET /console/login?token=` checks it and sets
//!   an `HttpOnly; SameSite=Strict` session cookie; `POST /console/logout` ends the session.
//! - **Bounded work per request**: the chain statistics cover the last
//!   [`chain::WINDOW_BLOCKS`] blocks and are kept between requests ([`chain::ChainWindow`]);
//!   market, grant, participant and product pages scan at most [`SCAN_MAX`] records of each
//!   kind and say "showing N of M" (or "of the first M scanned" when more exist). Nothing scans
//!   the whole chain. What is not yet incremental is listed in ARCHITECTURE.md.

mod chain;
mod decisions;
mod grants;
pub mod login;
mod market;
mod page;
mod proofs;
mod svg;
mod trends;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dpx_contracts::State as _;
use dpx_contracts::read::{self, Viewer};
use dpx_crypto::PublicKey;
use dpx_ledger::Store;
use maud::{Markup, html};
use serde::Deserialize;

use crate::node::Shared;
use dpx_app::LatestState;

use crate::rpc::auth::{Caller, Reader, read_ok};

/// Records of one kind a page reads at most per request.
pub const SCAN_MAX: usize = 1000;
/// Rows a list shows at most.
pub const LIST_MAX: usize = 50;
/// The session cookie's name.
pub const COOKIE: &str = "dpx_console";

/// The console of one node: sign-in state and the chain window.
#[derive(Debug)]
pub struct Console {
    pub sign_in: login::SignIn,
    window: parking_lot::Mutex<chain::ChainWindow>,
}

impl Console {
    pub fn new(chain_id: &str) -> Self {
        Self { sign_in: login::SignIn::new(chain_id), window: parking_lot::Mutex::default() }
    }
}

pub(crate) type AppState = Arc<Shared>;

/// The console's routes, to merge into the RPC router (they share its limits).
pub fn router(console: Arc<Console>) -> Router<AppState> {
    Router::new()
        .route("/console", get(chain_page))
        .route("/console/market", get(market_page))
        .route("/console/grants", get(grants_page))
        .route("/console/grants/{id}", get(grant_page))
        .route("/console/decisions", get(decisions_page))
        .route("/console/proofs/genesis", get(proofs::genesis))
        .route("/console/proofs/tx/{hash}", get(proofs::tx))
        .route("/console/participants/{key}", get(participant_page))
        .route("/console/products/{id}", get(product_page))
        .route("/console/login", get(login_page))
        .route("/console/logout", post(logout))
        .layer(axum::Extension(console))
}

/// Who is looking: the session's key (if any) and what it may read.
#[derive(Debug, Clone)]
pub struct Who {
    pub key: Option<PublicKey>,
    pub reader: Reader,
    /// The participant's name, for the header.
    name: Option<String>,
}

impl Who {
    pub fn anonymous() -> Self {
        Self { key: None, reader: Reader::new(Viewer::Anonymous), name: None }
    }

    /// "name (supervisor)", "a data subject", or a short key.
    pub fn label(&self) -> String {
        let base = self
            .name
            .clone()
            .unwrap_or_else(|| self.key.as_ref().map_or_else(String::new, page::short_key));
        match &self.reader.viewer {
            Viewer::Participant { supervisor: true, .. } => format!("{base} (supervisor)"),
            Viewer::Participant { active: false, .. } => {
                format!("{base} (barred: reads as the public)")
            }
            Viewer::Subject(_) => format!("{base} (data subject)"),
            Viewer::Anonymous => format!("{base} (no standing now: reads as the public)"),
            Viewer::Participant { .. } => base,
        }
    }

    /// May this visitor see the record stored at `key`?
    pub fn may(&self, st: &LatestState<'_>, key: &[u8], value: &[u8]) -> bool {
        self.reader.may(&read::state_access(st, key, value))
    }
}

fn session_id(headers: &HeaderMap) -> Option<login::SessionId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find_map(|v| hex::decode(v).ok().and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()))
}

fn now_s() -> u64 {
    crate::driver::now_ms() / 1000
}

/// The visitor behind a request's session cookie, resolved under the latest state.
pub(crate) fn who(s: &Shared, console: &Console, headers: &HeaderMap) -> anyhow::Result<Who> {
    let Some(key) = session_id(headers).and_then(|id| console.sign_in.session_key(&id, now_s()))
    else {
        return Ok(Who::anonymous());
    };
    let st = LatestState::new(&s.store);
    let viewer = read::viewer(&st, &key);
    read_ok(&st).map_err(|e| anyhow::anyhow!("resolving the viewer: {}", e.message))?;
    let reader = Reader::of(s.checker.is_opaque(), Caller { key: Some(key), viewer });
    let name = match &reader.viewer {
        Viewer::Participant { account, .. } => Names::default().name(&s.store, account),
        _ => None,
    };
    Ok(Who { key: Some(key), reader, name })
}

/// At most [`SCAN_MAX`] records under `prefix`, and whether that was all of them.
pub(crate) struct Scanned {
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
    pub complete: bool,
}

pub(crate) fn scan(store: &Store, prefix: &[u8]) -> anyhow::Result<Scanned> {
    let mut entries = store.scan_prefix(prefix, None, SCAN_MAX + 1)?;
    let complete = entries.len() <= SCAN_MAX;
    entries.truncate(SCAN_MAX);
    Ok(Scanned { entries, complete })
}

/// A stored record as its contracts type (through its JSON view, the RPC's form).
pub(crate) use dpx_app::views::decode_view as decode;

/// Participants' names, looked up once per request.
#[derive(Debug, Default)]
pub(crate) struct Names(std::collections::HashMap<PublicKey, Option<String>>);

impl Names {
    pub fn name(&mut self, store: &Store, account: &PublicKey) -> Option<String> {
        self.0
            .entry(*account)
            .or_insert_with(|| {
                let key = dpx_contracts::keys::participant(account);
                let v = LatestState::new(store).get(&key)?;
                decode::<dpx_contracts::Participant>(&key, &v).map(|p| p.name)
            })
            .clone()
    }

    pub fn link(&mut self, store: &Store, account: &PublicKey) -> Markup {
        let name = self.name(store, account);
        page::participant_link(account, name.as_deref())
    }
}

/// A page's outcome: its body, or a status with a message.
pub(crate) enum Body {
    Ok(Markup),
    Status(StatusCode, Markup),
}

/// Render a page off the async threads (the store is read synchronously).
async fn render(
    s: AppState,
    console: Arc<Console>,
    headers: HeaderMap,
    title: String,
    active: &'static str,
    f: impl FnOnce(&Shared, &Console, &Who) -> anyhow::Result<Body> + Send + 'static,
) -> Response {
    let out = tokio::task::spawn_blocking(move || {
        let who = who(&s, &console, &headers)?;
        let body = f(&s, &console, &who)?;
        anyhow::Ok((who, body))
    })
    .await;
    let (status, who, body) = match out {
        Ok(Ok((who, Body::Ok(b)))) => (StatusCode::OK, who, b),
        Ok(Ok((who, Body::Status(st, b)))) => (st, who, b),
        Ok(Err(e)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Who::anonymous(), error_box(&format!("{e:#}")))
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Who::anonymous(), error_box(&e.to_string())),
    };
    page::respond(status, page::page(&title, active, &who, &body))
}

fn error_box(msg: &str) -> Markup {
    html! { div class="hidden-box" id="error" { (msg) } }
}

pub(crate) type Ext = axum::Extension<Arc<Console>>;

async fn chain_page(State(s): State<AppState>, axum::Extension(c): Ext, h: HeaderMap) -> Response {
    render(s, c, h, "Chain".into(), "/console", |s, c, _| chain::body(s, &c.window).map(Body::Ok))
        .await
}

async fn market_page(State(s): State<AppState>, axum::Extension(c): Ext, h: HeaderMap) -> Response {
    render(s, c, h, "Market".into(), "/console/market", |s, _, who| {
        let trend = trends::section(
            s,
            who,
            "market-trend",
            "Trades and money",
            &[
                ("order.placed", "orders placed"),
                ("order.settled", "settled"),
                ("order.cancelled", "cancelled"),
                ("order.disputed", "disputed"),
                ("amount.paid_to_providers", "paid to providers"),
                ("amount.fees", "fees"),
                ("amount.deposited", "deposited"),
                ("amount.withdrawn", "withdrawn"),
            ],
            ("amount.paid_to_providers", "minor units paid to providers at settlement", "paid"),
        );
        market::market(&s.store, who, &trend).map(Body::Ok)
    })
    .await
}

async fn grants_page(State(s): State<AppState>, axum::Extension(c): Ext, h: HeaderMap) -> Response {
    render(s, c, h, "Grants".into(), "/console/grants", |s, _, who| {
        let trend = trends::section(
            s,
            who,
            "grant-trend",
            "Grants",
            &[
                ("grant.issued", "issued"),
                ("grant.consumed", "consumed"),
                ("grant.refused", "refused uses"),
                ("grant.revoked", "revoked"),
                ("grant.expired", "expired"),
                ("decisions_denied", "policy denials (all actions)"),
            ],
            ("grant.consumed", "grants consumed (one use each)", "used"),
        );
        grants::summary(&s.store, who, &trend).map(Body::Ok)
    })
    .await
}

async fn decisions_page(
    State(shared): State<AppState>,
    axum::Extension(console): Ext,
    headers: HeaderMap,
    query: Result<
        Query<crate::rpc::decisions::DecisionQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let title = "Decisions".to_owned();
    render(shared, console, headers, title, "/console/decisions", move |s, _, who| match query {
        Ok(Query(q)) => decisions::page(&s.store, who, q),
        Err(e) => Ok(Body::Status(
            StatusCode::BAD_REQUEST,
            html! { div class="hidden-box" id="bad-search" { (e.body_text()) } },
        )),
    })
    .await
}

async fn grant_page(
    State(s): State<AppState>,
    axum::Extension(c): Ext,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    render(s, c, h, "Grant".into(), "/console/grants", move |s, _, who| {
        grants::one(&s.store, who, &id)
    })
    .await
}

async fn participant_page(
    State(s): State<AppState>,
    axum::Extension(c): Ext,
    h: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    render(s, c, h, "Participant".into(), "/console/market", move |s, _, who| {
        market::participant(&s.store, who, &key)
    })
    .await
}

async fn product_page(
    State(s): State<AppState>,
    axum::Extension(c): Ext,
    h: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    render(s, c, h, "Product".into(), "/console/market", move |s, _, who| {
        market::product(&s.store, who, &id)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    token: Option<String>,
}

/// `GET /console/login?token=…`: check the token, open a session, set its cookie and go to
/// the console. A refused token gets a page saying why.
async fn login_page(
    State(s): State<AppState>,
    axum::Extension(c): axum::Extension<Arc<Console>>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let Some(token) = q.token else {
        let body =
            error_box("sign in with the URL `dpx console login --key FILE --rpc URL` prints");
        return page::respond(
            StatusCode::BAD_REQUEST,
            page::page("Sign in", "", &Who::anonymous(), &body),
        );
    };
    let store = s.store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let id = login::fresh_session_id();
        let standing =
            |k: &PublicKey| read::viewer(&LatestState::new(&store), k) != Viewer::Anonymous;
        c.sign_in.login(&token, now_s(), standing, id).map(|_| id)
    })
    .await;
    match outcome {
        Ok(Ok(id)) => {
            let cookie = format!(
                "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
                hex::encode(id),
                login::SESSION_LIFETIME_S
            );
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/console")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r.headers_mut()
                .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            r
        }
        Ok(Err(e)) => {
            let status = match e {
                login::LoginError::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            let body = error_box(&format!("sign-in refused: {e}"));
            page::respond(status, page::page("Sign in", "", &Who::anonymous(), &body))
        }
        Err(e) => page::respond(StatusCode::INTERNAL_SERVER_ERROR, error_box(&e.to_string())),
    }
}

/// `POST /console/logout`: end the session and clear the cookie.
async fn logout(axum::Extension(c): axum::Extension<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_id(&headers) {
        c.sign_in.logout(&id);
    }
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/console")]).into_response();
    let clear = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        let id = [7u8; 32];
        h.append(
            header::COOKIE,
            format!("a=b; {COOKIE}={}; c=d", hex::encode(id)).parse().unwrap(),
        );
        assert_eq!(session_id(&h), Some(id));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, format!("{COOKIE}=zz; x{COOKIE}=00").parse().unwrap());
        assert_eq!(session_id(&h), None);
    }
}
