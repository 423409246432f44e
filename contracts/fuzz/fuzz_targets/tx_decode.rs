//! Any bytes through the stateless checks: an error or a verified transaction, never a panic;
//! and whatever decodes re-encodes to the same bytes (one byte form per transaction).
#![no_main]

use dpx_contracts::{SignedTransaction, TransactionBody, check_stateless, decode_unverified};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = check_stateless(data, "fuzz");
    if let Ok(tx) = decode_unverified(data, "fuzz") {
        assert_eq!(tx.tx.encode(), data);
        assert_eq!(tx.hash, tx.tx.hash());
    }
    if let Ok(body) = TransactionBody::decode(data) {
        assert_eq!(TransactionBody::decode(&body.encode()).ok(), Some(body));
    }
    let _ = SignedTransaction::decode(data);
});
