//! Independent replay of the whole ledger, for auditors and regulators (`dpx audit replay`).
//!
//! The replay trusts nothing but the genesis file. It rebuilds the ledger in a fresh store from
//! the genesis state and, for every block the source serves, in order:
//!
//! 1. checks the header chain: chain id, height, parent id, strictly increasing time;
//! 2. derives the validator set in force at `h` from the replayed state and checks the header's
//!    validator-set hash and proposer;
//! 3. checks the transactions root, then the block's commit certificate against that set,
//!    then every transaction's encoding and signatures and that none repeats (the signatures
//!    of the next blocks are verified ahead by worker threads while this block executes, see
//!    `ahead`; the verdicts are the same, only sooner);
//! 4. checks what the now certified header says about the parent against the replay's own:
//!    that it names the certificate the source holds for the parent, the state root after
//!    `h-1` and the receipts hash of `h-1` (so a divergence in block `h-1`'s execution is
//!    reported at `h-1`);
//! 5. re-executes the block through `dpx-contracts` (the same code a validator runs) and
//!    commits it to the replay store;
//! 6. when the source keeps them (a node's home directory), compares the source's stored
//!    state root, receipts hash, receipts and the values of every key the block wrote.
//!
//! The last replayed block's outcome is compared with the next header when the source has
//! one, otherwise with the source's stored roots, and the source's whole latest state is
//! compared key by key with the replayed one.
//!
//! The first mismatch stops the replay with a [`Divergence`]: height, [`DivergenceKind`], both
//! values, and for a state mismatch the transaction index and keys (found by re-executing the
//! block transaction by transaction). Otherwise the result is an [`AuditReport`].
//!
//! Blocks come from a [`Source`]: `dpx-node` has one over a stopped node's home directory and
//! one over a node's RPC; this module needs neither a network nor an async runtime.
//!
//! ```no_run
//! use dpx_app::replay::{Outcome, ReplayOptions, Source, replay};
//! # fn f(source: &mut dyn Source) -> anyhow::Result<()> {
//! let genesis = dpx_genesis::Genesis::load("genesis.json".as_ref())?;
//! let dir = std::path::Path::new("/tmp/replay"); // a fresh directory for the replayed ledger
//! match replay(&genesis, source, dir, &ReplayOptions::default())? {
//!     Outcome::Verified(report) => println!("{}", report.summary()),
//!     Outcome::Diverged(d) => eprintln!("diverged at height {}: {}", d.height, d.detail),
//! }
//! # Ok(()) }
//! ```

mod ahead;
mod builder;
mod diagnose;
mod report;
mod source;

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use dpx_consensus::{Certificate, ValidatorSet};
use dpx_contracts as contracts;
use dpx_crypto::Hash;
use dpx_genesis::Genesis;
use dpx_ledger::{
    Block, Header, LedgerError, Store, StoreConfig, TxHashes, WriteSet, receipts_hash,
};
use serde::{Deserialize, Serialize};

pub use ahead::default_workers as default_verify_workers;
pub use builder::ChainBuilder;
pub use report::{AuditReport, LifecycleCounts, OverdueRecord, Tally};
pub use source::{Fetched, Source};

use crate::admit::TxChecker;
use crate::execute::{execute_block, validator_set};
use crate::state::LatestState;
use crate::validate::{check_certificate, first_bad_tx};

/// Most entries compared per page when the final states are compared key by key.
const STATE_PAGE_ENTRIES: usize = 5_000;
/// Most differing keys listed in one divergence report.
pub const MAX_REPORTED_KEYS: usize = 64;

/// What a replay is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Stop after this height (default: the source's tip).
    pub to_height: Option<u64>,
    /// Print progress (height, blocks/s, tx/s) on stderr.
    pub progress: bool,
    /// Threads verifying the signatures of blocks ahead of the one being replayed
    /// (`None`: one per core but the replay's own, at least one; `Some(0)`: none). The outcome
    /// is the same with any number (see `ahead`).
    pub verify_workers: Option<usize>,
}

/// Which check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceKind {
    /// Chain id, height, parent id, time, or a block the source cannot produce or decode.
    HeaderChain,
    /// The block's certificate is missing, malformed, for another block, short of a quorum or
    /// badly signed, or is not the certificate the next header names.
    Certificate,
    /// The header's transactions root is not the root of its transactions.
    TxRoot,
    /// A committed transaction fails the checks every validator applies before voting
    /// (encoding, chain id, signature, no repeat within the block).
    Transactions,
    /// The header names another validator set, or a proposer outside it.
    ValidatorSet,
    /// The state after the block differs: from the next header's state root, the source's
    /// recorded root, or the source's stored values.
    StateRoot,
    /// The receipts differ from the next header's receipts hash or the source's stored ones.
    Receipts,
}

