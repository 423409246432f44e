//! What the RPC parses from strangers: transactions (stateless checks, JSON views) and object
//! ids. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dpx_node::app::check_stateless_batch("dpx-fuzz", vec![data.to_vec()]);
    let _ = dpx_node::app::receipt_json(data);
    let _ = dpx_node::app::tx_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        for kind in dpx_node::app::KINDS {
            let _ = dpx_node::app::object_key(kind, text);
        }
    }
});
