//! Weighted validator sets, quorums by voting power, and deterministic weighted round-robin
//! proposer selection.

use std::fmt;

use dpx_crypto::{Domain, HashWriter, PublicKey};
use serde::{Deserialize, Serialize};

use crate::{Error, Hash, Height, Round, ValidatorIndex};

/// At most this many validators in one set: bounds every per-validator table in the core.
pub const MAX_VALIDATORS: usize = 1024;
/// Total voting power is bounded so sums of powers (and `2 * total`) never overflow a `u64`.
pub const MAX_TOTAL_POWER: u64 = 1 << 60;
/// Length bound of one period of the proposer schedule. Powers are scaled down proportionally
/// when their sum is larger, so building the schedule costs at most `(slots + n) * n` steps.
pub const SCHEDULE_SLOTS_MAX: u64 = 4096;

/// One validator: its consensus key and its voting power.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Validator {
    pub key: PublicKey,
    pub power: u64,
}

/// A validated, ordered validator set. A validator's [`ValidatorIndex`] is its position.
///
/// Invariants (checked by [`ValidatorSet::new`]): non-empty, at most [`MAX_VALIDATORS`], no
/// duplicate keys, every power > 0, total power ≤ [`MAX_TOTAL_POWER`].
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "Vec<Validator>", into = "Vec<Validator>")]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
    selector: ProposerSelector,
}

impl ValidatorSet {
    /// Validate and build a set; the order given is the index order.
    pub fn new(validators: Vec<Validator>) -> Result<Self, Error> {
        if validators.is_empty() {
            return Err(Error::InvalidValidatorSet("empty"));
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(Error::InvalidValidatorSet("more than MAX_VALIDATORS"));
        }
        let mut keys: Vec<&PublicKey> = validators.iter().map(|v| &v.key).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::InvalidValidatorSet("duplicate key"));
        }
        let mut total: u64 = 0;
        for v in &validators {
            if v.power == 0 {
                return Err(Error::InvalidValidatorSet("zero voting power"));
            }
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= MAX_TOTAL_POWER)
                .ok_or(Error::InvalidValidatorSet("total power above MAX_TOTAL_POWER"))?;
        }
        let selector = ProposerSelector::new(&validators, total);
        Ok(Self { validators, total_power: total, selector })
    }

    /// The validators in index order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Always false: a set is never empty. Present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The validator at `index`, if any.
    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(index.get())
    }

    /// Sum of all voting power.
    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// The smallest voting power that is more than two thirds of the total (the paper's 2f+1).
    pub fn quorum(&self) -> u64 {
        self.total_power * 2 / 3 + 1
    }

    /// The smallest voting power that is more than one third of the total (the paper's f+1):
    /// such a group contains at least one correct validator.
    pub fn one_third_plus(&self) -> u64 {
        self.total_power / 3 + 1
    }

    /// The index of `key`, if it is a member.
    pub fn index_of(&self, key: &PublicKey) -> Option<ValidatorIndex> {
        self.validators.iter().position(|v| v.key == *key).map(|i| ValidatorIndex(i as u32))
    }

    /// The domain-separated hash of the set (keys and powers in index order) for `chain_id`.
    pub fn hash(&self, chain_id: &str) -> Hash {
        let mut w = HashWriter::new(Domain::VALIDATOR_SET, chain_id);
        w.update(&(self.validators.len() as u64).to_le_bytes());
        for v in &self.validators {
            w.update(v.key.as_bytes()).update(&v.power.to_le_bytes());
        }
        w.finish()
    }

    /// The weighted round-robin proposer schedule of this set.
    pub fn selector(&self) -> &ProposerSelector {
        &self.selector
    }

    /// The proposer of `(height, round)` under weighted round-robin.
    pub fn proposer(&self, height: Height, round: Round) -> &Validator {
        &self.validators[self.selector.proposer_index(height, round).get()]
    }
}

impl PartialEq for ValidatorSet {
    fn eq(&self, other: &Self) -> bool {
        self.validators == other.validators
    }
}
impl Eq for ValidatorSet {}

impl fmt::Debug for ValidatorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidatorSet")
            .field("len", &self.validators.len())
            .field("total_power", &self.total_power)
            .finish_non_exhaustive()
    }
}

impl TryFrom<Vec<Validator>> for ValidatorSet {
    type Error = Error;
    fn try_from(v: Vec<Validator>) -> Result<Self, Error> {
        Self::new(v)
    }
}

impl From<ValidatorSet> for Vec<Validator> {
    fn from(s: ValidatorSet) -> Self {
        s.validators
    }
}

/// Deterministic weighted round-robin: Tendermint's priority accumulation ("smooth weighted
/// round robin"), precomputed for one period.
///
/// Each slot every validator's priority grows by its weight; the highest priority proposes
/// (ties go to the lower index) and pays back the total weight. Over one period each validator
/// proposes exactly `weight` times, spread evenly. Slot `(height + round) mod period` proposes
/// at `(height, round)`, so a failed round hands the turn to the next validator in the schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct ProposerSelector {
    schedule: Vec<ValidatorIndex>,
}

