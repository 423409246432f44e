//! `GET /v1/events`: server-sent events with filters and a resume cursor.
//!
//! `from_height=H` replays every event from block `H` (read back from the ledger, through the
//! same derivation as live events) and then continues live, so a subscriber that reconnects
//! with the height after the last one it saw misses nothing. A subscriber that falls too far
//! behind gets a final `lagged` event naming the height to resume from; events are never
//! dropped silently. What each subscriber may cost is bounded: see [`super::subscriber`].
//!
//! A standard EventSource that reconnects sends the `id:` of the last event it received as
//! `Last-Event-ID`; the stream then resumes strictly after that cursor (`H.N`, compared as
//! the integer pair (H, N)), whatever `from_height` says, so nothing is lost or repeated.
//!
//! Events go only to callers that may read them (the read policy; see `crate::events`):
//! block events to anyone, a transaction's events to its parties and to supervisors. The
//! caller's rights are evaluated when the stream opens.
//!
//! The query is checked before a slot is taken: unknown parameters, kinds that no event has,
//! keys and ids that are not 32 bytes of hex, and heights more than a few blocks past the
//! tip are refused with 400 (they used to give a stream that never matched, holding a slot).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use prometheus_client::metrics::gauge::Gauge;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::auth::{Caller, Reader};
use super::subscriber::{
    Cursor, EventReader, QUEUE_EVENTS, Subscriber, Subscription, parse_cursor,
};
use super::{ApiError, ApiQuery, ApiResult, AppState};
use crate::config::RpcSection;
use crate::events::Filter;
use crate::metrics::Metrics;

/// How far past the tip `from_height` may point: a client that resumes on a node a few blocks
/// behind the one it came from waits for them; a larger height is a mistake, refused.
pub const FROM_HEIGHT_AHEAD_MAX: u64 = 16;
/// A comment is sent this often on a quiet stream, so a connection whose client vanished
/// fails a write and is closed (and the slot freed) even if no event would ever be sent.
const KEEP_ALIVE_S: u64 = 15;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    pub from_height: Option<u64>,
    /// Comma-separated kinds: block, tx, policy_decision, grant.consumed, ...
    pub kinds: Option<String>,
    pub participant: Option<String>,
    pub product: Option<String>,
    /// Add the block's transaction hashes to each `block` event (`data.tx_hashes`): one event
    /// per block is then enough to follow many transactions (load generators, indexers).
    pub tx_hashes: Option<bool>,
}

/// The event streams of one node: their slots and their limits.
#[derive(Debug)]
pub struct EventsHub {
    slots: Arc<Semaphore>,
    buffer_bytes: usize,
    metrics: Metrics,
}

impl EventsHub {
    pub fn new(rpc: &RpcSection, metrics: Metrics) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(rpc.max_subscribers)),
            buffer_bytes: rpc.subscriber_buffer_bytes.max(1),
            metrics,
        }
    }
}

