//! Block, header and Merkle proof decoding: never panics; whatever decodes re-encodes to the
//! same bytes.
#![no_main]

use dpx_crypto::Hash;
use dpx_ledger::{Block, Header, MerkleProof};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data, 1 << 20) {
        assert_eq!(block.encode(), data);
        let _ = block.check_tx_root();
        let _ = block.id();
    }
    if let Ok(header) = Header::decode(data, 1 << 16) {
        assert_eq!(header.encode(), data);
    }
    if let Ok(proof) = MerkleProof::decode(data, 1 << 16) {
        let _ = proof.verify(&Hash::ZERO, b"leaf");
    }
});
