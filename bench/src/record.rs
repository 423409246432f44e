//! Result records: one JSON object per line (JSON Lines) in the `--out` file, a table row for
//! people and a CSV for spreadsheets.
//!
//! Two kinds share a file: `"kind": "load"` ([`LoadRecord`], one per `dpx-bench load` run) and
//! `"kind": "verify_limit"` ([`VerifyRecord`]). Unknown kinds are skipped and missing fields
//! take their defaults when reading, so the format can grow.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::stats::LatencySummary;

pub const KIND_LOAD: &str = "load";
pub const KIND_VERIFY: &str = "verify_limit";

/// Blocks committed during the timed window (by header time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockSummary {
    pub count: u64,
    pub mean_interval_ms: f64,
    pub mean_txs_per_block: f64,
    pub max_txs_per_block: u64,
}

/// One validator process over the timed window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeUsage {
    pub pid: u32,
    /// CPU seconds (user + system) spent during the window and drain.
    pub cpu_s: f64,
    /// Largest resident set sampled during the run, MiB.
    pub rss_max_mb: f64,
    /// The kernel's peak resident set of the process since it started, MiB.
    pub hwm_mb: f64,
}

/// One `dpx-bench load` run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadRecord {
    /// Always [`KIND_LOAD`].
    pub kind: String,
    pub label: String,
    /// `full` or `consensus-only`.
    pub mode: String,
    /// `proto` or `json` (after any fallback).
    pub encoding: String,
    pub started_unix_ms: u64,
    pub rpcs: usize,
    pub connections: usize,
    pub batch_max: usize,
    pub duration_s: f64,
    pub offered_tx_s: f64,
    /// Transactions scheduled in the window (offered rate × duration).
    pub scheduled: u64,
    /// Sent to a node (a request was made with them).
    pub sent: u64,
    /// Sent transactions over the time from the first to the last send.
    pub send_rate_tx_s: f64,
    /// Answered `checked` by the node.
    pub accepted: u64,
    /// Refused at submission, by reason (`busy`, `rate_limited`, `nonce`, `invalid`, `http_503`…).
    pub rejected: BTreeMap<String, u64>,
    /// Not sent because an earlier transaction of the same signer was refused (its nonce chain
    /// is broken, so these would only be refused too).
    pub skipped: u64,
    /// Accepted and seen committed at the node they were submitted to (by the end of the drain).
    pub committed: u64,
    /// Throughput: transactions of this run seen committed before the window ended, over the
    /// window length. At saturation this is the network's capacity; below it, it is the
    /// offered rate less the share still in flight at the end (latency ÷ window).
    pub committed_tx_s: f64,
    /// `committed` (including the drain) over the window length. Not a throughput at
    /// saturation: a long drain empties a backlog of any size.
    pub committed_with_drain_tx_s: f64,
    /// Receipt codes of committed transactions (full mode): `ok`, `failed`, ...
    pub receipts: BTreeMap<String, u64>,
    /// Committed with a receipt other than `ok`.
    pub failed: u64,
    /// Accepted but never seen committed at any node by the end of the drain.
    pub lost: u64,
    /// Committed at two different heights (must be 0).
    pub duplicates: u64,
    /// Submit (HTTP request sent) to first sight of the `tx` event at the same node.
    pub latency: LatencySummary,
    /// How late requests left against their schedule (client lag; should stay small).
    pub send_lag: LatencySummary,
    pub blocks: BlockSummary,
    pub nodes: Vec<NodeUsage>,
    /// CPU seconds this load generator spent during the window and drain.
    pub client_cpu_s: f64,
    pub http_requests: u64,
    /// Requests repeated after a 503 / 429 / transport error (bounded by `--retries`).
    pub http_retries: u64,
    /// Node answers whose hash differed from the client's blake3 of the bytes.
    pub hash_mismatches: u64,
    /// Event-stream reconnects (after `lagged` or a dropped stream).
    pub sse_reconnects: u64,
    pub setup_s: f64,
    pub presign_s: f64,
    pub drain_s: f64,
}

/// Batch-verification throughput at one batch size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyPoint {
    pub batch: usize,
    pub sig_per_s: f64,
    pub sig_per_s_per_core: f64,
}

