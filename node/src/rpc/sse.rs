//! `GET /v1/events`: server-sent events with filters and a resume cursor.
//!
//! `from_height=H` replays every event from block `H` (read back from the ledger, through the
//! same derivation as live events) and then continues live, so a subscriber that reconnects
//! with the height after the last one it saw misses nothing. A subscriber too slow for the live
//! buffer gets a final `lagged` event naming the height to resume from; events are never
//! dropped silently.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::{Semaphore, broadcast, mpsc};

use super::{ApiError, ApiResult, AppState};
use crate::events::{BlockEvents, Event, Filter};

/// Blocks replayed per request before the stream switches to live (a client can resume again).
const REPLAY_BLOCKS_MAX: u64 = 100_000;
/// Events queued per subscriber between the producer and the HTTP body.
const SUBSCRIBER_QUEUE: usize = 256;

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

static SUBSCRIBERS: std::sync::OnceLock<Arc<Semaphore>> = std::sync::OnceLock::new();

fn to_sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .event(e.kind.clone())
        .id(e.cursor.clone())
        .json_data(e)
        .unwrap_or_else(|_| SseEvent::default().event("error").data("unserializable event"))
}

pub async fn events(
    State(s): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let sem = SUBSCRIBERS.get_or_init(|| Arc::new(Semaphore::new(s.config.rpc.max_subscribers)));
    let permit = sem
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::unavailable("too many event subscribers"))?;
    let filter = Filter {
        kinds: q
            .kinds
            .as_deref()
            .map(|k| k.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_default(),
        participant: q.participant.clone(),
        product: q.product.clone(),
    };
    // Subscribe before replaying so nothing committed in between is missed.
    let mut live = s.events.subscribe();
    let (tx, rx) = mpsc::channel::<SseEvent>(SUBSCRIBER_QUEUE);
    let with_hashes = q.tx_hashes.unwrap_or(false);
    let store = s.store.clone();
    let tip = store.tip_height();
    let from = q.from_height.unwrap_or(tip + 1).max(1);
    tokio::spawn(async move {
        let _permit = permit;
        let mut next = from;
        // Replay from the ledger.
        while next <= store.tip_height() && next < from + REPLAY_BLOCKS_MAX {
            let st = store.clone();
            let h = next;
            let be = tokio::task::spawn_blocking(move || -> Option<BlockEvents> {
                let block = st.block(h).ok()??;
                let receipts = st.receipts(h).ok()?;
                Some(BlockEvents::new(&block, &receipts))
            })
            .await
            .ok()
            .flatten();
            let Some(be) = be else { return };
            if !send_block(&tx, &be, &filter, with_hashes).await {
                return;
            }
            next += 1;
        }
        loop {
            match live.recv().await {
                Ok(be) if be.height < next => {}
                Ok(be) => {
                    if be.height > next {
                        // A gap (we were still replaying): tell the client where to resume.
                        let _ = tx.send(lagged(next)).await;
                        return;
                    }
                    if !send_block(&tx, &be, &filter, with_hashes).await {
                        return;
                    }
                    next = be.height + 1;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx.send(lagged(next)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn lagged(resume: u64) -> SseEvent {
    SseEvent::default().event("lagged").data(format!("{{\"resume_from_height\":{resume}}}"))
}

async fn send_block(
    tx: &mpsc::Sender<SseEvent>,
    be: &BlockEvents,
    filter: &Filter,
    with_hashes: bool,
) -> bool {
    for e in be.events.iter().filter(|e| filter.matches(e)) {
        let sse = if with_hashes && e.kind == "block" {
            let mut e = e.clone();
            e.data["tx_hashes"] = serde_json::to_value(&be.tx_hashes).unwrap_or_default();
            to_sse(&e)
        } else {
            to_sse(e)
        };
        if tx.send(sse).await.is_err() {
            return false; // the client went away
        }
    }
    true
}
