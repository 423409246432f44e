//! P2P messages from peers: decoding never panics and what decodes re-encodes losslessly.
#![no_main]

use dpx_node::wire::{NetMessage, NetResponse};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = NetMessage::decode(data) {
        assert_eq!(NetMessage::decode(m.encode_to_vec().as_slice()).ok(), Some(m));
    }
    if let Ok(r) = NetResponse::decode(data) {
        let _ = r.encode_to_vec();
    }
});