impl ProposerSelector {
    fn new(validators: &[Validator], total: u64) -> Self {
        // Scale down large powers so one period is at most SCHEDULE_SLOTS_MAX (+ n) slots; every
        // validator keeps weight >= 1 so nobody is starved.
        let weights: Vec<u64> = validators
            .iter()
            .map(|v| {
                if total <= SCHEDULE_SLOTS_MAX {
                    v.power
                } else {
                    let scaled =
                        u128::from(v.power) * u128::from(SCHEDULE_SLOTS_MAX) / u128::from(total);
                    (scaled as u64).max(1)
                }
            })
            .collect();
        let period: u64 = weights.iter().sum();
        let period_i = period as i128;
        let mut priority = vec![0i128; weights.len()];
        let mut schedule = Vec::with_capacity(period as usize);
        for _ in 0..period {
            let mut best = 0;
            for (i, w) in weights.iter().enumerate() {
                priority[i] += *w as i128;
                if priority[i] > priority[best] {
                    best = i;
                }
            }
            priority[best] -= period_i;
            schedule.push(ValidatorIndex(best as u32));
        }
        Self { schedule }
    }

    /// The index of the proposer of `(height, round)`.
    pub fn proposer_index(&self, height: Height, round: Round) -> ValidatorIndex {
        let len = self.schedule.len() as u64;
        let slot = (height.0 % len + u64::from(round.0) % len) % len;
        self.schedule[slot as usize]
    }

    /// Length of one period of the schedule.
    pub fn period(&self) -> usize {
        self.schedule.len()
    }
}

impl fmt::Debug for ProposerSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProposerSelector(period {})", self.schedule.len())
    }
}

/// The proposer rule the core asks, supplied by the caller: [`WeightedRoundRobin`] in
/// production, a fixed table in the conformance harness.
pub trait ProposerSchedule: fmt::Debug + Send {
    /// The proposer of `(height, round)` among `validators`. Must be deterministic and return
    /// an index inside the set.
    fn proposer(&self, validators: &ValidatorSet, height: Height, round: Round) -> ValidatorIndex;
}

/// The production rule: the validator set's own weighted round-robin schedule.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightedRoundRobin;

impl ProposerSchedule for WeightedRoundRobin {
    fn proposer(&self, validators: &ValidatorSet, height: Height, round: Round) -> ValidatorIndex {
        validators.selector().proposer_index(height, round)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::Keypair;

    fn key(i: u8) -> PublicKey {
        Keypair::from_seed([i; 32]).public()
    }

    fn set(powers: &[u64]) -> ValidatorSet {
        ValidatorSet::new(
            powers
                .iter()
                .enumerate()
                .map(|(i, p)| Validator { key: key(i as u8 + 1), power: *p })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn rejects_bad_sets() {
        assert!(ValidatorSet::new(vec![]).is_err());
        let k = key(1);
        assert!(ValidatorSet::new(vec![Validator { key: k, power: 0 }]).is_err());
        assert!(
            ValidatorSet::new(vec![Validator { key: k, power: 1 }, Validator { key: k, power: 2 }])
                .is_err()
        );
        let big = vec![
            Validator { key: key(1), power: MAX_TOTAL_POWER },
            Validator { key: key(2), power: 1 },
        ];
        assert!(ValidatorSet::new(big).is_err());
        let many: Vec<Validator> = (0..=MAX_VALIDATORS)
            .map(|i| Validator { key: Keypair::from_seed(blake3_seed(i)).public(), power: 1 })
            .collect();
        assert!(ValidatorSet::new(many).is_err());
    }

    fn blake3_seed(i: usize) -> [u8; 32] {
        dpx_crypto::Hash::digest(&i.to_le_bytes()).0
    }

    #[test]
    fn quorums_match_the_paper() {
        // n = 3f + 1 equal powers: 2f+1 and f+1.
        assert_eq!(set(&[1; 4]).quorum(), 3);
        assert_eq!(set(&[1; 4]).one_third_plus(), 2);
        assert_eq!(set(&[1; 7]).quorum(), 5);
        assert_eq!(set(&[1; 7]).one_third_plus(), 3);
        // Weighted: total 10 -> more than 6.66 is 7.
        assert_eq!(set(&[4, 3, 2, 1]).quorum(), 7);
    }

    #[test]
    fn round_robin_is_weighted_and_fair() {
        let s = set(&[3, 2, 1]);
        assert_eq!(s.selector().period(), 6);
        let mut counts = [0; 3];
        for r in 0..600 {
            counts[s.selector().proposer_index(Height(1), Round(r)).get()] += 1;
        }
        assert_eq!(counts, [300, 200, 100]);
        // Equal powers rotate through everybody.
        let e = set(&[1; 4]);
        let seq: Vec<u32> =
            (0..4).map(|r| e.selector().proposer_index(Height(0), Round(r)).0).collect();
        assert_eq!(seq, vec![0, 1, 2, 3]);
    }

    #[test]
    fn large_powers_are_scaled_not_starved() {
        let s = set(&[1_000_000_000, 1]);
        assert!(s.selector().period() <= (SCHEDULE_SLOTS_MAX + 2) as usize);
        let small = (0..s.selector().period() as u32)
            .filter(|r| s.selector().proposer_index(Height(0), Round(*r)).0 == 1)
            .count();
        assert_eq!(small, 1);
    }

    #[test]
    fn hash_binds_chain_order_and_power() {
        let a = set(&[1, 2]);
        assert_ne!(a.hash("c"), a.hash("d"));
        assert_ne!(a.hash("c"), set(&[2, 1]).hash("c"));
        assert_eq!(a.index_of(&key(2)), Some(ValidatorIndex(1)));
        assert_eq!(a.index_of(&key(9)), None);
    }

    #[test]
    fn serde_validates() {
        let a = set(&[1, 2]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<ValidatorSet>(&json).unwrap(), a);
        let dup = format!(
            "[{{\"key\":\"{}\",\"power\":1}},{{\"key\":\"{}\",\"power\":1}}]",
            key(1),
            key(1)
        );
        assert!(serde_json::from_str::<ValidatorSet>(&dup).is_err());
    }
}
