use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CryptoError;

/// A purpose tag for domain-separated hashing and signing.
///
/// Tags are short ASCII strings such as `"dpx/vote/v1"`; the version suffix lets a format change
/// without old signatures verifying against new meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(&'static str);

impl Domain {
    /// Consensus votes (prevote and precommit).
    pub const VOTE: Self = Self("dpx/vote/v1");
    /// Consensus block proposals.
    pub const PROPOSAL: Self = Self("dpx/proposal/v1");
    /// Signed transactions submitted by participants.
    pub const TRANSACTION: Self = Self("dpx/tx/v1");
    /// One-use authorization grants signed by a data subject.
    pub const GRANT: Self = Self("dpx/grant/v1");
    /// Block headers (the block id).
    pub const HEADER: Self = Self("dpx/header/v1");
    /// Commit certificates.
    pub const CERTIFICATE: Self = Self("dpx/certificate/v1");
    /// Leaves and inner nodes of transaction Merkle trees.
    pub const MERKLE_LEAF: Self = Self("dpx/merkle/leaf/v1");
    /// Inner nodes of transaction Merkle trees.
    pub const MERKLE_NODE: Self = Self("dpx/merkle/node/v1");
    /// Validator sets.
    pub const VALIDATOR_SET: Self = Self("dpx/validator-set/v1");
    /// Receipts of a block.
    pub const RECEIPTS: Self = Self("dpx/receipts/v1");
    /// Life-cycle attestations (collected, transmitted, stored, processed, shared, destroyed).
    pub const ATTESTATION: Self = Self("dpx/attestation/v1");
    /// Signed RPC requests: the RFC 9421 signature base of an HTTP request (SPEC.md, "Signed
    /// RPC requests"), so a request signature is never a transaction's, and vice versa.
    pub const RPC_REQUEST: Self = Self("dpx/rpc-request/v1");
    /// Console sign-in tokens (SPEC.md, "Console sign-in tokens"): a key's short-lived
    /// consent to open a console session, never valid as a request or a transaction.
    pub const CONSOLE_LOGIN: Self = Self("dpx/console-login/v1");

    /// A domain of the caller's own. Use a `dpx/<purpose>/v<N>` name.
    pub const fn new(tag: &'static str) -> Self {
        Self(tag)
    }

    /// The tag as text.
    pub const fn tag(self) -> &'static str {
        self.0
    }
}

/// A 32-byte blake3 digest. Displayed and serialized as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Length in bytes.
    pub const LEN: usize = 32;
    /// The all-zero hash, used for "none" (e.g. the parent of the first block).
    pub const ZERO: Self = Self([0; 32]);

    /// The domain-separated hash of `bytes` for `domain` on chain `chain_id`.
    ///
    /// Each part is length-prefixed, so no two distinct (domain, chain, bytes) triples collide
    /// by concatenation.
    pub fn of(domain: Domain, chain_id: &str, bytes: &[u8]) -> Self {
        let mut w = HashWriter::new(domain, chain_id);
        w.update(bytes);
        w.finish()
    }

    /// Plain blake3 of `bytes`, for content hashes (terms, deliveries) that are not signed as is.
    pub fn digest(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parse from exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::Length { expected: Self::LEN, actual: bytes.len() })?;
        Ok(Self(arr))
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex characters, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

/// Incremental domain-separated hashing, for values made of several parts.
///
/// Each [`HashWriter::update`] is length-prefixed, so `update(a); update(b)` differs from
/// `update(a ‖ b)`.
#[derive(Debug, Clone)]
pub struct HashWriter(blake3::Hasher);

impl HashWriter {
    /// Start a hash for `domain` on chain `chain_id`.
    pub fn new(domain: Domain, chain_id: &str) -> Self {
        let mut h = blake3::Hasher::new();
        put(&mut h, domain.0.as_bytes());
        put(&mut h, chain_id.as_bytes());
        Self(h)
    }

    /// Add one length-prefixed part.
    pub fn update(&mut self, bytes: &[u8]) -> &mut Self {
        put(&mut self.0, bytes);
        self
    }

    /// The digest.
    pub fn finish(&self) -> Hash {
        Hash(*self.0.finalize().as_bytes())
    }
}

fn put(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.short())
    }
}

impl FromStr for Hash {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|e| match e {
            hex::FromHexError::InvalidStringLength | hex::FromHexError::OddLength => {
                CryptoError::Length { expected: 32, actual: s.len() / 2 }
            }
            other @ hex::FromHexError::InvalidHexCharacter { .. } => CryptoError::Hex(other),
        })?;
        Ok(Self(out))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn domains_and_chains_separate() {
        let a = Hash::of(Domain::VOTE, "c1", b"x");
        assert_ne!(a, Hash::of(Domain::PROPOSAL, "c1", b"x"));
        assert_ne!(a, Hash::of(Domain::VOTE, "c2", b"x"));
        assert_eq!(a, Hash::of(Domain::VOTE, "c1", b"x"));
    }

    #[test]
    fn length_prefix_prevents_concatenation_collisions() {
        // chain "ab" + bytes "c" must differ from chain "a" + bytes "bc".
        assert_ne!(Hash::of(Domain::VOTE, "ab", b"c"), Hash::of(Domain::VOTE, "a", b"bc"));
        let mut w1 = HashWriter::new(Domain::VOTE, "c");
        w1.update(b"ab").update(b"c");
        let mut w2 = HashWriter::new(Domain::VOTE, "c");
        w2.update(b"a").update(b"bc");
        assert_ne!(w1.finish(), w2.finish());
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!("zz".parse::<Hash>().is_err());
        assert!("00".parse::<Hash>().is_err());
        assert!(Hash::from_slice(&[0; 31]).is_err());
    }

    proptest! {
        #[test]
        fn hex_and_serde_round_trip(bytes in any::<[u8; 32]>()) {
            let h = Hash(bytes);
            prop_assert_eq!(h.to_string().parse::<Hash>().unwrap(), h);
            let json = serde_json::to_string(&h).unwrap();
            prop_assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), h);
            prop_assert_eq!(Hash::from_slice(h.as_bytes()).unwrap(), h);
        }
    }
}
