use std::path::PathBuf;

use dpx_crypto::Hash;

/// Everything that can go wrong in `dpx-ledger`.
///
/// Bad bytes from outside (decoders, snapshots, proofs) and refused commits are ordinary errors;
/// [`LedgerError::Db`] and [`LedgerError::Corrupt`] mean the disk or the store is broken.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{what} is {actual} bytes, more than the maximum {max}")]
    TooLarge { what: &'static str, actual: usize, max: usize },
    #[error("cannot decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("{what} is not in canonical encoding")]
    NonCanonical { what: &'static str },
    #[error("state proof does not verify: {reason}")]
    BadProof { reason: String },
    #[error("merkle index {index} out of range for {count} leaves")]
    IndexOutOfRange { index: usize, count: usize },
    #[error("store at {path} belongs to chain {found:?}, not {expected:?}")]
    WrongChain { path: PathBuf, expected: String, found: String },
    #[error(
        "store at {path} has format version {found}, newer than this binary's {supported}; \
         upgrade dpx"
    )]
    NewerFormat { path: PathBuf, found: u32, supported: u32 },
    #[error("block is for chain {found:?}, the store is chain {expected:?}")]
    BlockChain { expected: String, found: String },
    #[error("block height {found} does not follow the tip {tip}")]
    NotNext { tip: u64, found: u64 },
    #[error("block {field} is {found}, expected {expected}")]
    HeaderMismatch { field: &'static str, expected: Hash, found: Hash },
    #[error("a state change prepared on tip {prepared_on} ({root}) cannot commit on another tip")]
    StalePreparation { prepared_on: u64, root: Hash },
    #[error("block has {txs} transactions but {receipts} receipts")]
    ReceiptCount { txs: usize, receipts: usize },
    #[error("block has {txs} transactions but {hashes} transaction hashes")]
    TxHashCount { txs: usize, hashes: usize },
    #[error("genesis state is already committed")]
    GenesisDone,
    #[error("genesis state is not committed yet")]
    NoGenesis,
    #[error("state version {version} is not available (retained: {oldest}..={tip})")]
    VersionUnavailable { version: u64, oldest: u64, tip: u64 },
    #[error("snapshot root {found} does not match the expected root {expected}")]
    SnapshotRoot { expected: Hash, found: Hash },
    #[error("snapshot import needs an empty store")]
    StoreNotEmpty,
    #[error("store setting {setting} is {value}, outside {min}..={max}")]
    Setting { setting: &'static str, value: usize, min: usize, max: usize },
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("state tree: {0}")]
    Tree(String),
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl LedgerError {
    #[allow(clippy::needless_pass_by_value)] // takes errors and &str alike, by value for brevity
    pub(crate) fn decode(what: &'static str, reason: impl ToString) -> Self {
        Self::Decode { what, reason: reason.to_string() }
    }

    /// Check `actual <= max` for a named input.
    pub(crate) fn check_len(what: &'static str, actual: usize, max: usize) -> Result<(), Self> {
        if actual > max { Err(Self::TooLarge { what, actual, max }) } else { Ok(()) }
    }
}
