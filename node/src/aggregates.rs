//! Aggregate counts over a height or time range (issue 17), kept up to date as blocks commit
//! instead of recomputed per request.
//!
//! For every height the index holds the block's time and the running totals of
//! [`COUNTERS`] from height 1 through that block (transactions, refusals, denied decisions,
//! the receipt events that matter to a supervisor, and the money they move). A range
//! `(from, to]` is then the difference of two records: O(1) for heights, O(log n) record reads
//! for times (block times never decrease along the chain).
//!
//! The index is node-local derived data, outside the ledger: `data/aggregates.v1`, a header
//! and one fixed-size record per height, each with its own checksum. A thread fills it from
//! the ledger's receipts after blocks commit, off the consensus driver, and catches up at
//! start. A record lost or torn by a crash is found by its checksum (or the file's length) at
//! the next start and rebuilt from the ledger; a header that does not match (another chain or
//! genesis, another list of counters) rebuilds the whole file. Deleting the file is always
//! safe.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use dpx_contracts::{Code, Receipt};
use dpx_ledger::Store;
use parking_lot::{Condvar, Mutex};
use tracing::{info, warn};

/// What is counted, in record order. Event kinds count their events; `amount.*` sum an
/// attribute of one event kind (see [`AMOUNTS`]). Changing this list changes the header, and
/// the index is rebuilt from the ledger at the next start.
pub const COUNTERS: &[&str] = &[
    "blocks",
    "txs",
    "txs_ok",
    "txs_refused",
    "decisions_denied",
    "participant.admitted",
    "participant.suspended",
    "product.listed",
    "product.delisted",
    "demand.posted",
    "demand.awarded",
    "order.placed",
    "order.accepted",
    "order.delivered",
    "order.settled",
    "order.cancelled",
    "order.disputed",
    "grant.issued",
    "grant.consumed",
    "grant.refused",
    "grant.revoked",
    "grant.expired",
    "job.requested",
    "job.attested",
    "job.received",
    "lifecycle.attested",
    "governance.executed",
    "policy.updated",
    "amount.deposited",
    "amount.withdrawn",
    "amount.escrowed",
    "amount.paid_to_providers",
    "amount.fees",
];

/// The sums: (counter, event kind, attribute).
const AMOUNTS: &[(&str, &str, &str)] = &[
    ("amount.deposited", "money.deposited", "amount"),
    ("amount.withdrawn", "money.withdrawn", "amount"),
    ("amount.escrowed", "order.accepted", "escrow"),
    ("amount.paid_to_providers", "order.settled", "provider_amount"),
    ("amount.fees", "order.settled", "fee"),
];

const K: usize = COUNTERS.len();
const MAGIC: &[u8; 8] = b"DPXAGG01";
const HEADER: u64 = 8 + 32 + 32 + 8;
/// Records written between syncs.
const SYNC_EVERY: u64 = 1024;
/// Records checked at open: more than can be unsynced at a crash.
const CHECK_WINDOW: u64 = 4 * SYNC_EVERY;
/// time_ms, the counters, a checksum.
const RECORD: u64 = 8 * (1 + K as u64) + 8;

/// One block's counts (not running totals).
pub fn block_counts(receipts: &[Vec<u8>]) -> [u64; K] {
    let at = |name: &str| COUNTERS.iter().position(|c| *c == name);
    let mut c = [0u64; K];
    let mut add = |name: &str, n: u64| {
        if let Some(i) = at(name) {
            c[i] = c[i].saturating_add(n);
        }
    };
    add("blocks", 1);
    for bytes in receipts {
        add("txs", 1);
        let Ok(r) = Receipt::decode(bytes) else { continue };
        add(if r.code == Code::Ok { "txs_ok" } else { "txs_refused" }, 1);
        if r.decision.as_ref().is_some_and(|d| !d.allowed) {
            add("decisions_denied", 1);
        }
        for e in &r.events {
            add(&e.kind, 1);
            for (counter, kind, attr) in AMOUNTS {
                if e.kind == *kind
                    && let Some(v) = e.get(attr).and_then(|v| v.parse::<u64>().ok())
                {
                    add(counter, v);
                }
            }
        }
    }
    c
}

