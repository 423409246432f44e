//! Speculative execution: the `execute` stage runs beside consensus instead of after it.
//!
//! A proposal this node has found valid (or its own) is executed at once on a worker thread —
//! the contracts on an overlay of the tip, then the state change through the Jellyfish tree
//! and the whole write batch staged (`Store::prepare_block`) — while the prevotes and
//! precommits on it are collected. When the block is decided, the commit only adds the
//! certificate and writes the batch. A decision for another block (a
//! later round, an equivocating proposer) discards the work and executes the decided block as
//! before; nothing speculative is ever written.
//!
//! Why this is safe:
//! - **Same result.** Execution is a pure function of the tip's state and the block (the
//!   contracts are deterministic; the signature cache and the per-thread memos only skip work
//!   whose verdict is fixed by the bytes). The worker reads the tip the decided block extends.
//! - **Nothing commits under it.** The driver is the store's only writer, and it joins the
//!   worker before any commit (a decided block, a synced one): a speculation never reads a
//!   state that is being changed. Should the tip move anyway, the store refuses the prepared
//!   change (`LedgerError::StalePreparation`) and the block is executed afresh.
//! - **Crash-safe.** The worker writes nothing; a crash loses only work.
//!
//! One worker thread for the driver's life (the contracts' per-thread caches stay warm). Bounded:
//! one speculation at a time. A second valid proposal while one runs (only a later
//! round or an equivocating proposer makes one) is not speculated on; the decided block then
//! executes on the driver as it always did.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dpx_app::admit::TxChecker;
use dpx_app::execute::execute_block;
use dpx_crypto::Hash;
use dpx_ledger::{Block, PreparedBlock, Store, TxHashes};

/// A block executed and its commit prepared, ready to write.
#[derive(Debug)]
pub(super) struct Executed {
    pub receipts: Vec<Vec<u8>>,
    pub prepared: PreparedBlock,
    /// How long the execution and the preparation took.
    pub took: Duration,
}

/// Execute `block` (its transactions' `hashes` made when it arrived) on the tip and prepare
/// its commit (nothing is written).
pub(super) fn execute_and_prepare(
    store: &Store,
    checker: &TxChecker,
    block: &Block,
    hashes: &TxHashes,
) -> anyhow::Result<Executed> {
    let started = Instant::now();
    let (writes, receipts) = execute_block(store, checker, block, hashes.digests())?;
    let prepared = store
        .prepare_block(block, hashes, &writes, &receipts)
        .with_context(|| format!("preparing the commit of block {}", block.header.height))?;
    Ok(Executed { receipts, prepared, took: started.elapsed() })
}

/// What became of the speculation when a block was about to be committed.
#[derive(Debug)]
pub(super) enum Outcome {
    /// It was for this block: its result (an error is the worker's; the caller executes
    /// afresh). `waited` is how long the commit waited for the worker to finish.
    Used { result: Reply, waited: Duration },
    /// It was for another block, and was waited for and dropped.
    Discarded,
    /// There was none.
    None,
}

/// The worker's answer (boxed: a prepared block is large next to the other outcomes).
type Reply = anyhow::Result<Box<Executed>>;

struct Job {
    block: Arc<Block>,
    hashes: Arc<TxHashes>,
    reply: SyncSender<Reply>,
}

/// The worker thread. One for the driver's life: the contracts keep per-thread caches (parsed
/// public keys, Cedar decisions) that a thread per block would start cold every time.
struct Worker {
    jobs: SyncSender<Job>,
    handle: JoinHandle<()>,
}

impl Worker {
    fn spawn(store: Arc<Store>, checker: Arc<TxChecker>) -> std::io::Result<Self> {
        // One job at a time: the driver never sends another before it has the last reply.
        let (jobs, inbox) = sync_channel::<Job>(1);
        let handle = std::thread::Builder::new().name("dpx-execute".into()).spawn(move || {
            while let Ok(job) = inbox.recv() {
                let run =
                    || execute_and_prepare(&store, &checker, &job.block, &job.hashes).map(Box::new);
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the execution worker panicked")));
                // The driver may have stopped waiting (it is shutting down): nothing to do.
                let _ = job.reply.send(result);
            }
        })?;
        Ok(Self { jobs, handle })
    }
}

