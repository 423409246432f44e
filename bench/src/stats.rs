//! Latency summaries: exact nearest-rank percentiles over every sample (no sampling or
//! bucketing, which would bias the tail).

use serde::{Deserialize, Serialize};

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending): the smallest
/// value with at least `p` % of the samples at or below it. `None` for no samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    assert!(p > 0.0 && p <= 100.0, "percentile {p} out of (0, 100]");
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "samples must be sorted");
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl LatencySummary {
    /// Summarise samples given in microseconds (sorted here).
    pub fn from_micros(mut samples_us: Vec<u64>) -> Self {
        if samples_us.is_empty() {
            return Self::default();
        }
        samples_us.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let pct = |p| ms(percentile(&samples_us, p).unwrap_or(0));
        let sum: u128 = samples_us.iter().map(|x| u128::from(*x)).sum();
        Self {
            count: samples_us.len() as u64,
            mean_ms: sum as f64 / samples_us.len() as f64 / 1000.0,
            p50_ms: pct(50.0),
            p95_ms: pct(95.0),
            p99_ms: pct(99.0),
            max_ms: ms(*samples_us.last().unwrap_or(&0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_small_sets() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 90.0), Some(9));
        assert_eq!(percentile(&v, 95.0), Some(10));
        assert_eq!(percentile(&v, 100.0), Some(10));
        assert_eq!(percentile(&v, 0.1), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn p99_sees_a_single_outlier_in_a_hundred() {
        // 99 fast samples and one slow: p99 is the 99th value (fast), max is the outlier; with
        // 2 slow samples in 100, p99 must be slow.
        let mut v = vec![1_000u64; 99];
        v.push(900_000);
        let s = LatencySummary::from_micros(v.clone());
        assert!((s.p99_ms - 1.0).abs() < 1e-9);
        assert!((s.max_ms - 900.0).abs() < 1e-9);
        v[0] = 800_000;
        let s = LatencySummary::from_micros(v);
        assert!((s.p99_ms - 800.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn summary_of_unsorted_input() {
        let s = LatencySummary::from_micros(vec![3_000, 1_000, 2_000, 4_000]);
        assert_eq!(s.count, 4);
        assert!((s.mean_ms - 2.5).abs() < 1e-9);
        assert!((s.p50_ms - 2.0).abs() < 1e-9);
        assert!((s.max_ms - 4.0).abs() < 1e-9);
        assert_eq!(LatencySummary::from_micros(Vec::new()), LatencySummary::default());
    }
}
