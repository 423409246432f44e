//! The transaction format: a signed envelope over an encoded [`TransactionBody`].
//!
//! The signature is over the body bytes exactly as carried (`Domain::TRANSACTION`, chain id),
//! and the transaction hash is plain blake3 of the whole encoded signed transaction — the same
//! hash the ledger uses to index it.

use dpx_crypto::{Domain, Hash, Keypair, PublicKey, Signature, SignedDigest};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{DecodeError, TxError};
use crate::grants::SignedGrant;
use crate::ops::Operation;

/// Hard upper bound on an encoded signed transaction; `Params::max_tx_bytes` may only lower it.
pub const MAX_TX_BYTES: usize = 128 * 1024;
/// Longest chain id.
pub const MAX_CHAIN_ID_BYTES: usize = 64;

/// What the signer means: chain, replay-protection nonce, optional expiry, one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionBody {
    pub chain_id: String,
    /// Must equal the signer's next nonce (0 for a fresh key).
    pub nonce: u64,
    /// Refused in blocks above this height.
    pub expiry_height: Option<u64>,
    pub op: Operation,
}

impl TransactionBody {
    pub fn new(chain_id: impl Into<String>, nonce: u64, op: Operation) -> Self {
        Self { chain_id: chain_id.into(), nonce, expiry_height: None, op }
    }

    #[must_use]
    pub fn with_expiry(mut self, expiry_height: u64) -> Self {
        self.expiry_height = Some(expiry_height);
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decode; only the canonical encoding is accepted. The body is what the signer signs, so
    /// without this a signer could pad its own transaction with unknown or repeated fields up
    /// to the size limit.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode_canonical(bytes)
    }

    /// Encode and sign with `key`.
    pub fn sign(&self, key: &Keypair) -> SignedTransaction {
        let body = self.encode();
        let signature = key.sign(Domain::TRANSACTION, &self.chain_id, &body);
        SignedTransaction { body, signer: key.public(), signature }
    }
}

impl Wire for TransactionBody {
    type Pb = pb::TransactionBody;
    const MAX_BYTES: usize = MAX_TX_BYTES;
    fn to_pb(&self) -> pb::TransactionBody {
        pb::TransactionBody {
            chain_id: self.chain_id.clone(),
            nonce: self.nonce,
            expiry_height: self.expiry_height,
            op: Some(self.op.to_pb()),
        }
    }
    fn from_pb(p: pb::TransactionBody) -> Result<Self, DecodeError> {
        Ok(Self {
            chain_id: p.chain_id,
            nonce: p.nonce,
            expiry_height: p.expiry_height,
            op: Operation::from_pb(codec::req(p.op, "op")?)?,
        })
    }
}

/// The signed envelope as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    /// An encoded [`TransactionBody`], signed as is.
    pub body: Vec<u8>,
    pub signer: PublicKey,
    pub signature: Signature,
}

impl SignedTransaction {
    pub fn encode(&self) -> Vec<u8> {
        pb::SignedTransaction {
            body: self.body.clone(),
            signer: self.signer.to_bytes().to_vec(),
            signature: self.signature.to_bytes().to_vec(),
        }
        .encode_to_vec()
    }

    /// Decode the envelope (not the body); refuses more than [`MAX_TX_BYTES`] and any encoding
    /// but the canonical one: one transaction, one byte form, so the hash the ledger takes of
    /// the raw bytes is [`Self::hash`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(DecodeError::TooLarge { size: bytes.len(), max: MAX_TX_BYTES });
        }
        let p = pb::SignedTransaction::decode(bytes)?;
        let tx = Self {
            body: p.body,
            signer: codec::key(&p.signer, "signer")?,
            signature: codec::sig(&p.signature, "signature")?,
        };
        if tx.encode() != bytes {
            return Err(DecodeError::NotCanonical);
        }
        Ok(tx)
    }

    /// blake3 of the encoded signed transaction.
    pub fn hash(&self) -> Hash {
        Hash::digest(&self.encode())
    }

    /// The digest the signer signed, for batch verification.
    pub fn signing_digest(&self, chain_id: &str) -> Hash {
        Hash::of(Domain::TRANSACTION, chain_id, &self.body)
    }
}

