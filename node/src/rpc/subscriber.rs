//! One event-stream subscriber: replays committed blocks from the ledger, then follows live
//! blocks, and hands the events its filter selects to the HTTP body through a small queue.
//!
//! What a subscriber may cost is fixed, whoever the client is:
//! - its task ends, and its slot is freed, as soon as the client goes (the body, and with it
//!   the queue's receiver, is dropped when the connection closes; the task watches for that
//!   even when its filter never matches and it has nothing to send);
//! - it never pins the node's shared broadcast buffer: live blocks are taken off it at once,
//!   and the events they yield wait in the subscriber's own buffer, bounded in bytes
//!   (`rpc.subscriber_buffer_bytes`, plus at most one block's events); a subscriber that falls
//!   further behind than that is sent a final `lagged` event naming where to resume, and closed;
//! - while replaying from the ledger it reads the next block only when its buffer has room, so
//!   a slow reader slows its own replay instead of growing its buffer.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::response::sse::Event as SseEvent;
use dpx_ledger::Store;
use prometheus_client::metrics::counter::Counter;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::events::{BlockEvents, Event, Filter};
use dpx_crypto::PublicKey;

/// Events queued between the subscriber's task and the HTTP body. One place is always kept
/// free for the final `lagged` event, so it can be queued even when the client reads nothing.
pub const QUEUE_EVENTS: usize = 8;
/// Blocks replayed per request before the stream switches to live (a client can resume again).
const REPLAY_BLOCKS_MAX: u64 = 100_000;

/// Where replayed blocks come from.
pub trait BlockSource: Send + Sync + 'static {
    /// Height of the last committed block.
    fn tip(&self) -> u64;
    /// The events of committed block `height`; `None` if it cannot be read.
    fn block_events(&self, height: u64) -> Option<BlockEvents>;
}

impl BlockSource for Store {
    fn tip(&self) -> u64 {
        self.tip_height()
    }

    fn block_events(&self, height: u64) -> Option<BlockEvents> {
        let block = self.block(height).ok()??;
        let receipts = self.receipts(height).ok()?;
        let st = dpx_app::LatestState::new(self);
        Some(BlockEvents::with_state(&block, &receipts, &block.tx_hashes(), &st))
    }
}

/// Whose events a subscriber may receive: the read policy's answer for its caller, fixed when
/// the stream opens (a client whose rights change reconnects to have them re-evaluated).
#[derive(Debug, Clone, Default)]
pub struct EventReader {
    /// A supervisor (or a consensus-only chain): every event.
    pub all: bool,
    /// The caller's identities (a participant's account and current key, or a subject's key);
    /// empty for an anonymous caller, who gets public (block) events only.
    pub keys: Vec<PublicKey>,
}

impl EventReader {
    pub fn may_receive(&self, e: &Event) -> bool {
        self.all || e.audience.includes_any(&self.keys)
    }
}

/// An event cursor `H.N`: events are ordered by (height, index) as integers.
pub type Cursor = (u64, u64);

/// Parse a cursor `H.N` (decimal, no sign, no leading `+`), as sent in `id:` and returned in
/// `Last-Event-ID`.
pub fn parse_cursor(s: &str) -> Option<Cursor> {
    let (h, n) = s.split_once('.')?;
    let num = |x: &str| {
        (!x.is_empty() && x.len() <= 20 && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse::<u64>().ok())
            .flatten()
    };
    Some((num(h)?, num(n)?))
}

/// What one subscription asked for.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub filter: Filter,
    /// Whose events it may receive.
    pub reader: EventReader,
    /// Resume strictly after this cursor (from `Last-Event-ID`); `from_height` is its height.
    pub after: Option<Cursor>,
    /// Add the block's transaction hashes to `block` events.
    pub with_hashes: bool,
    /// First height to deliver.
    pub from_height: u64,
    /// Event bytes buffered at most (plus one block's events).
    pub buffer_bytes: usize,
}

/// An event ready for the body, with what the buffer accounting and a resume need.
#[derive(Debug)]
struct Queued {
    event: SseEvent,
    bytes: usize,
    height: u64,
}

/// Why a subscriber's task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client went away.
    Gone,
    /// Told to resume from a height: it fell behind, or a block was missing from the stream.
    Lagged { resume_from_height: u64, slow: bool },
    /// The node is shutting down (the live channel closed).
    Closed,
}

