use std::fmt;
use std::str::FromStr;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{CryptoError, Domain, Hash};

/// Valid keys the process remembers having parsed (about 200 bytes each), in all shards.
const PARSED_KEYS_MAX: usize = 32_768;
/// Shards of the parsed-key cache, each behind its own lock.
const PARSED_SHARDS: usize = 16;

type KeyShard = std::sync::Mutex<std::collections::HashMap<[u8; 32], VerifyingKey>>;

/// The parsed-key cache, shared by every thread: a node parses the same keys on its RPC
/// threads (admission), its driver (mempool checks) and its execution worker, and a cache per
/// thread made each of them pay for every key once more. Shards are picked by a randomly
/// seeded hash, so nobody can aim crafted keys at one shard.
static PARSED: std::sync::LazyLock<(std::hash::RandomState, [KeyShard; PARSED_SHARDS])> =
    std::sync::LazyLock::new(|| (std::hash::RandomState::new(), Default::default()));

fn parsed_shard(
    key: &[u8; 32],
) -> std::sync::MutexGuard<'static, std::collections::HashMap<[u8; 32], VerifyingKey>> {
    use std::hash::BuildHasher as _;
    let (seed, shards) = &*PARSED;
    let i = (seed.hash_one(key) as usize) % PARSED_SHARDS;
    // A panic while holding a shard cannot leave it inconsistent (one insert or clear).
    shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An ed25519 public key. Construction rejects non-points, non-canonical encodings, small-order
/// (weak) keys and keys with a torsion component.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

/// An ed25519 signing key with its public key.
pub struct Keypair {
    signing: SigningKey,
}

impl PublicKey {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Parse 32 bytes; refuses a non-canonical point, a small-order key and a key with a torsion
    /// component.
    ///
    /// Decompressing the point and checking its subgroup costs a field exponentiation and a
    /// scalar multiplication (tens of µs), and the same keys are
    /// decoded over and over (every state record names its owner), so the process remembers
    /// the keys it parsed recently, across threads. Parsing is a pure function of the bytes: the
    /// cache cannot change a result, only skip recomputing one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::Length { expected: Self::LEN, actual: bytes.len() })?;
        if let Some(key) = parsed_shard(&arr).get(&arr).copied() {
            return Ok(Self(key));
        }
        // Canonical, not of small order, and no torsion component: with a torsion-free `A`, the
        // strict equation can only hold for a torsion-free `R`, which is what makes the one
        // verification rule independent of how signatures are grouped (see `verify.rs`).
        // Keys made by `Keypair` are always torsion-free; only crafted keys are refused.
        let point = CompressedEdwardsY(arr).decompress().ok_or(CryptoError::InvalidPublicKey)?;
        if point.is_small_order() || !point.is_torsion_free() {
            return Err(CryptoError::InvalidPublicKey);
        }
        // `VerifyingKey` keeps the bytes it was given, so canonical form is checked here.
        if point.compress().to_bytes() != arr {
            return Err(CryptoError::InvalidPublicKey);
        }
        let key = VerifyingKey::from_bytes(&arr).map_err(|_| CryptoError::InvalidPublicKey)?;
        let mut shard = parsed_shard(&arr);
        if shard.len() >= PARSED_KEYS_MAX / PARSED_SHARDS {
            shard.clear();
        }
        shard.insert(arr, key);
        Ok(Self(key))
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The raw bytes, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Verify `sig` over `msg` signed for `domain` on `chain_id` (strict verification).
    pub fn verify(
        &self,
        domain: Domain,
        chain_id: &str,
        msg: &[u8],
        sig: &Signature,
    ) -> Result<(), CryptoError> {
        self.verify_digest(&Hash::of(domain, chain_id, msg), sig)
    }

    /// Verify `sig` over an already domain-separated digest (strict verification).
    pub fn verify_digest(&self, digest: &Hash, sig: &Signature) -> Result<(), CryptoError> {
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.0.verify_strict(digest.as_bytes(), &sig).map_err(|_| CryptoError::BadSignature)
    }

    #[cfg(test)]
    pub(crate) fn inner(&self) -> &VerifyingKey {
        &self.0
    }
}

impl Signature {
    /// Length in bytes.
    pub const LEN: usize = 64;

    /// Parse exactly 64 bytes. Validity is only known at verification.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 64] = bytes
            .try_into()
            .map_err(|_| CryptoError::Length { expected: Self::LEN, actual: bytes.len() })?;
        Ok(Self(arr))
    }

    /// The 64 raw bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl Keypair {
    /// A key from 32 secret seed bytes (deterministic; for tests and key files).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self { signing: SigningKey::from_bytes(&seed) }
    }

    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        Self::from_seed(seed)
    }

    /// The secret seed. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// Sign `msg` for `domain` on chain `chain_id`.
    pub fn sign(&self, domain: Domain, chain_id: &str, msg: &[u8]) -> Signature {
        self.sign_digest(&Hash::of(domain, chain_id, msg))
    }

    /// Sign an already domain-separated digest.
    pub fn sign_digest(&self, digest: &Hash) -> Signature {
        Signature(self.signing.sign(digest.as_bytes()).to_bytes())
    }
}

impl Clone for Keypair {
    fn clone(&self) -> Self {
        Self::from_seed(self.seed())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        write!(f, "Keypair({})", self.public())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..8])
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", &self.to_hex()[..8])
    }
}