struct Running {
    id: Hash,
    reply: Receiver<Reply>,
    /// The reply, once it has been seen to arrive.
    done: Option<Reply>,
}

impl Running {
    /// Whether the worker has finished this job.
    fn finished(&mut self) -> bool {
        if self.done.is_none() {
            match self.reply.try_recv() {
                Ok(r) => self.done = Some(r),
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => {
                    self.done = Some(Err(anyhow::anyhow!("the execution worker is gone")));
                }
            }
        }
        true
    }

    /// The reply, waiting for it if need be.
    fn wait(mut self) -> Reply {
        match self.done.take() {
            Some(r) => r,
            None => self
                .reply
                .recv()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the execution worker is gone"))),
        }
    }
}

/// The one speculation a driver may have running (see the module docs).
pub(super) struct Speculator {
    enabled: bool,
    store: Arc<Store>,
    checker: Arc<TxChecker>,
    /// Started with the first speculation.
    worker: Option<Worker>,
    running: Option<Running>,
}

impl std::fmt::Debug for Speculator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speculator")
            .field("enabled", &self.enabled)
            .field("running", &self.running.as_ref().map(|r| r.id))
            .finish_non_exhaustive()
    }
}

impl Speculator {
    pub fn new(enabled: bool, store: Arc<Store>, checker: Arc<TxChecker>) -> Self {
        Self { enabled, store, checker, worker: None, running: None }
    }

    /// Start executing `block` (named `id`) on the worker, unless one is already running or
    /// speculation is off. The caller checked that the block is valid on the current tip.
    /// Returns whether it was started.
    pub fn start(&mut self, id: Hash, block: &Arc<Block>, hashes: &Arc<TxHashes>) -> bool {
        if !self.enabled || block.header.height != self.store.tip_height() + 1 {
            return false;
        }
        if let Some(r) = &mut self.running
            && (r.id == id || !r.finished())
        {
            return false;
        }
        // A finished speculation on another value is dropped (its proposal lost the round).
        self.running = None;
        if self.worker.is_none() {
            let Ok(w) = Worker::spawn(Arc::clone(&self.store), Arc::clone(&self.checker)) else {
                // No thread to be had: decided blocks execute on the driver instead.
                self.enabled = false;
                return false;
            };
            self.worker = Some(w);
        }
        let Some(worker) = &self.worker else { return false };
        let (reply, rx) = sync_channel(1);
        if worker
            .jobs
            .try_send(Job { block: Arc::clone(block), hashes: Arc::clone(hashes), reply })
            .is_err()
        {
            return false;
        }
        self.running = Some(Running { id, reply: rx, done: None });
        true
    }

    /// Before committing the block `id` (or any block): wait for the worker, whatever it
    /// runs, so nothing reads the store while it changes; hand back its result if it was for
    /// `id`.
    pub fn take(&mut self, id: &Hash) -> Outcome {
        let Some(r) = self.running.take() else { return Outcome::None };
        let started = Instant::now();
        let same = r.id == *id;
        let result = r.wait();
        if same { Outcome::Used { result, waited: started.elapsed() } } else { Outcome::Discarded }
    }

    /// The id being (or last) speculated on, for tests.
    #[cfg(test)]
    pub fn current(&self) -> Option<Hash> {
        self.running.as_ref().map(|r| r.id)
    }
}

impl Drop for Speculator {
    fn drop(&mut self) {
        // A driver going away waits for its worker, so no thread reads the store after the
        // node has let go of it: closing the queue ends the worker after its job.
        self.running = None;
        if let Some(w) = self.worker.take() {
            drop(w.jobs);
            let _ = w.handle.join();
        }
    }
}
