//! Answering peers' block-sync requests from the store, sized to the frame every node accepts.
//! (Checking what sync brings is `dpx_app::validate::check_synced`.)

use dpx_ledger::Store;

use crate::wire::{SyncRequest, SyncResponse, SyncedBlock};

/// Blocks one sync answer holds at most.
pub const SYNC_BLOCKS_MAX: u32 = 64;

/// Answer a block-sync request from the store: consecutive blocks from `from_height`, each
/// with its certificate and its parent's, at most [`SYNC_BLOCKS_MAX`] and at most
/// `max_frame_bytes` once encoded as a `NetResponse` (pass `p2p::FRAME_BYTES_MIN`, the frame
/// every node accepts, not the local configuration: the asker may accept less).
///
/// Always at least one block when the store has it: a block with its two certificates fits
/// `FRAME_BYTES_MIN` by construction (chain parameters cannot allow a larger block), so an
/// answer never has to be empty and never exceeds the asker's frame.
pub fn serve_sync(store: &Store, req: &SyncRequest, max_frame_bytes: usize) -> SyncResponse {
    use prost::Message as _;
    // The `NetResponse` and `SyncResponse` envelopes: two tags and two lengths.
    const ENVELOPE_BYTES: usize = 2 * (1 + 10);
    let mut blocks = Vec::new();
    let mut bytes = ENVELOPE_BYTES;
    let tip = store.tip_height();
    let end = req.from_height.saturating_add(u64::from(req.max_blocks.min(SYNC_BLOCKS_MAX)));
    for h in req.from_height.max(1)..end.min(tip.saturating_add(1)) {
        let (Ok(Some(block)), Ok(Some(cert))) = (store.block(h), store.certificate(h)) else {
            break;
        };
        let parent_certificate = if h > 1 {
            let Ok(Some(c)) = store.certificate(h - 1) else { break };
            c
        } else {
            Vec::new()
        };
        let synced = SyncedBlock { block: block.encode(), certificate: cert, parent_certificate };
        // The entry in the repeated field: a tag, a length and the message.
        let len = synced.encoded_len();
        bytes += 1 + prost::encoding::encoded_len_varint(len as u64) + len;
        if bytes > max_frame_bytes && !blocks.is_empty() {
            break;
        }
        blocks.push(synced);
    }
    SyncResponse { blocks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::{Hash, Keypair};
    use dpx_ledger::{Block, Header, StoreConfig, WriteSet, merkle};
    use prost::Message as _;

    use crate::wire::{NetResponse, net_response};

    const CHAIN: &str = "dpx-test";

    /// A block at `tip + 1` that the store accepts (the store checks the chain, not signatures).
    fn next_block(store: &Store, txs: Vec<Vec<u8>>) -> Block {
        let tip = store.tip_height();
        let parent_id = store.header(tip).unwrap().map_or(Hash::ZERO, |h| h.id());
        Block {
            header: Header {
                chain_id: CHAIN.into(),
                height: tip + 1,
                time_ms: 1_700_000_000_000 + tip * 1000,
                proposer: Keypair::from_seed([3; 32]).public(),
                parent_id,
                parent_certificate_hash: Hash::digest(
                    &store.certificate(tip).unwrap().unwrap_or_default(),
                ),
                tx_root: merkle::root(&txs),
                state_root: store.state_root(tip).unwrap().unwrap(),
                validator_set_hash: Hash::ZERO,
                prev_receipts_hash: store.block_receipts_hash(tip).unwrap().unwrap(),
            },
            txs,
        }
    }

    fn store_with_blocks(dir: &std::path::Path, blocks: &[(usize, usize)], cert: usize) -> Store {
        let store =
            Store::open(dir, CHAIN, StoreConfig { sync_writes: false, ..StoreConfig::default() })
                .unwrap();
        store.genesis(WriteSet::new()).unwrap();
        for &(count, len) in blocks {
            let h = store.tip_height() + 1;
            let txs: Vec<Vec<u8>> = (0..count)
                .map(|i| {
                    let mut t = vec![0u8; len];
                    t[..8].copy_from_slice(&h.to_be_bytes());
                    t[8..16].copy_from_slice(&(i as u64).to_be_bytes());
                    t
                })
                .collect();
            let block = next_block(&store, txs);
            let receipts = vec![b"r".to_vec(); count];
            store.commit_block(&block, &vec![h as u8; cert], WriteSet::new(), receipts).unwrap();
        }
        store
    }

    fn frame_len(resp: SyncResponse) -> usize {
        NetResponse { kind: Some(net_response::Kind::Sync(resp)) }.encode_to_vec().len()
    }

    /// Blocks filled to the default parameters' limit with small transactions (the framing
    /// makes each larger than `max_block_bytes`), small certificates as with 4 validators: the
    /// answer to a sync request must still fit the 16 MiB frame every node accepts.
    #[test]
    fn sync_answer_of_full_blocks_fits_a_frame() {
        let dir = tempfile::tempdir().unwrap();
        let limits =
            dpx_app::execute::BlockLimits { max_block_bytes: 4 << 20, max_block_txs: 10_000 };
        let per_tx = limits.max_block_bytes / limits.max_block_txs;
        let store = store_with_blocks(dir.path(), &[(limits.max_block_txs, per_tx); 5], 300);
        let req = SyncRequest { from_height: 1, max_blocks: 32 };
        let resp = serve_sync(&store, &req, crate::p2p::FRAME_BYTES_MIN);
        let n = resp.blocks.len();
        let len = frame_len(resp);
        assert!(n >= 1);
        assert!(len <= 16 << 20, "{n} blocks in a {len}-byte frame");
        assert!(len <= crate::p2p::FRAME_BYTES_MIN, "{n} blocks in a {len}-byte frame");
    }

    /// Blocks as large as any chain parameters allow, with certificates of 1,024 validators:
    /// the store takes them, and a sync answer carries exactly one, within the frame every node
    /// accepts, through the real codec.
    #[test]
    fn a_maximal_block_with_its_certificates_always_fits_one_frame() {
        use crate::p2p::FRAME_BYTES_MIN;
        use crate::p2p::codec::{FrameCodec, PROTOCOL};
        use libp2p::request_response::Codec as _;

        let ceiling = dpx_contracts::MAX_ENCODED_BLOCK_BYTES as usize;
        assert!(StoreConfig::default().max_block_bytes >= ceiling, "the store takes it");
        let params = dpx_contracts::Params {
            max_block_bytes: (ceiling - 64 * 1024 - 8 * 10_000) as u64,
            ..dpx_contracts::Params::default()
        };
        params.validate().unwrap();
        let per_tx = params.max_block_bytes as usize / params.max_block_txs as usize;
        let dir = tempfile::tempdir().unwrap();
        let blocks = [(params.max_block_txs as usize, per_tx); 2];
        let store = store_with_blocks(dir.path(), &blocks, dpx_consensus::MAX_CERTIFICATE_BYTES);
        assert!(store.block(2).unwrap().unwrap().encode().len() <= ceiling);

        let req = SyncRequest { from_height: 1, max_blocks: 32 };
        let resp = serve_sync(&store, &req, FRAME_BYTES_MIN);
        assert_eq!(resp.blocks.len(), 1, "one maximal block per answer");
        let msg = NetResponse { kind: Some(net_response::Kind::Sync(resp)) };
        let mut codec = FrameCodec { max_frame_bytes: FRAME_BYTES_MIN };
        let mut buf = futures::io::Cursor::new(Vec::new());
        futures::executor::block_on(codec.write_response(&PROTOCOL, &mut buf, msg.clone()))
            .unwrap();
        let mut rd = futures::io::Cursor::new(buf.into_inner());
        let back = futures::executor::block_on(codec.read_response(&PROTOCOL, &mut rd)).unwrap();
        assert_eq!(back, msg);
        // Asked from the second block on, the answer is that block: never an empty answer.
        let req = SyncRequest { from_height: 2, max_blocks: 32 };
        assert_eq!(serve_sync(&store, &req, FRAME_BYTES_MIN).blocks.len(), 1);
    }
}
