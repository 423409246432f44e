//! `dpx audit prove` and `dpx audit verify`: self-contained proofs that anyone can check
//! offline with nothing but the genesis file; `dpx audit replay`: an independent replay of the
//! whole ledger from genesis (see [`crate::replay`]).
//!
//! A proof bundle holds the value, its Jellyfish Merkle proof, the header of the block after the
//! proved version (which commits to that state root and to the validator set), the block's
//! commit certificate and the validator set. `verify` checks, in order: the chain id; that the
//! validator set is the genesis set (validator-set history across governance changes is not
//! bundled yet, so a proof from after a change is reported as unverifiable, never as valid);
//! that the header names that set; that > 2/3 of its power signed the header's block; and that
//! the Merkle proof ties the key and value to the header's state root.
//!
//! `dpx audit prove-tx` fetches a transaction bundle (`GET /v1/txs/{hash}/proof`, SPEC.md
//! §11.2); `verify` recognises it by `"kind": "tx"` and checks it with
//! [`dpx_app::proofs::verify_tx`], which shares the certificate check with state bundles.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use dpx_app::proofs::{CertifiedHeader, ProofBundle, TxProofBundle, verify_certified, verify_tx};
use dpx_app::replay::{Outcome, ReplayOptions, Source};
use dpx_genesis::Genesis;
use dpx_ledger::verify_state_proof;

use super::{Client, Output, emit};
use crate::replay::{HomeSource, RpcSource};

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Fetch a value with its proof, header and certificate; prints the bundle as JSON.
    Prove {
        /// participants, products, orders, grants, usage, proposals, policies, accounts
        kind: String,
        id: String,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
        /// Prove at this state version instead of the latest certified one.
        #[arg(long)]
        height: Option<u64>,
        /// Sign the request with this key file (proofs follow the read policy: a grant's
        /// proof is for its parties and supervisors).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Fetch a committed transaction with its inclusion proof against the block's tx_root and
    /// its receipt's against the next block's prev_receipts_hash; prints the bundle as JSON.
    ProveTx {
        /// The transaction's hash (hex).
        hash: String,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
        /// Sign the request with this key file (the proof is for the transaction's parties
        /// and supervisors).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Check a proof bundle (a state value's, or a transaction's from `prove-tx`) offline
    /// against a genesis file.
    Verify {
        proof: PathBuf,
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Rebuild the ledger from genesis in a fresh directory, checking every block's header
    /// chain, certificate, transactions and re-executed outcome. Exits non-zero at the first
    /// divergence, which it reports (height, kind, and for state the transaction and keys).
    Replay {
        #[arg(long)]
        genesis: PathBuf,
        /// A stopped node's home directory (or its `data/ledger`): also compares the node's
        /// stored roots, receipts and state values.
        #[arg(long, conflicts_with = "from_rpc", required_unless_present = "from_rpc")]
        from_home: Option<PathBuf>,
        /// A node's RPC URL: blocks and certificates come over `GET /v1/blocks/{height}`.
        #[arg(long)]
        from_rpc: Option<String>,
        /// With --from-rpc: the auditor's (or regulator's) key file that signs the requests.
        /// Block bodies are for supervisors; with any other key the replay stops at the first
        /// withheld transaction.
        #[arg(long, requires = "from_rpc")]
        key: Option<PathBuf>,
        /// Stop after this height (default: the source's tip).
        #[arg(long)]
        to_height: Option<u64>,
        /// Keep the replayed ledger in OUT/ledger and write OUT/report.json (default: a
        /// temporary directory, removed afterwards).
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress on stderr.
        #[arg(long)]
        quiet: bool,
        /// Threads verifying signatures of the blocks ahead (default: one per core but one;
        /// 0: verify each block's in order). The verdict is the same with any number.
        #[arg(long)]
        verify_workers: Option<usize>,
    },
}

pub async fn run(cmd: AuditCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Replay {
            genesis,
            from_home,
            from_rpc,
            key,
            to_height,
            out: out_dir,
            quiet,
            verify_workers,
        } => {
            let args = ReplayArgs {
                genesis,
                from_home,
                from_rpc,
                key,
                to_height,
                out_dir,
                progress: !quiet,
                verify_workers,
            };
            replay(args, out).await?;
        }
        AuditCmd::Prove { kind, id, rpc, height, key } => {
            let mut path = format!("/v1/state/{kind}/{id}?prove=true");
            if let Some(h) = height {
                let _ = write!(path, "&height={h}");
            }
            let v = Client::new(&rpc)?.signing_with_file(key.as_deref())?.get(&path).await?;
            let bundle = v["proof"].clone();
            // Check what we got before handing it on.
            let _: ProofBundle =
                serde_json::from_value(bundle.clone()).context("the node's proof bundle")?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "kind": kind, "id": id, "bundle": bundle }))?
            );
        }
        AuditCmd::ProveTx { hash, rpc, key } => {
            let path = format!("/v1/txs/{hash}/proof");
            let bundle = Client::new(&rpc)?.signing_with_file(key.as_deref())?.get(&path).await?;
            let _: TxProofBundle =
                serde_json::from_value(bundle.clone()).context("the node's proof bundle")?;
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({ "kind": "tx", "id": hash, "bundle": bundle })
                )?
            );
        }
        AuditCmd::Verify { proof, genesis } => {
            let genesis = Genesis::load(&genesis)?;
            let text = std::fs::read_to_string(&proof)
                .with_context(|| format!("reading {}", proof.display()))?;
            anyhow::ensure!(text.len() < 16 << 20, "proof file too large");
            let doc: Value = serde_json::from_str(&text).context("proof file is not JSON")?;
            if doc["kind"] == "tx" {
                return verify_tx_doc(&doc, &genesis, out);
            }
            let bundle: ProofBundle = serde_json::from_value(doc["bundle"].clone())
                .context("proof file has no valid bundle")?;
            let summary = verify(&bundle, &genesis)?;
            let value = bundle.value_bytes().and_then(|v| {
                dpx_app::views::render_state(&hex::decode(&bundle.key).unwrap_or_default(), &v)
            });
            let report = json!({
                "valid": true,
                "chain_id": bundle.chain_id,
                "kind": doc["kind"], "id": doc["id"],
                "version": bundle.version,
                "certified_by_height": bundle.header.height,
                "signing_power": summary.0, "total_power": summary.1,
                "value": value,
            });
            emit(out, &report, || {
                format!(
                    "VALID: {} {} at height {} (state root certified by block {}, signed by {}/{} of the voting power)\n{}",
                    doc["kind"].as_str().unwrap_or(""),
                    doc["id"].as_str().unwrap_or(""),
                    bundle.version,
                    bundle.header.height,
                    summary.0,
                    summary.1,
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                )
            });
        }
    }
    Ok(())
}

