//! The simulated network: per-message delay, drop and duplication, and partitions that heal.
//! Reordering follows from independent random delays.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Fault rates of one run, drawn from the seed.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub delay_ms_min: u64,
    pub delay_ms_max: u64,
    /// Probability (per mille) that a message is lost.
    pub drop_per_mille: u32,
    /// Probability (per mille) that a message is delivered twice.
    pub duplicate_per_mille: u32,
    /// Partitions: `(start_ms, end_ms, side)`; instances with `side[i]` true are cut off from
    /// the others during the interval.
    pub partitions: Vec<(u64, u64, Vec<bool>)>,
    /// After this time the network is healed: no loss, no partition, short delays.
    pub heal_at_ms: u64,
}

impl NetConfig {
    /// Random faults for `instances` nodes, healing at `heal_at_ms`.
    pub fn random(rng: &mut ChaCha8Rng, instances: usize, heal_at_ms: u64) -> Self {
        let partitions = (0..rng.gen_range(0..3))
            .map(|_| {
                let start = rng.gen_range(0..heal_at_ms);
                let end = (start + rng.gen_range(100..800)).min(heal_at_ms);
                let side = (0..instances).map(|_| rng.gen_bool(0.5)).collect();
                (start, end, side)
            })
            .collect();
        Self {
            delay_ms_min: 1,
            delay_ms_max: rng.gen_range(5..150),
            drop_per_mille: rng.gen_range(0..250),
            duplicate_per_mille: rng.gen_range(0..100),
            partitions,
            heal_at_ms,
        }
    }

    fn cut(&self, now: u64, from: usize, to: usize) -> bool {
        now < self.heal_at_ms
            && self
                .partitions
                .iter()
                .any(|(s, e, side)| now >= *s && now < *e && side[from] != side[to])
    }

    /// Delivery delays for one message from `from` to `to` sent at `now`: none if lost, two if
    /// duplicated.
    pub fn deliveries(&self, rng: &mut ChaCha8Rng, now: u64, from: usize, to: usize) -> Vec<u64> {
        if now >= self.heal_at_ms {
            return vec![rng.gen_range(1..=20)];
        }
        if self.cut(now, from, to) || rng.gen_range(0..1000) < self.drop_per_mille {
            return Vec::new();
        }
        let mut out = vec![rng.gen_range(self.delay_ms_min..=self.delay_ms_max)];
        if rng.gen_range(0..1000) < self.duplicate_per_mille {
            out.push(rng.gen_range(self.delay_ms_min..=self.delay_ms_max * 2));
        }
        out
    }
}
