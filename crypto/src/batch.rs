//! Batch verification for hot paths (mempool admission, commit certificates).
//!
//! `ed25519-dalek`'s batch equation alone is not strict: it would accept a non-canonical or
//! small-order `R` that [`PublicKey::verify_digest`] refuses. Every item is therefore pre-checked
//! with the same rules, so a batch accepts exactly what one-by-one strict verification accepts
//! and no two nodes can disagree because one verified in a batch and the other did not.

use curve25519_dalek::edwards::CompressedEdwardsY;

use crate::{CryptoError, Hash, PublicKey, Signature};

/// One signature to check: `sig` by `key` over the domain-separated `digest`.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    pub key: &'a PublicKey,
    pub digest: &'a Hash,
    pub sig: &'a Signature,
}

/// Verify all items at once. `Ok` only if every signature is valid under strict rules.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), CryptoError> {
    match items {
        [] => Ok(()),
        [one] => one.key.verify_digest(one.digest, one.sig),
        _ => {
            let bad = CryptoError::BadBatch { count: items.len() };
            if !items.iter().all(|i| strict_r(i.sig)) {
                return Err(bad);
            }
            let msgs: Vec<&[u8]> = items.iter().map(|i| i.digest.as_bytes().as_slice()).collect();
            let sigs: Vec<ed25519_dalek::Signature> =
                items.iter().map(|i| ed25519_dalek::Signature::from_bytes(&i.sig.0)).collect();
            let keys: Vec<ed25519_dalek::VerifyingKey> =
                items.iter().map(|i| *i.key.inner()).collect();
            ed25519_dalek::verify_batch(&msgs, &sigs, &keys).map_err(|_| bad)
        }
    }
}

/// Verify all items, reporting each one's validity: one batch when all are good, a strict
/// one-by-one pass to find the culprits when the batch fails.
pub fn verify_batch_each(items: &[BatchItem<'_>]) -> Vec<bool> {
    if verify_batch(items).is_ok() {
        return vec![true; items.len()];
    }
    items.iter().map(|i| i.key.verify_digest(i.digest, i.sig).is_ok()).collect()
}

/// The checks `verify_strict` makes on `R` that the batch equation does not: a canonical
/// encoding of a point that is not of small order.
fn strict_r(sig: &Signature) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig.0[..32]);
    let compressed = CompressedEdwardsY(r);
    match compressed.decompress() {
        Some(point) => !point.is_small_order() && point.compress() == compressed,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Domain, Keypair};

    fn signed(n: usize) -> Vec<(PublicKey, Hash, Signature)> {
        (0..n)
            .map(|i| {
                let k = Keypair::from_seed([i as u8 + 1; 32]);
                let d = Hash::of(Domain::TRANSACTION, "c", &i.to_le_bytes());
                (k.public(), d, k.sign_digest(&d))
            })
            .collect()
    }

    fn items(v: &[(PublicKey, Hash, Signature)]) -> Vec<BatchItem<'_>> {
        v.iter().map(|(key, digest, sig)| BatchItem { key, digest, sig }).collect()
    }

    #[test]
    fn good_batch_verifies() {
        for n in [0, 1, 2, 17] {
            let v = signed(n);
            assert!(verify_batch(&items(&v)).is_ok(), "n={n}");
        }
    }

    #[test]
    fn one_bad_signature_fails_the_batch_and_is_found() {
        let mut v = signed(8);
        v[5].2 = v[4].2;
        assert!(matches!(verify_batch(&items(&v)), Err(CryptoError::BadBatch { count: 8 })));
        let each = verify_batch_each(&items(&v));
        assert_eq!(each.iter().filter(|ok| !**ok).count(), 1);
        assert!(!each[5]);
    }

    #[test]
    fn small_order_r_is_refused_like_strict() {
        let mut v = signed(3);
        let mut bad = v[1].2;
        bad.0[..32].copy_from_slice(&[0; 32]);
        bad.0[0] = 1; // identity point as R
        v[1].2 = bad;
        assert!(verify_batch(&items(&v)).is_err());
    }
}