/// A subscriber's place: its slot and its count in the gauge, both given back on drop.
#[derive(Debug)]
struct Slot {
    _permit: OwnedSemaphorePermit,
    gauge: Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Longest `Last-Event-ID` accepted (two 20-digit numbers and a dot).
const LAST_EVENT_ID_BYTES_MAX: usize = 41;

/// The `Last-Event-ID` header's cursor, if the client sent one.
fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<Cursor>> {
    let mut all = headers.get_all("last-event-id").iter();
    let Some(v) = all.next() else { return Ok(None) };
    let bad = || {
        ApiError::bad_request(
            "bad_cursor",
            "Last-Event-ID must be one event id H.N (two decimal integers), as sent in id:",
        )
    };
    if all.next().is_some() || v.len() > LAST_EVENT_ID_BYTES_MAX {
        return Err(bad());
    }
    let text = v.to_str().map_err(|_| bad())?.trim();
    // An empty Last-Event-ID is what an EventSource sends before it saw any id.
    if text.is_empty() {
        return Ok(None);
    }
    parse_cursor(text).map(Some).ok_or_else(bad)
}

/// Check the query and turn it into a subscription (no slot is taken for a bad one).
fn subscription(
    q: &EventsQuery,
    after: Option<Cursor>,
    reader: EventReader,
    tip: u64,
    buffer_bytes: usize,
) -> ApiResult<Subscription> {
    let filter = Filter::parse(q.kinds.as_deref(), q.participant.as_deref(), q.product.as_deref())
        .map_err(|e| ApiError::bad_request("bad_filter", e.to_string()))?;
    let latest = tip.saturating_add(1).saturating_add(FROM_HEIGHT_AHEAD_MAX);
    // A resume cursor wins over from_height: it is where the client really is.
    let (from_height, what) = match (after, q.from_height) {
        (Some((h, _)), _) => (Some(h), "Last-Event-ID"),
        (None, h) => (h, "from_height"),
    };
    let from_height = match from_height {
        Some(h) if h > latest => {
            return Err(ApiError::bad_request(
                "bad_height",
                format!("{what} {h} is past the tip ({tip}) by more than {FROM_HEIGHT_AHEAD_MAX}"),
            ));
        }
        Some(h) => h.max(1),
        None => tip.saturating_add(1),
    };
    Ok(Subscription {
        filter,
        reader,
        after,
        with_hashes: q.tx_hashes.unwrap_or(false),
        from_height,
        buffer_bytes,
    })
}

pub async fn events(
    State(s): State<AppState>,
    Extension(hub): Extension<Arc<EventsHub>>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let after = last_event_id(&headers)?;
    let reader = Reader::of(s.checker.is_opaque(), caller);
    let reader = EventReader { all: reader.sees_all(), keys: reader.viewer.identities() };
    let sub = subscription(&q, after, reader, s.store.tip_height(), hub.buffer_bytes)?;
    let permit = hub
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::unavailable("too many event subscribers"))?;
    hub.metrics.rpc_subscribers.inc();
    let slot = Slot { _permit: permit, gauge: hub.metrics.rpc_subscribers.clone() };
    let (tx, rx) = mpsc::channel::<SseEvent>(QUEUE_EVENTS);
    let closed_slow = hub.metrics.rpc_subscribers_closed_slow.clone();
    let subscriber = Subscriber::new(s.store.clone(), s.events.clone(), sub, tx, closed_slow);
    tokio::spawn(async move {
        let _slot = slot;
        subscriber.run().await
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(KEEP_ALIVE_S))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(from: Option<u64>) -> EventsQuery {
        EventsQuery { from_height: from, ..EventsQuery::default() }
    }

    fn subscription(q: &EventsQuery, tip: u64, b: usize) -> ApiResult<Subscription> {
        super::subscription(q, None, EventReader::default(), tip, b)
    }

    #[test]
    fn heights_far_past_the_tip_are_refused() {
        assert_eq!(subscription(&q(None), 10, 1).unwrap().from_height, 11);
        assert_eq!(subscription(&q(Some(0)), 10, 1).unwrap().from_height, 1);
        let ahead = 11 + FROM_HEIGHT_AHEAD_MAX;
        assert_eq!(subscription(&q(Some(ahead)), 10, 1).unwrap().from_height, ahead);
        let e = subscription(&q(Some(ahead + 1)), 10, 1).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "bad_height"));
        assert!(subscription(&q(Some(u64::MAX)), u64::MAX, 1).is_ok());
    }

    fn with_last_id(v: &[&str]) -> ApiResult<Option<Cursor>> {
        let mut h = HeaderMap::new();
        for x in v {
            h.append("last-event-id", x.parse().unwrap());
        }
        last_event_id(&h)
    }

    #[test]
    fn last_event_id_wins_over_from_height_and_is_checked() {
        assert_eq!(with_last_id(&[]).unwrap(), None);
        assert_eq!(with_last_id(&[""]).unwrap(), None);
        assert_eq!(with_last_id(&["7.33"]).unwrap(), Some((7, 33)));
        for bad in [&["x"][..], &["7"], &["7.1.2"], &["1.1", "2.2"], &[&"9".repeat(42)]] {
            let e = with_last_id(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "bad_cursor"), "{bad:?}");
        }
        let sub =
            super::subscription(&q(Some(2)), Some((7, 3)), EventReader::default(), 10, 1).unwrap();
        assert_eq!((sub.from_height, sub.after), (7, Some((7, 3))));
        let e = super::subscription(&q(None), Some((99, 0)), EventReader::default(), 10, 1)
            .unwrap_err();
        assert!(e.message.contains("Last-Event-ID"), "{}", e.message);
    }
}
