//! Verifying many signatures: the same rule as one, applied to each.
//!
//! **There is one verification rule in dpx**, [`PublicKey::verify_digest`]: ed25519 with the
//! cofactorless equation `[S]B = R + [k]A` checked *exactly* (the encoding of `R` is compared),
//! `S < ℓ`, and keys that are canonical and torsion-free (checked once, when a key is parsed).
//! With `A` torsion-free, an `R` that carries a torsion component can never satisfy the equation,
//! so a signature is either valid everywhere or nowhere.
//!
//! We do **not** use ed25519 batch verification. `ed25519-dalek`'s batch equation is
//! cofactorless with weights drawn from the batch's own transcript: an `R = r·B + T` with `T` of
//! small order passes it exactly when that weight is even — so the verdict on one signature
//! depended on which other signatures shared its batch, and two nodes that batched the same
//! transaction differently could disagree (a chain split anyone could trigger). A sound batch
//! would need either the cofactored (ZIP-215) equation, which makes every signature
//! re-encodable in eight valid ways (`R + T` for each torsion `T`), and our transaction hash
//! covers the signature, or a torsion check on every `R`, which costs a scalar multiplication —
//! more than the batch saves. Strict one-by-one verification costs about 1.8× the CPU per
//! signature of a 256-signature batch (`cargo bench -p dpx-crypto`) and gives every path
//! (admission, proposals, certificates, audit replay) the same verdict by construction. See
//! ARCHITECTURE.md, "Signing and hashing".

use crate::{CryptoError, Hash, PublicKey, Signature};

/// One signature to check: `sig` by `key` over the domain-separated `digest`.
#[derive(Debug, Clone, Copy)]
pub struct SignedDigest<'a> {
    pub key: &'a PublicKey,
    pub digest: &'a Hash,
    pub sig: &'a Signature,
}

impl SignedDigest<'_> {
    /// This one signature under the dpx rule.
    pub fn verify(&self) -> Result<(), CryptoError> {
        self.key.verify_digest(self.digest, self.sig)
    }
}

/// `Ok` only if every signature is valid; the error names the first invalid one.
pub fn verify_all(items: &[SignedDigest<'_>]) -> Result<(), CryptoError> {
    match items.iter().position(|i| i.verify().is_err()) {
        None => Ok(()),
        Some(index) => Err(CryptoError::BadSignatureAt { index, count: items.len() }),
    }
}

/// Each signature's validity, in order. The verdict on one item never depends on the others.
pub fn verify_each(items: &[SignedDigest<'_>]) -> Vec<bool> {
    items.iter().map(|i| i.verify().is_ok()).collect()
}

#[cfg(test)]
mod tests;
