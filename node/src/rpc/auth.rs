//! Who is calling: signed RPC requests (a profile of HTTP Message Signatures, RFC 9421; the
//! exact rules are in SPEC.md, "Signed RPC requests").
//!
//! A request without `Signature-Input` / `Signature` headers is anonymous. A request with them
//! must pass every check, or it is refused with 401 `unauthenticated`, a message naming the
//! check, and `WWW-Authenticate: Signature realm="dpx"`:
//! the headers parse (one of each, at most [`HEADER_BYTES_MAX`]); the label is `dpx`; the
//! covered components are exactly `"@method" "@path" "@query"` (plus `"content-digest"`,
//! required when the request has a body); `created`, `nonce`, `keyid` and `alg` are present
//! once each and nothing else but `expires`; `alg` is `dpx-ed25519-blake3`; the key parses;
//! `created` is within `rpc.auth_max_skew_secs` of the node's clock and `expires` has not
//! passed; the `Content-Digest` (sha-256, RFC 9530) matches the body; the ed25519 signature
//! over `blake3(dpx/rpc-request/v1, chain id, signature base)` verifies; and the (key, nonce)
//! pair was not seen before. The last check uses bounded [`ReplayCache`]s, and no nonce is
//! forgotten early. **One key cannot lock others out:** each key holds at most
//! `rpc.auth_replay_per_key_max` nonces (beyond: 429 `key_rate_limited` with `Retry-After`,
//! for that key alone), and keys the ledger gives no standing (neither a participant's nor a
//! subject's current key: free to make, and they read no more than an unsigned request) share a
//! separate, smaller cache, so a flood of throwaway keys never reaches the cache the
//! participants' and subjects' requests use. When a cache is full in total, the requests that
//! would go into it get 503 with `Retry-After`.
//!
//! The middleware ([`authenticate`]) resolves a verified key to the read policy's [`Viewer`]
//! under the latest state once (that one lookup also picks the replay cache) and leaves both in
//! a [`Caller`] in the request's extensions; the handlers turn it into a [`Reader`] when they
//! need to decide what the caller may see.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dpx_app::LatestState;
use dpx_contracts::read::{Access, Viewer};
use dpx_crypto::{Domain, PublicKey, Signature};
use dpx_ledger::Store;
use parking_lot::Mutex;
use sha2::Digest as _;

use super::ApiError;

/// The signature label of the dpx profile.
pub const LABEL: &str = "dpx";
/// The one algorithm name.
pub const ALG: &str = "dpx-ed25519-blake3";
/// Longest `Signature-Input`, `Signature` or `Content-Digest` header accepted.
pub const HEADER_BYTES_MAX: usize = 1024;
/// Nonce length bounds (characters of `[A-Za-z0-9_-]`).
pub const NONCE_CHARS_MIN: usize = 16;
pub const NONCE_CHARS_MAX: usize = 64;
/// The covered components, in order; `content-digest` follows when there is a body.
pub const COMPONENTS: [&str; 3] = ["@method", "@path", "@query"];
pub const CONTENT_DIGEST: &str = "content-digest";

const SIGNATURE_INPUT: &str = "signature-input";
const SIGNATURE: &str = "signature";

// ----- parsing --------------------------------------------------------------------------------

/// The parameters of a `dpx` signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    pub components: Vec<String>,
    pub created: u64,
    pub expires: Option<u64>,
    pub nonce: String,
    pub keyid: PublicKey,
}

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401: the named check failed.
    #[error("{0}")]
    Unauthenticated(String),
    /// 503: the replay cache is full; retry after this many seconds.
    #[error("too many signed requests in the last window; retry in {retry_after_s} s")]
    ReplayCacheFull { retry_after_s: u64 },
    /// 429: this key holds as many nonces as one key may; retry after this many seconds.
    #[error(
        "this key made {max} signed requests within the signature window, the most one key \
         may; retry in {retry_after_s} s"
    )]
    KeyQuotaFull { max: usize, retry_after_s: u64 },
    /// 413 / 408 while reading a signed request's body.
    #[error("{1}")]
    Body(StatusCode, String),
}

