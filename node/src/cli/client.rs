//! A small RPC client for the CLI. Given a key ([`Client::signing`]), it signs every request
//! (SPEC.md, "Signed RPC requests"), so the node answers with what that key may read.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use dpx_crypto::Keypair;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::rpc::auth;

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// The key requests are signed with, and the chain id they are signed for (asked of the
    /// node once, with an anonymous `GET /v1/status`).
    key: Option<Arc<Keypair>>,
    chain_id: Arc<OnceCell<String>>,
}

impl Client {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_mins(1)).build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            key: None,
            chain_id: Arc::new(OnceCell::new()),
        })
    }

    /// Sign every request with `key` (none: anonymous requests).
    #[must_use]
    pub fn signing(mut self, key: Option<Keypair>) -> Self {
        self.key = key.map(Arc::new);
        self
    }

    /// Sign with the key in `file`, if one is given.
    pub fn signing_with_file(self, file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let key = file.map(super::load_key).transpose()?;
        Ok(self.signing(key))
    }

    async fn chain_id(&self) -> anyhow::Result<String> {
        let c = self
            .chain_id
            .get_or_try_init(|| async {
                let url = format!("{}/v1/status", self.base);
                let resp =
                    self.http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
                let (status, v) = Self::decode(resp, &url).await?;
                if !(200..300).contains(&status) {
                    bail!("GET /v1/status: {status} {}", error_text(&v));
                }
                v["chain_id"]
                    .as_str()
                    .map(str::to_owned)
                    .context("the node's /v1/status names no chain_id")
            })
            .await?;
        Ok(c.clone())
    }

    /// A request to `url`, signed when the client has a key.
    async fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let mut rb = self.http.request(method.clone(), url);
        if let Some(key) = &self.key {
            let chain = self.chain_id().await?;
            let parsed = reqwest::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
            let target = match parsed.query() {
                Some(q) => format!("{}?{q}", parsed.path()),
                None => parsed.path().to_owned(),
            };
            let now = crate::driver::now_ms() / 1000;
            let nonce = auth::fresh_nonce();
            let body = body.as_deref().unwrap_or_default();
            for (name, value) in
                auth::sign_request(key, &chain, method.as_str(), &target, body, now, &nonce)
            {
                rb = rb.header(name, value);
            }
        }
        if let Some(b) = body {
            rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json").body(b);
        }
        Ok(rb)
    }

    async fn decode(resp: reqwest::Response, what: &str) -> anyhow::Result<(u16, Value)> {
        let status = resp.status().as_u16();
        let text = resp.text().await.with_context(|| format!("reading the answer to {what}"))?;
        let v: Value = serde_json::from_str(&text).with_context(|| {
            format!("{what}: the node answered {status} with non-JSON: {text:.200}")
        })?;
        Ok((status, v))
    }

    /// GET a JSON document whatever the status, with the node's `Retry-After` (seconds).
    pub async fn get_answer(&self, path: &str) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        let req = self.request(reqwest::Method::GET, &url, None).await?;
        let resp = req.send().await.with_context(|| format!("GET {url}"))?;
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let (status, body) = Self::decode(resp, &url).await?;
        Ok(Answer { status, retry_after, body })
    }

    /// GET a JSON document; a non-2xx answer is an error carrying the node's message.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = self.request(reqwest::Method::GET, &url, None).await?;
        let resp = req.send().await.with_context(|| format!("GET {url}"))?;
        let (status, v) = Self::decode(resp, &url).await?;
        if !(200..300).contains(&status) {
            bail!("GET {path}: {status} {}", error_text(&v));
        }
        Ok(v)
    }

    /// POST JSON; returns the status and body whatever the status.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let bytes = serde_json::to_vec(body)?;
        let req = self.request(reqwest::Method::POST, &url, Some(bytes)).await?;
        let resp = req.send().await.with_context(|| format!("POST {url}"))?;
        Self::decode(resp, &url).await
    }
}

/// An answer of the node, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The node's `Retry-After`, when it sent one in seconds.
    pub retry_after: Option<Duration>,
    pub body: Value,
}

/// `code: message` of an RPC error body.
pub fn error_text(v: &Value) -> String {
    let e = &v["error"];
    format!("{}: {}", e["code"].as_str().unwrap_or("error"), e["message"].as_str().unwrap_or(""))
}