impl FromStr for PublicKey {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(&hex::decode(s)?)
    }
}

impl FromStr for Signature {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_slice(&hex::decode(s)?)
    }
}

macro_rules! hex_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_serde!(PublicKey);
hex_serde!(Signature);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    /// s + L (little-endian add), the classic malleation of an ed25519 signature.
    fn add_order(s: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(s[i]) + u16::from(L[i]) + carry;
            out[i] = v as u8;
            carry = v >> 8;
        }
        out
    }

    #[test]
    fn malleated_signature_is_rejected() {
        let k = Keypair::from_seed([1; 32]);
        let sig = k.sign(Domain::TRANSACTION, "c", b"m");
        let mut bad = sig.0;
        let s = add_order(&sig.0[32..]);
        bad[32..].copy_from_slice(&s);
        assert_ne!(bad, sig.0);
        assert!(k.public().verify(Domain::TRANSACTION, "c", b"m", &sig).is_ok());
        assert!(matches!(
            k.public().verify(Domain::TRANSACTION, "c", b"m", &Signature(bad)),
            Err(CryptoError::BadSignature)
        ));
    }

    #[test]
    fn weak_and_malformed_keys_are_rejected() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(PublicKey::from_bytes(&identity), Err(CryptoError::InvalidPublicKey)));
        assert!(PublicKey::from_bytes(&[0; 31]).is_err());
        assert!("not-hex".parse::<PublicKey>().is_err());
    }

    proptest! {
        /// Parsing the same bytes again (from the per-thread cache) gives the same answer,
        /// for valid keys and for every kind of invalid one.
        #[test]
        fn parsing_is_the_same_from_the_cache(bytes in any::<[u8; 32]>(), seed in any::<[u8; 32]>()) {
            let parse = |b: &[u8]| PublicKey::from_bytes(b).map(|k| k.to_bytes()).map_err(|e| e.to_string());
            let first = parse(&bytes);
            prop_assert_eq!(parse(&bytes), first);
            let valid = Keypair::from_seed(seed).public().to_bytes();
            for _ in 0..2 {
                prop_assert_eq!(PublicKey::from_bytes(&valid).unwrap().to_bytes(), valid);
            }
        }
    }

    #[test]
    fn cache_is_bounded_and_keeps_refusing_weak_keys() {
        for i in 0..(PARSED_KEYS_MAX as u32 + 10) {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            PublicKey::from_bytes(&Keypair::from_seed(seed).public().to_bytes()).unwrap();
        }
        let held: usize = PARSED.1.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= PARSED_KEYS_MAX, "{held}");
        assert!(
            PARSED.1.iter().all(|s| s.lock().unwrap().len() <= PARSED_KEYS_MAX / PARSED_SHARDS)
        );
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..2 {
            assert!(PublicKey::from_bytes(&identity).is_err());
        }
    }

    /// A key parsed on one thread is remembered for the others: one cache per process.
    #[test]
    fn a_key_parsed_on_one_thread_is_cached_for_all() {
        let key = Keypair::from_seed([77; 32]).public().to_bytes();
        // Another test filling the cache may clear the shard in between: a few tries.
        let shared = (0..10).any(|_| {
            std::thread::spawn(move || PublicKey::from_bytes(&key).unwrap()).join().unwrap();
            parsed_shard(&key).contains_key(&key)
        });
        assert!(shared, "a key parsed on another thread is not in the cache");
        // Refused keys are never remembered.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(&identity).is_err());
        assert!(!parsed_shard(&identity).contains_key(&identity));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let k = Keypair::from_seed([9; 32]);
        assert!(!format!("{k:?}").contains(&hex::encode(k.seed())));
    }

    proptest! {
        #[test]
        fn signature_binds_domain_chain_and_message(
            seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..256),
            other in proptest::collection::vec(any::<u8>(), 0..256), chain in "[a-z]{1,12}",
        ) {
            let k = Keypair::from_seed(seed);
            let sig = k.sign(Domain::TRANSACTION, &chain, &msg);
            let pk = k.public();
            prop_assert!(pk.verify(Domain::TRANSACTION, &chain, &msg, &sig).is_ok());
            prop_assert!(pk.verify(Domain::GRANT, &chain, &msg, &sig).is_err());
            let other_chain = format!("{chain}x");
            prop_assert!(pk.verify(Domain::TRANSACTION, &other_chain, &msg, &sig).is_err());
            if other != msg {
                prop_assert!(pk.verify(Domain::TRANSACTION, &chain, &other, &sig).is_err());
            }
        }

        #[test]
        fn keys_and_signatures_round_trip(seed in any::<[u8; 32]>()) {
            let k = Keypair::from_seed(seed);
            let pk = k.public();
            prop_assert_eq!(PublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
            prop_assert_eq!(pk.to_string().parse::<PublicKey>().unwrap(), pk);
            let json = serde_json::to_string(&pk).unwrap();
            prop_assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), pk);
            let sig = k.sign(Domain::VOTE, "c", b"x");
            prop_assert_eq!(Signature::from_slice(&sig.to_bytes()).unwrap(), sig);
            prop_assert_eq!(sig.to_hex().parse::<Signature>().unwrap(), sig);
            prop_assert_eq!(Keypair::from_seed(k.seed()).public(), pk);
        }
    }
}