fn bad(msg: impl Into<String>) -> AuthError {
    AuthError::Unauthenticated(msg.into())
}

/// A small cursor over a header value (ASCII; anything else is refused before parsing).
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn spaces(&mut self) {
        while self.eat(b' ') {}
    }
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        // Only ASCII gets here (checked by the caller), so any slice is UTF-8.
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }
    /// An sf-string `"..."` without escapes (no value of the profile needs one).
    fn string(&mut self, what: &str) -> Result<&'a str, AuthError> {
        if !self.eat(b'"') {
            return Err(bad(format!("{what} must be a quoted string")));
        }
        let v = self.take_while(|b| b != b'"' && b != b'\\' && (0x20..0x7f).contains(&b));
        if !self.eat(b'"') {
            return Err(bad(format!("{what}: unterminated string or a character not allowed")));
        }
        Ok(v)
    }
    /// An sf-integer that is a non-negative number of seconds.
    fn seconds(&mut self, what: &str) -> Result<u64, AuthError> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() || digits.len() > 15 {
            return Err(bad(format!("{what} must be an integer of 1 to 15 digits")));
        }
        digits.parse().map_err(|_| bad(format!("{what} is not an integer")))
    }
}

fn check_ascii(value: &str, name: &str) -> Result<(), AuthError> {
    if value.len() > HEADER_BYTES_MAX {
        return Err(bad(format!("{name} is longer than {HEADER_BYTES_MAX} bytes")));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(bad(format!("{name} holds characters outside printable ASCII")));
    }
    Ok(())
}

/// `<label>=` at the start of a dictionary member: the label must be `dpx`.
fn strip_label<'a>(value: &'a str, name: &str) -> Result<&'a str, AuthError> {
    let Some((label, rest)) = value.split_once('=') else {
        return Err(bad(format!("{name} must be a dictionary member {LABEL}=...")));
    };
    if label.trim() != LABEL {
        return Err(bad(format!("{name}: the signature label must be {LABEL:?}, not {label:?}")));
    }
    if label != LABEL {
        return Err(bad(format!("{name}: no space is allowed around the label")));
    }
    Ok(rest)
}

