//! Attack vectors for tests (feature `test-utils`): signatures that a cofactorless batch
//! equation can accept and the dpx rule must refuse, and keys with a torsion component.
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
    let expanded = Sha512::digest(key.seed());
    let mut a_bytes = [0u8; 32];
    a_bytes.copy_from_slice(&expanded[..32]);
    a_bytes[0] &= 0b1111_1000;
    a_bytes[31] &= 0b0111_1111;
    a_bytes[31] |= 0b0100_0000;
    let secret = Scalar::from_bytes_mod_order(a_bytes);
    let nonce = Scalar::from_hash(
        Sha512::new()
            .chain_update(&expanded[32..])
            .chain_update(nonce_seed.to_le_bytes())
            .chain_update(digest.as_bytes()),
    );
    let big_r = (ED25519_BASEPOINT_POINT * nonce + EIGHT_TORSION[torsion % 8]).compress();
    let challenge = Scalar::from_hash(
        Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(key.public().as_bytes())
            .chain_update(digest.as_bytes()),
    );
    let s = nonce + challenge * secret;
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(big_r.as_bytes());
    out[32..].copy_from_slice(s.as_bytes());
    Signature(out)
}

/// The public key `key` with the `t`-th small-order point added (a "mixed-order" key).
pub fn with_torsion_key(key: &[u8; 32], t: usize) -> Option<[u8; 32]> {
    let point = CompressedEdwardsY(*key).decompress()? + EIGHT_TORSION[t % 8];
    Some(point.compress().to_bytes())
}
