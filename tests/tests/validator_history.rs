//! Proof bundles across validator-set changes (issue 17): a bundle carries every change of
//! the validator set since genesis, each certified by the set it replaces (SPEC.md §11.3), so a
//! value or a transaction proved after two changes verifies against the genesis file alone;
//! a history that is cut, reordered, stretched past the proved height or altered is refused.
//!
//! The ledger is built with `ChainBuilder` (execution through the contracts, certificates
//! signed by the validators' keys).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use dpx_app::proofs::{
    CertifiedHeader, ProofBundle, SetHandoff, prove, prove_tx, verify_certified, verify_tx,
};
use dpx_app::replay::ChainBuilder;
use dpx_contracts::{Operation, ProposalAction, Role, Validator, keys};
use dpx_crypto::{Hash, Keypair};
use dpx_genesis::Genesis;
use dpx_ledger::verify_state_proof;
use dpx_tests::signer::Signer;

const CHAIN: &str = "dpx-valhistory-test";

fn kp(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

struct Chain {
    _dir: tempfile::TempDir,
    b: ChainBuilder,
    genesis: Genesis,
    /// The transaction that decided the second change.
    second_change_tx: Hash,
    /// A transaction in block 10, whose receipt block 11 (after a change) certifies.
    before_change_tx: Hash,
}

/// Genesis validators 10–13; a change adds 20 from height 5, another removes 10 from height
/// 11, and a third is scheduled for height 100 (beyond the chain). The chain reaches 14.
fn build() -> Chain {
    let dir = tempfile::tempdir().unwrap();
    let mut agency = Signer::new(CHAIN, 1);
    let genesis_vals: Vec<Keypair> = (10..14).map(kp).collect();
    let genesis = Genesis::example(
        CHAIN,
        &[("Data Authority", agency.public())],
        &genesis_vals.iter().map(Keypair::public).collect::<Vec<_>>(),
    );
    let mut all = genesis_vals;
    all.push(kp(20));
    let mut b = ChainBuilder::new(&dir.path().join("ledger"), &genesis, &all).unwrap();
    let change = |key: &Keypair, power: u64, effective_height: u64| Operation::Propose {
        action: ProposalAction::UpdateValidators {
            changes: vec![Validator { key: key.public(), power, name: "v".into() }],
            effective_height,
        },
    };
    b.push(vec![agency.sign(change(&kp(20), 10, 5))]).unwrap(); // block 1
    while b.store().tip_height() < 7 {
        b.push(vec![]).unwrap();
    }
    let tx = agency.sign(change(&kp(10), 0, 11)); // block 8
    let second_change_tx = Hash::digest(&tx);
    b.push(vec![tx]).unwrap();
    b.push(vec![]).unwrap(); // block 9
    // Block 10, the last the second set validates: its receipt is certified by block 11's
    // header, the first of the third set.
    let op =
        Operation::Admit { key: kp(30).public(), name: "late".into(), roles: vec![Role::Consumer] };
    let tx = agency.sign(op);
    let before_change_tx = Hash::digest(&tx);
    b.push(vec![tx]).unwrap();
    while b.store().tip_height() < 13 {
        b.push(vec![]).unwrap();
    }
    b.push(vec![agency.sign(change(&kp(21), 10, 100))]).unwrap(); // block 14
    assert_eq!(b.store().tip_height(), 14);
    Chain { _dir: dir, b, genesis, second_change_tx, before_change_tx }
}

fn check(b: &ProofBundle, genesis: &Genesis) -> Result<(u64, u64), String> {
    let c = CertifiedHeader {
        header: b.header.clone(),
        certificate: b.certificate.clone(),
        validators: b.validators.clone(),
    };
    let power = verify_certified(&c, genesis, &b.validator_history)?;
    let key = hex::decode(&b.key).unwrap();
    verify_state_proof(b.header.state_root, &key, b.value_bytes().as_deref(), &b.proof)
        .map_err(|e| e.to_string())?;
    Ok(power)
}

#[test]
fn bundles_carry_the_certified_history_and_a_bad_history_is_refused() {
    let c = build();
    let store = c.b.store();
    // Before any change: no history, the genesis set.
    let early = prove(store, CHAIN, keys::VALIDATORS, Some(2)).unwrap();
    assert!(early.validator_history.is_empty());
    assert_eq!(check(&early, &c.genesis).unwrap(), (40, 40));

    // After both changes: two handoffs, in order; the third (height 100) is not there.
    let late = prove(store, CHAIN, keys::VALIDATORS, Some(12)).unwrap();
    let effective: Vec<u64> = late.validator_history.iter().map(|h| h.effective_height).collect();
    assert_eq!(effective, [5, 11]);
    assert_eq!(late.validator_history[0].header.height, 4);
    // The set of height 13: 11, 12, 13 and 20 (10 left at 11).
    let (power, total) = check(&late, &c.genesis).unwrap();
    assert_eq!((power, total), (40, 40));
    let members: Vec<_> = late.validators.iter().map(|v| v.key).collect();
    assert!(members.contains(&kp(20).public()) && !members.contains(&kp(10).public()));
    // A bundle at the height the first change takes effect needs exactly that handoff.
    let at5 = prove(store, CHAIN, keys::VALIDATORS, Some(4)).unwrap();
    assert_eq!(at5.validator_history.len(), 1);
    check(&at5, &c.genesis).unwrap();

    let refused = |mutate: &dyn Fn(&mut ProofBundle), want: &str| {
        let mut b = late.clone();
        mutate(&mut b);
        let e = check(&b, &c.genesis).unwrap_err();
        assert!(e.contains(want), "{want:?} not in {e:?}");
    };
    // Cut: the last change left out, or all of it.
    refused(&|b| drop(b.validator_history.pop()), "not the set its validator-set history leads to");
    refused(&|b| b.validator_history.clear(), "not the genesis set");
    // Reordered, or a change claimed after the proved height.
    refused(&|b| b.validator_history.reverse(), "names another validator set");
    refused(&|b| b.validator_history.insert(1, b.validator_history[0].clone()), "out of order");
    let mut future: SetHandoff = late.validator_history[1].clone();
    future.effective_height = 14;
    refused(&|b| b.validator_history.push(future.clone()), "after the proved height");
    // A different new set (a power changed): its state proof fails.
    refused(
        &|b| {
            let v = &mut b.validator_history[0].value;
            let mut bytes = hex::decode(&v).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            *v = hex::encode(bytes);
        },
        "state proof",
    );
    // A handoff certified by the wrong set: the second change's header swapped for the first's.
    refused(
        &|b| b.validator_history[1].header = late.validator_history[0].header.clone(),
        "not the block before it",
    );
    // A certificate signature flipped.
    refused(
        &|b| {
            let cert = &mut b.validator_history[0].certificate;
            let mut bytes = hex::decode(&cert).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            *cert = hex::encode(bytes);
        },
        "not certified",
    );
    // The bundle's own validators swapped for the genesis set (what a node hiding the changes
    // would send): refused, history or not.
    let genesis_set: Vec<_> = c.genesis.validator_set().unwrap().validators().to_vec();
    refused(&|b| b.validators.clone_from(&genesis_set), "not the set");

    // Bundles survive JSON (what clients receive); an older bundle without the field reads
    // as one with no history.
    let json = serde_json::to_value(&late).unwrap();
    let back: ProofBundle = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back.validator_history, late.validator_history);
    let mut old = json;
    old.as_object_mut().unwrap().remove("validator_history");
    assert!(serde_json::from_value::<ProofBundle>(old).unwrap().validator_history.is_empty());
}

