//! The prost-generated wire types (kept private) and the checked helpers every decoder uses.

use dpx_crypto::Signature;
use prost::Message;

use crate::{Error, Hash};

#[allow(clippy::pedantic, missing_debug_implementations)]
pub(crate) mod pb {
    include!(concat!(env!("OUT_DIR"), "/dpx.consensus.v1.rs"));
}

/// Check the length bound, then decode: no allocation is driven by an oversized input.
pub(crate) fn decode_bounded<M: Message + Default>(bytes: &[u8], max: usize) -> Result<M, Error> {
    if bytes.len() > max {
        return Err(Error::TooLarge { len: bytes.len(), max });
    }
    M::decode(bytes).map_err(|e| Error::Malformed(e.to_string()))
}

/// [`decode_bounded`], accepting only the canonical encoding (what prost encodes back): for
/// everything signed that travels, so a relay cannot pad a message with unknown or repeated
/// fields, and a hash of the bytes (a certificate's, named by the next header) names one
/// meaning.
pub(crate) fn decode_canonical<M: Message + Default>(bytes: &[u8], max: usize) -> Result<M, Error> {
    let m: M = decode_bounded(bytes, max)?;
    if m.encode_to_vec() != bytes {
        return Err(Error::Malformed("not the canonical encoding".into()));
    }
    Ok(m)
}

pub(crate) fn hash_from(bytes: &[u8], what: &str) -> Result<Hash, Error> {
    Hash::from_slice(bytes).map_err(|_| Error::Malformed(format!("{what}: expected 32 bytes")))
}

pub(crate) fn sig_from(bytes: &[u8]) -> Result<Signature, Error> {
    Signature::from_slice(bytes)
        .map_err(|_| Error::Malformed("signature: expected 64 bytes".into()))
}

pub(crate) fn required<T>(v: Option<T>, what: &str) -> Result<T, Error> {
    v.ok_or_else(|| Error::Malformed(format!("missing {what}")))
}