/// One `dpx-bench verify-limit` run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyRecord {
    /// Always [`KIND_VERIFY`].
    pub kind: String,
    pub label: String,
    pub cores: usize,
    pub seconds_per_point: f64,
    pub points: Vec<VerifyPoint>,
    /// The best `sig_per_s` over the batch sizes.
    pub sig_per_s: f64,
    pub validators: usize,
    /// `sig_per_s / validators`: every validator on this machine verifies every transaction,
    /// so the network cannot commit signed transactions faster than this.
    pub verification_limit_tx_s: f64,
}

/// Everything in one or more result files.
#[derive(Debug, Default, Clone)]
pub struct Results {
    pub loads: Vec<LoadRecord>,
    pub verifies: Vec<VerifyRecord>,
}

impl Results {
    /// The verification limit of the last verify record, if any.
    pub fn verification_limit(&self) -> Option<f64> {
        self.verifies.last().map(|v| v.verification_limit_tx_s)
    }
}

/// Append one record as a line to `path` (created if missing).
pub fn append<T: Serialize>(path: &Path, record: &T) -> anyhow::Result<()> {
    let line = serde_json::to_string(record)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Parse JSON Lines text; unknown kinds and blank lines are skipped, malformed lines are errors.
pub fn parse(text: &str, into: &mut Results) -> anyhow::Result<()> {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("line {}", n + 1))?;
        match v["kind"].as_str() {
            Some(KIND_LOAD) => into
                .loads
                .push(serde_json::from_value(v).with_context(|| format!("line {}", n + 1))?),
            Some(KIND_VERIFY) => into
                .verifies
                .push(serde_json::from_value(v).with_context(|| format!("line {}", n + 1))?),
            _ => {}
        }
    }
    Ok(())
}

pub fn read_files(paths: &[impl AsRef<Path>]) -> anyhow::Result<Results> {
    let mut r = Results::default();
    for p in paths {
        let p = p.as_ref();
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        parse(&text, &mut r).with_context(|| format!("parsing {}", p.display()))?;
    }
    Ok(r)
}

/// Header of [`table_row`].
pub fn table_header() -> String {
    format!(
        "{:<16} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>9} {:>8} {:>7} {:>6} {:>5} {:>18} {:>18}",
        "mode",
        "offered",
        "sent/s",
        "commit/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "block ms",
        "txs/blk",
        "reject",
        "lost",
        "dup",
        "cpu s/node",
        "rss MB/node"
    )
}

/// One run as a fixed-width row.
pub fn table_row(r: &LoadRecord) -> String {
    let join = |f: &dyn Fn(&NodeUsage) -> String| {
        if r.nodes.is_empty() {
            "-".to_owned()
        } else {
            r.nodes.iter().map(f).collect::<Vec<_>>().join("/")
        }
    };
    format!(
        "{:<16} {:>9.0} {:>9.0} {:>10.1} {:>8.1} {:>8.1} {:>8.1} {:>9.0} {:>8.1} {:>7} {:>6} {:>5} {:>18} {:>18}",
        r.mode,
        r.offered_tx_s,
        r.send_rate_tx_s,
        r.committed_tx_s,
        r.latency.p50_ms,
        r.latency.p95_ms,
        r.latency.p99_ms,
        r.blocks.mean_interval_ms,
        r.blocks.mean_txs_per_block,
        r.rejected.values().sum::<u64>() + r.skipped,
        r.lost,
        r.duplicates,
        join(&|n| format!("{:.1}", n.cpu_s)),
        join(&|n| format!("{:.0}", n.rss_max_mb)),
    )
}

const CSV_HEADER: &str = "label,mode,encoding,offered_tx_s,send_rate_tx_s,committed_tx_s,committed_with_drain_tx_s,p50_ms,p95_ms,p99_ms,max_ms,mean_block_interval_ms,mean_txs_per_block,accepted,rejected,skipped,failed,lost,duplicates,node_cpu_s,node_rss_max_mb,client_cpu_s";

