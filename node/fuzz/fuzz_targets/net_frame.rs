//! P2P messages from peers: decoding never panics and what decodes re-encodes losslessly; a
//! compact block's shape is judged without a panic and, when accepted, gives one place per
//! transaction.
#![no_main]

use dpx_node::driver::compact::slots;
use dpx_node::wire::{NetMessage, NetResponse, net_message::Kind};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = NetMessage::decode(data) {
        assert_eq!(NetMessage::decode(m.encode_to_vec().as_slice()).ok(), Some(m.clone()));
        if let Some(Kind::Compact(c)) = &m.kind {
            if let Ok(places) = slots(c, 100_000) {
                assert_eq!(places.len(), c.tx_count as usize);
            }
        }
    }
    if let Ok(r) = NetResponse::decode(data) {
        let _ = r.encode_to_vec();
    }
});
