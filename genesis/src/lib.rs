//! `dpx-genesis`: the genesis file — the chain id, the genesis time, the founding agencies and
//! validators, the initial Cedar policies and the chain parameters — its validation, and the
//! state at height 0.
//!
//! Every node of a chain starts from the same file; the state it builds at height 0 (through
//! `dpx-contracts`) has a root that every later header chains back to, so two nodes given
//! different genesis files can never agree on a block.
//!
//! ```
//! use dpx_crypto::Keypair;
//! use dpx_genesis::Genesis;
//!
//! let agency = Keypair::from_seed([1; 32]);
//! let validator = Keypair::from_seed([2; 32]);
//! let g = Genesis::example("dpx-doc", &[("Data Authority", agency.public())], &[validator.public()]);
//! g.validate().unwrap();
//! let json = g.to_json();
//! let back = Genesis::from_json(&json).unwrap();
//! assert_eq!(back.hash(), g.hash());
//! assert_eq!(back.validator_set().unwrap().len(), 1);
//! ```

use std::path::Path;

use dpx_consensus::{Validator, ValidatorSet};
use dpx_contracts::{Currency, GenesisAgency, GenesisApp, MemState, Params};
use dpx_crypto::{Domain, Hash, PublicKey};
use serde::{Deserialize, Serialize};

/// The genesis format this code reads.
pub const FORMAT_VERSION: u32 = 1;
/// A genesis file larger than this is refused before parsing.
pub const GENESIS_BYTES_MAX: u64 = 16 << 20;
/// Chain ids are short, lowercase and printable.
pub const CHAIN_ID_LEN_MAX: usize = 64;

/// Everything that can be wrong with a genesis file.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("genesis file is {size} bytes; the maximum is {GENESIS_BYTES_MAX}")]
    TooLarge { size: u64 },
    #[error("genesis JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("genesis format version {found} is not supported (this dpx reads {FORMAT_VERSION})")]
    Version { found: u32 },
    #[error("chain id {0:?} must be 1-64 characters of a-z, 0-9, '-' and '.'")]
    ChainId(String),
    #[error("validators: {0}")]
    Validators(String),
    #[error("application state: {0}")]
    App(String),
}

/// The genesis file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub format_version: u32,
    pub chain_id: String,
    /// Milliseconds since the Unix epoch; the first block's time must be later.
    pub genesis_time_ms: u64,
    /// Founding agencies, validators, policies and parameters (see `dpx_contracts::GenesisApp`).
    pub app: GenesisApp,
    /// A benchmarking chain: transactions are opaque payloads that are ordered and stored but
    /// never decoded, verified or executed, to measure the consensus engine alone. Never set
    /// on a marketplace. Absent (false) in ordinary genesis files, whose hash it leaves alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub consensus_only: bool,
}