struct ReplayArgs {
    genesis: PathBuf,
    from_home: Option<PathBuf>,
    from_rpc: Option<String>,
    key: Option<PathBuf>,
    to_height: Option<u64>,
    out_dir: Option<PathBuf>,
    progress: bool,
    verify_workers: Option<usize>,
}

/// Removes the temporary replay directory however the replay ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn replay(a: ReplayArgs, out: Output) -> anyhow::Result<()> {
    let genesis = Genesis::load(&a.genesis)?;
    let mut source: Box<dyn Source> = match (&a.from_home, &a.from_rpc) {
        (Some(home), _) => Box::new(HomeSource::open(home, &genesis.chain_id)?),
        (None, Some(url)) => {
            let key = a.key.as_deref().map(super::load_key).transpose()?;
            Box::new(RpcSource::connect(url, a.to_height, key).await?)
        }
        (None, None) => bail!("give --from-home DIR or --from-rpc URL"),
    };
    let (dir, _cleanup) = if let Some(d) = &a.out_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        (d.join("ledger"), None)
    } else {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let d = std::env::temp_dir().join(format!("dpx-replay-{}-{nanos}", std::process::id()));
        (d.clone(), Some(TempDir(d)))
    };
    let opts = ReplayOptions {
        to_height: a.to_height,
        progress: a.progress,
        verify_workers: a.verify_workers,
    };
    let outcome = tokio::task::spawn_blocking(move || {
        dpx_app::replay::replay(&genesis, source.as_mut(), &dir, &opts)
    })
    .await
    .context("the replay task failed")??;
    match outcome {
        Outcome::Verified(report) => {
            let v = serde_json::to_value(&report)?;
            if let Some(d) = &a.out_dir {
                let path = d.join("report.json");
                std::fs::write(&path, serde_json::to_string_pretty(&v)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            emit(out, &v, || report.summary());
            Ok(())
        }
        Outcome::Diverged(d) => {
            let v = json!({ "verified": false, "divergence": &d });
            if let Some(dir) = &a.out_dir {
                let path = dir.join("report.json");
                std::fs::write(&path, serde_json::to_string_pretty(&v)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            emit(out, &v, || d.render());
            bail!(
                "the ledger diverges from its replay at height {} ({})",
                d.height,
                d.kind.as_str()
            )
        }
    }
}

/// Check a bundle against a genesis; returns (signing power, total power).
pub fn verify(b: &ProofBundle, genesis: &Genesis) -> anyhow::Result<(u64, u64)> {
    if b.chain_id != genesis.chain_id || b.header.chain_id != genesis.chain_id {
        bail!(
            "the proof is for chain {:?}, the genesis for {:?}",
            b.header.chain_id,
            genesis.chain_id
        );
    }
    if b.header.height != b.version + 1 {
        bail!("the header (height {}) does not certify version {}", b.header.height, b.version);
    }
    let certified = CertifiedHeader {
        header: b.header.clone(),
        certificate: b.certificate.clone(),
        validators: b.validators.clone(),
    };
    let power =
        verify_certified(&certified, genesis, &b.validator_history).map_err(|e| {
            match &b.validator_history_error {
                Some(h) => {
                    anyhow::anyhow!("{e} (the node could not build the validator-set history: {h})")
                }
                None => anyhow::anyhow!(e),
            }
        })?;
    let key = hex::decode(&b.key).context("key hex")?;
    let value = b.value_bytes();
    verify_state_proof(b.header.state_root, &key, value.as_deref(), &b.proof)
        .map_err(|e| anyhow::anyhow!("the Merkle proof does not hold: {e}"))?;
    Ok(power)
}

/// `dpx audit verify` of a transaction bundle: the report, or why it is refused.
fn verify_tx_doc(doc: &Value, genesis: &Genesis, out: Output) -> anyhow::Result<()> {
    let bundle: TxProofBundle = serde_json::from_value(doc["bundle"].clone())
        .context("proof file has no valid transaction bundle")?;
    let v = verify_tx(&bundle, genesis).map_err(|e| anyhow::anyhow!("INVALID: {e}"))?;
    let tx = hex::decode(&bundle.tx).unwrap_or_default();
    let receipt = bundle
        .receipt
        .as_ref()
        .and_then(|r| hex::decode(&r.receipt).ok())
        .map(|r| dpx_app::views::receipt_json(&r));
    let report = json!({
        "valid": true,
        "kind": "tx",
        "chain_id": bundle.chain_id,
        "hash": bundle.tx_hash,
        "height": bundle.height,
        "index": bundle.index,
        "signing_power": v.block_power.0, "total_power": v.block_power.1,
        "receipt_verified": v.receipt_power.is_some(),
        "receipt_pending": bundle.receipt_pending,
        "receipt_signing_power": v.receipt_power.map(|p| p.0),
        "tx": dpx_app::views::tx_json(&tx),
        "receipt": receipt,
    });
    emit(out, &report, || {
        let mut s = format!(
            "VALID: transaction {} is at index {} of block {} (tx_root certified by {}/{} of the voting power)",
            bundle.tx_hash, bundle.index, bundle.height, v.block_power.0, v.block_power.1
        );
        match v.receipt_power {
            Some((p, t)) => {
                let _ = write!(
                    s,
                    "\nVALID: its receipt is in the receipts of block {} (prev_receipts_hash of block {}, certified by {p}/{t})",
                    bundle.height,
                    bundle.height + 1
                );
            }
            None => {
                let _ = write!(
                    s,
                    "\nNOT PROVED: the receipt ({})",
                    bundle.receipt_pending.as_deref().unwrap_or("absent from the bundle")
                );
            }
        }
        let _ =
            write!(s, "\n{}", serde_json::to_string_pretty(&report["receipt"]).unwrap_or_default());
        s
    });
    Ok(())
}
