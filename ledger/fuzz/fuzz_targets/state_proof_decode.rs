//! State proof decoding and verification of arbitrary proofs: never panics, and a random proof
//! never verifies against a fixed root.
#![no_main]

use dpx_crypto::Hash;
use dpx_ledger::{StateProof, verify_state_proof};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = StateProof::decode(data, dpx_ledger::MAX_STATE_PROOF_BYTES) {
        let back = StateProof::decode(&proof.encode(), dpx_ledger::MAX_STATE_PROOF_BYTES);
        assert_eq!(back.ok().as_ref(), Some(&proof));
        assert!(verify_state_proof(Hash([0x5a; 32]), b"key", Some(b"value"), &proof).is_err());
        let _ = verify_state_proof(Hash([0x5a; 32]), b"key", None, &proof);
    }
});