impl DivergenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeaderChain => "header_chain",
            Self::Certificate => "certificate",
            Self::TxRoot => "tx_root",
            Self::Transactions => "transactions",
            Self::ValidatorSet => "validator_set",
            Self::StateRoot => "state_root",
            Self::Receipts => "receipts",
        }
    }
}

/// One state key whose value the replay and the source disagree on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDiff {
    /// Hex of the key.
    pub key: String,
    /// The key as text when it is printable (state keys are mostly `prefix/…`).
    pub key_text: Option<String>,
    /// Hex of the replayed value (`None`: absent).
    pub replayed: Option<String>,
    /// Hex of the source's value (`None`: absent).
    pub source: Option<String>,
    /// The transaction of the block that last wrote the key in the replay (`None`: the block's
    /// begin step, or a key the replay did not write).
    pub tx_index: Option<u32>,
}

/// The first place where the source's ledger and the independent replay disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The block whose check or outcome differs.
    pub height: u64,
    pub kind: DivergenceKind,
    /// What the replay was compared with, e.g. `header 8`, `source store`.
    pub against: String,
    pub detail: String,
    /// What the replay computed, when one value stands for it (a root, a hash).
    pub replayed: Option<String>,
    /// What the source holds or the chain claims.
    pub source: Option<String>,
    /// The first transaction involved.
    pub tx_index: Option<u32>,
    /// For a state mismatch: the keys whose values differ (at most [`MAX_REPORTED_KEYS`]).
    pub keys: Vec<KeyDiff>,
}

impl Divergence {
    fn new(
        height: u64,
        kind: DivergenceKind,
        against: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            height,
            kind,
            against: against.into(),
            detail: detail.into(),
            replayed: None,
            source: None,
            tx_index: None,
            keys: Vec::new(),
        }
    }

    #[allow(clippy::needless_pass_by_value)] // call sites pass temporaries of many types
    fn values(mut self, replayed: impl ToString, source: impl ToString) -> Self {
        self.replayed = Some(replayed.to_string());
        self.source = Some(source.to_string());
        self
    }

    fn tx(mut self, index: usize) -> Self {
        self.tx_index = Some(index as u32);
        self
    }

    /// A readable multi-line description.
    pub fn render(&self) -> String {
        let mut s = format!(
            "DIVERGENCE at height {} ({}), against {}: {}\n",
            self.height,
            self.kind.as_str(),
            self.against,
            self.detail
        );
        if let (Some(r), Some(src)) = (&self.replayed, &self.source) {
            let _ = writeln!(s, "  replayed: {r}\n  source:   {src}");
        }
        if let Some(i) = self.tx_index {
            let _ = writeln!(s, "  first transaction involved: index {i}");
        }
        for k in &self.keys {
            let _ = writeln!(
                s,
                "  key {} (tx {}): replayed {} / source {}",
                k.key_text.as_deref().unwrap_or(&k.key),
                k.tx_index.map_or_else(|| "-".to_owned(), |i| i.to_string()),
                k.replayed.as_deref().map_or("absent", short_hex),
                k.source.as_deref().map_or("absent", short_hex),
            );
        }
        s
    }
}

fn short_hex(s: &str) -> &str {
    &s[..s.len().min(48)]
}

/// How a replay ended when it could run to the end.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every check held; the audit report of the replayed range.
    Verified(Box<AuditReport>),
    /// The first divergence found; nothing after it was checked.
    Diverged(Box<Divergence>),
}

/// Why a replay could not run (as opposed to finding a divergence).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the replay directory {path} already holds a ledger; give a fresh one")]
    DirNotEmpty { path: PathBuf },
    #[error("the replay ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("the genesis file: {0}")]
    Genesis(String),
    #[error("the source: {0}")]
    Source(String),
    #[error("re-executing block {height}: {reason}")]
    Execution { height: u64, reason: String },
    #[error("the source's tip is {tip}; nothing to replay up to height {to}")]
    BeyondTip { tip: u64, to: u64 },
    /// The replayed ledger's money does not add up (a bug in the rules, or a chain made by
    /// other rules): what accounts, escrows and the treasury hold is not what was deposited
    /// minus what was withdrawn, or the receipts do not account for the state.
    #[error("the money on the ledger does not add up: {0}")]
    Money(String),
}

