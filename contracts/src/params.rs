//! Chain parameters, set at genesis and changed by governance.

use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::DecodeError;
use crate::keys;
use crate::policy::MAX_POLICY_BYTES;
use crate::state::State;
use crate::tx::MAX_TX_BYTES;

/// The largest encoded block any parameters may allow: the transactions, their framing and the
/// header ([`Params::max_encoded_block_bytes`]). A node must be able to store a decided block
/// and send it, with its certificate and its parent's, in one peer-to-peer frame (16 MiB by
/// default; the node derives its minimum frame from this constant and the largest
/// certificate). Parameters above it would let governance decide a block that no node can
/// carry, and the chain would stop; they are refused at genesis and in proposals.
pub const MAX_ENCODED_BLOCK_BYTES: u64 = 15 << 20;
/// Per-transaction framing inside an encoded block: a field tag and a length of up to 3 bytes
/// (transactions are at most 128 KiB), rounded up.
pub const TX_FRAMING_BYTES: u64 = 8;
/// Room for the header (and the block's own framing) in an encoded block.
pub const HEADER_BYTES_MAX: u64 = 64 * 1024;

/// Most purpose codes in the governed list.
pub const MAX_PURPOSES: usize = 64;
/// Longest purpose code.
pub const MAX_PURPOSE_CODE_BYTES: usize = 32;
/// Longest purpose description.
pub const MAX_PURPOSE_DESCRIPTION_BYTES: usize = 256;
/// Most a governed grade-4 grant lifetime may be: one day.
pub const GRADE4_GRANT_LIFETIME_MS_CEILING: u64 = 24 * 3_600_000;

/// A purpose a grant may name: a short code from the governed list, what it means, and the
/// highest product grade it may be used with (a purpose with `max_grade` 4 is one regulators
/// allow for the most restricted data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    /// 1..=32 bytes of `[a-z0-9_-]`.
    pub code: String,
    /// 1..=256 bytes.
    pub description: String,
    /// 1..=4.
    pub max_grade: u8,
}

impl Purpose {
    fn new(code: &str, description: &str, max_grade: u8) -> Self {
        Self { code: code.into(), description: description.into(), max_grade }
    }

    fn validate(&self) -> Result<(), String> {
        let code_ok = !self.code.is_empty()
            && self.code.len() <= MAX_PURPOSE_CODE_BYTES
            && self
                .code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !code_ok {
            return Err(format!(
                "purpose code {:?} must be 1..={MAX_PURPOSE_CODE_BYTES} of [a-z0-9_-]",
                self.code
            ));
        }
        if self.description.is_empty() || self.description.len() > MAX_PURPOSE_DESCRIPTION_BYTES {
            return Err(format!(
                "purpose {}: description must be 1..={MAX_PURPOSE_DESCRIPTION_BYTES} bytes",
                self.code
            ));
        }
        if !(1..=crate::types::MAX_GRADE).contains(&self.max_grade) {
            return Err(format!("purpose {}: max_grade must be 1..=4", self.code));
        }
        Ok(())
    }
}

/// The purposes of a new chain (governance changes them with `set_params`).
pub fn default_purposes() -> Vec<Purpose> {
    vec![
        Purpose::new("hiring-check", "verify a job applicant's CV for one hiring decision", 3),
        Purpose::new("credit-check", "assess a person's creditworthiness for one application", 3),
        Purpose::new("tax-check", "verify a tax status for one filing or application", 3),
        Purpose::new("health-check", "verify a person's health status at one checkpoint", 4),
        Purpose::new("audit", "a regulator-ordered audit of one record", 4),
        Purpose::new("research", "statistical research on de-identified data", 2),
    ]
}

