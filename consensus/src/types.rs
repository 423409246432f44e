//! The paper's nouns as types: heights, rounds, steps, validator indices.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A consensus instance number: one decided value (block) per height.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Height(pub u64);

/// A round within a height. The paper's `-1` ("no round") is `Option<Round>::None`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Round(pub u32);

/// Position of a validator in its height's [`crate::ValidatorSet`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValidatorIndex(pub u32);

impl Height {
    /// The next height (saturating: `u64::MAX` heights are never reached).
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl Round {
    /// The next round (saturating; rounds are bounded far below `u32::MAX` by the core).
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl ValidatorIndex {
    /// As a `usize` for indexing.
    pub const fn get(self) -> usize {
        self.0 as usize
    }
}

/// The step of a round (paper line 4). Also names the timeout kinds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
}

/// The two kinds of vote.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

impl VoteKind {
    /// The step in which this kind of vote is cast.
    pub const fn step(self) -> Step {
        match self {
            Self::Prevote => Step::Prevote,
            Self::Precommit => Step::Precommit,
        }
    }
}

macro_rules! show {
    ($t:ty, $p:literal) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($p, "{}"), self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}
show!(Height, "h");
show!(Round, "r");
show!(ValidatorIndex, "v");