#[test]
fn a_transaction_after_a_change_verifies_against_the_genesis_alone() {
    let c = build();
    let b = prove_tx(c.b.store(), CHAIN, &c.second_change_tx).unwrap().unwrap();
    assert_eq!(b.height, 8);
    assert_eq!(b.validator_history.len(), 1, "the change at 5; the one at 11 is later");
    let v = verify_tx(&b, &c.genesis).unwrap();
    assert!(v.receipt_power.is_some());
    let mut cut = b.clone();
    cut.validator_history.clear();
    assert!(verify_tx(&cut, &c.genesis).is_err());
    // A change taking effect at the next block: the block is checked against the set before
    // it, the receipt's header against the set after it.
    let b = prove_tx(c.b.store(), CHAIN, &c.before_change_tx).unwrap().unwrap();
    assert_eq!(b.height, 10);
    let effective: Vec<u64> = b.validator_history.iter().map(|h| h.effective_height).collect();
    assert_eq!(effective, [5, 11]);
    let v = verify_tx(&b, &c.genesis).unwrap();
    assert!(v.receipt_power.is_some());
    let mut cut = b.clone();
    cut.validator_history.pop();
    assert!(verify_tx(&cut, &c.genesis).is_err(), "the next header needs the change at 11");
    // Without the receipt, the change at 11 is after the last header carried.
    let mut pending = b.clone();
    pending.receipt = None;
    assert!(verify_tx(&pending, &c.genesis).is_err());
    pending.validator_history.pop();
    verify_tx(&pending, &c.genesis).unwrap();
}

/// A change this node cannot prove (here: one that took effect the block after it was
/// recorded, as a delay of 1 allowed before SPEC.md §11.3): bundles are still served, with an
/// empty history and the reason, and verification against the genesis file says why it fails.
#[test]
fn a_change_the_node_cannot_prove_is_reported_in_the_bundle() {
    let mut c = build();
    let set_of_5 = c.b.store().get_latest(&keys::validator_update(5)).unwrap().unwrap();
    // Block 15 records a set taking effect at 16 (bypassing governance, as a faulty chain
    // would be written): header 15, the last of the old set, certifies the state before it.
    c.b.push_altered(vec![], |writes, _| {
        writes.insert(keys::validator_update(16), Some(set_of_5.clone()));
    })
    .unwrap();
    while c.b.store().tip_height() < 18 {
        c.b.push(vec![]).unwrap();
    }
    let bundle = prove(c.b.store(), CHAIN, keys::VALIDATORS, Some(17)).unwrap();
    assert!(bundle.validator_history.is_empty());
    let why = bundle.validator_history_error.clone().unwrap();
    assert!(why.contains("height 16"), "{why}");
    let e = check(&bundle, &c.genesis).unwrap_err();
    assert!(e.contains("no validator-set history"), "{e}");
    // Before that change, bundles still carry their history.
    let earlier = prove(c.b.store(), CHAIN, keys::VALIDATORS, Some(13)).unwrap();
    assert_eq!(earlier.validator_history.len(), 2);
    assert!(earlier.validator_history_error.is_none());
    check(&earlier, &c.genesis).unwrap();
}
