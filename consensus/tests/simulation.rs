//! Deterministic simulation: seeds × shapes × byzantine behaviours, safety after every event,
//! liveness after the network heals, trace-hash determinism, and a control run with more than
//! f byzantine validators that the checker must catch.
//!
//! `DPX_SIM_SEEDS=N` multiplies the default seed counts by N for a soak;
//! `DPX_SIM_SEED=s DPX_SIM_SHAPE=name` reruns one failing seed.

mod sim;

use sim::network::NetConfig;
use sim::{Attack, Outcome, RunConfig, Shape};

fn seeds(default: u64) -> std::ops::Range<u64> {
    let factor =
        std::env::var("DPX_SIM_SEEDS").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(1).max(1);
    0..default * factor
}

fn shape_by_name(name: &str) -> Shape {
    match name {
        "n7f2" => Shape::n7f2(),
        "weighted" => Shape::weighted(),
        _ => Shape::n4f1(),
    }
}

/// Run `count` seeds of `shape`, cycling through every attack; fail with the reproducing seed.
fn sweep(shape: &Shape, count: u64, offset: u64) -> Vec<Outcome> {
    let cfg = RunConfig::default();
    let list: Vec<u64> = match std::env::var("DPX_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(s) if std::env::var("DPX_SIM_SHAPE").is_ok_and(|n| n == shape.name) => vec![s],
        _ => seeds(count).map(|s| s + offset).collect(),
    };
    let mut outcomes = Vec::new();
    for seed in list {
        let attack = Attack::ALL[(seed % Attack::ALL.len() as u64) as usize];
        let o = sim::run(seed, shape, attack, &cfg);
        assert!(o.violations.is_empty(), "SAFETY VIOLATION: {}", o.describe());
        assert!(o.live, "LIVENESS FAILURE after heal: {}", o.describe());
        outcomes.push(o);
    }
    let heights: u64 = outcomes.iter().map(|o| o.heights_decided).sum();
    let crashes: u64 = outcomes.iter().map(|o| o.crashes).sum();
    let evidence: u64 = outcomes.iter().map(|o| o.evidence).sum();
    println!(
        "{}: {} seeds ok, {heights} heights decided (min per run summed), {crashes} crashes, {evidence} evidence",
        shape.name,
        outcomes.len()
    );
    outcomes
}

#[test]
fn n4f1_seeds() {
    sweep(&Shape::n4f1(), 500, 0);
}

#[test]
fn n7f2_seeds() {
    sweep(&Shape::n7f2(), 250, 100_000);
}

#[test]
fn weighted_seeds() {
    sweep(&Shape::weighted(), 250, 200_000);
}

#[test]
fn same_seed_same_trace() {
    let cfg = RunConfig::default();
    for seed in [1, 2, 3] {
        for attack in Attack::ALL {
            let a = sim::run(seed, &Shape::n4f1(), attack, &cfg);
            let b = sim::run(seed, &Shape::n4f1(), attack, &cfg);
            assert_eq!(a.trace_hash, b.trace_hash, "seed {seed} {attack:?} is not deterministic");
            assert_eq!(a.events, b.events);
        }
    }
    let a = sim::run(1, &Shape::n4f1(), Attack::None, &cfg);
    let b = sim::run(2, &Shape::n4f1(), Attack::None, &cfg);
    assert_ne!(a.trace_hash, b.trace_hash, "different seeds should give different traces");
}

#[test]
fn equivocator_is_caught_as_evidence_and_harmless() {
    let mut evidence = 0;
    for seed in 0..40 {
        for shape in [Shape::n4f1(), Shape::n7f2()] {
            let o = sim::run(seed, &shape, Attack::Equivocator, &RunConfig::default());
            assert!(o.violations.is_empty() && o.live, "{}", o.describe());
            evidence += o.evidence;
        }
    }
    assert!(evidence > 0, "equivocation never produced evidence");
}

#[test]
fn garbage_is_refused_with_typed_errors() {
    let mut refused = std::collections::BTreeMap::new();
    for seed in 0..30 {
        let o = sim::run(seed, &Shape::n4f1(), Attack::Garbage, &RunConfig::default());
        assert!(o.violations.is_empty() && o.live, "{}", o.describe());
        for (k, v) in o.refused {
            *refused.entry(k).or_insert(0) += v;
        }
    }
    println!("garbage refusals: {refused:?}");
    for kind in
        ["BadSignature", "UnknownValidator", "FarFutureHeight", "FarFutureRound", "decode:TooLarge"]
    {
        assert!(refused.get(kind).copied().unwrap_or(0) > 0, "no {kind} refusal seen: {refused:?}");
    }
}

