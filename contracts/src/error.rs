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
    /// `signer` is the key in hex (kept as text so the error stays small). Unknown keys cannot
    /// create state.
    #[error("signer {signer} is neither a participant nor an enrolled data subject")]
    UnknownSigner { signer: String },
    #[error("signer key {signer} was rotated out and can no longer sign")]
    RotatedKey { signer: String },
    /// A data subject's key signed an operation only participants may sign.
    #[error(
        "a data subject's key may sign only register_grant, revoke_grant, revoke_all_grants \
         and rotate_subject_key, not {op}"
    )]
    SubjectCannotSign { op: &'static str },
    /// A participant's key signed an operation only a data subject may sign.
    #[error("only an enrolled data subject's current key may sign {op}")]
    SubjectOnly { op: &'static str },
    /// The mempool's check with the last committed block's time (execution decides with the
    /// block's own time).
    #[error("grant expired at {expires_at_ms} ms; the last block's time is {time_ms} ms")]
    GrantExpired { expires_at_ms: u64, time_ms: u64 },
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
    #[error("grant expired (expires at {expires_at_ms} ms, block time {time_ms} ms)")]
    Expired { expires_at_ms: u64, time_ms: u64 },
    /// Keys in hex.
    #[error("grant names consumer {expected}, used by {got}")]
    WrongConsumer { expected: String, got: String },
    #[error("grant is for product {expected}, used for {got}")]
    WrongProduct { expected: Hash, got: Hash },
    #[error("grant is for purpose {expected:?}, used for {got:?}")]
    WrongPurpose { expected: String, got: String },
    #[error("grant signature does not verify for the key it names")]
    BadSignature,
    #[error("the grant's subject is not enrolled")]
    UnknownSubject,
    #[error("grant signed by {key}, which is not its subject's current key")]
    NotCurrentKey { key: String },
    #[error("grant signed under grant epoch {epoch}; the subject's is {current} (revoked)")]
    WrongEpoch { epoch: u64, current: u64 },
    #[error("the consumer is a data subject's key; a subject can never be the consumer")]
    ConsumerIsSubject,
    #[error("the use names subject {got}, the grant is of {expected}")]
    WrongSubject { expected: String, got: String },
    #[error("purpose {purpose:?} is not in the governed purpose list")]
    UnknownPurpose { purpose: String },
    #[error("purpose {purpose:?} is allowed up to grade {max_grade}; the product is grade {grade}")]
    PurposeGrade { purpose: String, max_grade: u8, grade: u8 },
    #[error(
        "a grade-4 grant may expire at most {lifetime_ms_max} ms after the block time: expires \
         at {expires_at_ms}, latest allowed {max_expires_at_ms}"
    )]
    Grade4Lifetime { expires_at_ms: u64, max_expires_at_ms: u64, lifetime_ms_max: u64 },
    #[error("state is unreadable: {reason}")]
    Unreadable { reason: String },
    #[error("a different grant with this id is already recorded")]
    IdConflict,
    #[error("grant already registered")]
    AlreadyRegistered,
    #[error("only the grant's subject, with its current key, may register it")]
    NotSubject,
    #[error("grant is valid until {expires_at_ms} ms (block time {time_ms} ms)")]
    NotYetExpired { expires_at_ms: u64, time_ms: u64 },
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
    /// `account` is the key in hex. The balance itself is not named: the receipt is read by
    /// the transaction's signer, who may not be the account's owner.
    #[error("account {account} does not hold {needed} ({what})")]
    InsufficientFunds { account: String, needed: u64, what: &'static str },
    #[error("amount overflow: {what}")]
    Overflow { what: String },
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

    pub(crate) fn overflow(what: impl Display) -> Self {
        Self::Overflow { what: what.to_string() }
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
