//! The one error enum of the crate. Every rejection of outside input is one of these, and a
//! rejected input never changes the core's state.

use crate::{Height, Round, ValidatorIndex};

/// Everything that can go wrong in `dpx-consensus`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("encoded message is {len} bytes, more than the maximum {max}")]
    TooLarge { len: usize, max: usize },
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("invalid validator set: {0}")]
    InvalidValidatorSet(&'static str),
    #[error("validator {index} is not in the validator set of {len}")]
    UnknownValidator { index: ValidatorIndex, len: usize },
    #[error("signature does not verify (wrong key, wrong chain or tampered message)")]
    BadSignature,
    #[error("message for height {got}, we are at height {current}")]
    WrongHeight { got: Height, current: Height },
    #[error("message for height {got} is too far ahead of height {current}")]
    FarFutureHeight { got: Height, current: Height },
    #[error("message for round {got} is too far ahead of round {current}")]
    FarFutureRound { got: Round, current: Round },
    #[error("proposal for round {round} signed by {got}, the proposer is {expected}")]
    NotProposer { round: Round, got: ValidatorIndex, expected: ValidatorIndex },
    #[error("consensus has not started a height yet")]
    NotStarted,
    #[error("buffer of messages for the next height is full ({max})")]
    BufferFull { max: usize },
    #[error("certificate has {got} voting power, quorum is {quorum}")]
    NoQuorum { got: u64, quorum: u64 },
    #[error("certificate lists validator {0} twice or out of order")]
    DuplicateSigner(ValidatorIndex),
    #[error("evidence is not a conflict: {0}")]
    NotConflicting(&'static str),
    #[error("start of height {got} does not follow height {current}")]
    BadStartHeight { got: Height, current: Height },
}