#[test]
fn twins_and_silent_stay_safe_and_live() {
    for seed in 0..30 {
        for attack in [Attack::Twins, Attack::Silent] {
            for shape in [Shape::n4f1(), Shape::weighted()] {
                let o = sim::run(seed, &shape, attack, &RunConfig::default());
                assert!(o.violations.is_empty() && o.live, "{}", o.describe());
            }
        }
    }
}

#[test]
fn crash_restart_from_persisted_state_never_double_signs() {
    let cfg = RunConfig { crash_per_mille: 60, heal_at_ms: 3_000, ..RunConfig::default() };
    let mut crashes = 0;
    for seed in 0..40 {
        let o = sim::run(seed, &Shape::n4f1(), Attack::None, &cfg);
        assert!(o.violations.is_empty() && o.live, "{}", o.describe());
        crashes += o.crashes;
    }
    assert!(crashes > 40, "too few crashes to mean anything: {crashes}");
}

/// The control: more than f byzantine validators (two split-brain equivocators of four). The
/// checker must report a violation, proving it can fail.
#[test]
fn control_more_than_f_byzantine_is_flagged() {
    let shape = Shape { name: "n4f2-control", powers: vec![1; 4], byzantine: vec![2, 3] };
    let flagged: Vec<u64> = (0..30)
        .filter(|seed| {
            !sim::run(*seed, &shape, Attack::Equivocator, &RunConfig::default())
                .violations
                .is_empty()
        })
        .collect();
    println!("control (n=4, 2 equivocators): violations flagged in {} of 30 seeds", flagged.len());
    assert!(
        !flagged.is_empty(),
        "the checker never flagged a violation with more than f byzantine"
    );
}

#[test]
fn one_seed_from_env_or_default() {
    let shape = shape_by_name(&std::env::var("DPX_SIM_SHAPE").unwrap_or_default());
    let seed = std::env::var("DPX_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let attack = Attack::ALL[(seed % Attack::ALL.len() as u64) as usize];
    let o = sim::run(seed, &shape, attack, &RunConfig::default());
    println!("{}", o.describe());
    assert!(o.violations.is_empty() && o.live, "{}", o.describe());
}

/// Scale: 100 equal validators, 33 of them split-brain equivocators (as proposers they send a
/// different value to each half of the honest validators, as voters they echo each half's
/// votes back to that half only), 100 ms ± 10 ms one-way latency, no loss. Reports heights per
/// second of simulated time and messages delivered per height.
#[test]
fn n100_scale() {
    const HEIGHTS: u64 = 6;
    let seed = std::env::var("DPX_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let heights =
        std::env::var("DPX_SIM_HEIGHTS").ok().and_then(|s| s.parse().ok()).unwrap_or(HEIGHTS);
    let shape = Shape::n100();
    let cfg = RunConfig {
        heal_at_ms: 0,
        liveness_window_ms: 120_000,
        new_heights_after_heal: heights,
        crash_per_mille: 0,
        net: Some(NetConfig::fixed(90, 110)),
    };
    let started = std::time::Instant::now();
    let o = sim::run(seed, &shape, Attack::Equivocator, &cfg);
    let wall = started.elapsed().as_secs_f64();
    assert!(o.violations.is_empty(), "SAFETY VIOLATION: {}", o.describe());
    assert!(o.live && o.heights_decided >= heights, "LIVENESS FAILURE: {}", o.describe());
    let decided = o.decided_at_ms.len() as u64;
    let span_s = *o.decided_at_ms.last().expect("decided") as f64 / 1000.0;
    let n = shape.powers.len() as f64;
    let per_height = o.delivered as f64 / decided as f64;
    println!(
        "n100 scale: {} validators, {} byzantine (equivocators), latency 90-110 ms, seed {seed}: {decided} heights decided in {span_s:.2} s simulated = {:.2} heights/s; {per_height:.0} messages delivered per height ({:.0} per validator per height, {:.0} to honest), {:.0} sent per height ({:.0} by gossip relays, {:.0} by byzantine), {} evidence; decided at {:?} ms; wall {wall:.1} s",
        shape.powers.len(),
        shape.byzantine.len(),
        decided as f64 / span_s,
        per_height / n,
        o.delivered_to_honest as f64 / decided as f64,
        o.sent as f64 / decided as f64,
        o.sent_by_gossip as f64 / decided as f64,
        o.sent_by_byzantine as f64 / decided as f64,
        o.evidence,
        o.decided_at_ms,
    );
}