/// What the replay knows about the block it committed last.
struct Last {
    height: u64,
    id: Hash,
    time_ms: u64,
    certificate: Vec<u8>,
    block: Option<Block>,
    writes: WriteSet,
    state_root: Hash,
    receipts_hash: Hash,
}

/// Replay `source` from genesis into a fresh store in `dir` (which must not hold a ledger).
pub fn replay(
    genesis: &Genesis,
    source: &mut dyn Source,
    dir: &Path,
    opts: &ReplayOptions,
) -> Result<Outcome, ReplayError> {
    if dir.join("CURRENT").exists() {
        return Err(ReplayError::DirNotEmpty { path: dir.to_path_buf() });
    }
    let chain_id = genesis.chain_id.as_str();
    let config = StoreConfig { sync_writes: false, ..StoreConfig::default() };
    let store = Store::open(dir, chain_id, config)?;
    let writes = genesis.initial_writes().map_err(|e| ReplayError::Genesis(e.to_string()))?;
    let genesis_root = store.genesis(writes)?;
    // Each signature is verified once: when its block is checked, not again when executed.
    let checker = &TxChecker::new(chain_id, genesis.consensus_only, 200_000);

    let tip = source.tip()?;
    let to = opts.to_height.unwrap_or(tip);
    if to > tip {
        return Err(ReplayError::BeyondTip { tip, to });
    }
    let mut tally = Tally::new(genesis, source.describe(), tip);
    let mut last = Last {
        height: 0,
        id: Hash::ZERO,
        time_ms: genesis.genesis_time_ms,
        certificate: Vec::new(),
        block: None,
        writes: WriteSet::new(),
        state_root: genesis_root,
        receipts_hash: receipts_hash(&[]),
    };
    let mut progress = Progress::new(opts.progress, to);
    let workers = opts.verify_workers.unwrap_or_else(ahead::default_workers);
    let stopped = std::thread::scope(|scope| {
        let mut blocks = ahead::ReadAhead::new(scope, checker, 1, to, workers);
        let mut run =
            Run { store: &store, checker, chain_id, tally: &mut tally, last: &mut last, tip };
        run.blocks(&mut blocks, source, &mut progress)
    })?;
    if let Some(d) = stopped {
        return diverged(d);
    }
    progress.finish(to);
    if let Some(d) = check_end(chain_id, checker, &last, tip, source, &store)? {
        return diverged(d);
    }
    tally.finish(&store, last.state_root, last.receipts_hash, progress.started.elapsed())?;
    Ok(Outcome::Verified(Box::new(tally.into_report())))
}

/// What the block loop of [`replay`] works on.
struct Run<'a> {
    store: &'a Store,
    checker: &'a TxChecker,
    chain_id: &'a str,
    tally: &'a mut Tally,
    last: &'a mut Last,
    tip: u64,
}

#[allow(clippy::unnecessary_wraps)] // reads well at every return site
fn stop(d: Divergence) -> Result<Option<Divergence>, ReplayError> {
    Ok(Some(d))
}