/// A record: the block's time and the running totals through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub time_ms: u64,
    pub counts: [u64; K],
}

impl Totals {
    const ZERO: Self = Self { time_ms: 0, counts: [0; K] };

    fn encode(&self, height: u64) -> Vec<u8> {
        let mut b = Vec::with_capacity(RECORD as usize);
        b.extend_from_slice(&self.time_ms.to_le_bytes());
        for c in self.counts {
            b.extend_from_slice(&c.to_le_bytes());
        }
        let sum = checksum(height, &b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    fn decode(height: u64, b: &[u8]) -> Option<Self> {
        let (body, sum) = b.split_at(b.len().checked_sub(8)?);
        if checksum(height, body).to_le_bytes() != sum {
            return None;
        }
        let word =
            |i: usize| u64::from_le_bytes(body[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let mut counts = [0u64; K];
        for (i, c) in counts.iter_mut().enumerate() {
            *c = word(i + 1);
        }
        Some(Self { time_ms: word(0), counts })
    }

    /// The counts of `(before, self]`.
    pub fn since(&self, before: &Self) -> [u64; K] {
        let mut out = [0u64; K];
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.counts[i].saturating_sub(before.counts[i]);
        }
        out
    }
}

/// The height in the checksum: a record copied to another position does not verify.
fn checksum(height: u64, body: &[u8]) -> u64 {
    let h = dpx_crypto::Hash::digest(&[&height.to_le_bytes()[..], body].concat());
    u64::from_le_bytes(h.0[..8].try_into().unwrap_or([0; 8]))
}

fn header(chain_id: &str) -> Vec<u8> {
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(&dpx_crypto::Hash::digest(chain_id.as_bytes()).0);
    b.extend_from_slice(&dpx_crypto::Hash::digest(COUNTERS.join("\n").as_bytes()).0);
    b.extend_from_slice(&RECORD.to_le_bytes());
    b
}

/// The index file: records for heights `1..=indexed`.
#[derive(Debug)]
struct IndexFile {
    file: File,
    indexed: u64,
    last: Totals,
    /// Records appended since the last sync.
    unsynced: u64,
}

impl IndexFile {
    /// Open (or create) the file and keep its records up to the first that does not verify
    /// or lies above `tip`.
    fn open(path: &Path, chain_id: &str, tip: u64) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let want = header(chain_id);
        let mut have = vec![0u8; want.len()];
        let len = file.metadata()?.len();
        let same = len >= HEADER && file.read_exact(&mut have).is_ok() && have == want;
        if !same {
            if len > 0 {
                warn!(path = %path.display(), "aggregate index is for another chain or list of counters: rebuilding it");
            }
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&want)?;
            return Ok(Self { file, indexed: 0, last: Totals::ZERO, unsynced: 0 });
        }
        let whole = ((len - HEADER) / RECORD).min(tip);
        // Records are written in order and synced every SYNC_EVERY, but pages may reach the
        // disk out of order: check the recent ones forward and keep them up to the first that
        // does not verify. Older ones were synced by an earlier run.
        let mut idx = Self { file, indexed: 0, last: Totals::ZERO, unsynced: 0 };
        let start = whole.saturating_sub(CHECK_WINDOW) + 1;
        let mut h = start - 1;
        if let Some(t) = idx.read(h)? {
            (idx.indexed, idx.last) = (h, t);
        } else {
            warn!(height = h, "aggregate index: an old record does not verify: rebuilding it");
            h = whole; // skip the loop
        }
        while h < whole {
            h += 1;
            match idx.read(h)? {
                Some(t) => (idx.indexed, idx.last) = (h, t),
                None => break,
            }
        }
        if idx.indexed < whole || len != HEADER + whole * RECORD {
            warn!(kept = idx.indexed, of = whole, "aggregate index: dropping a torn or extra tail");
        }
        idx.file.set_len(HEADER + idx.indexed * RECORD)?;
        // What survived a process crash may still be only in the page cache: sync it now, or
        // crash after crash could leave more than the checked window unsynced.
        idx.sync()?;
        Ok(idx)
    }

    fn read(&mut self, height: u64) -> anyhow::Result<Option<Totals>> {
        if height == 0 {
            return Ok(Some(Totals::ZERO));
        }
        let mut b = vec![0u8; RECORD as usize];
        self.file.seek(SeekFrom::Start(HEADER + (height - 1) * RECORD))?;
        self.file.read_exact(&mut b)?;
        Ok(Totals::decode(height, &b))
    }

    fn append(&mut self, height: u64, t: &Totals) -> anyhow::Result<()> {
        anyhow::ensure!(
            height == self.indexed + 1,
            "aggregate index: {height} after {}",
            self.indexed
        );
        self.file.seek(SeekFrom::Start(HEADER + self.indexed * RECORD))?;
        self.file.write_all(&t.encode(height))?;
        self.indexed = height;
        self.last = *t;
        self.unsynced += 1;
        if self.unsynced >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        self.file.sync_data()?;
        self.unsynced = 0;
        Ok(())
    }
}

/// The answer to a range query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeCounts {
    /// Heights `from..=to` (`from > to`: an empty range).
    pub from: u64,
    pub to: u64,
    pub counts: [u64; K],
}