/// Parse a `Signature-Input` value. Returns the parameters and the text after `dpx=` (the
/// `@signature-params` line of the signature base).
pub fn parse_signature_input(value: &str) -> Result<(SignatureParams, &str), AuthError> {
    const NAME: &str = "Signature-Input";
    check_ascii(value, NAME)?;
    let inner = strip_label(value, NAME)?;
    let mut c = Cursor { s: inner.as_bytes(), i: 0 };
    if !c.eat(b'(') {
        return Err(bad(format!("{NAME}: the covered components must be an inner list (...)")));
    }
    let mut components = Vec::new();
    loop {
        let spaced = c.peek() == Some(b' ');
        c.spaces();
        if c.eat(b')') {
            break;
        }
        if c.peek() != Some(b'"') {
            return Err(bad(format!(
                "{NAME}: unterminated component list, or a component that is not a quoted string"
            )));
        }
        if !components.is_empty() && !spaced {
            return Err(bad(format!("{NAME}: components must be separated by spaces")));
        }
        if components.len() == COMPONENTS.len() + 1 {
            return Err(bad(format!("{NAME}: too many covered components")));
        }
        components.push(c.string("a covered component")?.to_owned());
    }
    let (mut created, mut expires, mut nonce, mut keyid, mut alg) = (None, None, None, None, None);
    while c.eat(b';') {
        c.spaces();
        let name = c.take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !c.eat(b'=') {
            return Err(bad(format!("{NAME}: parameter {name:?} has no value")));
        }
        let dup = || bad(format!("{NAME}: parameter {name} appears twice"));
        match name {
            "created" => {
                let v = c.seconds("created")?;
                if created.replace(v).is_some() {
                    return Err(dup());
                }
            }
            "expires" => {
                let v = c.seconds("expires")?;
                if expires.replace(v).is_some() {
                    return Err(dup());
                }
            }
            "nonce" => {
                let v = c.string("nonce")?;
                if nonce.replace(v).is_some() {
                    return Err(dup());
                }
            }
            "keyid" => {
                let v = c.string("keyid")?;
                if keyid.replace(v).is_some() {
                    return Err(dup());
                }
            }
            "alg" => {
                let v = c.string("alg")?;
                if alg.replace(v).is_some() {
                    return Err(dup());
                }
            }
            other => return Err(bad(format!("{NAME}: unknown parameter {other:?}"))),
        }
    }
    if c.peek() == Some(b',') {
        return Err(bad(format!("{NAME}: only one signature, labelled {LABEL}, is accepted")));
    }
    if c.peek().is_some() {
        return Err(bad(format!("{NAME}: unexpected text at byte {}", c.i + LABEL.len() + 1)));
    }
    let base: Vec<&str> = COMPONENTS.to_vec();
    let with_digest: Vec<&str> = COMPONENTS.iter().copied().chain([CONTENT_DIGEST]).collect();
    if components != base && components != with_digest {
        return Err(bad(format!(
            "{NAME}: the covered components must be exactly (\"@method\" \"@path\" \"@query\"), \
             followed by \"content-digest\" when there is a body; got {components:?}"
        )));
    }
    let created = created.ok_or_else(|| bad(format!("{NAME}: created is missing")))?;
    let nonce = nonce.ok_or_else(|| bad(format!("{NAME}: nonce is missing")))?;
    let keyid = keyid.ok_or_else(|| bad(format!("{NAME}: keyid is missing")))?;
    let alg = alg.ok_or_else(|| bad(format!("{NAME}: alg is missing")))?;
    if alg != ALG {
        return Err(bad(format!("{NAME}: alg must be {ALG:?}, not {alg:?}")));
    }
    let nonce_ok = (NONCE_CHARS_MIN..=NONCE_CHARS_MAX).contains(&nonce.len())
        && nonce.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !nonce_ok {
        return Err(bad(format!(
            "{NAME}: nonce must be {NONCE_CHARS_MIN} to {NONCE_CHARS_MAX} characters of [A-Za-z0-9_-]"
        )));
    }
    let key_ok = keyid.len() == 64 && keyid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !key_ok {
        return Err(bad(format!("{NAME}: keyid must be 64 lowercase hex characters")));
    }
    let keyid: PublicKey =
        keyid.parse().map_err(|e| bad(format!("{NAME}: keyid is not a valid key: {e}")))?;
    let params = SignatureParams { components, created, expires, nonce: nonce.to_owned(), keyid };
    Ok((params, inner))
}

/// Parse a `Signature` value: `dpx=:<base64 of 64 bytes>:`.
pub fn parse_signature(value: &str) -> Result<Signature, AuthError> {
    const NAME: &str = "Signature";
    check_ascii(value, NAME)?;
    let rest = strip_label(value, NAME)?;
    let b64 = rest
        .strip_prefix(':')
        .and_then(|r| r.strip_suffix(':'))
        .filter(|b| !b.contains(':'))
        .ok_or_else(|| bad(format!("{NAME} must be {LABEL}=:<base64>: (one signature only)")))?;
    let bytes = STANDARD.decode(b64).map_err(|_| bad(format!("{NAME} is not standard base64")))?;
    Signature::from_slice(&bytes).map_err(|_| bad(format!("{NAME} must be 64 bytes")))
}

/// The `Content-Digest` value of a body: `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(sha2::Sha256::digest(body)))
}

/// The RFC 9421 signature base of the dpx profile.
pub fn signature_base(
    method: &str,
    path: &str,
    query: Option<&str>,
    content_digest: Option<&str>,
    params: &str,
) -> String {
    let mut lines = vec![
        format!("\"@method\": {}", method.to_ascii_uppercase()),
        format!("\"@path\": {path}"),
        format!("\"@query\": ?{}", query.unwrap_or("")),
    ];
    if let Some(d) = content_digest {
        lines.push(format!("\"content-digest\": {d}"));
    }
    lines.push(format!("\"@signature-params\": {params}"));
    lines.join("\n")
}

