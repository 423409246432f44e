//! What the RPC parses from strangers: transactions (stateless checks, JSON views) and object
//! ids. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use dpx_app::admit::TxChecker;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    static CHECKER: std::sync::OnceLock<TxChecker> = std::sync::OnceLock::new();
    let checker = CHECKER.get_or_init(|| TxChecker::new("dpx-fuzz", false, 1024));
    let _ = checker.check_batch(vec![data.to_vec()]);
    // The batch body of POST /v1/txs/batch (application/x-protobuf).
    if let Ok(batch) = dpx_node::wire::TxBatch::decode(data) {
        let _ = checker.check_batch(batch.txs);
    }
    let _ = dpx_app::views::receipt_json(data);
    let _ = dpx_app::views::tx_json(data);
    if let Ok(text) = std::str::from_utf8(data) {
        for kind in dpx_app::views::KINDS {
            let _ = dpx_app::views::object_key(kind, text);
        }
    }
});
