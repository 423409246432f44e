//! Attack vectors for tests (feature `test-utils`): signatures that a cofactorless batch
//! equation can accept and the dpx rule must refuse, and keys with a torsion component.
//!
//! The attack needs the secret key: the signer picks `R = r·B + T` with `T` of small order,
//! then signs honestly with that `R` (`k = H(R ‖ A ‖ M)`, `S = r + k·a`). Then
//! `[S]B − [k]A − R = −T`: a cofactorless batch equation accepts it whenever its weight for this
//! signature kills `T` (an even weight for the point of order 2), strict verification never.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use sha2::{Digest, Sha512};

use crate::{Hash, Keypair, Signature};

/// The secret scalar `a` and the nonce prefix of `key` (RFC 8032 section 5.1.5).
fn expand(key: &Keypair) -> (Scalar, [u8; 32]) {
    let expanded = Sha512::digest(key.seed());
    let mut a_bytes = [0u8; 32];
    a_bytes.copy_from_slice(&expanded[..32]);
    a_bytes[0] &= 0b1111_1000;
    a_bytes[31] &= 0b0111_1111;
    a_bytes[31] |= 0b0100_0000;
    let mut prefix = [0u8; 32];
    prefix.copy_from_slice(&expanded[32..]);
    (Scalar::from_bytes_mod_order(a_bytes), prefix)
}

/// `k = SHA-512(R ‖ A ‖ M) mod ℓ`, the ed25519 challenge.
fn challenge(r: &[u8; 32], a: &[u8; 32], digest: &Hash) -> Scalar {
    Scalar::from_hash(Sha512::new().chain_update(r).chain_update(a).chain_update(digest.as_bytes()))
}

fn signature(r: &[u8; 32], s: &Scalar) -> Signature {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s.as_bytes());
    Signature(out)
}

/// A signature by `key` over `digest` whose `R` carries the `t`-th of the eight small-order
/// points (`t` in `1..8`; `0` is the identity and gives an ordinary valid signature).
/// `nonce_seed` varies `r` (and so the batch weight) for the same message.
pub fn sign_with_torsion_r(
    key: &Keypair,
    digest: &Hash,
    torsion: usize,
    nonce_seed: u64,
) -> Signature {
    let (secret, prefix) = expand(key);
    let nonce = Scalar::from_hash(
        Sha512::new()
            .chain_update(prefix)
            .chain_update(nonce_seed.to_le_bytes())
            .chain_update(digest.as_bytes()),
    );
    let big_r = (ED25519_BASEPOINT_POINT * nonce + EIGHT_TORSION[torsion % 8]).compress();
    let k = challenge(big_r.as_bytes(), key.public().as_bytes(), digest);
    signature(big_r.as_bytes(), &(nonce + k * secret))
}

/// A signature by `key` over `digest` whose `R` is the identity point (a small-order `R`):
/// `S = k·a`, so `[S]B − [k]A = identity = R` holds exactly. RFC 8032's cofactorless check
/// without a small-order test on `R` accepts it; the dpx rule (`verify_strict`) refuses it.
pub fn sign_with_identity_r(key: &Keypair, digest: &Hash) -> Signature {
    let (secret, _) = expand(key);
    let big_r = EdwardsPoint::default().compress();
    let k = challenge(big_r.as_bytes(), key.public().as_bytes(), digest);
    signature(big_r.as_bytes(), &(k * secret))
}

/// A mixed-order key `A' = A + T` (`T` the `t`-th small-order point, `t` in `1..8`) and a
/// signature over `digest` that satisfies the cofactorless equation `[S]B = R + [k]A'` exactly:
/// the nonce is retried until `[k]T` is the identity. A verifier that checks only "not of small
/// order" on keys (libsodium) accepts it; dpx refuses the key itself. `None` if no nonce among
/// the first 256 works (for an order-8 `T` each try succeeds with probability 1/8).
pub fn sign_under_torsion_key(
    key: &Keypair,
    digest: &Hash,
    t: usize,
) -> Option<([u8; 32], Signature)> {
    let (secret, prefix) = expand(key);
    let torsion = EIGHT_TORSION[t % 8];
    let mixed = (CompressedEdwardsY(key.public().to_bytes()).decompress()? + torsion).compress();
    (0u64..256).find_map(|n| {
        let nonce = Scalar::from_hash(
            Sha512::new()
                .chain_update(prefix)
                .chain_update(n.to_le_bytes())
                .chain_update(digest.as_bytes()),
        );
        let big_r = (ED25519_BASEPOINT_POINT * nonce).compress();
        let k = challenge(big_r.as_bytes(), mixed.as_bytes(), digest);
        (torsion * k)
            .is_identity()
            .then(|| (mixed.to_bytes(), signature(big_r.as_bytes(), &(nonce + k * secret))))
    })
}

/// The public key `key` with the `t`-th small-order point added (a "mixed-order" key).
pub fn with_torsion_key(key: &[u8; 32], t: usize) -> Option<[u8; 32]> {
    let point = CompressedEdwardsY(*key).decompress()? + EIGHT_TORSION[t % 8];
    Some(point.compress().to_bytes())
}

/// The `t`-th of the eight small-order points, encoded (`0` is the identity).
pub fn small_order_point(t: usize) -> [u8; 32] {
    EIGHT_TORSION[t % 8].compress().to_bytes()
}