/// One header's only value, as text; `None` when absent.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut all = headers.get_all(name).iter();
    let Some(v) = all.next() else { return Ok(None) };
    if all.next().is_some() {
        return Err(bad(format!("more than one {name} header")));
    }
    if v.len() > HEADER_BYTES_MAX {
        return Err(bad(format!("{name} is longer than {HEADER_BYTES_MAX} bytes")));
    }
    v.to_str().map(Some).map_err(|_| bad(format!("{name} is not printable ASCII")))
}

/// Whether the request carries a signature at all (either header).
pub fn is_signed(headers: &HeaderMap) -> bool {
    headers.contains_key(SIGNATURE_INPUT) || headers.contains_key(SIGNATURE)
}

/// Everything but the replay check: the request's signature is valid at `now_s` on
/// `chain_id`. Returns the parameters (the caller then records the nonce).
pub fn verify_request(
    method: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    chain_id: &str,
    now_s: u64,
    max_skew_s: u64,
) -> Result<SignatureParams, AuthError> {
    let input = single(headers, SIGNATURE_INPUT)?
        .ok_or_else(|| bad("Signature without Signature-Input"))?;
    let sig =
        single(headers, SIGNATURE)?.ok_or_else(|| bad("Signature-Input without Signature"))?;
    let (params, params_text) = parse_signature_input(input)?;
    let signature = parse_signature(sig)?;
    if params.created > now_s.saturating_add(max_skew_s) {
        return Err(bad(format!(
            "created {} is more than {max_skew_s} s ahead of the node's clock ({now_s})",
            params.created
        )));
    }
    if now_s > params.created.saturating_add(max_skew_s) {
        return Err(bad(format!(
            "created {} is more than {max_skew_s} s behind the node's clock ({now_s}): expired",
            params.created
        )));
    }
    if let Some(e) = params.expires
        && now_s > e
    {
        return Err(bad(format!("the signature expired at {e} (now {now_s})")));
    }
    let covers_digest = params.components.len() == COMPONENTS.len() + 1;
    let digest = single(headers, "content-digest")?;
    if !body.is_empty() && !covers_digest {
        return Err(bad("a request with a body must cover \"content-digest\""));
    }
    let digest = if covers_digest {
        let d = digest.ok_or_else(|| bad("content-digest is covered but the header is missing"))?;
        if d != content_digest(body) {
            return Err(bad("Content-Digest does not match the body (sha-256=:<base64>: only)"));
        }
        Some(d)
    } else {
        None
    };
    let base = signature_base(method, uri.path(), uri.query(), digest, params_text);
    params
        .keyid
        .verify(Domain::RPC_REQUEST, chain_id, base.as_bytes(), &signature)
        .map_err(|_| bad("the signature does not verify (wrong key, chain or signature base)"))?;
    Ok(params)
}

// ----- the replay cache ---------------------------------------------------------------------

/// (key, nonce) pairs seen within the skew window. Bounded in total and per key: when either
/// is reached, new pairs are refused (the caller answers 503 or 429) until old ones expire;
/// none is forgotten before it expires, or a captured request could be replayed.
#[derive(Debug)]
pub struct ReplayCache {
    inner: Mutex<ReplayInner>,
    capacity: usize,
    per_key_max: usize,
}

#[derive(Debug, Default)]
struct ReplayInner {
    seen: HashMap<(PublicKey, String), u64>,
    by_expiry: BTreeSet<(u64, PublicKey, String)>,
    /// Per key: how many of its nonces expire at each second (a key's count is their sum).
    per_key: HashMap<PublicKey, KeyNonces>,
}

#[derive(Debug, Default)]
struct KeyNonces {
    count: usize,
    by_expiry: BTreeMap<u64, usize>,
}

