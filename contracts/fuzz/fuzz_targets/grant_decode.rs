//! Any bytes or text as a signed grant (binary and QR-code form): an error or a canonical grant.
#![no_main]

use dpx_contracts::SignedGrant;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = SignedGrant::decode(data) {
        assert_eq!(g.encode(), data);
        assert_eq!(SignedGrant::from_compact(&g.to_compact()).ok(), Some(g.clone()));
        let _ = g.verify("fuzz");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SignedGrant::from_compact(text);
    }
});
