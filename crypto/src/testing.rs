//! Attack vectors for tests (feature `test-utils`): signatures that a cofactorless batch
//! equation can accept and the dpx rule must refuse, and signatures by keys with a torsion
//! component.
//!
//! The attack needs the secret key: the signer picks `R = r·B + T` with `T` of small order,
//! then signs honestly with that `R` (`k = H(R ‖ A ‖ M)`, `S = r + k·a`). Then
//! `[S]B − [k]A − R = −T`: a cofactorless batch equation accepts it whenever its weight for this
//! signature kills `T` (an even weight for the point of order 2), strict verification never.

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

use crate::{Hash, Keypair, Signature};

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
    raw_sign(secret, &prefix, key.public().as_bytes(), digest, torsion, nonce_seed)
}

/// `key`'s public key with the `t`-th small-order point added (a "mixed-order" key), and a
/// signature by its owner over `digest` made as an honest signer would with that key (`R`
/// torsion-free). Strict verification accepts it only when `[k]T` vanishes, so some of these
/// verify and some do not: the verdict must not depend on anything but the bytes.
pub fn sign_with_torsion_key(
    key: &Keypair,
    digest: &Hash,
    torsion: usize,
    nonce_seed: u64,
) -> ([u8; 32], Signature) {
    let public = with_torsion_key(key.public().as_bytes(), torsion).expect("a Keypair's key");
    let (secret, prefix) = expand(key);
    (public, raw_sign(secret, &prefix, &public, digest, 0, nonce_seed))
}

/// The public key `key` with the `t`-th small-order point added (a "mixed-order" key).
pub fn with_torsion_key(key: &[u8; 32], t: usize) -> Option<[u8; 32]> {
    let point = CompressedEdwardsY(*key).decompress()? + EIGHT_TORSION[t % 8];
    Some(point.compress().to_bytes())
}

/// The secret scalar and nonce prefix of an ed25519 seed (RFC 8032, 5.1.5).
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

/// An ed25519 signature with `R = r·B + T_torsion` over `digest` for the public key bytes given.
fn raw_sign(
    secret: Scalar,
    prefix: &[u8; 32],
    public: &[u8; 32],
    digest: &Hash,
    torsion: usize,
    nonce_seed: u64,
) -> Signature {
    let nonce = Scalar::from_hash(
        Sha512::new()
            .chain_update(prefix)
            .chain_update(nonce_seed.to_le_bytes())
            .chain_update(digest.as_bytes()),
    );
    let big_r = (ED25519_BASEPOINT_POINT * nonce + EIGHT_TORSION[torsion % 8]).compress();
    let challenge = Scalar::from_hash(
        Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(public)
            .chain_update(digest.as_bytes()),
    );
    let s = nonce + challenge * secret;
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(big_r.as_bytes());
    out[32..].copy_from_slice(s.as_bytes());
    Signature(out)
}
