//! `dpx-bench`: the load generator and benchmark tools for dpx networks (issue 9).
//!
//! - `load`: one open-loop run at one offered rate against running validators, in `full` mode
//!   (signed marketplace transactions: a set-up, then a pre-signed mix of grant uses, orders,
//!   listings and admissions) or `consensus-only` mode (opaque payloads on a
//!   `--consensus-only` chain). Commits are observed on every node's event stream; the run
//!   prints a table row and appends a JSON record (see `record.rs`).
//! - `verify-limit`: ed25519 batch verifications per second on all cores, and the ceiling it
//!   puts on a network whose validators all run on this machine.
//! - `chart`: PNG (committed vs offered, latency vs offered) and CSV from the records.
//! - `report`: the table of all runs and the saturation figure against the verification limit.
//!
//! `scripts/bench.sh` drives a whole sweep on fresh local networks.

mod chart;
mod load;
mod observer;
mod procstat;
mod record;
mod rpc;
mod schedule;
mod sender;
mod sse;
mod stats;
mod tracker;
mod verify_limit;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "dpx-bench", version, about = "Load generator and benchmarks for dpx networks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// One timed run at one offered rate against running validators.
    Load(Box<load::LoadArgs>),
    /// ed25519 batch verifications per second on this machine, and the verification limit.
    VerifyLimit(verify_limit::VerifyArgs),
    /// Draw the results as PNG (and CSV).
    Chart(chart::ChartArgs),
    /// Print the table of load runs and the saturation throughput.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Result files (JSON Lines).
    #[arg(long = "in", required = true)]
    inputs: Vec<PathBuf>,
    /// Only runs of this mode.
    #[arg(long)]
    mode: Option<String>,
    /// Print only committed ÷ offered of the last run (for scripts).
    #[arg(long)]
    last_ratio: bool,
}

/// A run committing less than this share of its offered load is past saturation.
const SATURATED: f64 = 0.9;

fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let results = record::read_files(&args.inputs)?;
    let loads: Vec<&record::LoadRecord> =
        results.loads.iter().filter(|r| args.mode.as_ref().is_none_or(|m| *m == r.mode)).collect();
    if args.last_ratio {
        let last = loads.last().ok_or_else(|| anyhow::anyhow!("no load records"))?;
        println!("{:.4}", last.committed_tx_s / last.offered_tx_s);
        return Ok(());
    }
    println!("{}", record::table_header());
    for r in &loads {
        println!("{}", record::table_row(r));
    }
    let limit = results.verification_limit();
    let mut modes: Vec<&str> = Vec::new();
    for r in &loads {
        if !modes.contains(&r.mode.as_str()) {
            modes.push(&r.mode);
        }
    }
    for mode in modes {
        let runs: Vec<&&record::LoadRecord> = loads.iter().filter(|r| r.mode == mode).collect();
        let best = runs
            .iter()
            .max_by(|a, b| a.committed_tx_s.total_cmp(&b.committed_tx_s))
            .expect("the mode has runs");
        let saturated = runs.iter().any(|r| r.committed_tx_s < SATURATED * r.offered_tx_s);
        let what = if saturated { "saturation" } else { "not saturated at the rates tried; best" };
        let frac = limit.map_or_else(
            || "no verification limit measured".to_owned(),
            |l| {
                format!(
                    "{:.1} % of the verification limit {l:.0} tx/s",
                    100.0 * best.committed_tx_s / l
                )
            },
        );
        let note =
            if mode == "consensus-only" { " (this mode verifies no signatures)" } else { "" };
        println!(
            "{mode}: {what} {:.0} committed tx/s (offered {:.0}, p99 {:.0} ms) = {frac}{note}",
            best.committed_tx_s, best.offered_tx_s, best.latency.p99_ms
        );
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Load(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let rec = rt.block_on(load::run(*args))?;
            // Nothing was sent at all: a broken set-up, not a measurement.
            anyhow::ensure!(rec.sent > 0 || rec.scheduled == 0, "no transaction was sent");
            Ok(())
        }
        Cmd::VerifyLimit(args) => verify_limit::run(&args).map(|_| ()),
        Cmd::Chart(args) => chart::run(&args),
        Cmd::Report(args) => report(&args),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dpx-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
