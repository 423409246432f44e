//! Crash test: a child process commits blocks in a loop and is killed with SIGKILL at random
//! (seeded) moments; after every kill the store must reopen at a fully committed block.
//!
//! The test binary re-runs itself as the child (`DPX_CRASH_CHILD=<dir>`). Knobs:
//! `DPX_CRASH_ITERS` (kills, default 30), `DPX_CRASH_SEED` (default fixed; printed on failure).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dpx_ledger::{Store, StoreConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::{CHAIN, commit, genesis_writes, model_state, workload};

fn config(retain: Option<u64>) -> StoreConfig {
    StoreConfig { retain_versions: retain, ..StoreConfig::default() }
}

fn retain_from_env() -> Option<u64> {
    std::env::var("DPX_CRASH_RETAIN").ok().and_then(|v| v.parse().ok())
}

/// Child: commit the deterministic workload forever (until killed).
fn child(dir: &str) -> ! {
    let store = Store::open(dir, CHAIN, config(retain_from_env())).expect("child open");
    if !store.has_genesis() {
        store.genesis(genesis_writes()).expect("child genesis");
    }
    loop {
        let (txs, writes) = workload(store.tip_height() + 1);
        commit(&store, txs, writes);
    }
}

fn fail(i: u64, seed: u64, what: &str) -> ! {
    panic!("crash iteration {i} (seed {seed:#x}, set DPX_CRASH_SEED to reproduce): {what}")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    if let Ok(dir) = std::env::var("DPX_CRASH_CHILD") {
        child(&dir);
    }
    let iters = env_u64("DPX_CRASH_ITERS", 30);
    let seed = env_u64("DPX_CRASH_SEED", 0x00d9_c4a5);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let started = Instant::now();
    let mut last_tip = 0;
    let mut tips_moved = 0;
    for i in 0..iters {
        // Every other round prunes, so pruning is crashed into too.
        let retain = if i % 2 == 1 { Some(5) } else { None };
        let mut cmd = Command::new(&exe);
        cmd.env("DPX_CRASH_CHILD", dir.path()).stdout(Stdio::null()).stderr(Stdio::inherit());
        if let Some(r) = retain {
            cmd.env("DPX_CRASH_RETAIN", r.to_string());
        }
        let mut child = cmd.spawn().expect("spawn child");
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..400)));
        child.kill().expect("SIGKILL child"); // std sends SIGKILL on Unix
        child.wait().expect("reap child");

        let store = Store::open(dir.path(), CHAIN, config(None)).expect("reopen after kill");
        let tip = store.tip_height();
        if tip < last_tip {
            fail(
                i,
                seed,
                &format!("tip went back from {last_tip} to {tip}: a synced commit was lost"),
            );
        }
        if !store.has_genesis() {
            // Killed before genesis committed: nothing at all may be visible.
            if tip != 0 || store.state_root(0).expect("store call").is_some() {
                fail(i, seed, "half-written genesis");
            }
            continue;
        }
        let report = store.verify_integrity().unwrap_or_else(|e| fail(i, seed, &e.to_string()));
        // The flat state is exactly the state after `tip` deterministic blocks: nothing half
        // applied, nothing from a later block.
        let model = model_state(tip);
        let stored = store.scan_prefix(b"", None, usize::MAX).expect("store call");
        let expected: Vec<_> = model.into_iter().collect();
        if stored != expected {
            fail(i, seed, &format!("state at tip {tip} differs from the model"));
        }
        if tip > last_tip {
            tips_moved += 1;
        }
        last_tip = tip;
        println!(
            "crash {i:>3}: tip {tip:>5} root {} keys {} index {} blocks {}",
            report.state_root.short(),
            report.state_keys,
            report.tx_index_entries,
            report.blocks_checked
        );
    }
    assert!(
        iters == 0 || tips_moved > 0,
        "no child ever committed a block: the crash test tested nothing"
    );
    println!(
        "crash test: {iters} SIGKILLs, seed {seed:#x}, final tip {last_tip}, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
