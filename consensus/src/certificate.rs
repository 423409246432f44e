//! Commit certificates: more than two thirds of the voting power of precommit signatures over
//! `(chain id, height, round, value id)`, each verified under the one rule (no batch equation).

use dpx_crypto::{Domain, Signature, SignedDigest, verify_all};
use serde::{Deserialize, Serialize};

use crate::messages::vote_sign_bytes;
use crate::validators::MAX_VALIDATORS;
use crate::wire::{self, pb};
use crate::{Error, Hash, Height, Round, ValidatorIndex, ValidatorSet, VoteKind};

/// Largest encoded [`Certificate`]: a signature and an index per possible validator, plus slack.
pub const MAX_CERTIFICATE_BYTES: usize = 64 + MAX_VALIDATORS * (Signature::LEN + 16);

/// Proof that a value was decided at a height: the precommits that made the decision.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Certificate {
    pub height: Height,
    pub round: Round,
    pub value_id: Hash,
    /// Strictly increasing validator indices, each with its precommit signature.
    pub signatures: Vec<(ValidatorIndex, Signature)>,
}

impl Certificate {
    /// The digest each signer signed: its precommit for `value_id` at `(height, round)`.
    pub fn vote_digest(&self, chain_id: &str) -> Hash {
        Hash::of(
            Domain::VOTE,
            chain_id,
            &vote_sign_bytes(VoteKind::Precommit, self.height, self.round, Some(self.value_id)),
        )
    }

    /// Check: signers strictly increasing and members, their power a quorum, every signature
    /// valid (the one verification rule, see `dpx_crypto::verify_all`).
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> Result<(), Error> {
        let digest = self.vote_digest(chain_id);
        let mut power: u64 = 0;
        let mut previous: Option<ValidatorIndex> = None;
        let mut items = Vec::with_capacity(self.signatures.len());
        for (index, sig) in &self.signatures {
            if previous.is_some_and(|p| p >= *index) {
                return Err(Error::DuplicateSigner(*index));
            }
            previous = Some(*index);
            let v = validators
                .get(*index)
                .ok_or(Error::UnknownValidator { index: *index, len: validators.len() })?;
            power += v.power;
            items.push(SignedDigest { key: &v.key, digest: &digest, sig });
        }
        if power < validators.quorum() {
            return Err(Error::NoQuorum { got: power, quorum: validators.quorum() });
        }
        verify_all(&items).map_err(|_| Error::BadSignature)
    }

    /// Protobuf encoding, stored with the block.
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message;
        self.to_pb().encode_to_vec()
    }

    /// Decode (bounded by [`MAX_CERTIFICATE_BYTES`]). Does not verify: see [`Self::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let m: pb::Certificate = wire::decode_canonical(bytes, MAX_CERTIFICATE_BYTES)?;
        if m.signatures.len() > MAX_VALIDATORS {
            return Err(Error::Malformed("more signatures than MAX_VALIDATORS".into()));
        }
        Ok(Self {
            height: Height(m.height),
            round: Round(m.round),
            value_id: wire::hash_from(&m.value_id, "certificate value id")?,
            signatures: m
                .signatures
                .iter()
                .map(|s| Ok((ValidatorIndex(s.validator), wire::sig_from(&s.signature)?)))
                .collect::<Result<_, Error>>()?,
        })
    }

    /// A domain-separated hash of the certificate (`Domain::CERTIFICATE`). **Not** what block
    /// headers carry: `parent_certificate_hash` is plain blake3 of [`Self::encode`] (see
    /// SPEC.md §7.5); nothing in the protocol uses this hash today.
    pub fn hash(&self) -> Hash {
        Hash::of(Domain::CERTIFICATE, "", &self.encode())
    }

    fn to_pb(&self) -> pb::Certificate {
        pb::Certificate {
            height: self.height.0,
            round: self.round.0,
            value_id: self.value_id.0.to_vec(),
            signatures: self
                .signatures
                .iter()
                .map(|(i, s)| pb::CommitSignature { validator: i.0, signature: s.0.to_vec() })
                .collect(),
        }
    }
}
