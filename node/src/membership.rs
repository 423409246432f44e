//! Validator-set membership as nodes and operators see it: the set in force at a height (with
//! the names governance gave its members), the changes governance has scheduled, and the keys
//! the p2p layer lets in.
//!
//! Governance (`update_validators`, > 2/3 of active agencies) writes the complete new set under
//! `valupdate/<effective height>`; `begin_block` of that height makes it the set in force. So
//! the set validating height `h` is a pure function of the state, and a node that syncs a chain
//! meets every change at the height it took effect, like the validators that lived through it.
//!
//! A scheduled member may connect before its height (it must sync and be ready to sign when
//! the set changes); a removed member is disconnected when its last height is committed.

use std::cell::RefCell;
use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use dpx_contracts::{self as contracts, State, Validator, keys};
use dpx_crypto::PublicKey;
use dpx_ledger::Store;

/// Scheduled changes listed at most (each needs a governance decision, and each effective
/// height must be at or after the previous one's, so a long list means a misbehaving chain).
pub const PENDING_MAX: usize = 64;

/// A set governance scheduled, and what changes against the set before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub effective_height: u64,
    pub validators: Vec<Validator>,
    /// Members the set before it did not have (or had with another power).
    pub added: Vec<Validator>,
    /// Keys the set before it had and this one has not.
    pub removed: Vec<PublicKey>,
}

/// The set that validates `height`, with names: for a committed height the set in force in
/// the state after it (as `dpx_app::execute::validator_set`), for the next height the set in force after the
/// tip unless a change is scheduled for exactly that height. Later heights are not decided yet:
/// governance may still schedule changes before them.
pub fn set_at(store: &Store, height: u64) -> anyhow::Result<Vec<Validator>> {
    let tip = store.tip_height();
    if height > tip + 1 {
        bail!(
            "the set for height {height} is not decided yet (the tip is {tip}; see the scheduled \
             changes)"
        );
    }
    if height == tip + 1 {
        let st = AtVersion::latest(store);
        let set = contracts::scheduled_validator_set(&st, height)
            .unwrap_or_else(|| contracts::validator_set(&st));
        return st.done(set);
    }
    let st = AtVersion { store, version: Some(height), error: RefCell::new(None) };
    let set = contracts::validator_set(&st);
    st.done(set)
}

/// The changes scheduled for heights after the next one, oldest first, at most
/// [`PENDING_MAX`]. (A change for the next height is already the set in force for it.)
pub fn pending(store: &Store) -> anyhow::Result<Vec<Scheduled>> {
    let next = store.tip_height() + 1;
    let mut before = set_at(store, next)?;
    let entries = store
        .scan_prefix(
            keys::PREFIX_VALIDATOR_UPDATE,
            Some(&keys::validator_update(next)),
            PENDING_MAX,
        )
        .context("reading the scheduled validator sets")?;
    let st = AtVersion::latest(store);
    let mut out = Vec::with_capacity(entries.len());
    for (k, _) in entries {
        let Some(height) = update_height(&k) else {
            bail!("a malformed scheduled-set key in the state: {}", hex::encode(&k));
        };
        let Some(set) = contracts::scheduled_validator_set(&st, height) else {
            bail!("the scheduled set for height {height} does not decode");
        };
        let added = set
            .iter()
            .filter(|v| !before.iter().any(|b| b.key == v.key && b.power == v.power))
            .cloned()
            .collect();
        let removed =
            before.iter().filter(|b| !set.iter().any(|v| v.key == b.key)).map(|b| b.key).collect();
        out.push(Scheduled { effective_height: height, validators: set.clone(), added, removed });
        before = set;
    }
    st.done(out)
}

/// Keys of the set that validates the next height and of every set scheduled after it: the
/// validators the p2p layer lets in (beside `p2p.allow` and the configured peers).
pub fn permitted_keys(store: &Store) -> anyhow::Result<BTreeSet<PublicKey>> {
    let next = store.tip_height() + 1;
    let mut keys: BTreeSet<PublicKey> = set_at(store, next)?.iter().map(|v| v.key).collect();
    for s in pending(store)? {
        keys.extend(s.validators.iter().map(|v| v.key));
    }
    Ok(keys)
}

/// The height in a `valupdate/<u64 big-endian>` key.
fn update_height(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(keys::PREFIX_VALIDATOR_UPDATE)?;
    Some(u64::from_be_bytes(rest.try_into().ok()?))
}

/// The state after block `version` (`None`: the latest), read-only. A failed read is
/// remembered and turns the answer into an error rather than a partial view.
struct AtVersion<'a> {
    store: &'a Store,
    version: Option<u64>,
    error: RefCell<Option<String>>,
}

impl<'a> AtVersion<'a> {
    fn latest(store: &'a Store) -> Self {
        Self { store, version: None, error: RefCell::new(None) }
    }

    fn done<T>(self, value: T) -> anyhow::Result<T> {
        match self.error.into_inner() {
            Some(e) => bail!("reading the validator set: {e}"),
            None => Ok(value),
        }
    }
}

impl State for AtVersion<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let got = match self.version {
            Some(v) => self.store.get(key, v),
            None => self.store.get_latest(key),
        };
        got.unwrap_or_else(|e| {
            *self.error.borrow_mut() = Some(e.to_string());
            None
        })
    }
    fn put(&mut self, _: Vec<u8>, _: Vec<u8>) {
        *self.error.borrow_mut() = Some("write during a read".into());
    }
    fn delete(&mut self, _: &[u8]) {
        *self.error.borrow_mut() = Some("delete during a read".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_keys_name_their_height() {
        assert_eq!(update_height(&keys::validator_update(7)), Some(7));
        assert_eq!(update_height(&keys::validator_update(u64::MAX)), Some(u64::MAX));
        assert_eq!(update_height(b"valupdate/short"), None);
        assert_eq!(update_height(b"other/12345678"), None);
    }
}
