//! Error types: one enum per concern, each variant saying what went wrong.

use std::fmt::Display;

use dpx_crypto::Hash;

use crate::types::{Code, GrantId, GrantState};

/// Bytes that are not a valid encoding of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{size} bytes exceeds the maximum of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("protobuf: {0}")]
    Proto(#[from] prost::DecodeError),
    #[error("missing field {field}")]
    Missing { field: &'static str },
    #[error("field {field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("not the canonical encoding")]
    NotCanonical,
    #[error("base64: {0}")]
    Base64(String),
}

impl DecodeError {
    pub(crate) fn field(field: &'static str, reason: impl Display) -> Self {
        Self::Field { field, reason: reason.to_string() }
    }
}

/// Why a transaction cannot enter a block (stateless and cheap stateful checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("transaction of {size} bytes exceeds the maximum of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("undecodable transaction: {0}")]
    Decode(#[from] DecodeError),
    #[error("transaction is for chain {got:?}, this is {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("signature does not verify")]
    BadSignature,
    #[error("invalid operation: {reason}")]
    InvalidOp { reason: String },
    #[error("nonce {got} already used; next is {expected}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error("nonce {got} is ahead; next is {expected}")]
    NonceTooHigh { expected: u64, got: u64 },
    #[error("transaction expired at height {expiry_height}, now {height}")]
    Expired { expiry_height: u64, height: u64 },
    /// `signer` is the key in hex (kept as text so the error stays small).
    #[error("signer {signer} is not a participant; only grant operations are open to any key")]
    UnknownSigner { signer: String },
    #[error("signer key {signer} was rotated out and can no longer sign")]
    RotatedKey { signer: String },
    /// A key that is no participant's may only submit grant operations that succeed: a failing
    /// one would leave a receipt and a nonce for nothing.
    #[error("refused for a key that is no participant's: {reason}")]
    StrangerRefused { reason: String },
    #[error("state is unreadable: {reason}")]
    Corrupt { reason: String },
}

impl TxError {
    pub(crate) fn invalid_op(reason: impl Display) -> Self {
        Self::InvalidOp { reason: reason.to_string() }
    }
}

/// Why a one-use grant cannot be registered, used, revoked or expired.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefusal {
    #[error("unknown grant")]
    Unknown,
    #[error("grant already consumed at height {height}")]
    AlreadyConsumed { height: u64 },
    #[error("grant revoked at height {height}")]
    Revoked { height: u64 },
    #[error("grant expired (expiry height {expiry_height}, now {height})")]
    Expired { expiry_height: u64, height: u64 },
    /// Keys in hex.
    #[error("grant names consumer {expected}, used by {got}")]
    WrongConsumer { expected: String, got: String },
    #[error("grant is for product {expected}, used for {got}")]
    WrongProduct { expected: Hash, got: Hash },
    #[error("grant is for purpose {expected:?}, used for {got:?}")]
    WrongPurpose { expected: String, got: String },
    #[error("grant signature does not verify for its subject")]
    BadSignature,
    #[error("a different grant with this id is already recorded")]
    IdConflict,
    #[error("grant already registered")]
    AlreadyRegistered,
    #[error("only the grant's subject may revoke it")]
    NotSubject,
    #[error(
        "unknown grant: a key that is no participant's may revoke only a grant the ledger \
         holds (register it first)"
    )]
    RevokeUnregistered,
    #[error("grant does not expire before height {expiry_height} (now {height})")]
    NotYetExpired { expiry_height: u64, height: u64 },
    #[error("grant is {state}, not issued")]
    NotIssued { state: GrantState },
}

/// Why an operation failed during execution. Only the signer's nonce moves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("denied by policy: {reason}")]
    Denied { reason: String },
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{what}")]
    Forbidden { what: String },
    #[error("{kind} {id} is {state}; {action} needs {expected}")]
    WrongState {
        kind: &'static str,
        id: String,
        state: String,
        action: &'static str,
        expected: String,
    },
    #[error("{what}")]
    Conflict { what: String },
    #[error("invalid input: {what}")]
    Invalid { what: String },
    #[error("grant {id}: {refusal}")]
    Grant { id: GrantId, refusal: Box<GrantRefusal> },
    #[error("policy set rejected: {reason}")]
    Policy { reason: String },
    #[error("genesis: {reason}")]
    Genesis { reason: String },
    #[error("state is unreadable: {reason}")]
    Corrupt { reason: String },
}

impl ContractError {
    /// The receipt code this failure gets.
    pub fn code(&self) -> Code {
        match self {
            Self::Denied { .. } => Code::Denied,
            _ => Code::Failed,
        }
    }

    pub(crate) fn forbidden(what: impl Display) -> Self {
        Self::Forbidden { what: what.to_string() }
    }

    pub(crate) fn conflict(what: impl Display) -> Self {
        Self::Conflict { what: what.to_string() }
    }

    pub(crate) fn invalid(what: impl Display) -> Self {
        Self::Invalid { what: what.to_string() }
    }

    pub(crate) fn not_found(kind: &'static str, id: impl Display) -> Self {
        Self::NotFound { kind, id: id.to_string() }
    }

    pub(crate) fn grant(id: GrantId, refusal: GrantRefusal) -> Self {
        Self::Grant { id, refusal: Box::new(refusal) }
    }
}

impl From<DecodeError> for ContractError {
    fn from(e: DecodeError) -> Self {
        Self::Corrupt { reason: e.to_string() }
    }
}
