use std::path::PathBuf;

/// Everything that can go wrong in `dpx-crypto`.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("expected {expected} bytes, got {actual}")]
    Length { expected: usize, actual: usize },
    #[error("invalid hex: {0}")]
    Hex(#[from] hex::FromHexError),
    #[error(
        "invalid ed25519 public key (not a canonical curve point, or not in the prime-order subgroup)"
    )]
    InvalidPublicKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("signature {index} of {count} does not verify")]
    BadSignatureAt { index: usize, count: usize },
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
}