/// `S + ℓ` in place of `S` (the classic malleation): the same point equation, a non-canonical
/// scalar that the dpx rule refuses (`S < ℓ`).
pub fn with_s_plus_order(sig: &Signature) -> Signature {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = sig.0;
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let v = u16::from(sig.0[32 + i]) + u16::from(*l) + carry;
        out[32 + i] = v as u8;
        carry = v >> 8;
    }
    Signature(out)
}

/// Which families of ed25519 verifiers accept the crafted signatures above: the claims the
/// spec's negative vectors make (`spec/vectors/signatures.json`).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Domain, PublicKey};
    use ed25519_dalek::{Verifier, VerifyingKey};

    fn setup() -> (Keypair, Hash) {
        let key = Keypair::from_seed([42; 32]);
        (key, Hash::of(Domain::TRANSACTION, "dpx-spec", b"negative vector"))
    }

    /// RFC 8032's cofactorless equation with R compared by encoding, and no other check
    /// (`ed25519-dalek`'s non-strict `verify`, like OpenSSL and Go's crypto/ed25519).
    fn lax(key: &[u8; 32], digest: &Hash, sig: &Signature) -> bool {
        VerifyingKey::from_bytes(key).is_ok_and(|k| {
            k.verify(digest.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig.0)).is_ok()
        })
    }

    /// The cofactored equation `[8]([S]B − R − [k]A) = 0` (ZIP-215, `ed25519-consensus`).
    fn cofactored(key: &[u8; 32], digest: &Hash, sig: &Signature) -> bool {
        let (Some(a), Some(r)) = (
            CompressedEdwardsY(*key).decompress(),
            CompressedEdwardsY(sig.0[..32].try_into().unwrap()).decompress(),
        ) else {
            return false;
        };
        let Some(s) =
            Option::<Scalar>::from(Scalar::from_canonical_bytes(sig.0[32..].try_into().unwrap()))
        else {
            return false;
        };
        let k = challenge(&sig.0[..32].try_into().unwrap(), key, digest);
        (ED25519_BASEPOINT_POINT * s - r - a * k).mul_by_cofactor().is_identity()
    }

    fn dpx(key: &[u8; 32], digest: &Hash, sig: &Signature) -> bool {
        PublicKey::from_bytes(key).is_ok_and(|k| k.verify_digest(digest, sig).is_ok())
    }

    #[test]
    fn an_honest_signature_passes_every_family() {
        let (key, digest) = setup();
        let pk = key.public().to_bytes();
        let sig = key.sign_digest(&digest);
        assert!(dpx(&pk, &digest, &sig) && lax(&pk, &digest, &sig));
        assert!(cofactored(&pk, &digest, &sig));
    }

    #[test]
    fn torsion_in_r_passes_only_the_cofactored_equation() {
        let (key, digest) = setup();
        let pk = key.public().to_bytes();
        for t in 1..8 {
            let sig = sign_with_torsion_r(&key, &digest, t, 0);
            assert!(!dpx(&pk, &digest, &sig) && !lax(&pk, &digest, &sig), "t={t}");
            assert!(cofactored(&pk, &digest, &sig), "t={t}");
        }
    }

    #[test]
    fn identity_r_passes_a_verifier_without_the_small_order_check() {
        let (key, digest) = setup();
        let pk = key.public().to_bytes();
        let sig = sign_with_identity_r(&key, &digest);
        assert_eq!(sig.0[..32], small_order_point(0));
        assert!(lax(&pk, &digest, &sig) && cofactored(&pk, &digest, &sig));
        assert!(!dpx(&pk, &digest, &sig));
    }

    #[test]
    fn a_torsion_key_signature_passes_verifiers_that_accept_the_key() {
        let (key, digest) = setup();
        for t in [1, 2, 4] {
            let (mixed, sig) = sign_under_torsion_key(&key, &digest, t).unwrap();
            assert!(lax(&mixed, &digest, &sig) && cofactored(&mixed, &digest, &sig), "t={t}");
            assert!(PublicKey::from_bytes(&mixed).is_err() && !dpx(&mixed, &digest, &sig));
            assert_eq!(Some(mixed), with_torsion_key(&key.public().to_bytes(), t));
        }
    }

    #[test]
    fn s_plus_order_is_refused_by_every_family_that_checks_s() {
        let (key, digest) = setup();
        let pk = key.public().to_bytes();
        let sig = with_s_plus_order(&key.sign_digest(&digest));
        assert!(!dpx(&pk, &digest, &sig) && !lax(&pk, &digest, &sig));
        assert!(!cofactored(&pk, &digest, &sig));
        // The point equation itself still holds with S reduced mod ℓ.
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig.0[32..]);
        assert_eq!(Scalar::from_bytes_mod_order(s).as_bytes(), &key.sign_digest(&digest).0[32..]);
    }

    #[test]
    fn small_order_points_are_refused_as_keys() {
        for t in 0..8 {
            assert!(PublicKey::from_bytes(&small_order_point(t)).is_err(), "t={t}");
        }
        // The identity key with R = identity and S = 0 "signs" every message under lax rules.
        let (_, digest) = setup();
        let identity = small_order_point(0);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity);
        let sig = Signature(sig);
        assert!(lax(&identity, &digest, &sig) && cofactored(&identity, &digest, &sig));
        assert!(!dpx(&identity, &digest, &sig));
    }
}
