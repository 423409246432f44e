//! Block validity: the rules a block must pass before this node votes for it (proposal
//! validation, [`validate_block`]), takes it from a peer (sync, [`check_synced`]) or replays it
//! (the auditor's replay): the header against our tip ([`check_header`]), the parent
//! certificate ([`check_certificate`]), the limits of the parameters and every transaction's
//! stateless checks.

use std::collections::HashSet;
use std::time::Duration;

use dpx_consensus::{Certificate, ValidatorSet};
use dpx_crypto::Hash;
use dpx_ledger::{Block, Store, TxHashes};

use crate::admit::{TxChecker, check_opaque_size};
use crate::execute::{params, validator_set};

mod header;

pub use header::{Tip, check_certificate, check_header};

/// What a block is judged by besides the store: the chain's start and this node's stateless
/// checks (which name the chain and remember the signatures already verified).
#[derive(Debug, Clone, Copy)]
pub struct BlockRules<'a> {
    /// The genesis time: the first block's time must be later.
    pub genesis_time_ms: u64,
    pub checker: &'a TxChecker,
}

impl BlockRules<'_> {
    fn chain_id(&self) -> &str {
        self.checker.chain_id()
    }
}

/// Our tip, and the validator set that signed it (the one the next block's parent certificate
/// must come from; at height 0 there is no parent and `validators` stands in).
fn tip_and_parent_set(
    store: &Store,
    rules: BlockRules<'_>,
    validators: &ValidatorSet,
) -> Result<(Tip, ValidatorSet), String> {
    let tip = Tip::of(store, rules.genesis_time_ms)?;
    let parent_set = if tip.height == 0 {
        validators.clone()
    } else {
        validator_set(store, tip.height).map_err(|e| e.to_string())?
    };
    Ok((tip, parent_set))
}

/// Full validity of a proposed block on top of our tip (prevote rule). `hashes` are its
/// transactions' ([`TxHashes`], made once by the caller; checked against the header here).
#[allow(clippy::too_many_arguments)] // the block, its hashes and parent certificate, and the clock
pub fn validate_block(
    store: &Store,
    rules: BlockRules<'_>,
    block: &Block,
    hashes: &TxHashes,
    parent_certificate: &[u8],
    validators: &ValidatorSet,
    max_drift: Duration,
    now_ms: u64,
) -> Result<(), String> {
    let (tip, parent_set) = tip_and_parent_set(store, rules, validators)?;
    check_header(
        rules.chain_id(),
        block,
        hashes,
        parent_certificate,
        &tip,
        validators,
        &parent_set,
    )?;
    if block.header.time_ms > now_ms + max_drift.as_millis() as u64 {
        return Err(format!(
            "block time is {} ms ahead of our clock",
            block.header.time_ms - now_ms
        ));
    }
    let limits = params(store).map_err(|e| e.to_string())?;
    if block.txs.len() > limits.max_block_txs {
        return Err(format!(
            "{} transactions exceed the limit {}",
            block.txs.len(),
            limits.max_block_txs
        ));
    }
    let bytes: usize = block.txs.iter().map(Vec::len).sum();
    if bytes > limits.max_block_bytes {
        return Err(format!(
            "{bytes} transaction bytes exceed the limit {}",
            limits.max_block_bytes
        ));
    }
    check_block_txs(rules.checker, &block.txs, hashes.digests())
}

/// Every transaction of a block passes the stateless checks (signatures already verified by
/// this node are not verified again) and none appears twice. `digests[i]` is
/// `Hash::digest(&txs[i])` ([`TxHashes::digests`]).
pub fn check_block_txs(
    checker: &TxChecker,
    txs: &[Vec<u8>],
    digests: &[Hash],
) -> Result<(), String> {
    match first_bad_tx(checker, txs, digests) {
        Some((i, reason)) => Err(format!("transaction {i}: {reason}")),
        None => Ok(()),
    }
}