impl Run<'_> {
    /// Steps 1-6 for every block, in order; the first divergence stops it.
    fn blocks(
        &mut self,
        blocks: &mut ahead::ReadAhead,
        source: &mut dyn Source,
        progress: &mut Progress,
    ) -> Result<Option<Divergence>, ReplayError> {
        let (store, checker, chain_id, tip) = (self.store, self.checker, self.chain_id, self.tip);
        while let Some((h, fetched)) = blocks.next(source) {
            let (block, certificate) = match fetched? {
                Fetched::Block { block, certificate } => (*block, certificate),
                Fetched::Missing => {
                    return stop(Divergence::new(
                        h,
                        DivergenceKind::HeaderChain,
                        "source",
                        format!("the source has no block {h} below its tip {tip}"),
                    ));
                }
                Fetched::Corrupt(reason) => {
                    return stop(Divergence::new(h, DivergenceKind::HeaderChain, "source", reason));
                }
            };
            if let Some(d) = check_chain(chain_id, &block.header, self.last) {
                return stop(d);
            }
            let validators = validator_set(store, h)
                .map_err(|e| ReplayError::Execution { height: h, reason: format!("{e:#}") })?;
            // The certificate first: what the header claims about the parent counts only once a
            // quorum is known to have signed it.
            // Each transaction is hashed here once (digest and Merkle leaf) for every check,
            // the execution and the commit.
            let hashes = TxHashes::of(&block.txs);
            let checked = check_block(
                chain_id,
                checker,
                &block,
                &hashes,
                certificate.as_deref(),
                &validators,
            );
            let cert = match checked {
                Ok(cert) => cert,
                Err(d) => return stop(*d),
            };
            if let Some(d) = check_outcome(&block.header, self.last, source, store)? {
                return stop(d);
            }
            let (writes, receipts) = execute_block(store, checker, &block, hashes.digests())
                .map_err(|e| ReplayError::Execution { height: h, reason: format!("{e:#}") })?;
            let cert_bytes = certificate.unwrap_or_default();
            let prepared = store.prepare_block(&block, &hashes, &writes, &receipts)?;
            let state_root = store.commit_prepared(&block, &cert_bytes, None, prepared)?;
            let rhash = receipts_hash(&receipts);
            if let Some(d) = source::compare_stored(
                source, store, &block, &writes, &receipts, state_root, rhash,
            )? {
                return stop(d);
            }
            // The destructions the block's start reported overdue, as it left them in state.
            let overdue = {
                let st = LatestState::new(store);
                let reports = contracts::overdue_reports(&st, h);
                if let Some(e) = st.into_error() {
                    return Err(ReplayError::Execution { height: h, reason: e });
                }
                reports
            };
            self.tally.block(&block, &cert, &validators, &receipts, &overdue);
            progress.tick(h, block.txs.len());
            *self.last = Last {
                height: h,
                id: block.id(),
                time_ms: block.header.time_ms,
                certificate: cert_bytes,
                block: Some(block),
                writes,
                state_root,
                receipts_hash: rhash,
            };
        }
        Ok(None)
    }
}

#[allow(clippy::unnecessary_wraps)] // reads well at every return site
fn diverged(d: Divergence) -> Result<Outcome, ReplayError> {
    Ok(Outcome::Diverged(Box::new(d)))
}

/// Step 1: the header extends the replayed chain (chain id, height, parent id, time).
fn check_chain(chain_id: &str, h: &Header, last: &Last) -> Option<Divergence> {
    use DivergenceKind::HeaderChain;
    let height = last.height + 1;
    let this = format!("header {height}");
    if h.chain_id != chain_id {
        return Some(
            Divergence::new(height, HeaderChain, this, "the header is for another chain")
                .values(chain_id, &h.chain_id),
        );
    }
    if h.height != height {
        return Some(
            Divergence::new(height, HeaderChain, this, "the header carries another height")
                .values(height, h.height),
        );
    }
    if h.parent_id != last.id {
        return Some(
            Divergence::new(
                height,
                HeaderChain,
                this,
                "the parent id is not the previous block's id",
            )
            .values(last.id, h.parent_id),
        );
    }
    if h.time_ms <= last.time_ms {
        return Some(
            Divergence::new(height, HeaderChain, this, "block time does not advance")
                .values(last.time_ms, h.time_ms),
        );
    }
    None
}

/// Step 2, once the header is known to be certified: what it says about the parent block —
/// which certificate of it the chain names, the state root after it, its receipts hash.
fn check_outcome(
    h: &Header,
    last: &Last,
    source: &mut dyn Source,
    store: &Store,
) -> Result<Option<Divergence>, ReplayError> {
    use DivergenceKind::{Certificate as Cert, Receipts, StateRoot};
    let this = format!("header {}", last.height + 1);
    let named = if last.height == 0 { Hash::ZERO } else { Hash::digest(&last.certificate) };
    if h.parent_certificate_hash != named {
        return Ok(Some(
            Divergence::new(
                last.height,
                Cert,
                this,
                "the source's certificate of this block is not the one the next header names",
            )
            .values(named, h.parent_certificate_hash),
        ));
    }
    if h.state_root != last.state_root {
        let d = Divergence::new(
            last.height,
            StateRoot,
            this,
            "the state root after this block differs from the one the next header commits to",
        )
        .values(last.state_root, h.state_root);
        return Ok(Some(diagnose::state(d, last.block.as_ref(), &last.writes, store, source)?));
    }
    if h.prev_receipts_hash != last.receipts_hash {
        return Ok(Some(
            Divergence::new(
                last.height,
                Receipts,
                this,
                "the receipts hash of this block differs from the one the next header commits to",
            )
            .values(last.receipts_hash, h.prev_receipts_hash),
        ));
    }
    Ok(None)
}