/// The aggregate index of one node: queried by the RPC, filled by its own thread.
#[derive(Debug)]
pub struct Aggregates {
    inner: Mutex<IndexFile>,
    wake: Condvar,
    /// Heights up to this one have no receipts here (a ledger begun from a snapshot); 0.
    base: u64,
    stop: std::sync::atomic::AtomicBool,
}

impl Aggregates {
    /// Open the index at `path` for `store`'s chain, born of the genesis file whose hash is
    /// `genesis`: the header binds both, so a chain re-initialised under the same id in the
    /// same home rebuilds the index instead of serving the old chain's counts. Call
    /// [`Aggregates::spawn`] to fill it.
    pub fn open(
        path: &Path,
        store: &Store,
        genesis: &dpx_crypto::Hash,
    ) -> anyhow::Result<Arc<Self>> {
        let identity = format!("{}\n{genesis}", store.chain_id());
        let f = IndexFile::open(path, &identity, store.tip_height())?;
        Ok(Arc::new(Self {
            inner: Mutex::new(f),
            wake: Condvar::new(),
            base: store.snapshot_base()?.unwrap_or(0),
            stop: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The heights indexed: `1..=indexed()`.
    pub fn indexed(&self) -> u64 {
        self.inner.lock().indexed
    }

    /// The first height whose counts are complete (earlier blocks' receipts are not on this
    /// node when its ledger began from a snapshot).
    pub fn counted_from(&self) -> u64 {
        self.base + 1
    }

    /// Index every committed block not yet indexed. Returns how many were added.
    pub fn catch_up(&self, store: &Store) -> anyhow::Result<u64> {
        let tip = store.tip_height();
        let mut added = 0;
        loop {
            let (next, last) = {
                let f = self.inner.lock();
                (f.indexed + 1, f.last)
            };
            if next > tip || self.stopping() {
                return Ok(added);
            }
            let time_ms = store.header(next)?.map_or(last.time_ms, |h| h.time_ms);
            let counts =
                if next <= self.base { [0; K] } else { block_counts(&store.receipts(next)?) };
            let mut t = Totals { time_ms, counts: last.counts };
            for (a, b) in t.counts.iter_mut().zip(counts) {
                *a = a.saturating_add(b);
            }
            self.inner.lock().append(next, &t)?;
            added += 1;
        }
    }

    /// Wake the indexing thread (a block committed).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// The indexing thread: catches up at start and after every [`Aggregates::notify`] (and
    /// every second, should a notification be missed). Ends when [`Aggregates::shut`] is called.
    pub fn spawn(
        self: &Arc<Self>,
        store: Arc<Store>,
    ) -> anyhow::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        std::thread::Builder::new()
            .name("dpx-aggregates".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                match me.catch_up(&store) {
                    Ok(n) if n > 0 => info!(
                        blocks = n,
                        ms = started.elapsed().as_millis() as u64,
                        "aggregate index caught up"
                    ),
                    Ok(_) => {}
                    Err(e) => warn!("aggregate index: {e:#}"),
                }
                while !me.stopping() {
                    {
                        let mut g = me.inner.lock();
                        let _ = me.wake.wait_for(&mut g, std::time::Duration::from_secs(1));
                    }
                    if let Err(e) = me.catch_up(&store) {
                        warn!("aggregate index: {e:#}");
                    }
                }
                if let Err(e) = me.inner.lock().sync() {
                    warn!("aggregate index: syncing at stop: {e:#}");
                }
            })
            .context("starting the aggregate index thread")
    }

    fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stop the thread (it ends within a second, mid catch-up included).
    pub fn shut(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// The running totals through `height` (0: none), if indexed.
    fn totals(&self, height: u64) -> anyhow::Result<Option<Totals>> {
        let mut f = self.inner.lock();
        if height > f.indexed {
            return Ok(None);
        }
        f.read(height)
    }

    /// Counts over heights `from..=to`, both at most [`Aggregates::indexed`].
    pub fn heights(&self, from: u64, to: u64) -> anyhow::Result<RangeCounts> {
        if from > to {
            return Ok(RangeCounts { from, to, counts: [0; K] });
        }
        let hi = self.totals(to)?.context("height not indexed")?;
        let lo = self.totals(from.saturating_sub(1))?.context("height not indexed")?;
        Ok(RangeCounts { from, to, counts: hi.since(&lo) })
    }

    /// The first indexed height whose block time is at least `time_ms` (`indexed + 1` if
    /// none is).
    pub fn first_at_or_after(&self, time_ms: u64) -> anyhow::Result<u64> {
        let (mut lo, mut hi) = (1u64, self.indexed() + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let t = self.totals(mid)?.context("aggregate index record does not verify")?;
            if t.time_ms >= time_ms {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// Counts over the blocks with times in `[from_ms, to_ms)`.
    pub fn times(&self, from_ms: u64, to_ms: u64) -> anyhow::Result<RangeCounts> {
        let from = self.first_at_or_after(from_ms)?;
        let to = self.first_at_or_after(to_ms)?.saturating_sub(1);
        self.heights(from, to)
    }
}

/// The counts as a JSON object, by counter name.
pub fn counts_json(counts: &[u64; K]) -> serde_json::Value {
    COUNTERS.iter().zip(counts).map(|(k, v)| ((*k).to_owned(), serde_json::json!(v))).collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use dpx_contracts::{Attr, Event};
    use dpx_crypto::Hash;

    use super::*;

    fn receipt(code: Code, events: &[(&str, &[(&str, &str)])]) -> Vec<u8> {
        Receipt {
            tx_hash: Hash([1; 32]),
            code,
            reason: String::new(),
            events: events
                .iter()
                .map(|(k, attrs)| Event {
                    kind: (*k).into(),
                    attrs: attrs
                        .iter()
                        .map(|(k, v)| Attr { key: (*k).into(), value: (*v).into() })
                        .collect(),
                })
                .collect(),
            decision: None,
        }
        .encode()
    }

    fn at(name: &str) -> usize {
        COUNTERS.iter().position(|c| *c == name).unwrap()
    }

    #[test]
    fn a_block_counts_its_transactions_events_and_amounts() {
        let c = block_counts(&[
            receipt(
                Code::Ok,
                &[
                    ("grant.consumed", &[]),
                    ("order.settled", &[("provider_amount", "95"), ("fee", "5")]),
                ],
            ),
            receipt(Code::Ok, &[("money.deposited", &[("amount", "1000")]), ("unknown.kind", &[])]),
            receipt(Code::Denied, &[("grant.refused", &[])]),
            b"not a receipt".to_vec(),
        ]);
        assert_eq!(c[at("blocks")], 1);
        assert_eq!(c[at("txs")], 4);
        assert_eq!((c[at("txs_ok")], c[at("txs_refused")]), (2, 1));
        assert_eq!(
            (c[at("grant.consumed")], c[at("grant.refused")], c[at("order.settled")]),
            (1, 1, 1)
        );
        assert_eq!(c[at("amount.paid_to_providers")], 95);
        assert_eq!(c[at("amount.fees")], 5);
        assert_eq!(c[at("amount.deposited")], 1000);
        // Absurd amounts saturate instead of wrapping.
        let max = u64::MAX.to_string();
        let big = receipt(
            Code::Ok,
            &[("money.deposited", &[("amount", &max)]), ("money.deposited", &[("amount", "7")])],
        );
        assert_eq!(block_counts(&[big])[at("amount.deposited")], u64::MAX);
    }

    fn totals(time_ms: u64, n: u64) -> Totals {
        let mut counts = [0; K];
        counts[0] = n;
        Totals { time_ms, counts }
    }

    fn file_with(dir: &Path, n: u64) -> PathBuf {
        let path = dir.join("agg");
        let mut f = IndexFile::open(&path, "c", u64::MAX).unwrap();
        for h in 1..=n {
            f.append(h, &totals(h * 10, h)).unwrap();
        }
        path
    }

    #[test]
    fn records_survive_a_reopen_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), 5);
        let mut f = IndexFile::open(&path, "c", u64::MAX).unwrap();
        assert_eq!((f.indexed, f.last), (5, totals(50, 5)));
        assert_eq!(f.read(3).unwrap(), Some(totals(30, 3)));
        // Half a record more (a crash mid-write): dropped.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[7; 20]).unwrap();
        assert_eq!(IndexFile::open(&path, "c", u64::MAX).unwrap().indexed, 5);
        // A whole record of garbage at the end (a write that reached the size, not the data):
        // its checksum fails, so it is dropped too, and so is everything after it.
        let mut w = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        w.write_all(&vec![0; RECORD as usize]).unwrap();
        w.write_all(&totals(70, 7).encode(7)).unwrap();
        drop(w);
        let f = IndexFile::open(&path, "c", u64::MAX).unwrap();
        assert_eq!(f.indexed, 5);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), HEADER + 5 * RECORD);
        // Records above the ledger's tip are dropped (a ledger restored from an older backup).
        assert_eq!(IndexFile::open(&path, "c", 3).unwrap().indexed, 3);
    }

    #[test]
    fn another_chain_or_a_moved_record_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), 3);
        assert_eq!(IndexFile::open(&path, "other", u64::MAX).unwrap().indexed, 0);
        let path = file_with(&dir.path().join("b"), 3);
        // Record 2's bytes written in place of record 3: the checksum binds the height.
        let mut bytes = std::fs::read(&path).unwrap();
        let r = RECORD as usize;
        let h = HEADER as usize;
        let two = bytes[h + r..h + 2 * r].to_vec();
        bytes[h + 2 * r..h + 3 * r].copy_from_slice(&two);
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(IndexFile::open(&path, "c", u64::MAX).unwrap().indexed, 2);
    }

    proptest::proptest! {
        /// A record decodes to what was encoded, at its own height only; any one byte changed
        /// is caught by the checksum.
        #[test]
        fn records_round_trip_and_detect_a_changed_byte(
            height in 1u64..u64::MAX,
            time_ms in proptest::prelude::any::<u64>(),
            counts in proptest::collection::vec(proptest::prelude::any::<u64>(), K),
            flip in 0usize..RECORD as usize,
            bit in 0u8..8,
        ) {
            let t = Totals { time_ms, counts: counts.try_into().unwrap() };
            let bytes = t.encode(height);
            proptest::prop_assert_eq!(bytes.len(), RECORD as usize);
            proptest::prop_assert_eq!(Totals::decode(height, &bytes), Some(t));
            proptest::prop_assert_eq!(Totals::decode(height - 1, &bytes), None);
            let mut bad = bytes.clone();
            bad[flip] ^= 1 << bit;
            proptest::prop_assert_eq!(Totals::decode(height, &bad), None);
        }
    }

    #[test]
    fn ranges_are_differences_of_running_totals() {
        let a = totals(10, 3);
        let b = totals(20, 10);
        assert_eq!(b.since(&a)[0], 7);
        assert_eq!(a.since(&b)[0], 0, "never negative");
    }
}
