//! Proof bundles: a state value (or its absence) with everything needed to check it offline
//! against the genesis file — the Merkle proof, the header that commits to the state root, its
//! certificate and the validators that signed it.

use dpx_consensus::Validator;
use dpx_ledger::{StateProof, Store};
use serde::{Deserialize, Serialize};

use crate::execute::validator_set;

/// A value with everything needed to check it offline: the Merkle proof against the state root
/// in the header of block `version + 1`, and that block's commit certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofBundle {
    pub chain_id: String,
    /// Hex of the state key.
    pub key: String,
    /// Hex of the stored value; absent for a proof of absence.
    pub value: Option<String>,
    /// The state version (block height) the value is proved at.
    pub version: u64,
    pub proof: StateProof,
    /// The block `version + 1`, whose header commits to the state root after `version`.
    pub header: dpx_ledger::Header,
    /// Hex of that block's commit certificate.
    pub certificate: String,
    /// The validators that signed the certificate.
    pub validators: Vec<Validator>,
}

impl ProofBundle {
    pub fn value_bytes(&self) -> Option<Vec<u8>> {
        self.value.as_ref().and_then(|v| hex::decode(v).ok())
    }
}

/// Prove `key` at `version` (default: the latest version a committed header certifies).
pub fn prove(
    store: &Store,
    chain_id: &str,
    key: &[u8],
    version: Option<u64>,
) -> Result<ProofBundle, String> {
    let tip = store.tip_height();
    if tip == 0 {
        return Err("no block committed yet: nothing certifies a state root".into());
    }
    let version = version.unwrap_or(tip - 1);
    if version >= tip {
        return Err(format!(
            "version {version} is not certified yet (latest certified: {})",
            tip - 1
        ));
    }
    let (value, proof) = store.get_with_proof(key, version).map_err(|e| e.to_string())?;
    let header = store.header(version + 1).map_err(|e| e.to_string())?.ok_or("header missing")?;
    let cert =
        store.certificate(version + 1).map_err(|e| e.to_string())?.ok_or("certificate missing")?;
    let validators = validator_set(store, version + 1).map_err(|e| e.to_string())?;
    Ok(ProofBundle {
        chain_id: chain_id.to_owned(),
        key: hex::encode(key),
        value: value.map(hex::encode),
        version,
        proof,
        header,
        certificate: hex::encode(cert),
        validators: validators.validators().to_vec(),
    })
}
