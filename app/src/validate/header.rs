//! The header rules shared by proposal validation, block sync and audit replay.
//!
//! A block at height `h` is valid on top of our tip `h-1` when its header extends the tip
//! (chain id, height, parent id, time), commits to what we know (state root after `h-1`,
//! receipts hash of `h-1`, the validator set of `h`, the transactions), carries a valid
//! certificate of its parent, and every transaction decodes and is signed correctly.

use dpx_consensus::{Certificate, Height, ValidatorSet};
use dpx_crypto::Hash;
use dpx_ledger::{Block, Store, TxHashes};

/// What a block is checked against: the local tip.
#[derive(Debug)]
pub struct Tip {
    pub height: u64,
    pub id: Hash,
    pub time_ms: u64,
    pub state_root: Hash,
    pub receipts_hash: Hash,
}

impl Tip {
    pub fn of(store: &Store, genesis_time_ms: u64) -> Result<Self, String> {
        let height = store.tip_height();
        let header = store.header(height).map_err(|e| e.to_string())?;
        Ok(Self {
            height,
            id: header.as_ref().map_or(Hash::ZERO, dpx_ledger::Header::id),
            time_ms: header.as_ref().map_or(genesis_time_ms, |h| h.time_ms),
            state_root: store
                .state_root(height)
                .map_err(|e| e.to_string())?
                .ok_or("tip state root missing")?,
            receipts_hash: store
                .block_receipts_hash(height)
                .map_err(|e| e.to_string())?
                .unwrap_or(Hash::ZERO),
        })
    }
}

/// Check the header of `block` (with its transactions' `hashes`, made once) and the parent
/// certificate it names against `tip`.
/// `parent_validators` is the set that signed the parent (unused at height 1). Transactions are
/// checked by the caller.
pub fn check_header(
    chain_id: &str,
    block: &Block,
    hashes: &TxHashes,
    parent_certificate: &[u8],
    tip: &Tip,
    validators: &ValidatorSet,
    parent_validators: &ValidatorSet,
) -> Result<(), String> {
    let h = &block.header;
    let expect = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_owned()) };
    expect(h.chain_id == chain_id, "wrong chain id")?;
    expect(h.height == tip.height + 1, "does not extend our tip")?;
    expect(h.parent_id == tip.id, "parent id is not our tip")?;
    expect(h.time_ms > tip.time_ms, "time does not advance")?;
    expect(h.state_root == tip.state_root, "state root differs from ours")?;
    expect(h.prev_receipts_hash == tip.receipts_hash, "previous receipts hash differs")?;
    expect(h.validator_set_hash == validators.hash(chain_id), "validator set hash differs")?;
    expect(validators.index_of(&h.proposer).is_some(), "proposer is not a validator")?;
    hashes.check(block).map_err(|e| e.to_string())?;
    if tip.height == 0 {
        expect(parent_certificate.is_empty(), "the first block has no parent certificate")?;
        expect(h.parent_certificate_hash == Hash::ZERO, "first block's parent certificate hash")?;
        return Ok(());
    }
    expect(
        h.parent_certificate_hash == Hash::digest(parent_certificate),
        "parent certificate hash does not match the certificate carried",
    )?;
    let cert =
        Certificate::decode(parent_certificate).map_err(|e| format!("parent certificate: {e}"))?;
    check_certificate(chain_id, &cert, tip.height, &tip.id, parent_validators)
}

/// A certificate for block `id` at `height`, signed by > 2/3 of `validators`.
pub fn check_certificate(
    chain_id: &str,
    cert: &Certificate,
    height: u64,
    id: &Hash,
    validators: &ValidatorSet,
) -> Result<(), String> {
    if cert.height != Height(height) || cert.value_id != *id {
        return Err(format!("certificate is for another block (height {})", cert.height.0));
    }
    cert.verify(chain_id, validators).map_err(|e| format!("certificate: {e}"))
}