/// The subscriber's task.
#[derive(Debug)]
pub struct Subscriber<S: BlockSource> {
    source: Arc<S>,
    live: broadcast::Sender<Arc<BlockEvents>>,
    sub: Subscription,
    tx: mpsc::Sender<SseEvent>,
    next: u64,
    pending: VecDeque<Queued>,
    pending_bytes: usize,
    closed_slow: Counter,
}

impl<S: BlockSource> Subscriber<S> {
    pub fn new(
        source: Arc<S>,
        live: broadcast::Sender<Arc<BlockEvents>>,
        sub: Subscription,
        tx: mpsc::Sender<SseEvent>,
        closed_slow: Counter,
    ) -> Self {
        let next = sub.from_height.max(1);
        Self {
            source,
            live,
            sub,
            tx,
            next,
            pending: VecDeque::new(),
            pending_bytes: 0,
            closed_slow,
        }
    }

    /// Serve the subscription until the client goes, falls behind, or the node stops.
    pub async fn run(mut self) -> Ended {
        let replay_end = self.next.saturating_add(REPLAY_BLOCKS_MAX);
        // Replay from the ledger until caught up, subscribing to live blocks only then (a
        // receiver held while replaying would pin the shared buffer). If a block commits
        // between the last read of the tip and the subscription, drop it and read on.
        let mut live = loop {
            match self.replay_until(replay_end).await {
                Ok(()) => {}
                Err(end) => return end,
            }
            let rx = self.live.subscribe();
            if self.next > self.source.tip() || self.next >= replay_end {
                break rx;
            }
        };
        // A handle of our own on the queue, so that a permit borrowed from it does not borrow
        // `self` across the arms below.
        let tx = self.tx.clone();
        loop {
            tokio::select! {
                biased;
                () = tx.closed() => return Ended::Gone,
                // Fill the queue before taking more blocks, so a burst of blocks does not
                // count against a client that reads.
                permits = tx.reserve_many(2), if !self.pending.is_empty() => {
                    let Ok(mut permits) = permits else { return Ended::Gone };
                    if let (Some(p), Some(q)) = (permits.next(), self.pending.pop_front()) {
                        self.pending_bytes -= q.bytes;
                        p.send(q.event);
                    }
                }
                r = live.recv() => match r {
                    Ok(be) if be.height < self.next => {}
                    // Blocks the events thread skipped, or past the replay budget.
                    Ok(be) if be.height > self.next => return self.lag(false),
                    Ok(be) => {
                        // Still over the bound from earlier blocks: too far behind. (Checked
                        // before adding, so one block larger than the bound still goes through
                        // to a client that keeps up.)
                        if self.pending_bytes > self.sub.buffer_bytes {
                            return self.lag(true);
                        }
                        self.push(&be);
                        self.next = be.height + 1;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => return self.lag(false),
                    Err(broadcast::error::RecvError::Closed) => return Ended::Closed,
                },
            }
        }
    }

    /// Replay committed blocks from `self.next` up to the tip (and below `end`), reading a
    /// block only when the buffer has room.
    async fn replay_until(&mut self, end: u64) -> Result<(), Ended> {
        while self.next <= self.source.tip() && self.next < end {
            if self.pending_bytes >= self.sub.buffer_bytes {
                self.send_one().await?;
                continue;
            }
            let (source, h) = (self.source.clone(), self.next);
            let read = tokio::task::spawn_blocking(move || source.block_events(h));
            let be = tokio::select! {
                () = self.tx.closed() => return Err(Ended::Gone),
                r = read => r.ok().flatten(),
            };
            // A block below the tip that cannot be read (pruned, failing disk): the client
            // is told where the stream stopped rather than getting a silent gap.
            let Some(be) = be else { return Err(self.lag(false)) };
            self.push(&be);
            self.next += 1;
        }
        Ok(())
    }

    /// Wait for room in the queue and move one buffered event into it.
    async fn send_one(&mut self) -> Result<(), Ended> {
        let mut permits = self.tx.reserve_many(2).await.map_err(|_| Ended::Gone)?;
        if let (Some(p), Some(q)) = (permits.next(), self.pending.pop_front()) {
            self.pending_bytes -= q.bytes;
            p.send(q.event);
        }
        Ok(())
    }

    /// Buffer the events of one block that the filter selects and the caller may receive
    /// (after the resume cursor, if any).
    fn push(&mut self, be: &BlockEvents) {
        let after = self.sub.after;
        let seen = |e: &Event| {
            after.is_some_and(|(h, n)| {
                e.height < h || (e.height == h && parse_cursor(&e.cursor).is_none_or(|c| c.1 <= n))
            })
        };
        let wanted =
            |e: &&Event| self.sub.filter.matches(e) && self.sub.reader.may_receive(e) && !seen(e);
        for e in be.events.iter().filter(wanted) {
            let json = if self.sub.with_hashes && e.kind == "block" {
                let mut e = e.clone();
                e.data["tx_hashes"] = serde_json::to_value(&be.tx_hashes).unwrap_or_default();
                event_json(&e)
            } else {
                event_json(e)
            };
            let bytes = json.len() + e.kind.len() + e.cursor.len();
            let event = SseEvent::default().event(e.kind.clone()).id(e.cursor.clone()).data(json);
            self.pending.push_back(Queued { event, bytes, height: e.height });
            self.pending_bytes += bytes;
        }
    }

    /// End the stream with a `lagged` event naming the first height not delivered.
    fn lag(&mut self, slow: bool) -> Ended {
        // Events of the resume height that were delivered come again; ids tell them apart.
        let resume = self.pending.front().map_or(self.next, |q| q.height);
        self.pending.clear();
        self.pending_bytes = 0;
        if slow {
            self.closed_slow.inc();
        }
        let reason = if slow {
            "the subscriber fell too far behind (rpc.subscriber_buffer_bytes)"
        } else {
            "events between here and the live stream must be read again"
        };
        let data = json!({
            "error": { "code": "lagged", "message": reason },
            "resume_from_height": resume,
        });
        // One place in the queue is always free (events are only queued with two permits).
        let _ = self.tx.try_send(SseEvent::default().event("lagged").data(data.to_string()));
        Ended::Lagged { resume_from_height: resume, slow }
    }
}

/// An event's JSON (one line: serde_json escapes newlines inside strings).
fn event_json(e: &Event) -> String {
    serde_json::to_string(e).unwrap_or_else(|_| "{\"kind\":\"unserializable\"}".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use parking_lot::Mutex;
    use serde_json::Value;

    use super::*;

    /// A ledger in memory: block `h` has `per_block` tx events of `payload` bytes each.
    struct FakeChain {
        tip: Mutex<u64>,
        per_block: usize,
        payload: usize,
    }

    fn block_events(h: u64, per_block: usize, payload: usize) -> BlockEvents {
        let mut events = vec![ev("block", h, 0, 10)];
        events.extend((1..=per_block).map(|i| ev("tx", h, i, payload)));
        BlockEvents { height: h, events, tx_hashes: Vec::new() }
    }

    fn ev(kind: &str, h: u64, i: usize, payload: usize) -> Event {
        Event {
            kind: kind.into(),
            height: h,
            cursor: format!("{h}.{i}"),
            tx_hash: None,
            data: Value::String("x".repeat(payload)),
            parties: vec!["aa".into()],
            products: Vec::new(),
            audience: if kind == "block" {
                crate::events::Audience::Public
            } else {
                crate::events::Audience::Parties(Arc::new(std::collections::BTreeSet::from([
                    party(),
                ])))
            },
        }
    }

    impl BlockSource for FakeChain {
        fn tip(&self) -> u64 {
            *self.tip.lock()
        }
        fn block_events(&self, h: u64) -> Option<BlockEvents> {
            (h <= self.tip()).then(|| block_events(h, self.per_block, self.payload))
        }
    }

    struct Setup {
        chain: Arc<FakeChain>,
        live: broadcast::Sender<Arc<BlockEvents>>,
        rx: mpsc::Receiver<SseEvent>,
        task: tokio::task::JoinHandle<Ended>,
        closed_slow: Counter,
    }

    fn start(tip: u64, from: u64, filter: Filter, buffer_bytes: usize) -> Setup {
        let chain = Arc::new(FakeChain { tip: Mutex::new(tip), per_block: 4, payload: 100 });
        let (live, _) = broadcast::channel(1024);
        let (tx, rx) = mpsc::channel(QUEUE_EVENTS);
        let closed_slow = Counter::default();
        let sub = Subscription {
            filter,
            reader: EventReader { all: true, keys: Vec::new() },
            after: None,
            with_hashes: false,
            from_height: from,
            buffer_bytes,
        };
        let s = Subscriber::new(chain.clone(), live.clone(), sub, tx, closed_slow.clone());
        Setup { chain, live, rx, task: tokio::spawn(s.run()), closed_slow }
    }

    fn commit(s: &Setup, h: u64) {
        *s.chain.tip.lock() = h;
        let _ = s.live.send(Arc::new(block_events(h, 4, 100)));
    }

    async fn wait_subscribed(s: &Setup) {
        for _ in 0..200 {
            if s.live.receiver_count() > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("never subscribed to live blocks");
    }

    fn party() -> PublicKey {
        dpx_crypto::Keypair::from_seed([7; 32]).public()
    }

    fn start_sub(tip: u64, sub: Subscription) -> Setup {
        let chain = Arc::new(FakeChain { tip: Mutex::new(tip), per_block: 4, payload: 10 });
        let (live, _) = broadcast::channel(1024);
        let (tx, rx) = mpsc::channel(QUEUE_EVENTS);
        let closed_slow = Counter::default();
        let s = Subscriber::new(chain.clone(), live.clone(), sub, tx, closed_slow.clone());
        Setup { chain, live, rx, task: tokio::spawn(s.run()), closed_slow }
    }

    fn sub(reader: EventReader, from: u64, after: Option<Cursor>) -> Subscription {
        Subscription {
            filter: Filter::default(),
            reader,
            after,
            with_hashes: false,
            from_height: from,
            buffer_bytes: 1 << 20,
        }
    }

    /// The ids of the next `n` events.
    async fn ids(rx: &mut mpsc::Receiver<SseEvent>, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            let e = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            let text = format!("{e:?}");
            let id = text.split("id: ").nth(1).and_then(|r| r.split("\\n").next()).unwrap();
            out.push(id.to_owned());
        }
        out
    }

    #[test]
    fn cursors_parse_as_integer_pairs() {
        assert_eq!(parse_cursor("12.3"), Some((12, 3)));
        assert_eq!(parse_cursor("0.0"), Some((0, 0)));
        assert!(parse_cursor("9.10").unwrap() > parse_cursor("9.9").unwrap(), "not as strings");
        assert!(parse_cursor("10.0").unwrap() > parse_cursor("9.99").unwrap());
        for bad in [
            "",
            "1",
            "1.",
            ".1",
            "1.2.3",
            "+1.2",
            "-1.2",
            "1.x",
            "1 .2",
            "99999999999999999999999.1",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_resume_starts_exactly_after_the_last_event_id() {
        // Blocks of 5 events: h.0 (block) and h.1 ..= h.4.
        let mut s = start_sub(3, sub(EventReader { all: true, keys: Vec::new() }, 2, Some((2, 2))));
        let got = ids(&mut s.rx, 7).await;
        assert_eq!(got, ["2.3", "2.4", "3.0", "3.1", "3.2", "3.3", "3.4"]);
        // After the last event of a block: the next block's first.
        let mut s = start_sub(3, sub(EventReader { all: true, keys: Vec::new() }, 2, Some((2, 4))));
        assert_eq!(ids(&mut s.rx, 1).await, ["3.0"]);
    }

    #[tokio::test]
    async fn events_reach_only_callers_that_may_read_them() {
        // Anonymous: block events only, however many transactions the blocks hold.
        let mut s = start_sub(3, sub(EventReader::default(), 1, None));
        assert_eq!(ids(&mut s.rx, 3).await, ["1.0", "2.0", "3.0"]);
        // A party: everything of its transactions.
        let mut s = start_sub(1, sub(EventReader { all: false, keys: vec![party()] }, 1, None));
        assert_eq!(ids(&mut s.rx, 5).await, ["1.0", "1.1", "1.2", "1.3", "1.4"]);
        // Someone else with a key: like anonymous.
        let other = dpx_crypto::Keypair::from_seed([8; 32]).public();
        let mut s = start_sub(2, sub(EventReader { all: false, keys: vec![other] }, 1, None));
        assert_eq!(ids(&mut s.rx, 2).await, ["1.0", "2.0"]);
    }

    fn never() -> Filter {
        Filter { participant: Some("00".repeat(32)), ..Filter::default() }
    }

    #[tokio::test]
    async fn a_never_matching_subscriber_ends_when_its_client_goes() {
        let s = start(3, 1, never(), 1 << 20);
        wait_subscribed(&s).await;
        for h in 4..10 {
            commit(&s, h);
        }
        drop(s.rx);
        let end = tokio::time::timeout(Duration::from_secs(5), s.task).await.unwrap().unwrap();
        assert_eq!(end, Ended::Gone);
        assert_eq!(s.live.receiver_count(), 0, "the live receiver is released with the task");
    }

    #[tokio::test]
    async fn a_subscriber_from_a_future_height_ends_when_its_client_goes() {
        let s = start(3, 50, Filter::default(), 1 << 20);
        wait_subscribed(&s).await;
        drop(s.rx);
        let end = tokio::time::timeout(Duration::from_secs(5), s.task).await.unwrap().unwrap();
        assert_eq!(end, Ended::Gone);
    }

    #[tokio::test]
    async fn replay_then_live_in_order_without_gaps() {
        let mut s =
            start(3, 2, Filter { kinds: vec!["block".into()], ..Filter::default() }, 1 << 20);
        wait_subscribed(&s).await;
        commit(&s, 4);
        commit(&s, 5);
        let mut heights = Vec::new();
        while heights.len() < 4 {
            let e = tokio::time::timeout(Duration::from_secs(5), s.rx.recv()).await.unwrap();
            let text = format!("{:?}", e.unwrap());
            let h = (2..=5).find(|h| text.contains(&format!("{h}.0"))).unwrap();
            heights.push(h);
        }
        assert_eq!(heights, vec![2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn a_subscriber_that_stops_reading_is_closed_with_its_resume_height() {
        // Each block yields ~500 bytes of events; the buffer holds ~2 blocks.
        let mut s = start(1, 2, Filter::default(), 1000);
        wait_subscribed(&s).await;
        for h in 2..40 {
            commit(&s, h);
        }
        let end = tokio::time::timeout(Duration::from_secs(5), &mut s.task).await.unwrap().unwrap();
        let Ended::Lagged { resume_from_height, slow: true } = end else { panic!("{end:?}") };
        assert_eq!(s.closed_slow.get(), 1);
        // The client finds what fitted in the queue, then the lagged event, then the end.
        let mut got = Vec::new();
        while let Some(e) = s.rx.recv().await {
            got.push(format!("{e:?}"));
        }
        assert_eq!(got.len(), QUEUE_EVENTS, "{got:?}");
        let last = got.last().unwrap();
        assert!(last.contains("lagged") && last.contains("resume_from_height"), "{last}");
        assert!(
            last.contains(&format!("\\\"resume_from_height\\\":{resume_from_height}")),
            "{last}"
        );
        // Delivered: block 2's 5 events and block 3's first 2; the rest of block 3 was
        // dropped, so the client resumes from 3 and loses nothing.
        assert_eq!(resume_from_height, 3);
        assert_eq!(s.live.receiver_count(), 0);
    }

    #[tokio::test]
    async fn a_block_larger_than_the_buffer_reaches_a_reading_client() {
        // One block of ~4 KiB of events, a 1 KiB buffer, a client that reads.
        let mut s = start(1, 2, Filter::default(), 1000);
        wait_subscribed(&s).await;
        *s.chain.tip.lock() = 2;
        let _ = s.live.send(Arc::new(block_events(2, 30, 100)));
        let mut n = 0;
        while n < 31 {
            let e = tokio::time::timeout(Duration::from_secs(5), s.rx.recv()).await.unwrap();
            assert!(!format!("{:?}", e.unwrap()).contains("lagged"));
            n += 1;
        }
        assert!(!s.task.is_finished());
        assert_eq!(s.closed_slow.get(), 0);
    }

    #[tokio::test]
    async fn a_slow_replay_waits_instead_of_buffering() {
        // 500 blocks behind, a client that reads nothing: the replay stops at the buffer.
        let s = start(500, 1, Filter::default(), 2000);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!s.task.is_finished(), "a replaying subscriber is not closed for being slow");
        assert_eq!(s.live.receiver_count(), 0, "no live receiver held while replaying");
        drop(s.rx);
        let end = tokio::time::timeout(Duration::from_secs(5), s.task).await.unwrap().unwrap();
        assert_eq!(end, Ended::Gone);
    }
}
