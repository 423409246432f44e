//! The load generator's reading identity. The node's read policy (SPEC.md §14) shows a
//! transaction's `tx` event only to its parties and to supervisors, and full mode needs every
//! receipt code, so before subscribing the bench admits a fresh auditor key (signed by the
//! founding agency's key it is given anyway) and signs each event subscription with it
//! (SPEC.md §14: an RFC 9421 signature base, digest with domain `dpx/rpc-request/v1`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dpx_contracts::{Operation, Role, TransactionBody};
use dpx_crypto::{Domain, Keypair};

use crate::rpc;

/// Who reads the event streams, and on which chain.
#[derive(Clone)]
pub struct Observer {
    pub key: std::sync::Arc<Keypair>,
    pub chain: String,
}

impl Observer {
    /// Admit a fresh key as an auditor with the agency's key (through `rpcs[0]`) and wait until
    /// every node in `rpcs` has committed it: a node decides a stream's rights when it opens,
    /// so a node that has not seen the admission yet would give the stream anonymous rights.
    pub async fn admit(
        client: &reqwest::Client,
        rpcs: &[String],
        chain: &str,
        agency: &Keypair,
    ) -> anyhow::Result<Self> {
        let rpc = rpcs.first().context("no RPC endpoint")?;
        let key = Keypair::generate();
        let nonce = rpc::next_nonce(client, rpc, &agency.public()).await?;
        let op = Operation::Admit {
            key: key.public(),
            name: "dpx-bench observer".into(),
            roles: vec![Role::Auditor],
        };
        let tx = TransactionBody::new(chain, nonce, op).sign(agency).encode();
        let (body, content_type) = rpc::batch_body(&[&tx], rpc::Encoding::Json);
        let url = format!("{rpc}/v1/txs/batch?wait=check");
        let r = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = r.status();
        let answer = rpc::parse_batch_response(&r.bytes().await?, 1)
            .with_context(|| format!("admitting the observer: HTTP {status}"))?;
        if let Some(rpc::TxAnswer::Refused { code, message }) = answer.first() {
            anyhow::bail!("admitting the observer was refused: {code}: {message}");
        }
        let deadline = Instant::now() + Duration::from_mins(1);
        for node in rpcs {
            while rpc::next_nonce(client, node, &agency.public()).await? <= nonce {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the observer's admission did not commit at {node}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(Self { key: std::sync::Arc::new(key), chain: chain.to_owned() })
    }

    /// The `Signature-Input` and `Signature` headers of `GET path_and_query`.
    pub fn sign_get(&self, path_and_query: &str) -> [(&'static str, String); 2] {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let params = format!(
            "(\"@method\" \"@path\" \"@query\");created={created};nonce=\"{nonce}\";keyid=\"{}\";alg=\"dpx-ed25519-blake3\"",
            self.key.public().to_hex()
        );
        let base = format!(
            "\"@method\": GET\n\"@path\": {path}\n\"@query\": ?{query}\n\"@signature-params\": {params}"
        );
        let sig = self.key.sign(Domain::RPC_REQUEST, &self.chain, base.as_bytes());
        [
            ("signature-input", format!("dpx={params}")),
            ("signature", format!("dpx=:{}:", STANDARD.encode(sig.to_bytes()))),
        ]
    }
}
