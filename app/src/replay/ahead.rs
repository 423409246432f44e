//! Reading ahead: the replay fetches the next blocks before it needs them and has worker
//! threads verify their transactions' signatures while it executes the current block.
//!
//! Verification is most of a marketplace replay's cost (a grant use carries two signatures)
//! and, unlike execution, does not depend on the state: whether a transaction's encoding and
//! signatures are valid is a pure function of its bytes and the chain id. So it can run on
//! the other cores, blocks ahead. The workers only fill the [`TxChecker`]'s cache of verified
//! transactions; the replay still asks the checker about every transaction of every block in
//! order (`first_bad_tx`), and a transaction a worker has not reached, or found invalid, is
//! verified there as before. The verdicts, and so the replay's outcome, are the same with any
//! number of workers, including none.
//!
//! Bounded: at most [`AHEAD_BLOCKS`] blocks and about [`AHEAD_TXS`] transactions are held
//! ahead (far below the checker's cache, so nothing verified ahead is forgotten before use),
//! and a source error met while reading ahead is reported only when the replay reaches that
//! height, as it would have been without reading ahead.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::Scope;

use super::ReplayError;
use super::source::{Fetched, Source};
use crate::admit::TxChecker;

/// Most blocks fetched ahead of the one being replayed.
pub const AHEAD_BLOCKS: usize = 64;
/// About the most transactions fetched ahead (a block larger than this is still taken whole).
pub const AHEAD_TXS: usize = 40_000;
/// Transactions a worker verifies at a time.
const CHUNK: usize = 256;
/// Most verifying workers, whatever is asked (`--verify-workers` comes from the command line;
/// a thread per request would exhaust the process first).
pub const MAX_WORKERS: usize = 64;

type Work = Arc<Vec<Vec<u8>>>;

/// Blocks read ahead of the replay, their signatures being verified by workers.
pub struct ReadAhead {
    queue: VecDeque<(u64, Result<Fetched, ReplayError>)>,
    queued_txs: usize,
    next: u64,
    to: u64,
    /// Chunks of transactions for the workers (`None` when verification is not worth it).
    work: Option<SyncSender<Work>>,
}

impl ReadAhead {
    /// Read heights `from..=to`, with `workers` threads verifying ahead in `scope` (0: none).
    pub fn new<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        checker: &'env TxChecker,
        from: u64,
        to: u64,
        workers: usize,
    ) -> Self {
        let workers = workers.min(MAX_WORKERS);
        let work = (workers > 0 && !checker.is_opaque()).then(|| {
            let (tx, rx) = sync_channel::<Work>(AHEAD_TXS / CHUNK);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..workers {
                let rx = Arc::clone(&rx);
                scope.spawn(move || verify_chunks(checker, &rx));
            }
            tx
        });
        Self { queue: VecDeque::new(), queued_txs: 0, next: from, to, work }
    }

    /// The next height's block (in order), after reading ahead as far as the bounds allow.
    pub fn next(&mut self, source: &mut dyn Source) -> Option<(u64, Result<Fetched, ReplayError>)> {
        while self.next <= self.to
            && self.queue.len() < AHEAD_BLOCKS
            && (self.queue.is_empty() || self.queued_txs < AHEAD_TXS)
        {
            let h = self.next;
            self.next += 1;
            let fetched = source.fetch(h);
            let failed = !matches!(fetched, Ok(Fetched::Block { .. }));
            if let Ok(Fetched::Block { block, .. }) = &fetched {
                self.queued_txs += block.txs.len();
                self.verify_ahead(&block.txs);
            }
            self.queue.push_back((h, fetched));
            if failed {
                // Nothing past a missing or bad block is needed: the replay stops there.
                self.to = h;
            }
        }
        let (h, fetched) = self.queue.pop_front()?;
        if let Ok(Fetched::Block { block, .. }) = &fetched {
            self.queued_txs -= block.txs.len();
        }
        Some((h, fetched))
    }

    fn verify_ahead(&self, txs: &[Vec<u8>]) {
        let Some(work) = &self.work else { return };
        for chunk in txs.chunks(CHUNK) {
            // The queue holds about AHEAD_TXS; when the workers are behind, the replay
            // verifies what they have not reached itself, so a full queue just skips.
            if work.try_send(Arc::new(chunk.to_vec())).is_err() {
                return;
            }
        }
    }
}

fn verify_chunks(checker: &TxChecker, rx: &Mutex<Receiver<Work>>) {
    loop {
        // Hold the lock only to take a chunk, never while verifying.
        let next = rx.lock().map_or(None, |r| r.recv().ok());
        let Some(chunk) = next else { return };
        // Only the checker's cache matters here; the replay asks for the verdicts in order.
        let _ = checker.stateless(&chunk);
    }
}

/// Verifying workers for this machine: every core but the replay's own, at least one.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit::tests::{CHAIN, signed};

    /// A source of `n` one-transaction blocks, the one at `bad` failing to be read.
    struct Blocks {
        n: u64,
        bad: Option<u64>,
        fetched: Vec<u64>,
    }

    impl Source for Blocks {
        fn describe(&self) -> String {
            "test".into()
        }
        fn tip(&mut self) -> Result<u64, ReplayError> {
            Ok(self.n)
        }
        fn fetch(&mut self, height: u64) -> Result<Fetched, ReplayError> {
            self.fetched.push(height);
            if Some(height) == self.bad {
                return Ok(Fetched::Corrupt(format!("bad {height}")));
            }
            let header = dpx_ledger::Header {
                chain_id: CHAIN.into(),
                height,
                time_ms: height,
                proposer: dpx_crypto::Keypair::from_seed([1; 32]).public(),
                parent_id: dpx_crypto::Hash::ZERO,
                parent_certificate_hash: dpx_crypto::Hash::ZERO,
                tx_root: dpx_crypto::Hash::ZERO,
                state_root: dpx_crypto::Hash::ZERO,
                validator_set_hash: dpx_crypto::Hash::ZERO,
                prev_receipts_hash: dpx_crypto::Hash::ZERO,
            };
            let block = dpx_ledger::Block { header, txs: vec![signed(1, height)] };
            Ok(Fetched::Block { block: Box::new(block), certificate: None })
        }
    }

    /// Blocks come out in order, each once; nothing is read past a block that cannot be read
    /// (reported at its height); any number of workers asked for, however large, is served by
    /// at most `MAX_WORKERS` threads and verifies what is read ahead.
    #[test]
    fn reads_in_order_stops_at_a_bad_block_and_bounds_its_workers() {
        let checker = TxChecker::new(CHAIN, false, 1000);
        let mut source = Blocks { n: 100, bad: Some(70), fetched: Vec::new() };
        let heights = std::thread::scope(|scope| {
            let mut ahead = ReadAhead::new(scope, &checker, 1, 100, usize::MAX);
            let mut out = Vec::new();
            while let Some((h, fetched)) = ahead.next(&mut source) {
                let ok = matches!(fetched, Ok(Fetched::Block { .. }));
                out.push((h, ok));
            }
            out
        });
        assert_eq!(heights.len(), 70);
        assert!(
            heights.iter().enumerate().all(|(i, &(h, ok))| h == i as u64 + 1 && ok == (h != 70))
        );
        assert_eq!(source.fetched, (1..=70).collect::<Vec<_>>(), "each read once, none past 70");
        // The workers verified ahead: the first block's transaction is known to the checker.
        let first = dpx_crypto::Hash::digest(&signed(1, 1));
        assert!(checker.unverified(&[first]).is_empty(), "nothing was verified ahead");
    }
}
