//! `dpx-crypto`: the cryptographic primitives every other dpx crate builds on.
//!
//! - [`Hash`]: 32-byte blake3 digests, shown as hex.
//! - [`Domain`]: a purpose tag. Everything dpx signs is first reduced to
//!   `blake3(len ‖ domain ‖ len ‖ chain id ‖ bytes)` by [`Hash::of`], so a signature made for one
//!   purpose or one chain never verifies for another.
//! - [`PublicKey`], [`Signature`], [`Keypair`]: ed25519 with **strict** verification (no
//!   malleable signatures; keys canonical and torsion-free), one rule for every path:
//!   [`verify_all`] / [`verify_each`] apply it to many signatures without batching, so a
//!   verdict never depends on what else was verified with it (see the `verify` module).
//! - [`keyfile`]: key files on disk, written with mode 0600.
//!
//! ```
//! use dpx_crypto::{Domain, Keypair};
//!
//! let key = Keypair::from_seed([7; 32]);
//! let sig = key.sign(Domain::TRANSACTION, "dpx-test", b"hello");
//! assert!(key.public().verify(Domain::TRANSACTION, "dpx-test", b"hello", &sig).is_ok());
//! // The same bytes under another purpose or chain do not verify.
//! assert!(key.public().verify(Domain::VOTE, "dpx-test", b"hello", &sig).is_err());
//! assert!(key.public().verify(Domain::TRANSACTION, "other-chain", b"hello", &sig).is_err());
//! ```

mod error;
mod hash;
pub mod keyfile;
mod keys;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
mod verify;

pub use error::CryptoError;
pub use hash::{Domain, Hash, HashWriter};
pub use keys::{Keypair, PublicKey, Signature};
pub use verify::{SignedDigest, verify_all, verify_each};