/// Limits and delays every node applies identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    pub max_block_bytes: u64,
    pub max_block_txs: u32,
    /// At most [`MAX_TX_BYTES`].
    pub max_tx_bytes: u32,
    /// A validator-set change takes effect at least this many blocks after it is decided.
    pub validator_update_delay: u64,
    /// A proposal not approved within this many blocks can no longer be approved.
    pub proposal_ttl_blocks: u64,
    /// At most [`MAX_POLICY_BYTES`].
    pub max_policy_bytes: u32,
    /// The governed list of grant purposes, sorted by code, codes unique (1..=[`MAX_PURPOSES`]).
    pub purposes: Vec<Purpose>,
    /// A grant for a grade-4 product may expire at most this long after the block time at
    /// which it is registered or used inline (1 s ..= [`GRADE4_GRANT_LIFETIME_MS_CEILING`]).
    pub grade4_grant_lifetime_ms_max: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            max_block_bytes: 4 * 1024 * 1024,
            max_block_txs: 10_000,
            max_tx_bytes: 64 * 1024,
            validator_update_delay: 2,
            proposal_ttl_blocks: 100_000,
            max_policy_bytes: 64 * 1024,
            purposes: default_purposes_sorted(),
            grade4_grant_lifetime_ms_max: 3_600_000,
        }
    }
}

fn default_purposes_sorted() -> Vec<Purpose> {
    let mut p = default_purposes();
    p.sort_by(|a, b| a.code.cmp(&b.code));
    p
}

impl Params {
    /// The governed purpose with this code.
    pub fn purpose(&self, code: &str) -> Option<&Purpose> {
        self.purposes
            .binary_search_by(|p| p.code.as_str().cmp(code))
            .ok()
            .map(|i| &self.purposes[i])
    }

    /// The largest encoded block these limits allow: `max_block_bytes` of transactions, their
    /// framing and the header. A block filled to `max_block_bytes` with small transactions must
    /// still decode, or validators refuse a valid proposal and the chain stalls.
    pub fn max_encoded_block_bytes(&self) -> u64 {
        self.max_block_bytes
            .saturating_add(u64::from(self.max_block_txs).saturating_mul(TX_FRAMING_BYTES))
            .saturating_add(HEADER_BYTES_MAX)
    }

    /// [`Params::validate`] plus what binds only parameters set from now on (a genesis, a
    /// governed change), not those a ledger already stores: decoding stored parameters must
    /// keep accepting what earlier versions accepted, or a node would silently fall back to
    /// the defaults and diverge.
    ///
    /// A validator change decided in block e takes effect at e + delay; with a delay of 2 or
    /// more the outgoing set still certifies a header (of block effective − 1) whose state
    /// root holds the new set: that header is the change's proof in bundles (SPEC.md §11.3).
    pub fn validate_new(&self) -> Result<(), String> {
        self.validate()?;
        if self.validator_update_delay < 2 {
            return Err("validator_update_delay must be at least 2".into());
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1024..=MAX_TX_BYTES as u32).contains(&self.max_tx_bytes) {
            return Err(format!("max_tx_bytes must be in 1024..={MAX_TX_BYTES}"));
        }
        if self.max_block_bytes < u64::from(self.max_tx_bytes) || self.max_block_bytes > 1 << 30 {
            return Err("max_block_bytes must be in max_tx_bytes..=1 GiB".into());
        }
        if self.max_block_txs == 0 || self.max_block_txs > 1_000_000 {
            return Err("max_block_txs must be in 1..=1000000".into());
        }
        if self.validator_update_delay == 0 {
            return Err("validator_update_delay must be at least 1".into());
        }
        if self.proposal_ttl_blocks == 0 {
            return Err("proposal_ttl_blocks must be at least 1".into());
        }
        if self.max_encoded_block_bytes() > MAX_ENCODED_BLOCK_BYTES {
            return Err(format!(
                "max_block_bytes {} with max_block_txs {} allows {}-byte blocks, more than \
                 MAX_ENCODED_BLOCK_BYTES ({MAX_ENCODED_BLOCK_BYTES}: what a node can store and \
                 send in one frame)",
                self.max_block_bytes,
                self.max_block_txs,
                self.max_encoded_block_bytes()
            ));
        }
        if !(1024..=MAX_POLICY_BYTES as u32).contains(&self.max_policy_bytes) {
            return Err(format!("max_policy_bytes must be in 1024..={MAX_POLICY_BYTES}"));
        }
        if self.purposes.is_empty() || self.purposes.len() > MAX_PURPOSES {
            return Err(format!("1..={MAX_PURPOSES} purposes needed"));
        }
        for p in &self.purposes {
            p.validate()?;
        }
        if self.purposes.windows(2).any(|w| w[0].code >= w[1].code) {
            return Err("purposes must be sorted by code, each code once".into());
        }
        if !(1000..=GRADE4_GRANT_LIFETIME_MS_CEILING).contains(&self.grade4_grant_lifetime_ms_max) {
            return Err(format!(
                "grade4_grant_lifetime_ms_max must be in 1000..={GRADE4_GRANT_LIFETIME_MS_CEILING}"
            ));
        }
        Ok(())
    }
}

