//! A small RPC client for the CLI.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_mins(1)).build()?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), http })
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
        let resp = self.http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
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
        let resp = self.http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
        let (status, v) = Self::decode(resp, &url).await?;
        if !(200..300).contains(&status) {
            bail!("GET {path}: {status} {}", error_text(&v));
        }
        Ok(v)
    }

    /// POST JSON; returns the status and body whatever the status.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let resp =
            self.http.post(&url).json(body).send().await.with_context(|| format!("POST {url}"))?;
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