impl ReplayCache {
    /// At most `capacity` pairs, at most `per_key_max` of them (clamped to `1..=capacity`) for
    /// one key.
    pub fn new(capacity: usize, per_key_max: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Mutex::new(ReplayInner::default()),
            capacity,
            per_key_max: per_key_max.clamp(1, capacity),
        }
    }

    /// Record `(key, nonce)`, remembered until `expires_s`. `Err(Unauthenticated)` if already
    /// seen, `Err(KeyQuotaFull)` if the key has no room left, `Err(ReplayCacheFull)` if the
    /// cache has none.
    pub fn check_and_insert(
        &self,
        key: &PublicKey,
        nonce: &str,
        expires_s: u64,
        now_s: u64,
    ) -> Result<(), AuthError> {
        let mut g = self.inner.lock();
        while let Some(first) = g.by_expiry.first().cloned() {
            if first.0 >= now_s {
                break;
            }
            g.by_expiry.remove(&first);
            g.seen.remove(&(first.1, first.2));
            g.forget_one(&first.1, first.0);
        }
        let id = (*key, nonce.to_owned());
        if g.seen.contains_key(&id) {
            return Err(bad("this (keyid, nonce) was already used: a replayed request"));
        }
        let retry = |first: Option<u64>| first.unwrap_or(now_s).saturating_sub(now_s) + 1;
        if let Some(k) = g.per_key.get(key)
            && k.count >= self.per_key_max
        {
            let first = k.by_expiry.first_key_value().map(|(e, _)| *e);
            return Err(AuthError::KeyQuotaFull {
                max: self.per_key_max,
                retry_after_s: retry(first),
            });
        }
        if g.seen.len() >= self.capacity {
            let first = g.by_expiry.first().map(|f| f.0);
            return Err(AuthError::ReplayCacheFull { retry_after_s: retry(first) });
        }
        g.by_expiry.insert((expires_s, *key, nonce.to_owned()));
        g.seen.insert(id, expires_s);
        let k = g.per_key.entry(*key).or_default();
        k.count += 1;
        *k.by_expiry.entry(expires_s).or_default() += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.inner.lock().seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many nonces of `key` are remembered.
    pub fn len_of(&self, key: &PublicKey) -> usize {
        self.inner.lock().per_key.get(key).map_or(0, |k| k.count)
    }
}

impl ReplayInner {
    fn forget_one(&mut self, key: &PublicKey, expires_s: u64) {
        let Some(k) = self.per_key.get_mut(key) else { return };
        k.count = k.count.saturating_sub(1);
        if let Some(n) = k.by_expiry.get_mut(&expires_s) {
            *n -= 1;
            if *n == 0 {
                k.by_expiry.remove(&expires_s);
            }
        }
        if k.count == 0 {
            self.per_key.remove(key);
        }
    }
}

/// Who a key is on the ledger now ([`dpx_contracts::read::viewer`] under the latest state), or
/// the error of a failed state read. Computed once per signed request, after its signature
/// verified: it decides which replay cache the nonce goes to (a key with standing is any viewer
/// but [`Viewer::Anonymous`]) and travels with the request in its [`Caller`].
#[derive(Clone)]
pub struct ViewerOf(pub Arc<ResolveViewer>);

/// The function behind [`ViewerOf`]: a key to its viewer, or a state read's error.
pub type ResolveViewer = dyn Fn(&PublicKey) -> Result<Viewer, String> + Send + Sync;

impl ViewerOf {
    /// The viewer under the latest state of `store`.
    pub fn latest(store: Arc<Store>) -> Self {
        Self(Arc::new(move |key| {
            let st = LatestState::new(&store);
            let viewer = dpx_contracts::read::viewer(&st, key);
            st.into_error().map_or(Ok(viewer), Err)
        }))
    }
}

impl std::fmt::Debug for ViewerOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ViewerOf(..)")
    }
}

// ----- the middleware -----------------------------------------------------------------------

/// The authenticator of one node.
#[derive(Debug)]
pub struct Auth {
    pub chain_id: String,
    pub max_skew_s: u64,
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    /// Nonces of keys with standing on the ledger.
    pub replay: ReplayCache,
    /// Nonces of keys without (see the module documentation).
    pub replay_unknown: ReplayCache,
    pub viewer_of: ViewerOf,
    /// Counts what the middleware refused, by cause.
    pub metrics: crate::metrics::Metrics,
}

