//! `dpx-bench verify-limit`: ed25519 signatures this machine verifies per second on all cores,
//! with the node's verification rule (strict, one by one: `dpx_crypto::verify_all` over chunks),
//! and the resulting ceiling for a network whose
//! validators all run here: every validator verifies every transaction, so signed
//! transactions cannot commit faster than `sig/s ÷ validators`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dpx_crypto::{Domain, Hash, Keypair, PublicKey, Signature, SignedDigest, verify_all};

use crate::record::{KIND_VERIFY, VerifyPoint, VerifyRecord};

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Seconds of measurement per batch size.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    pub batch: Vec<usize>,
    /// Validators sharing this machine.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Append the result (JSON, one line) to this file.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    #[arg(long, default_value = "")]
    pub label: String,
}

/// Signed items distinct enough that no cache helps: 4096 messages by 256 keys.
fn signed_items() -> Vec<(PublicKey, Hash, Signature)> {
    let keys: Vec<Keypair> = (0..256u32)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            Keypair::from_seed(seed)
        })
        .collect();
    (0..4096u32)
        .map(|i| {
            let k = &keys[i as usize % keys.len()];
            let d = Hash::of(Domain::TRANSACTION, "dpx-bench", &i.to_le_bytes());
            (k.public(), d, k.sign_digest(&d))
        })
        .collect()
}

/// Signatures per second verifying batches of `batch` on `threads` threads for `secs`.
fn measure(items: &[(PublicKey, Hash, Signature)], batch: usize, threads: usize, secs: f64) -> f64 {
    let stop = AtomicBool::new(false);
    let verified = AtomicU64::new(0);
    let batch = batch.clamp(1, items.len());
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, verified) = (&stop, &verified);
            s.spawn(move || {
                let mut at = (t * 997) % items.len();
                let mut local = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if at + batch > items.len() {
                        at = 0;
                    }
                    let chunk: Vec<SignedDigest<'_>> = items[at..at + batch]
                        .iter()
                        .map(|(key, digest, sig)| SignedDigest { key, digest, sig })
                        .collect();
                    assert!(verify_all(&chunk).is_ok(), "a good chunk failed to verify");
                    local += batch as u64;
                    at += batch;
                }
                verified.fetch_add(local, Ordering::Relaxed);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    verified.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

pub fn run(args: &VerifyArgs) -> anyhow::Result<VerifyRecord> {
    anyhow::ensure!(args.validators >= 1, "--validators must be at least 1");
    anyhow::ensure!(!args.batch.is_empty(), "--batch needs at least one size");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = args.threads.unwrap_or(cores).max(1);
    let items = signed_items();
    let mut points = Vec::new();
    for &batch in &args.batch {
        let sig_per_s = measure(&items, batch, threads, args.seconds);
        println!(
            "batch {batch:>4}: {sig_per_s:>10.0} sig/s on {threads} threads ({:.0} per thread)",
            sig_per_s / threads as f64
        );
        points.push(VerifyPoint {
            batch,
            sig_per_s,
            sig_per_s_per_core: sig_per_s / threads as f64,
        });
    }
    let best = points.iter().map(|p| p.sig_per_s).fold(0.0, f64::max);
    let rec = VerifyRecord {
        kind: KIND_VERIFY.into(),
        label: args.label.clone(),
        cores: threads,
        seconds_per_point: args.seconds,
        points,
        sig_per_s: best,
        validators: args.validators,
        verification_limit_tx_s: best / args.validators as f64,
    };
    println!(
        "verification limit: {best:.0} sig/s ÷ {} validators = {:.0} tx/s",
        args.validators, rec.verification_limit_tx_s
    );
    if let Some(out) = &args.out {
        crate::record::append(out, &rec)?;
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_something_positive() {
        let items = signed_items();
        assert!(measure(&items[..64], 16, 1, 0.05) > 0.0);
    }
}
