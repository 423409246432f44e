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
    /// The one-way delay range once healed.
    pub healed_delay_ms: (u64, u64),
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
            healed_delay_ms: (1, 20),
        }
    }

    /// A fault-free network from time zero: no loss, no duplication, no partition, a one-way
    /// delay drawn uniformly from `min..=max` ms (latency with jitter).
    pub fn fixed(delay_ms_min: u64, delay_ms_max: u64) -> Self {
        Self {
            delay_ms_min,
            delay_ms_max,
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            partitions: Vec::new(),
            heal_at_ms: 0,
            healed_delay_ms: (delay_ms_min, delay_ms_max),
        }
    }

    /// The longest one-way delay of a message sent at `now` (duplicates aside).
    pub fn max_delay_ms(&self, now: u64) -> u64 {
        if now >= self.heal_at_ms { self.healed_delay_ms.1 } else { self.delay_ms_max }
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
            return vec![rng.gen_range(self.healed_delay_ms.0..=self.healed_delay_ms.1)];
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