/// Who sent a request: the key that signed it (or nobody), and who that key was on the ledger
/// when the request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key: Option<PublicKey>,
    pub viewer: Viewer,
}

impl Default for Caller {
    fn default() -> Self {
        Self { key: None, viewer: Viewer::Anonymous }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    /// Anonymous unless the middleware authenticated the request (fails closed if the
    /// middleware is missing from a route).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned().unwrap_or_default())
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(m) => {
                let mut r =
                    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m).into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Signature realm=\"dpx\""),
                );
                r
            }
            Self::ReplayCacheFull { retry_after_s } => ApiError::unavailable(self.to_string())
                .with_retry_after(retry_after_s)
                .into_response(),
            Self::KeyQuotaFull { retry_after_s, .. } => {
                let m = self.to_string();
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "key_rate_limited", m)
                    .with_retry_after(retry_after_s)
                    .into_response()
            }
            // The same codes as an unsigned request's body limits (`rpc/deadline.rs`).
            Self::Body(status, m) => {
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "body_too_large"
                } else {
                    "timeout"
                };
                ApiError::new(status, code, m).into_response()
            }
        }
    }
}

fn now_s() -> u64 {
    crate::driver::now_ms() / 1000
}

/// Authenticate a signed request (anonymous ones pass untouched) and leave its [`Caller`].
pub async fn authenticate(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    if !is_signed(&parts.headers) {
        parts.extensions.insert(Caller::default());
        return next.run(Request::from_parts(parts, body)).await;
    }
    let read = axum::body::to_bytes(body, auth.max_body_bytes);
    let bytes: Bytes = match tokio::time::timeout(auth.body_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            let m = format!("the body is over {} bytes, or broken", auth.max_body_bytes);
            return AuthError::Body(StatusCode::PAYLOAD_TOO_LARGE, m).into_response();
        }
        Err(_) => {
            let m = "the body was not received in time".to_owned();
            return AuthError::Body(StatusCode::REQUEST_TIMEOUT, m).into_response();
        }
    };
    let now = now_s();
    let checked = verify_request(
        parts.method.as_str(),
        &parts.uri,
        &parts.headers,
        &bytes,
        &auth.chain_id,
        now,
        auth.max_skew_s,
    )
    .and_then(|p| {
        let viewer = match (auth.viewer_of.0)(&p.keyid) {
            Ok(v) => v,
            Err(e) => return Ok(Err(ApiError::internal(format!("reading the state: {e}")))),
        };
        let until = p.created.saturating_add(auth.max_skew_s);
        let cache = if viewer == Viewer::Anonymous { &auth.replay_unknown } else { &auth.replay };
        cache.check_and_insert(&p.keyid, &p.nonce, until, now)?;
        Ok(Ok(Caller { key: Some(p.keyid), viewer }))
    });
    match checked {
        Ok(Ok(caller)) => {
            auth.metrics.rpc_auth_signed.inc();
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => {
            let m = &auth.metrics;
            match &e {
                AuthError::Unauthenticated(_) => m.rpc_auth_refused.inc(),
                AuthError::KeyQuotaFull { .. } => m.rpc_auth_key_rate_limited.inc(),
                AuthError::ReplayCacheFull { .. } => m.rpc_auth_replay_cache_full.inc(),
                AuthError::Body(..) => 0,
            };
            e.into_response()
        }
    }
}

// ----- from caller to reader ----------------------------------------------------------------

/// `Err(500)` if a read of `st` failed: the caller must not decide on a partial view.
pub fn read_ok(st: &LatestState<'_>) -> Result<(), ApiError> {
    match st.error() {
        Some(e) => Err(ApiError::internal(format!("reading the state: {e}"))),
        None => Ok(()),
    }
}

/// What a caller may read.
#[derive(Debug, Clone)]
pub struct Reader {
    pub viewer: Viewer,
    /// A consensus-only chain (benchmarks): its payloads have no meaning, so no reader is
    /// restricted.
    everything: bool,
}

impl Reader {
    /// The reader behind `caller` (its viewer was resolved once, when the middleware
    /// authenticated the request); on a consensus-only chain (`opaque`) every reader sees
    /// everything.
    pub fn of(opaque: bool, caller: Caller) -> Self {
        Self { viewer: caller.viewer, everything: opaque }
    }

