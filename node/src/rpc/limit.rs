//! Per-IP request rate limiting (token buckets), as an axum middleware.
//!
//! The table of buckets is bounded: when it is full, idle entries are swept; if it is still
//! full the request is refused with 503 rather than letting memory grow with client count.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::error::ApiError;

const BUCKETS_MAX: usize = 65_536;

#[derive(Debug)]
pub struct IpLimiter {
    rate_per_s: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl IpLimiter {
    pub fn new(rate_per_s: u32, burst: u32) -> Self {
        Self {
            rate_per_s: f64::from(rate_per_s),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whole seconds until an empty bucket holds a token again (`Retry-After`; at least 1).
    pub fn retry_after_s(&self) -> u64 {
        if self.rate_per_s <= 0.0 { 60 } else { (1.0 / self.rate_per_s).ceil().max(1.0) as u64 }
    }

    /// Take one token for `ip`; false if it has none left.
    pub fn allow(&self, ip: IpAddr) -> Option<bool> {
        let now = Instant::now();
        let mut b = self.buckets.lock();
        if b.len() >= BUCKETS_MAX && !b.contains_key(&ip) {
            let (rate, burst) = (self.rate_per_s, self.burst);
            b.retain(|_, (tokens, last)| {
                *tokens + now.duration_since(*last).as_secs_f64() * rate < burst
            });
            if b.len() >= BUCKETS_MAX {
                return None;
            }
        }
        let (tokens, last) = b.entry(ip).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.rate_per_s).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Some(true)
        } else {
            Some(false)
        }
    }
}

pub async fn per_ip(
    State(limiter): State<Arc<IpLimiter>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    match limiter.allow(addr.ip()) {
        Some(true) => next.run(req).await,
        Some(false) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; slow down",
        )
        .with_retry_after(limiter.retry_after_s())
        .into_response(),
        None => ApiError::unavailable("too many clients").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_runs_dry_then_refills() {
        let l = IpLimiter::new(1000, 3);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(l.allow(ip), Some(true));
        assert_eq!(l.allow(ip), Some(true));
        assert_eq!(l.allow(ip), Some(true));
        assert_eq!(l.allow(ip), Some(false));
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(l.allow(ip), Some(true));
        assert_eq!(l.retry_after_s(), 1);
        assert_eq!(IpLimiter::new(0, 1).retry_after_s(), 60);
        // Another address has its own bucket.
        assert_eq!(l.allow("127.0.0.2".parse().unwrap()), Some(true));
    }
}