/// A transaction whose signature has been verified and whose body is well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    /// blake3 of the encoded signed transaction.
    pub hash: Hash,
    pub signer: PublicKey,
    pub body: TransactionBody,
    /// Encoded size of the signed transaction.
    pub size: usize,
    /// For an operation that carries a data subject's signed grant (`register_grant`, an
    /// inline `use_grant` or `place_order`): whether the grant's signature verified, if it was checked with the
    /// stateless checks (`None`: execution checks it). A bad grant signature is not a bad
    /// transaction: execution refuses the grant with a receipt either way.
    pub grant_signature: Option<bool>,
}

/// A decoded, well-formed transaction whose signature is not yet checked. Lets the node verify
/// many signatures in one pass ([`UnverifiedTx::signed_digest`] with `dpx_crypto::verify_each`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedTx {
    pub tx: SignedTransaction,
    pub body: TransactionBody,
    pub hash: Hash,
    pub size: usize,
    digest: Hash,
}

impl UnverifiedTx {
    /// The digest to verify `tx.signature` against with `tx.signer`.
    pub fn signing_digest(&self) -> Hash {
        self.digest
    }

    /// This transaction's signature, to verify with others (`dpx_crypto::verify_each`).
    pub fn signed_digest(&self) -> SignedDigest<'_> {
        SignedDigest { key: &self.tx.signer, digest: &self.digest, sig: &self.tx.signature }
    }

    /// The data subject's signed grant this transaction carries, if any.
    pub fn signed_grant(&self) -> Option<&SignedGrant> {
        self.body.op.signed_grant()
    }

    /// The digest the carried grant's subject signed, to verify it with
    /// [`SignedGrant::signed_digest`].
    pub fn grant_digest(&self) -> Option<Hash> {
        self.signed_grant().map(|g| g.signing_digest(&self.body.chain_id))
    }

    /// Verify the transaction's signature, and the carried grant's (its verdict travels in
    /// [`VerifiedTx::grant_signature`]).
    pub fn verify(self) -> Result<VerifiedTx, TxError> {
        self.tx
            .signer
            .verify_digest(&self.digest, &self.tx.signature)
            .map_err(|_| TxError::BadSignature)?;
        let grant = self.signed_grant().map(|g| g.verify(&self.body.chain_id).is_ok());
        Ok(self.assume_verified(grant))
    }

    /// Accept without checking: only for a transaction whose [`Self::signed_digest`] passed
    /// `verify_all` / `verify_each`. `grant_signature` is the verdict on the carried grant's
    /// signature (verified with it), or `None` to leave it to execution.
    pub fn assume_verified(self, grant_signature: Option<bool>) -> VerifiedTx {
        VerifiedTx {
            hash: self.hash,
            signer: self.tx.signer,
            body: self.body,
            size: self.size,
            grant_signature,
        }
    }
}

/// Size, envelope, body and operation checks for `chain_id`, without the signature.
pub fn decode_unverified(bytes: &[u8], chain_id: &str) -> Result<UnverifiedTx, TxError> {
    if bytes.len() > MAX_TX_BYTES {
        return Err(TxError::TooLarge { size: bytes.len(), max: MAX_TX_BYTES });
    }
    // Both decoders accept only canonical encodings: nothing signed can be padded.
    let tx = SignedTransaction::decode(bytes)?;
    let body = TransactionBody::decode(&tx.body)?;
    if body.chain_id != chain_id {
        return Err(TxError::WrongChain { expected: chain_id.to_string(), got: body.chain_id });
    }
    body.op.validate()?;
    let digest = tx.signing_digest(chain_id);
    Ok(UnverifiedTx { hash: Hash::digest(bytes), size: bytes.len(), tx, body, digest })
}

/// Every check that needs no state: size, decoding, chain id, operation shape, signature.
pub fn check_stateless(bytes: &[u8], chain_id: &str) -> Result<VerifiedTx, TxError> {
    decode_unverified(bytes, chain_id)?.verify()
}
