//! The stateful admission checks, against the latest committed state.

use dpx_contracts as contracts;
use dpx_crypto::PublicKey;
use dpx_ledger::Store;

use super::Refusal;
use crate::state::LatestState;

/// Nonce, expiry, signer and carried-grant expiry checks against the latest state (for the
/// mempool).
///
/// `pending_below(signer, expected, got)` says whether the mempool already holds every nonce
/// in `expected..got` for the signer: then a nonce ahead of the ledger's is fine, it will be
/// next once those commit.
pub fn check_stateful(
    store: &Store,
    tx: &contracts::VerifiedTx,
    height: u64,
    pending_below: impl Fn(&PublicKey, u64, u64) -> bool,
) -> Result<(), Refusal> {
    let st = LatestState::new(store);
    // A carried grant is checked against the last committed block's time (block times strictly
    // increase, so a grant expired then is expired in any later block; execution decides with
    // its own block's time). Read only when a grant is carried: one header read.
    let last_time_ms = if tx.body.op.carried_grants().is_empty() {
        0
    } else {
        store.header(store.tip_height()).ok().flatten().map_or(0, |h| h.time_ms)
    };
    let r = match contracts::check_stateful(&st, tx, height, last_time_ms) {
        Err(contracts::TxError::NonceTooHigh { expected, got })
            if pending_below(&tx.signer, expected, got) =>
        {
            Ok(())
        }
        r => r.map_err(Refusal::Tx),
    };
    if let Some(e) = st.into_error() {
        return Err(Refusal::LedgerRead(e));
    }
    r
}

/// The same check for a transaction already in the mempool, given its bytes (re-decoded;
/// signature known good).
pub fn check_stateful_pool(
    store: &Store,
    tx_bytes: &[u8],
    height: u64,
    pending_below: impl Fn(&PublicKey, u64, u64) -> bool,
) -> Result<(), String> {
    let u = contracts::decode_unverified(tx_bytes, store.chain_id()).map_err(|e| e.to_string())?;
    check_stateful(store, &u.assume_verified(None), height, pending_below)
        .map_err(|e| e.to_string())
}