    /// A reader for tests and tools.
    pub fn new(viewer: Viewer) -> Self {
        Self { viewer, everything: false }
    }

    pub fn sees_all(&self) -> bool {
        self.everything || self.viewer.is_supervisor()
    }

    pub fn may(&self, access: &Access) -> bool {
        self.everything || self.viewer.may(access)
    }
}

/// The answer to a single object the caller may not see, whether or not it exists.
pub fn forbidden(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{what}: the read policy does not let this caller see it (sign the request with the \
             key of a party to it, or of a supervisor); whether it exists is not disclosed"
        ),
    )
}

/// May `caller` see the contents and receipt of transaction `hash`? Its parties and the
/// supervisors may; a hash that is not committed is for supervisors only (so nobody else
/// learns from the answer whether it exists).
pub fn tx_visible(
    store: &Store,
    opaque: bool,
    caller: Caller,
    hash: &dpx_crypto::Hash,
) -> Result<bool, ApiError> {
    tx_visible_to(store, &Reader::of(opaque, caller), hash)
}

/// [`tx_visible`] for a reader already resolved (the console's session).
pub fn tx_visible_to(
    store: &Store,
    reader: &Reader,
    hash: &dpx_crypto::Hash,
) -> Result<bool, ApiError> {
    if reader.sees_all() {
        return Ok(true);
    }
    let tx = store.tx(hash).map_err(|e| ApiError::internal(e.to_string()))?;
    let receipt = store.receipt(hash).map_err(|e| ApiError::internal(e.to_string()))?;
    let st = LatestState::new(store);
    let access = match &tx {
        Some((_, _, bytes)) => {
            crate::events::tx_access(&st, bytes, receipt.as_ref().map(|r| r.2.as_slice()))
        }
        None => Access::Supervisors,
    };
    read_ok(&st)?;
    Ok(reader.may(&access))
}

/// `GET /v1/txs/{hash}` under the read policy. A committed transaction's hash and position
/// are public (every block lists its transactions' hashes), its bytes, decoded form and
/// receipt are for its parties and supervisors: anyone else gets `status`, `height` and
/// `index` with `"hidden": true`.
pub fn tx_read(
    store: &Store,
    opaque: bool,
    caller: Caller,
    hash: &dpx_crypto::Hash,
    mut answer: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    if !tx_visible(store, opaque, caller, hash)?
        && let Some(m) = answer.as_object_mut()
    {
        m.remove("tx");
        m.remove("receipt");
        m.insert("hidden".into(), serde_json::Value::Bool(true));
    }
    Ok(answer)
}

// ----- signing (clients) --------------------------------------------------------------------

/// A fresh nonce: 22 characters of base64url over 16 random bytes.
pub fn fresh_nonce() -> String {
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The headers that sign a request: `(name, value)` pairs to add (`Signature-Input`,
/// `Signature`, and `Content-Digest` when `body` is not empty). `path_and_query` is exactly
/// what goes on the request line.
pub fn sign_request(
    key: &dpx_crypto::Keypair,
    chain_id: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    created_s: u64,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let digest = (!body.is_empty()).then(|| content_digest(body));
    let components = if digest.is_some() {
        "(\"@method\" \"@path\" \"@query\" \"content-digest\")"
    } else {
        "(\"@method\" \"@path\" \"@query\")"
    };
    let params = format!(
        "{components};created={created_s};nonce=\"{nonce}\";keyid=\"{}\";alg=\"{ALG}\"",
        key.public().to_hex()
    );
    let base = signature_base(method, path, query, digest.as_deref(), &params);
    let sig = key.sign(Domain::RPC_REQUEST, chain_id, base.as_bytes());
    let mut out = vec![
        ("signature-input", format!("{LABEL}={params}")),
        ("signature", format!("{LABEL}=:{}:", STANDARD.encode(sig.to_bytes()))),
    ];
    if let Some(d) = digest {
        out.push(("content-digest", d));
    }
    out
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
