//! `GET /v1/aggregates`: counts over a height or time range, or a series of time buckets,
//! from the node's aggregate index (`crate::aggregates`): each answer reads two records per
//! range, never the chain.
//!
//! For supervisors only: counts per block would tell the public what kind of transaction a
//! one-transaction block holds, which the read policy hides from them.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Caller, Reader, forbidden};
use super::{ApiError, ApiQuery, ApiResult, AppState};
use crate::aggregates::{Aggregates, COUNTERS, RangeCounts, counts_json};

/// Most buckets one series holds.
pub const BUCKETS_MAX: u64 = 400;
/// Shortest bucket.
pub const INTERVAL_MIN_MS: u64 = 1000;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AggregateQuery {
    pub from_height: Option<u64>,
    pub to_height: Option<u64>,
    /// Blocks with times at or after this (ms since the Unix epoch).
    pub from_time_ms: Option<u64>,
    /// Blocks with times before this.
    pub to_time_ms: Option<u64>,
    /// With a time range: one bucket per this many ms.
    pub interval_ms: Option<u64>,
}

/// What was asked, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Heights { from: u64, to: u64 },
    Times { from_ms: u64, to_ms: u64 },
    Series { from_ms: u64, to_ms: u64, interval_ms: u64 },
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_query", message)
}

impl AggregateQuery {
    /// The question, with heights cut to `indexed`.
    pub fn check(&self, indexed: u64) -> ApiResult<Ask> {
        let heights = self.from_height.is_some() || self.to_height.is_some();
        let times = self.from_time_ms.is_some() || self.to_time_ms.is_some();
        if heights && times {
            return Err(bad("give a height range or a time range, not both"));
        }
        if let Some(interval_ms) = self.interval_ms {
            let (Some(from_ms), Some(to_ms)) = (self.from_time_ms, self.to_time_ms) else {
                return Err(bad("interval_ms needs from_time_ms and to_time_ms"));
            };
            if interval_ms < INTERVAL_MIN_MS {
                return Err(bad(format!("interval_ms must be at least {INTERVAL_MIN_MS}")));
            }
            if from_ms >= to_ms {
                return Err(bad("from_time_ms must be below to_time_ms"));
            }
            if (to_ms - from_ms).div_ceil(interval_ms) > BUCKETS_MAX {
                return Err(bad(format!("a series has at most {BUCKETS_MAX} buckets")));
            }
            return Ok(Ask::Series { from_ms, to_ms, interval_ms });
        }
        if times {
            let (from_ms, to_ms) =
                (self.from_time_ms.unwrap_or(0), self.to_time_ms.unwrap_or(u64::MAX));
            if from_ms > to_ms {
                return Err(bad("from_time_ms is above to_time_ms"));
            }
            return Ok(Ask::Times { from_ms, to_ms });
        }
        let (from, to) = (self.from_height.unwrap_or(1).max(1), self.to_height.unwrap_or(indexed));
        if from > to.max(1) && self.to_height.is_some() {
            return Err(bad("from_height is above to_height"));
        }
        Ok(Ask::Heights { from, to: to.min(indexed) })
    }
}

fn range_json(r: &RangeCounts) -> Value {
    json!({ "from_height": r.from, "to_height": r.to, "counts": counts_json(&r.counts) })
}

/// The answer to `ask` (blocking: reads the index file).
pub fn answer(a: &Aggregates, ask: Ask) -> anyhow::Result<Value> {
    let mut out = match ask {
        Ask::Heights { from, to } => range_json(&a.heights(from, to)?),
        Ask::Times { from_ms, to_ms } => {
            let mut v = range_json(&a.times(from_ms, to_ms)?);
            v["from_time_ms"] = json!(from_ms);
            v["to_time_ms"] = json!(to_ms);
            v
        }
        Ask::Series { from_ms, to_ms, interval_ms } => {
            let mut buckets = Vec::new();
            let mut t = from_ms;
            while t < to_ms {
                let end = t.saturating_add(interval_ms).min(to_ms);
                let mut v = range_json(&a.times(t, end)?);
                v["from_time_ms"] = json!(t);
                v["to_time_ms"] = json!(end);
                buckets.push(v);
                t = end;
            }
            json!({ "interval_ms": interval_ms, "buckets": buckets })
        }
    };
    out["indexed_height"] = json!(a.indexed());
    out["counted_from_height"] = json!(a.counted_from());
    Ok(out)
}

/// The handler.
pub async fn get(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AggregateQuery>,
) -> ApiResult<Json<Value>> {
    if !Reader::of(s.checker.is_opaque(), caller).sees_all() {
        return Err(forbidden("aggregate counts"));
    }
    let a = s
        .aggregates
        .clone()
        .ok_or_else(|| ApiError::unavailable("this node keeps no aggregate index"))?;
    let ask = q.check(a.indexed())?;
    let v = tokio::task::spawn_blocking(move || answer(&a, ask))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(Json(v))
}

/// The counters, for the OpenAPI document.
pub fn counters_doc() -> String {
    COUNTERS.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> AggregateQuery {
        AggregateQuery::default()
    }

    #[test]
    fn questions_are_checked() {
        assert_eq!(q().check(9).unwrap(), Ask::Heights { from: 1, to: 9 });
        assert_eq!(
            AggregateQuery { from_height: Some(0), to_height: Some(99), ..q() }.check(9).unwrap(),
            Ask::Heights { from: 1, to: 9 }
        );
        assert_eq!(
            AggregateQuery { from_time_ms: Some(5), ..q() }.check(9).unwrap(),
            Ask::Times { from_ms: 5, to_ms: u64::MAX }
        );
        let series = AggregateQuery {
            from_time_ms: Some(0),
            to_time_ms: Some(400_000),
            interval_ms: Some(1000),
            ..q()
        };
        assert_eq!(
            series.check(9).unwrap(),
            Ask::Series { from_ms: 0, to_ms: 400_000, interval_ms: 1000 }
        );
        let refused = |a: AggregateQuery, want: &str| {
            let e = a.check(9).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "bad_query"));
            assert!(e.message.contains(want), "{want:?} not in {:?}", e.message);
        };
        refused(AggregateQuery { from_height: Some(1), from_time_ms: Some(1), ..q() }, "not both");
        refused(AggregateQuery { from_height: Some(5), to_height: Some(4), ..q() }, "above");
        refused(AggregateQuery { from_time_ms: Some(5), to_time_ms: Some(4), ..q() }, "above");
        refused(AggregateQuery { interval_ms: Some(1000), ..q() }, "needs");
        refused(
            AggregateQuery {
                from_time_ms: Some(0),
                to_time_ms: Some(10_000),
                interval_ms: Some(999),
                ..q()
            },
            "at least",
        );
        refused(
            AggregateQuery {
                from_time_ms: Some(0),
                to_time_ms: Some(401_000),
                interval_ms: Some(1000),
                ..q()
            },
            "400 buckets",
        );
        refused(
            AggregateQuery {
                from_time_ms: Some(0),
                to_time_ms: Some(u64::MAX),
                interval_ms: Some(1000),
                ..q()
            },
            "400 buckets",
        );
        refused(
            AggregateQuery {
                from_time_ms: Some(7),
                to_time_ms: Some(7),
                interval_ms: Some(1000),
                ..q()
            },
            "below",
        );
    }
}
