//! A participant's key with its next nonce, for building ledgers transaction by transaction
//! (`ChainBuilder` histories in `tests/audit.rs` and `tests/overdue.rs`).

use dpx_contracts::{Operation, TransactionBody};
use dpx_crypto::{Keypair, PublicKey};

/// Signs operations for one chain with consecutive nonces from 0.
#[derive(Debug)]
pub struct Signer {
    pub key: Keypair,
    pub nonce: u64,
    chain_id: String,
}

impl Signer {
    /// The signer of `Keypair::from_seed([seed; 32])` on `chain_id`.
    pub fn new(chain_id: &str, seed: u8) -> Self {
        Self { key: Keypair::from_seed([seed; 32]), nonce: 0, chain_id: chain_id.to_owned() }
    }

    pub fn public(&self) -> PublicKey {
        self.key.public()
    }

    /// The encoded signed transaction of `op` at the next nonce.
    pub fn sign(&mut self, op: Operation) -> Vec<u8> {
        let bytes = TransactionBody::new(&self.chain_id, self.nonce, op).sign(&self.key).encode();
        self.nonce += 1;
        bytes
    }
}