impl Wire for Params {
    type Pb = pb::Params;
    const MAX_BYTES: usize =
        256 + MAX_PURPOSES * (MAX_PURPOSE_CODE_BYTES + MAX_PURPOSE_DESCRIPTION_BYTES + 16);
    fn to_pb(&self) -> pb::Params {
        pb::Params {
            max_block_bytes: self.max_block_bytes,
            max_block_txs: self.max_block_txs,
            max_tx_bytes: self.max_tx_bytes,
            validator_update_delay: self.validator_update_delay,
            proposal_ttl_blocks: self.proposal_ttl_blocks,
            max_policy_bytes: self.max_policy_bytes,
            purposes: self
                .purposes
                .iter()
                .map(|p| pb::Purpose {
                    code: p.code.clone(),
                    description: p.description.clone(),
                    max_grade: u32::from(p.max_grade),
                })
                .collect(),
            grade4_grant_lifetime_ms_max: self.grade4_grant_lifetime_ms_max,
        }
    }
    fn from_pb(p: pb::Params) -> Result<Self, DecodeError> {
        let params = Self {
            max_block_bytes: p.max_block_bytes,
            max_block_txs: p.max_block_txs,
            max_tx_bytes: p.max_tx_bytes,
            validator_update_delay: p.validator_update_delay,
            proposal_ttl_blocks: p.proposal_ttl_blocks,
            max_policy_bytes: p.max_policy_bytes,
            purposes: p
                .purposes
                .into_iter()
                .map(|q| {
                    Ok(Purpose {
                        code: q.code,
                        description: q.description,
                        max_grade: codec::small(q.max_grade, "purpose.max_grade")?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?,
            grade4_grant_lifetime_ms_max: p.grade4_grant_lifetime_ms_max,
        };
        params.validate().map_err(|e| DecodeError::field("params", e))?;
        Ok(params)
    }
}

/// The parameters in force (the defaults before genesis or if the stored value is unreadable,
/// which genesis validation rules out).
pub fn params<S: State + ?Sized>(st: &S) -> Params {
    st.get(keys::PARAMS).and_then(|b| codec::decode(&b).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger that stored a delay of 1 (allowed before SPEC.md §11.3) still decodes it:
    /// falling back to the defaults would diverge. New parameters need at least 2.
    #[test]
    fn stored_delays_of_one_decode_and_new_ones_need_two() {
        let p = Params { validator_update_delay: 1, ..Params::default() };
        assert!(p.validate().is_ok());
        assert!(p.validate_new().unwrap_err().contains("at least 2"));
        let back: Params = codec::decode(&codec::encode(&p)).unwrap();
        assert_eq!(back.validator_update_delay, 1);
        assert_eq!(
            params(&{
                let mut st = crate::MemState::new();
                crate::State::put(&mut st, keys::PARAMS.to_vec(), codec::encode(&p));
                st
            })
            .validator_update_delay,
            1
        );
        let zero = Params { validator_update_delay: 0, ..Params::default() };
        assert!(zero.validate().is_err());
        assert!(Params::default().validate_new().is_ok());
    }
}
