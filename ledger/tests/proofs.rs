//! Property tests: random key/value histories committed to a store; at every version, proofs for
//! present and absent keys verify, and proofs for a tampered value or the wrong root fail.

mod common;

use std::collections::BTreeMap;

use dpx_ledger::{ProofNode, StateProof, Store, WriteSet, verify_state_proof};
use proptest::prelude::*;

use common::{CHAIN, apply, commit, fast_config};

/// Keys come from a small space so histories update and delete the same keys often.
fn arb_writes() -> impl Strategy<Value = WriteSet> {
    proptest::collection::btree_map(
        (0u8..24).prop_map(|k| vec![b'k', k]),
        proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..24)),
        0..10,
    )
}

fn tamper(proof: &StateProof) -> Option<StateProof> {
    let mut p = proof.clone();
    if let Some(ProofNode::Internal { left, .. }) =
        p.siblings.iter_mut().find(|s| matches!(s, ProofNode::Internal { .. }))
    {
        left.0[0] ^= 1;
        return Some(p);
    }
    if let Some(leaf) = p.leaf.as_mut() {
        leaf.value_hash.0[0] ^= 1;
        return Some(p);
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn proofs_hold_for_every_key_at_every_version(
        genesis in arb_writes(),
        history in proptest::collection::vec(arb_writes(), 1..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), CHAIN, fast_config()).unwrap();
        let mut model = BTreeMap::new();
        let mut models = Vec::new();
        store.genesis(genesis.clone()).unwrap();
        apply(&mut model, &genesis);
        models.push(model.clone());
        for writes in &history {
            commit(&store, vec![], writes.clone());
            apply(&mut model, writes);
            models.push(model.clone());
        }
        let roots: Vec<_> = (0..models.len() as u64).map(|v| store.state_root(v).unwrap().unwrap()).collect();
        for (v, model) in models.iter().enumerate() {
            let root = roots[v];
            for k in 0u8..26 {
                let key = vec![b'k', k];
                let (value, proof) = store.get_with_proof(&key, v as u64).unwrap();
                prop_assert_eq!(value.as_ref(), model.get(&key));
                prop_assert!(verify_state_proof(root, &key, value.as_deref(), &proof).is_ok());
                // Round trip through both wire forms keeps the proof valid.
                let back = StateProof::decode(&proof.encode(), 1 << 16).unwrap();
                prop_assert!(verify_state_proof(root, &key, value.as_deref(), &back).is_ok());
                // A different value, or claiming absence of a present key (and vice versa), fails.
                let other = value.clone().map_or_else(|| b"x".to_vec(), |mut v| { v.push(1); v });
                prop_assert!(verify_state_proof(root, &key, Some(&other), &proof).is_err());
                if value.is_some() {
                    prop_assert!(verify_state_proof(root, &key, None, &proof).is_err());
                }
                // Another key cannot borrow this proof when it holds a value.
                if let Some(val) = value.as_deref() {
                    prop_assert!(verify_state_proof(root, &[b'z', k], Some(val), &proof).is_err());
                }
                // Wrong root fails.
                for r in &roots {
                    if *r != root {
                        prop_assert!(verify_state_proof(*r, &key, value.as_deref(), &proof).is_err());
                    }
                }
                // A tampered proof fails.
                if let Some(bad) = tamper(&proof) {
                    prop_assert!(verify_state_proof(root, &key, value.as_deref(), &bad).is_err());
                }
            }
        }
        store.verify_integrity().unwrap();
    }
}