impl Genesis {
    /// Read, parse and validate a genesis file.
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let io = |source| GenesisError::Io { path: path.display().to_string(), source };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > GENESIS_BYTES_MAX {
            return Err(GenesisError::TooLarge { size });
        }
        Self::from_json(&std::fs::read_to_string(path).map_err(io)?)
    }

    /// Parse and validate.
    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        if text.len() as u64 > GENESIS_BYTES_MAX {
            return Err(GenesisError::TooLarge { size: text.len() as u64 });
        }
        let g: Self = serde_json::from_str(text)?;
        g.validate()?;
        Ok(g)
    }

    /// Pretty JSON, as written to disk.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis always serializes") + "\n"
    }

    /// Check everything that can be checked without a ledger.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.format_version != FORMAT_VERSION {
            return Err(GenesisError::Version { found: self.format_version });
        }
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
        if self.chain_id.is_empty()
            || self.chain_id.len() > CHAIN_ID_LEN_MAX
            || !self.chain_id.chars().all(ok_char)
        {
            return Err(GenesisError::ChainId(self.chain_id.clone()));
        }
        self.app.validate(&self.chain_id).map_err(|e| GenesisError::App(e.to_string()))?;
        self.validator_set()?;
        self.initial_state()?;
        Ok(())
    }

    /// The validator set of height 1, ordered by key as the ledger holds it (the order fixes
    /// validator indices, the proposer schedule and the set's hash).
    pub fn validator_set(&self) -> Result<ValidatorSet, GenesisError> {
        let mut vals: Vec<Validator> =
            self.app.validators.iter().map(|v| Validator { key: v.key, power: v.power }).collect();
        vals.sort_by_key(|v| v.key);
        ValidatorSet::new(vals).map_err(|e| GenesisError::Validators(e.to_string()))
    }

    /// The state at height 0, as the contracts build it.
    pub fn initial_state(&self) -> Result<MemState, GenesisError> {
        let mut state = MemState::default();
        dpx_contracts::init_genesis(&mut state, &self.chain_id, &self.app)
            .map_err(|e| GenesisError::App(e.to_string()))?;
        Ok(state)
    }

    /// The height-0 state as writes for the ledger.
    pub fn initial_writes(
        &self,
    ) -> Result<std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>, GenesisError> {
        Ok(self.initial_state()?.map.into_iter().map(|(k, v)| (k, Some(v))).collect())
    }

    /// A fingerprint of the whole file's content (canonical JSON), for logs and checks.
    pub fn hash(&self) -> Hash {
        let canonical = serde_json::to_vec(self).expect("genesis always serializes");
        Hash::of(Domain::new("dpx/genesis/v1"), &self.chain_id, &canonical)
    }

    /// A small genesis for docs and tests: the given agencies, each validator with power 10,
    /// default policies and parameters.
    pub fn example(
        chain_id: &str,
        agencies: &[(&str, PublicKey)],
        validators: &[PublicKey],
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            chain_id: chain_id.to_owned(),
            genesis_time_ms: 1_767_225_600_000, // 2026-01-01T00:00:00Z
            app: GenesisApp {
                agencies: agencies
                    .iter()
                    .map(|(name, key)| GenesisAgency { name: (*name).to_owned(), key: *key })
                    .collect(),
                validators: validators
                    .iter()
                    .enumerate()
                    .map(|(i, key)| dpx_contracts::Validator {
                        key: *key,
                        power: 10,
                        name: format!("validator-{i}"),
                    })
                    .collect(),
                policies: None,
                params: Params::default(),
                currency: Currency::default(),
                platform_fee_basis_points: 0,
            },
            consensus_only: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::Keypair;

    fn sample() -> Genesis {
        let a = Keypair::from_seed([1; 32]).public();
        let v: Vec<PublicKey> = (2..6).map(|i| Keypair::from_seed([i; 32]).public()).collect();
        Genesis::example("dpx-test", &[("Agency A", a)], &v)
    }

    #[test]
    fn round_trip_and_state_is_deterministic() {
        let g = sample();
        let back = Genesis::from_json(&g.to_json()).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.initial_writes().unwrap(), g.initial_writes().unwrap());
        assert_eq!(g.validator_set().unwrap().len(), 4);
    }

    #[test]
    fn consensus_only_is_explicit_and_leaves_ordinary_files_alone() {
        let g = sample();
        assert!(!g.to_json().contains("consensus_only"), "absent when false: same hash as before");
        let mut c = sample();
        c.consensus_only = true;
        let back = Genesis::from_json(&c.to_json()).unwrap();
        assert!(back.consensus_only);
        assert_ne!(back.hash(), g.hash(), "a consensus-only chain is a different chain");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let mut g = sample();
        g.chain_id = "Bad Chain!".into();
        assert!(matches!(g.validate(), Err(GenesisError::ChainId(_))));
        let mut g = sample();
        g.format_version = 99;
        assert!(matches!(g.validate(), Err(GenesisError::Version { found: 99 })));
        let mut g = sample();
        g.app.validators.clear();
        assert!(matches!(g.validate(), Err(GenesisError::App(_) | GenesisError::Validators(_))));
        // Block limits a node could not store or send in one frame.
        let mut g = sample();
        g.app.params.max_block_bytes = 1 << 30;
        let err = g.validate().unwrap_err();
        assert!(matches!(err, GenesisError::App(_)), "{err}");
        assert!(err.to_string().contains("MAX_ENCODED_BLOCK_BYTES"), "{err}");
        assert!(matches!(Genesis::from_json("{"), Err(GenesisError::Json(_))));
        let text = sample().to_json().replace("\"chain_id\"", "\"bogus\": 1, \"chain_id\"");
        assert!(Genesis::from_json(&text).is_err());
    }

    /// A file written before money existed (no currency, no fee) still loads, hashes and builds
    /// the same height-0 state; one that names them gets them, and a bad one is refused.
    #[test]
    fn currency_and_fee_are_optional_and_checked() {
        let g = sample();
        let json = g.to_json();
        assert!(!json.contains("currency") && !json.contains("platform_fee"), "{json}");
        let back = Genesis::from_json(&json).unwrap();
        assert_eq!(back.app.currency, Currency::default());
        assert_eq!(back.hash(), g.hash());
        let state = g.initial_state().unwrap();
        assert!(!state.map.contains_key(dpx_contracts::keys::CURRENCY));
        assert_eq!(dpx_contracts::currency(&state).unwrap().code, "CNY");

        let mut eur = sample();
        eur.app.currency = Currency { code: "EUR".into(), minor_unit: "cent".into(), decimals: 2 };
        eur.app.platform_fee_basis_points = 250;
        let back = Genesis::from_json(&eur.to_json()).unwrap();
        assert_eq!(back, eur);
        let state = back.initial_state().unwrap();
        assert_eq!(dpx_contracts::currency(&state).unwrap().minor_unit, "cent");
        assert_eq!(dpx_contracts::platform_fee_bps(&state).unwrap(), 250);

        let mut bad = sample();
        bad.app.platform_fee_basis_points = 10_001;
        assert!(matches!(bad.validate(), Err(GenesisError::App(_))));
        let mut bad = sample();
        bad.app.currency.code = "yuan".into();
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains("currency code"), "{err}");
    }

    #[test]
    fn load_refuses_oversized_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.json");
        std::fs::write(&p, sample().to_json()).unwrap();
        assert!(Genesis::load(&p).is_ok());
        assert!(matches!(
            Genesis::load(&dir.path().join("missing.json")),
            Err(GenesisError::Io { .. })
        ));
    }
}