/// The first transaction of a block that fails the stateless checks or repeats an earlier one.
/// `hashes[i]` is `Hash::digest(&txs[i])`.
///
/// # Panics
/// If the lists differ in length (a caller's bug).
pub fn first_bad_tx(
    checker: &TxChecker,
    txs: &[Vec<u8>],
    hashes: &[Hash],
) -> Option<(usize, String)> {
    assert_eq!(txs.len(), hashes.len(), "one digest per transaction");
    // Transactions this node already checked (admitted to its mempool, say) need no decoding:
    // their hash is enough. Only the others are decoded and verified. Opaque payloads have
    // nothing to decode.
    let unknown = checker.unverified(hashes);
    let fresh: Vec<Vec<u8>> = unknown.iter().map(|&i| txs[i].clone()).collect();
    let mut verdicts = checker.stateless(&fresh).into_iter();
    let mut next_unknown = unknown.into_iter().peekable();
    let mut seen = HashSet::with_capacity(txs.len());
    for (i, h) in hashes.iter().enumerate() {
        if checker.is_opaque()
            && let Err(e) = check_opaque_size(txs[i].len())
        {
            return Some((i, e.to_string()));
        }
        if next_unknown.next_if_eq(&i).is_some()
            && let Some(Err(e)) = verdicts.next()
        {
            return Some((i, e.to_string()));
        }
        if !seen.insert(*h) {
            return Some((i, "repeats an earlier one".to_owned()));
        }
    }
    None
}

/// A block from sync: decode it and its certificate and check both against our tip. Returns
/// the block with its transactions' hashes (made here, once) and the certificate; `None` for
/// a block that is not the next one (the caller skips it).
pub fn check_synced(
    store: &Store,
    rules: BlockRules<'_>,
    validators: &ValidatorSet,
    block: &[u8],
    cert: &[u8],
    parent_certificate: &[u8],
) -> Result<Option<(Block, TxHashes, Certificate)>, String> {
    let limit = params(store).map_err(|e| e.to_string())?.encoded_max();
    let block = Block::decode(block, limit).map_err(|e| e.to_string())?;
    let cert = Certificate::decode(cert).map_err(|e| e.to_string())?;
    let tip = store.tip_height();
    if block.header.height != tip + 1 {
        return Ok(None);
    }
    check_certificate(rules.chain_id(), &cert, block.header.height, &block.id(), validators)?;
    // After the certificate (a few signatures) and before the rest: one pass for the root
    // of a block that does not match its header, two for one that does.
    let hashes = TxHashes::of_block(&block).map_err(|e| e.to_string())?;
    let (tip, parent_set) = tip_and_parent_set(store, rules, validators)?;
    check_header(
        rules.chain_id(),
        &block,
        &hashes,
        parent_certificate,
        &tip,
        validators,
        &parent_set,
    )?;
    // Decided blocks were checked by a quorum, but a node never executes what it has not checked.
    check_block_txs(rules.checker, &block.txs, hashes.digests())?;
    Ok(Some((block, hashes, cert)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit::tests::{CHAIN, signed};

    fn first_bad(c: &TxChecker, txs: &[Vec<u8>]) -> Option<(usize, String)> {
        first_bad_tx(c, txs, TxHashes::of(txs).digests())
    }

    #[test]
    fn duplicates_in_a_block_are_refused() {
        let c = TxChecker::new(CHAIN, false, 100);
        let t = signed(1, 0);
        assert_eq!(first_bad(&c, &[t.clone(), t]).unwrap().0, 1);
        let o = TxChecker::new(CHAIN, true, 0);
        assert_eq!(first_bad(&o, &[vec![7; 512], vec![7; 512]]).unwrap().0, 1);
        assert_eq!(first_bad(&o, &[vec![1], Vec::new()]).unwrap().0, 1);
        assert!(first_bad(&o, &[vec![1], vec![2]]).is_none());
    }
}
