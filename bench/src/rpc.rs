//! The node's HTTP API as the load generator uses it: status, account nonces, and batch
//! submission (`POST /v1/txs/batch?wait=check`, protobuf or JSON body, one JSON result per
//! transaction).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use dpx_crypto::{Hash, PublicKey};
use prost::Message as _;
use serde::Deserialize;

/// `dpx.node.v1.TxBatch`: the protobuf body of a batch submission.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxBatch {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub txs: Vec<Vec<u8>>,
}

/// Request body encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    Proto,
    Json,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proto => "proto",
            Self::Json => "json",
        }
    }
}

/// The encoding in use by all connections; protobuf falls back to JSON once, for everyone, if
/// a node does not understand it.
#[derive(Debug)]
pub struct EncodingChoice {
    json: AtomicBool,
}

impl EncodingChoice {
    pub fn new(e: Encoding) -> Arc<Self> {
        Arc::new(Self { json: AtomicBool::new(e == Encoding::Json) })
    }
    pub fn get(&self) -> Encoding {
        if self.json.load(Ordering::Relaxed) { Encoding::Json } else { Encoding::Proto }
    }
    /// Switch to JSON; true if this call made the switch.
    pub fn fall_back(&self) -> bool {
        !self.json.swap(true, Ordering::Relaxed)
    }
}

/// Build a batch request body and its content type.
pub fn batch_body(txs: &[&[u8]], encoding: Encoding) -> (Vec<u8>, &'static str) {
    match encoding {
        Encoding::Proto => (
            TxBatch { txs: txs.iter().map(|t| t.to_vec()).collect() }.encode_to_vec(),
            "application/x-protobuf",
        ),
        Encoding::Json => {
            let hex: Vec<String> = txs.iter().map(hex::encode).collect();
            let body = serde_json::to_vec(&serde_json::json!({ "txs": hex }))
                .expect("strings always serialize");
            (body, "application/json")
        }
    }
}

/// One transaction's answer in a batch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxAnswer {
    /// Admitted to the mempool (`checked`); the node's hash of it.
    Accepted(Hash),
    /// Refused: the error code and message.
    Refused { code: String, message: String },
}

#[derive(Deserialize)]
struct BatchJson {
    results: Vec<ResultJson>,
}

#[derive(Deserialize)]
struct ResultJson {
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    error: Option<ErrorJson>,
}

#[derive(Deserialize)]
struct ErrorJson {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Parse a 200 answer of `/v1/txs/batch`: exactly one result per submitted transaction.
pub fn parse_batch_response(body: &[u8], expected: usize) -> anyhow::Result<Vec<TxAnswer>> {
    let b: BatchJson = serde_json::from_slice(body).context("batch response is not JSON")?;
    anyhow::ensure!(
        b.results.len() == expected,
        "batch response has {} results for {expected} transactions",
        b.results.len()
    );
    b.results
        .into_iter()
        .map(|r| match (r.hash, r.error) {
            (_, Some(e)) => Ok(TxAnswer::Refused { code: e.code, message: e.message }),
            (Some(h), None) => {
                Ok(TxAnswer::Accepted(h.parse().with_context(|| format!("result hash {h:?}"))?))
            }
            (None, None) => anyhow::bail!("a batch result with neither hash nor error"),
        })
        .collect()
}

/// A short reason class for a refused transaction, for the report.
pub fn refusal_reason(code: &str, message: &str) -> String {
    let m = message.to_ascii_lowercase();
    if m.contains("mempool is full") || m.contains("busy") {
        "busy".into()
    } else if m.contains("nonce") {
        "nonce".into()
    } else if m.contains("already") {
        "duplicate".into()
    } else if code.is_empty() {
        "other".into()
    } else {
        code.to_owned()
    }
}

/// A client for light calls (status, state).
pub fn light_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// `GET {rpc}/v1/status`: (chain id, height).
pub async fn status(c: &reqwest::Client, rpc: &str) -> anyhow::Result<(String, u64)> {
    let url = format!("{rpc}/v1/status");
    let r = c.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(r.status().is_success(), "GET {url}: HTTP {}", r.status());
    let v: serde_json::Value = r.json().await.with_context(|| format!("GET {url}"))?;
    let chain = v["chain_id"].as_str().context("status has no chain_id")?.to_owned();
    let height = v["height"].as_u64().context("status has no height")?;
    Ok((chain, height))
}

/// The nonce the ledger expects next from `key` (0 for a key it has never seen).
pub async fn next_nonce(c: &reqwest::Client, rpc: &str, key: &PublicKey) -> anyhow::Result<u64> {
    let url = format!("{rpc}/v1/state/accounts/{}", key.to_hex());
    let r = c.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(0);
    }
    anyhow::ensure!(r.status().is_success(), "GET {url}: HTTP {}", r.status());
    let v: serde_json::Value = r.json().await?;
    v["value"]["next_nonce"].as_u64().context("account view has no next_nonce")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_body_is_repeated_bytes_field_one() {
        let (body, ct) = batch_body(&[b"ab", b""], Encoding::Proto);
        assert_eq!(ct, "application/x-protobuf");
        // Field 1, wire type 2 (0x0a), length, bytes — for each transaction.
        assert_eq!(body, vec![0x0a, 2, b'a', b'b', 0x0a, 0]);
        assert_eq!(TxBatch::decode(body.as_slice()).unwrap().txs, vec![b"ab".to_vec(), vec![]]);
    }

    #[test]
    fn json_body_is_hex_list() {
        let (body, ct) = batch_body(&[&[0xde, 0xad], &[1]], Encoding::Json);
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"txs": ["dead", "01"]}));
    }

    #[test]
    fn batch_responses() {
        let h = "03".repeat(32);
        let body = format!(
            r#"{{"results": [{{"hash": "{h}", "status": "checked"}}, {{"error": {{"code": "mempool_full", "message": "mempool is full (5 transactions, 9 bytes)"}}}}]}}"#
        );
        let got = parse_batch_response(body.as_bytes(), 2).unwrap();
        assert_eq!(got[0], TxAnswer::Accepted(Hash([3; 32])));
        let TxAnswer::Refused { code, message } = &got[1] else { panic!("{got:?}") };
        assert_eq!(refusal_reason(code, message), "busy");
        assert!(parse_batch_response(body.as_bytes(), 3).is_err());
        assert!(parse_batch_response(b"{\"results\": [{}]}", 1).is_err());
        assert_eq!(refusal_reason("nonce_too_high", "nonce 6 is ahead; next is 4"), "nonce");
        assert_eq!(refusal_reason("bad_signature", "signature does not verify"), "bad_signature");
    }

    #[test]
    fn encoding_falls_back_once() {
        let e = EncodingChoice::new(Encoding::Proto);
        assert_eq!(e.get(), Encoding::Proto);
        assert!(e.fall_back());
        assert!(!e.fall_back());
        assert_eq!(e.get(), Encoding::Json);
    }
}
