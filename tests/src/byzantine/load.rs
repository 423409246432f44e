//! The honest background load: founding agencies admit fresh participants, one transaction at
//! a time each with `wait=commit`, moving to another node when theirs fails. A transaction is
//! *acknowledged* only when a node answers that it is committed; the checks then demand it be
//! committed exactly once, at that height, on every node.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use dpx_contracts::{Operation, Role, TransactionBody};
use dpx_crypto::Keypair;

/// Acknowledgements shared between the workers and the checks: (transaction hash, height it
/// was acknowledged at). A std mutex, held only to push or copy.
#[derive(Debug, Clone, Default)]
pub struct Acks(Arc<Mutex<Vec<(String, u64)>>>);

impl Acks {
    fn push(&self, hash: String, height: u64) {
        if let Ok(mut v) = self.0.lock() {
            v.push((hash, height));
        }
    }

    pub fn snapshot(&self) -> Vec<(String, u64)> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// How long one `wait=commit` submission may wait.
const COMMIT_WAIT_MS: u64 = 5000;

/// A running load; [`Load::stop`] ends it.
#[derive(Debug)]
pub struct Load {
    pub acks: Acks,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// One worker per key, submitting to `urls` (node `k` first for worker `k`).
    pub fn start(http: &reqwest::Client, urls: &[String], chain: &str, keys: Vec<Keypair>) -> Self {
        let acks = Acks::default();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = keys
            .into_iter()
            .enumerate()
            .map(|(id, key)| {
                let w = Worker {
                    id,
                    key,
                    node: id % urls.len(),
                    urls: urls.to_vec(),
                    chain: chain.to_owned(),
                    http: http.clone(),
                    acks: acks.clone(),
                    stop: stop.clone(),
                };
                tokio::spawn(w.run())
            })
            .collect();
        Self { acks, stop, tasks }
    }

    /// Stop the workers (a submission in flight may still be acknowledged first).
    pub async fn stop(self) -> Vec<(String, u64)> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        self.acks.snapshot()
    }
}

struct Worker {
    id: usize,
    key: Keypair,
    urls: Vec<String>,
    node: usize,
    chain: String,
    http: reqwest::Client,
    acks: Acks,
    stop: Arc<AtomicBool>,
}

use crate::SubmitOutcome as Outcome;

impl Worker {
    fn url(&self) -> &str {
        &self.urls[self.node]
    }

    fn rotate(&mut self) {
        self.node = (self.node + 1) % self.urls.len();
    }

    async fn get(&self, url: String) -> Option<(u16, Value)> {
        let r = self.http.get(url).send().await.ok()?;
        let s = r.status().as_u16();
        Some((s, r.json().await.unwrap_or(Value::Null)))
    }

    async fn run(mut self) {
        let mut nonce: Option<u64> = None;
        // The transaction in flight, kept until known committed so a retry never signs a
        // second transaction for the same nonce: (hex, hash, nonce, first sent).
        let mut pending: Option<(String, String, u64, Instant)> = None;
        let mut seq = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            if nonce.is_none() {
                nonce = self.next_nonce().await;
                if nonce.is_none() {
                    self.rotate();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
            }
            let n = nonce.unwrap_or_default();
            let (hex_tx, hash, n, _) = pending
                .get_or_insert_with(|| {
                    seq += 1;
                    let op = Operation::Admit {
                        key: Keypair::generate().public(),
                        name: format!("honest-{}-{n}-{seq}", self.id),
                        roles: vec![Role::Consumer],
                    };
                    let tx = TransactionBody::new(self.chain.clone(), n, op).sign(&self.key);
                    (hex::encode(tx.encode()), tx.hash().to_string(), n, Instant::now())
                })
                .clone();
            let committed = match self.submit(&hex_tx).await {
                Outcome::Committed(h) => Some(h),
                Outcome::Pending => self.find(&hash, 10).await,
                Outcome::NonceUsed => {
                    let found = self.find(&hash, 20).await;
                    if found.is_none() {
                        // Not ours after all (never admitted anywhere): ask for the nonce again.
                        pending = None;
                        nonce = None;
                    }
                    found
                }
                Outcome::Unavailable(_) => {
                    let found = self.find(&hash, 1).await;
                    if found.is_none() {
                        self.rotate();
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    found
                }
            };
            if let Some(h) = committed {
                self.acks.push(hash, h);
                pending = None;
                nonce = Some(n + 1);
            }
        }
    }

    /// The signer's next nonce from the current node (0 for an account it has not seen).
    async fn next_nonce(&self) -> Option<u64> {
        let url = format!("{}/v1/state/accounts/{}", self.url(), self.key.public());
        match self.get(url).await {
            Some((200, v)) => v["value"]["next_nonce"].as_u64(),
            Some((404, _)) => Some(0),
            _ => None,
        }
    }

    async fn submit(&self, hex_tx: &str) -> Outcome {
        let url = format!("{}/v1/txs?wait=commit&timeout_ms={COMMIT_WAIT_MS}", self.url());
        let Ok(r) = self.http.post(url).json(&json!({ "tx": hex_tx })).send().await else {
            return Outcome::Unavailable("unreachable".into());
        };
        let status = r.status().as_u16();
        crate::classify_submit(status, &r.json().await.unwrap_or(Value::Null))
    }

    /// Ask every node for the transaction, `rounds` times 250 ms apart.
    async fn find(&self, hash: &str, rounds: usize) -> Option<u64> {
        for _ in 0..rounds {
            for u in &self.urls {
                if let Some((200, v)) = self.get(format!("{u}/v1/txs/{hash}")).await
                    && v["status"] == "committed"
                {
                    return v["height"].as_u64();
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }
}
