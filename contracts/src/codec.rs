//! The bridge between the prost-generated wire types (kept private in [`pb`]) and the domain
//! types. Every decoder checks a maximum length before it touches the bytes.

use dpx_crypto::{Hash, PublicKey, Signature};
use prost::Message;

use crate::error::DecodeError;

/// prost-generated types of `proto/dpx_contracts.proto`.
#[allow(clippy::all, clippy::pedantic, missing_debug_implementations)]
pub(crate) mod pb {
    include!(concat!(env!("OUT_DIR"), "/dpx.contracts.v1.rs"));
}

/// A domain type with a protobuf form.
pub(crate) trait Wire: Sized {
    type Pb: Message + Default;
    /// Largest encoding accepted by [`decode`].
    const MAX_BYTES: usize;
    fn to_pb(&self) -> Self::Pb;
    fn from_pb(pb: Self::Pb) -> Result<Self, DecodeError>;
}

pub(crate) fn encode<T: Wire>(value: &T) -> Vec<u8> {
    value.to_pb().encode_to_vec()
}

pub(crate) fn decode<T: Wire>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > T::MAX_BYTES {
        return Err(DecodeError::TooLarge { size: bytes.len(), max: T::MAX_BYTES });
    }
    T::from_pb(T::Pb::decode(bytes)?)
}

/// [`decode`], accepting only the canonical encoding (the one [`encode`] gives back). For
/// everything that is signed: one meaning has one byte form, so nobody can pad a signed
/// structure with unknown or repeated fields, and a hash of the bytes names the meaning.
pub(crate) fn decode_canonical<T: Wire>(bytes: &[u8]) -> Result<T, DecodeError> {
    let value: T = decode(bytes)?;
    if encode(&value) != bytes {
        return Err(DecodeError::NotCanonical);
    }
    Ok(value)
}

pub(crate) fn key(bytes: &[u8], field: &'static str) -> Result<PublicKey, DecodeError> {
    PublicKey::from_bytes(bytes).map_err(|e| DecodeError::field(field, e))
}

pub(crate) fn hash(bytes: &[u8], field: &'static str) -> Result<Hash, DecodeError> {
    Hash::from_slice(bytes).map_err(|e| DecodeError::field(field, e))
}

pub(crate) fn sig(bytes: &[u8], field: &'static str) -> Result<Signature, DecodeError> {
    Signature::from_slice(bytes).map_err(|e| DecodeError::field(field, e))
}

pub(crate) fn opt_hash(
    bytes: Option<&Vec<u8>>,
    field: &'static str,
) -> Result<Option<Hash>, DecodeError> {
    bytes.map(|b| hash(b, field)).transpose()
}

pub(crate) fn req<T>(v: Option<T>, field: &'static str) -> Result<T, DecodeError> {
    v.ok_or(DecodeError::Missing { field })
}

pub(crate) fn small(v: u32, field: &'static str) -> Result<u8, DecodeError> {
    u8::try_from(v).map_err(|_| DecodeError::field(field, "out of range"))
}
