//! Open-loop scheduling: every transaction gets its send time before the run starts (a fixed
//! rate, not "send when the last one returned"), and a connection sends what is due in
//! batches. A slow node therefore shows up as latency and backlog, never as a lower offered
//! load (no coordinated omission).

use std::time::Duration;

/// Send time of transaction `i` at `rate_per_s`, from the start of the window.
pub fn send_offset(i: u64, rate_per_s: f64) -> Duration {
    assert!(rate_per_s > 0.0, "rate must be positive");
    Duration::from_secs_f64(i as f64 / rate_per_s)
}

/// Transactions offered in a window: `rate × duration`, rounded.
pub fn offered_count(rate_per_s: f64, duration: Duration) -> u64 {
    (rate_per_s * duration.as_secs_f64()).round() as u64
}

/// When a connection whose next unsent transaction is `pending[0]` should send: as soon as a
/// full batch is due, or `linger` after the first one became due, whichever comes first.
/// `pending` are send offsets in ascending order.
pub fn batch_deadline(pending: &[Duration], batch: usize, linger: Duration) -> Option<Duration> {
    let first = *pending.first()?;
    let full = pending.get(batch.max(1) - 1).copied().unwrap_or(Duration::MAX);
    Some(full.min(first + linger))
}

/// How many of `pending` (ascending offsets) are due at `now`, at most `batch`.
pub fn due_count(pending: &[Duration], now: Duration, batch: usize) -> usize {
    pending.iter().take(batch.max(1)).take_while(|t| **t <= now).count()
}

/// A smooth weighted round-robin (as nginx balances upstreams): over any `sum(weights)`
/// consecutive picks each index appears exactly `weight` times, spread evenly. Used for the
/// operation mix, so the mix is exact and not bunched.
#[derive(Debug, Clone)]
pub struct WeightedCycle {
    weights: Vec<i64>,
    current: Vec<i64>,
    total: i64,
}

impl WeightedCycle {
    pub fn new(weights: &[u32]) -> Self {
        let weights: Vec<i64> = weights.iter().map(|w| i64::from(*w)).collect();
        let total = weights.iter().sum();
        assert!(total > 0, "at least one weight must be positive");
        Self { current: vec![0; weights.len()], weights, total }
    }
}

impl Iterator for WeightedCycle {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        for (c, w) in self.current.iter_mut().zip(&self.weights) {
            *c += w;
        }
        let (best, _) = self
            .current
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
            .expect("weights are not empty");
        self.current[best] -= self.total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_the_rate() {
        assert_eq!(send_offset(0, 100.0), Duration::ZERO);
        assert_eq!(send_offset(100, 100.0), Duration::from_secs(1));
        assert_eq!(send_offset(5, 1000.0), Duration::from_millis(5));
        assert_eq!(offered_count(333.0, Duration::from_secs(3)), 999);
        assert_eq!(offered_count(0.5, Duration::from_secs(3)), 2);
        // Evenly spaced: 1000 tx/s over 2 s lands the last one just before 2 s.
        let last = send_offset(offered_count(1000.0, Duration::from_secs(2)) - 1, 1000.0);
        assert_eq!(last, Duration::from_millis(1999));
    }

    #[test]
    fn batches_send_when_full_or_after_linger() {
        let ms = Duration::from_millis;
        let linger = ms(10);
        // Sparse: one due, next far away -> linger after the first.
        assert_eq!(batch_deadline(&[ms(100), ms(500)], 4, linger), Some(ms(110)));
        // Dense: the 4th is due before the linger ends -> send then.
        let dense = [ms(100), ms(101), ms(102), ms(103), ms(104)];
        assert_eq!(batch_deadline(&dense, 4, linger), Some(ms(103)));
        assert_eq!(batch_deadline(&[], 4, linger), None);
        // Fewer than a batch left: linger.
        assert_eq!(batch_deadline(&[ms(7)], 64, linger), Some(ms(17)));
        assert_eq!(due_count(&dense, ms(102), 64), 3);
        assert_eq!(due_count(&dense, ms(200), 2), 2);
        assert_eq!(due_count(&dense, ms(99), 64), 0);
    }

    #[test]
    fn weighted_cycle_is_exact_and_spread() {
        let picks: Vec<usize> = WeightedCycle::new(&[60, 25, 10, 5]).take(200).collect();
        let count = |k| picks.iter().filter(|p| **p == k).count();
        assert_eq!((count(0), count(1), count(2), count(3)), (120, 50, 20, 10));
        // Spread: the 5 % kind never comes twice within 10 picks.
        let fives: Vec<usize> =
            picks.iter().enumerate().filter(|(_, p)| **p == 3).map(|(i, _)| i).collect();
        assert!(fives.windows(2).all(|w| w[1] - w[0] >= 10), "{fives:?}");
        // A zero weight is never picked.
        assert!(WeightedCycle::new(&[0, 1, 0]).take(10).all(|k| k == 1));
    }
}
