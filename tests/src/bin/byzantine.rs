//! `byzantine`: the adversary's runner behind `scripts/byzantine.sh` (see
//! `dpx_tests::byzantine`). Starts a 4-validator cluster of the `dpx` binary next to it (or
//! `DPX_BIN`), runs the scenarios in order and prints one table row per scenario.
//!
//! ```text
//! byzantine [--only s1,s2,...] [--short] [--rss-max-mib N] [--live-s N] [--catchup-s N] [--list]
//! ```
//!
//! Exit 0 when every scenario passed, 1 when any failed, 2 on a usage error.

use std::process::ExitCode;

use dpx_tests::byzantine::{Opts, Row, SCENARIOS, run_blocking};

fn usage() -> ExitCode {
    eprintln!(
        "usage: byzantine [--only s1,s2,...] [--short] [--rss-max-mib N] [--live-s N] [--catchup-s N] [--list]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut opts = Opts::new(SCENARIOS.iter().map(|(n, _)| (*n).to_owned()).collect(), false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |name: &str| -> Option<u64> {
            let v = it.next()?.parse().ok();
            if v.is_none() {
                eprintln!("{name} needs a number");
            }
            v
        };
        match a.as_str() {
            "--short" => opts.short = true,
            "--list" => {
                for (n, what) in SCENARIOS {
                    println!("{n:<14} {what}");
                }
                return ExitCode::SUCCESS;
            }
            "--only" => match it.next() {
                Some(v) => opts.scenarios = v.split(',').map(str::to_owned).collect(),
                None => return usage(),
            },
            "--rss-max-mib" => match num(a) {
                Some(v) => opts.rss_max_mib = v,
                None => return usage(),
            },
            "--live-s" => match num(a) {
                Some(v) => opts.live_s = v,
                None => return usage(),
            },
            "--catchup-s" => match num(a) {
                Some(v) => opts.catchup_s = v,
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    println!(
        "byzantine: {} scenario(s), {} run, RSS bound {} MiB per validator",
        opts.scenarios.len(),
        if opts.short { "short" } else { "full" },
        opts.rss_max_mib
    );
    println!("{}", Row::header());
    let rows = match run_blocking(&opts, |row| println!("{}", row.line())) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("byzantine: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let failed = rows.iter().filter(|r| !r.pass).count();
    println!("\nResult");
    println!("{}", Row::header());
    for r in &rows {
        println!("{}", r.line());
    }
    println!("{} passed, {failed} failed", rows.len() - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