/// All load records as CSV (per-node figures joined with `;`).
pub fn to_csv(records: &[LoadRecord]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in records {
        let nodes = |f: &dyn Fn(&NodeUsage) -> f64| {
            r.nodes.iter().map(|n| format!("{:.2}", f(n))).collect::<Vec<_>>().join(";")
        };
        let quoted = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_owned()
            }
        };
        writeln!(
            out,
            "{},{},{},{:.1},{:.1},{:.1},{:.1},{:.2},{:.2},{:.2},{:.2},{:.1},{:.2},{},{},{},{},{},{},{},{},{:.2}",
            quoted(&r.label),
            r.mode,
            r.encoding,
            r.offered_tx_s,
            r.send_rate_tx_s,
            r.committed_tx_s,
            r.committed_with_drain_tx_s,
            r.latency.p50_ms,
            r.latency.p95_ms,
            r.latency.p99_ms,
            r.latency.max_ms,
            r.blocks.mean_interval_ms,
            r.blocks.mean_txs_per_block,
            r.accepted,
            r.rejected.values().sum::<u64>(),
            r.skipped,
            r.failed,
            r.lost,
            r.duplicates,
            nodes(&|n| n.cpu_s),
            nodes(&|n| n.rss_max_mb),
            r.client_cpu_s,
        )
        .expect("writing to a String cannot fail");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn sample() -> LoadRecord {
        LoadRecord {
            kind: KIND_LOAD.into(),
            label: "full@100, \"quoted\"".into(),
            mode: "full".into(),
            encoding: "proto".into(),
            offered_tx_s: 100.0,
            scheduled: 300,
            sent: 300,
            accepted: 299,
            rejected: BTreeMap::from([("busy".to_owned(), 1)]),
            committed: 299,
            committed_tx_s: 99.7,
            receipts: BTreeMap::from([("ok".to_owned(), 299)]),
            latency: LatencySummary::from_micros(vec![1000, 2000, 3000]),
            blocks: BlockSummary {
                count: 3,
                mean_interval_ms: 1000.0,
                mean_txs_per_block: 99.7,
                max_txs_per_block: 120,
            },
            nodes: vec![NodeUsage { pid: 7, cpu_s: 1.5, rss_max_mb: 80.0, hwm_mb: 90.0 }],
            ..LoadRecord::default()
        }
    }

    #[test]
    fn json_lines_round_trip_and_unknown_kinds_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        let load = sample();
        let verify = VerifyRecord {
            kind: KIND_VERIFY.into(),
            cores: 2,
            points: vec![VerifyPoint { batch: 64, sig_per_s: 1e5, sig_per_s_per_core: 5e4 }],
            sig_per_s: 1e5,
            validators: 4,
            verification_limit_tx_s: 25_000.0,
            ..VerifyRecord::default()
        };
        append(&p, &load).unwrap();
        append(&p, &verify).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"\n{\"kind\": \"future\", \"x\": 1}\n")
            .unwrap();
        append(&p, &load).unwrap();
        let r = read_files(&[&p]).unwrap();
        assert_eq!(r.loads, vec![load.clone(), load]);
        assert_eq!(r.verifies, vec![verify]);
        assert_eq!(r.verification_limit(), Some(25_000.0));
        let mut bad = Results::default();
        assert!(parse("{\"kind\": \"load\", \"offered_tx_s\": \"x\"}", &mut bad).is_err());
        assert!(parse("not json", &mut bad).is_err());
    }

    #[test]
    fn table_and_csv_have_one_line_per_run() {
        let r = sample();
        let row = table_row(&r);
        assert!(row.starts_with("full"), "{row}");
        assert!(row.contains("99.7") && row.contains("1.5") && row.contains("80"), "{row}");
        assert!(table_header().split_whitespace().count() >= 14);
        let csv = to_csv(&[r.clone(), r]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        let cols = CSV_HEADER.split(',').count();
        // The label is quoted (it has a comma and quotes), so split on the rest.
        assert!(lines[1].starts_with("\"full@100, \"\"quoted\"\"\",full,proto,100.0,"));
        assert_eq!(lines[1].rsplit(',').count() - 1, cols, "{}", lines[1]);
    }
}
