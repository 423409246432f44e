//! P2P messages from peers: decoding never panics and what decodes re-encodes losslessly; a
//! compact block's shape is judged without a panic and, when accepted, gives one place per
//! transaction; a transaction fetch is answered from our own block without a panic and never
//! with more than the block holds.
#![no_main]

use std::sync::{Arc, OnceLock};

use dpx_crypto::Hash;
use dpx_ledger::TxHashes;
use dpx_node::driver::compact::slots;
use dpx_node::serve_fetch::{Answer, OwnBlocks};
use dpx_node::testing::made_up_block;
use dpx_node::wire::{NetMessage, NetResponse, net_message::Kind};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// One published block of three transactions (one repeated), and its id.
fn own() -> &'static (OwnBlocks, Hash, usize) {
    static OWN: OnceLock<(OwnBlocks, Hash, usize)> = OnceLock::new();
    OWN.get_or_init(|| {
        let block = made_up_block(1, vec![b"one".to_vec(), b"two".to_vec(), b"one".to_vec()]);
        let hashes = TxHashes::of(&block.txs);
        let (id, bytes) = (block.id(), block.txs.iter().map(Vec::len).sum());
        let own = OwnBlocks::default();
        own.publish(id, Arc::new(block), Arc::new(hashes));
        (own, id, bytes)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = NetMessage::decode(data) {
        assert_eq!(NetMessage::decode(m.encode_to_vec().as_slice()).ok(), Some(m.clone()));
        if let Some(Kind::Compact(c)) = &m.kind {
            if let Ok(places) = slots(c, 100_000) {
                assert_eq!(places.len(), c.tx_count as usize);
            }
        }
        if let Some(Kind::TxFetch(f)) = &m.kind {
            let (own, id, block_bytes) = own();
            // Aimed at our block: the fuzzer's hashes, under the id it cannot guess.
            let mut aimed = f.clone();
            aimed.block_id = id.as_bytes().to_vec();
            for fetch in [f, &aimed] {
                if let Answer::Ours(job) = own.answer(fetch) {
                    let fill = job.fill();
                    assert!(fill.txs.iter().map(Vec::len).sum::<usize>() <= *block_bytes);
                }
            }
        }
    }
    if let Ok(r) = NetResponse::decode(data) {
        let _ = r.encode_to_vec();
    }
});
