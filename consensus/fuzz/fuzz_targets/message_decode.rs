//! Every consensus decoder of outside bytes: never panics; whatever decodes re-encodes and
//! decodes to the same value.
#![no_main]

use dpx_consensus::{Certificate, Evidence, SafetyState, SignedMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SignedMessage::decode(data) {
        assert_eq!(SignedMessage::decode(&m.encode()).ok(), Some(m));
    }
    if let Ok(c) = Certificate::decode(data) {
        assert_eq!(Certificate::decode(&c.encode()).ok(), Some(c));
    }
    if let Ok(e) = Evidence::decode(data) {
        let _ = e.encode();
    }
    if let Ok(s) = SafetyState::decode(data) {
        let _ = s.encode();
    }
});