/// Steps 3 and 4: validator set, transactions root, certificate, transactions.
fn check_block(
    chain_id: &str,
    checker: &TxChecker,
    block: &Block,
    hashes: &TxHashes,
    certificate: Option<&[u8]>,
    validators: &ValidatorSet,
) -> Result<Certificate, Box<Divergence>> {
    use DivergenceKind::{Certificate as Cert, Transactions, TxRoot, ValidatorSet as Set};
    let height = block.header.height;
    let this = format!("block {height}");
    let fail = |kind, detail: &str| Box::new(Divergence::new(height, kind, this.clone(), detail));
    let set_hash = validators.hash(chain_id);
    if block.header.validator_set_hash != set_hash {
        return Err(Box::new(
            Divergence::new(
                height,
                Set,
                this.clone(),
                "the header names another validator set than the one in force",
            )
            .values(set_hash, block.header.validator_set_hash),
        ));
    }
    if validators.index_of(&block.header.proposer).is_none() {
        return Err(fail(Set, "the proposer is not in the validator set in force"));
    }
    if let Err(e) = hashes.check(block) {
        return Err(Box::new(
            Divergence::new(height, TxRoot, this.clone(), format!("{e}"))
                .values(hashes.root(), block.header.tx_root),
        ));
    }
    let Some(bytes) = certificate else {
        return Err(fail(Cert, "the source holds no certificate for this block"));
    };
    let cert = Certificate::decode(bytes)
        .map_err(|e| fail(Cert, &format!("undecodable certificate: {e}")))?;
    check_certificate(chain_id, &cert, height, &block.id(), validators)
        .map_err(|e| fail(Cert, &e))?;
    if let Some((i, reason)) = first_bad_tx(checker, &block.txs, hashes.digests()) {
        return Err(Box::new(
            Divergence::new(height, Transactions, this, format!("transaction {i}: {reason}")).tx(i),
        ));
    }
    Ok(cert)
}

/// The last replayed block's outcome against the next header, or the source's records.
fn check_end(
    chain_id: &str,
    checker: &TxChecker,
    last: &Last,
    tip: u64,
    source: &mut dyn Source,
    store: &Store,
) -> Result<Option<Divergence>, ReplayError> {
    if last.height < tip {
        let Fetched::Block { block, certificate } = source.fetch(last.height + 1)? else {
            return Ok(None); // a replay that reaches it reports it
        };
        if let Some(d) = check_chain(chain_id, &block.header, last) {
            return Ok(Some(d));
        }
        let validators = validator_set(store, last.height + 1).map_err(|e| {
            ReplayError::Execution { height: last.height + 1, reason: format!("{e:#}") }
        })?;
        let hashes = TxHashes::of(&block.txs);
        let cert = certificate.as_deref();
        if let Err(d) = check_block(chain_id, checker, &block, &hashes, cert, &validators) {
            return Ok(Some(*d));
        }
        return check_outcome(&block.header, last, source, store);
    }
    // The tip: no header commits to its outcome yet. Its roots were compared with the source's
    // records as it was replayed; the source's whole latest state is compared here.
    source::compare_latest_state(source, store, last.height, STATE_PAGE_ENTRIES)
}

/// Progress on stderr: carriage-return updates on a terminal, plain lines in a log.
struct Progress {
    enabled: bool,
    tty: bool,
    started: Instant,
    last_print: Instant,
    printed_height: Option<u64>,
    to: u64,
    txs: u64,
}

impl Progress {
    fn new(enabled: bool, to: u64) -> Self {
        let now = Instant::now();
        Self {
            enabled,
            tty: std::io::stderr().is_terminal(),
            started: now,
            last_print: now,
            printed_height: None,
            to,
            txs: 0,
        }
    }

    fn tick(&mut self, height: u64, txs: usize) {
        self.txs += txs as u64;
        // A terminal line is rewritten in place every second; a log gets a line every 5 s.
        let every_ms = if self.tty { 1_000 } else { 5_000 };
        if self.enabled && self.last_print.elapsed().as_millis() >= every_ms {
            self.last_print = Instant::now();
            self.printed_height = Some(height);
            self.print(height, false);
        }
    }

    fn print(&self, height: u64, done: bool) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let line = format!(
            "replay: height {height}/{} ({:.0}%), {:.0} blocks/s, {:.0} tx/s",
            self.to,
            if self.to == 0 { 100.0 } else { height as f64 * 100.0 / self.to as f64 },
            height as f64 / secs,
            self.txs as f64 / secs,
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.tty && !done { write!(err, "\r{line}") } else { writeln!(err, "\r{line}") };
        let _ = err.flush();
    }

    fn finish(&self, height: u64) {
        if self.enabled && (self.tty || self.printed_height != Some(height)) {
            self.print(height, true);
        }
    }
}
