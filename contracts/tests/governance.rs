//! Governance: proposals approved by more than 2/3 of agencies change policies, validators,
//! parameters, and admit agencies.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use dpx_crypto::Hash;

const STRICT: &str = r#"
@id("agencies-admit-and-suspend")
permit (principal, action in [Action::"admit", Action::"suspend", Action::"reinstate"], resource)
when { principal.roles.contains("agency") };
@id("rating-bodies-rate")
permit (principal, action == Action::"rate", resource) when { principal.roles.contains("rating_body") };
"#;

fn propose(w: &mut World, by: usize, action: ProposalAction) -> ProposalId {
    let a = w.agencies[by].clone();
    let id = ProposalId::derive(CHAIN, &a.public(), w.nonce(&a.public()));
    w.ok(&a, Operation::Propose { action });
    id
}

fn approve(w: &mut World, by: usize, id: ProposalId) -> Receipt {
    let a = w.agencies[by].clone();
    w.ok(&a, Operation::Approve { proposal: id })
}

fn proposal(w: &World, id: ProposalId) -> Proposal {
    w.get(&keys::proposal(&id)).unwrap()
}

#[test]
fn policy_change_needs_more_than_two_thirds_of_agencies() {
    let mut w = World::with_agencies(4);
    let id = propose(&mut w, 0, ProposalAction::SetPolicies { text: STRICT.into() });
    assert_eq!(proposal(&w, id).status, ProposalStatus::Open);
    let r = approve(&mut w, 1, id);
    assert_eq!(r.events_of("governance.executed").count(), 0, "2 of 4 is not > 2/3");
    let a1 = w.agencies[1].clone();
    w.fail(&a1, Operation::Approve { proposal: id }, Code::Failed, "already approved");
    let r = approve(&mut w, 2, id);
    assert_eq!(r.events_of("governance.executed").count(), 1, "3 of 4 is");
    assert_eq!(r.events_of("policy.updated").next().unwrap().get("version"), Some("2"));
    let p = proposal(&w, id);
    assert_eq!((p.status, p.approvals), (ProposalStatus::Executed, 3));
    w.fail(
        &w.agencies[3].clone(),
        Operation::Approve { proposal: id },
        Code::Failed,
        "is executed",
    );
    let rec = current_policies(&w.st).unwrap();
    assert_eq!((rec.version, rec.hash), (2, Hash::digest(STRICT.as_bytes())));
    // The new policies are in force: the operator may no longer admit; decisions cite version 2.
    let op = w.operator.clone();
    let r = w.fail(
        &op,
        Operation::Admit { key: kp(1).public(), name: "x".into(), roles: vec![Role::Consumer] },
        Code::Denied,
        "no policy permits",
    );
    assert_eq!(r.decision.unwrap().policy_version, 2);
    // Old versions stay readable for auditors.
    let v1: PolicySetRecord = w.get(&keys::policy_version(1)).unwrap();
    assert_eq!(v1.text, DEFAULT_POLICIES);
}

#[test]
fn only_agencies_govern_and_bad_proposals_are_refused() {
    let mut w = World::with_agencies(2);
    let op = w.operator.clone();
    w.fail(
        &op,
        Operation::Propose { action: ProposalAction::SetPolicies { text: STRICT.into() } },
        Code::Failed,
        "only agencies",
    );
    let a = w.agencies[0].clone();
    w.fail(
        &a,
        Operation::Propose {
            action: ProposalAction::SetPolicies {
                text: "@id(\"x\") permit(principal, action == Action::\"fly\", resource);".into(),
            },
        },
        Code::Failed,
        "schema",
    );
    w.fail(
        &a,
        Operation::Propose {
            action: ProposalAction::AdmitAgency { key: op.public(), name: "dup".into() },
        },
        Code::Failed,
        "already in use",
    );
    w.fail(&a, Operation::Approve { proposal: ProposalId(Hash::ZERO) }, Code::Failed, "not found");
    let bad_params = Params { max_tx_bytes: 1, ..Params::default() };
    let bytes =
        w.sign(&a, Operation::Propose { action: ProposalAction::SetParams { params: bad_params } });
    // Invalid parameters do not even decode.
    assert!(check_stateless(&bytes, CHAIN).unwrap_err().to_string().contains("max_tx_bytes"));
    // A suspended agency cannot take part.
    let id = propose(
        &mut w,
        0,
        ProposalAction::SetParams { params: Params { max_block_txs: 5, ..Params::default() } },
    );
    w.ok(&a, Operation::Suspend { participant: w.agencies[1].public(), reason: "r".into() });
    w.fail(&w.agencies[1].clone(), Operation::Approve { proposal: id }, Code::Failed, "suspended");
}

#[test]
fn proposals_expire() {
    let mut w = World::with_agencies(3);
    let a = w.agencies[0].clone();
    w.ok(
        &a,
        Operation::Propose {
            action: ProposalAction::SetParams {
                params: Params { proposal_ttl_blocks: 5, ..Params::default() },
            },
        },
    );
    // Not executed yet (1 of 3); now use the default TTL from the current params.
    let id = propose(&mut w, 0, ProposalAction::SetParams { params: Params::default() });
    let p = proposal(&w, id);
    w.height = p.expiry_height + 1;
    w.fail(&w.agencies[1].clone(), Operation::Approve { proposal: id }, Code::Failed, "expired");
}

#[test]
fn parameter_change() {
    let mut w = World::with_agencies(1);
    let new = Params { max_block_txs: 77, max_tx_bytes: 2048, ..Params::default() };
    let id = propose(&mut w, 0, ProposalAction::SetParams { params: new.clone() });
    assert_eq!(proposal(&w, id).status, ProposalStatus::Executed, "1 of 1 is a quorum");
    assert_eq!(params(&w.st), new);
    // The new transaction size limit applies at once.
    let a = w.agencies[0].clone();
    let bytes = w.sign(
        &a,
        Operation::Admit {
            key: kp(1).public(),
            name: "n".repeat(200),
            roles: vec![Role::Consumer; 7],
        },
    );
    let tx = check_stateless(&bytes, CHAIN).unwrap();
    assert!(check_stateful(&w.st, &tx, w.height, 0).is_ok());
    let big = w.sign(
        &a,
        Operation::Propose {
            action: ProposalAction::SetPolicies { text: DEFAULT_POLICIES.into() },
        },
    );
    let tx = check_stateless(&big, CHAIN).unwrap();
    assert!(matches!(
        check_stateful(&w.st, &tx, w.height, 0),
        Err(TxError::TooLarge { max: 2048, .. })
    ));
}

#[test]
fn agency_admission_raises_the_quorum() {
    let mut w = World::with_agencies(2);
    let newcomer = kp(30);
    let id = propose(
        &mut w,
        0,
        ProposalAction::AdmitAgency { key: newcomer.public(), name: "Transport Dept".into() },
    );
    assert_eq!(agency_count(&w.st), 2);
    approve(&mut w, 1, id);
    assert_eq!(agency_count(&w.st), 3);
    assert!(w.participant(&newcomer.public()).has_role(Role::Agency));
    // 2 of 3 is not > 2/3; the newcomer's approval completes it.
    let id = propose(
        &mut w,
        0,
        ProposalAction::SetParams { params: Params { max_block_txs: 9, ..Params::default() } },
    );
    approve(&mut w, 1, id);
    assert_eq!(proposal(&w, id).status, ProposalStatus::Open);
    w.agencies.push(newcomer);
    approve(&mut w, 2, id);
    assert_eq!(params(&w.st).max_block_txs, 9);
}

#[test]
fn validator_set_changes_take_effect_at_a_later_height() {
    let mut w = World::with_agencies(1);
    let before = current_validators(&w.st);
    assert_eq!(before, vec![(w.agencies[0].public(), 10)]);
    let v2 = kp(40).public();
    // Too soon (the delay is 2 blocks).
    let a = w.agencies[0].clone();
    let change = |h| ProposalAction::UpdateValidators {
        changes: vec![Validator { key: v2, power: 5, name: "v2".into() }],
        effective_height: h,
    };
    w.fail(
        &a,
        Operation::Propose { action: change(w.height + 1) },
        Code::Failed,
        "effective height",
    );
    let at = w.height + 3;
    propose(&mut w, 0, change(at));
    assert_eq!(validator_updates(&w.st, at).unwrap().len(), 2);
    assert!(validator_updates(&w.st, at - 1).is_none());
    // Unchanged until that height.
    while w.height + 1 < at {
        w.next_block();
        assert_eq!(current_validators(&w.st), before);
    }
    w.next_block();
    assert_eq!(w.height, at);
    let mut expected = vec![(w.agencies[0].public(), 10), (v2, 5)];
    expected.sort();
    assert_eq!(current_validators(&w.st), expected);
    assert_eq!(
        validator_updates(&w.st, at).unwrap(),
        expected,
        "the node may ask after begin_block too"
    );
    // Change power, then remove; removing an unknown validator or emptying the set is refused.
    let later = at + 5;
    let v0 = w.agencies[0].public();
    propose(
        &mut w,
        0,
        ProposalAction::UpdateValidators {
            changes: vec![
                Validator { key: v2, power: 0, name: String::new() },
                Validator { key: v0, power: 20, name: "v0".into() },
            ],
            effective_height: later,
        },
    );
    w.fail(
        &a,
        Operation::Propose {
            action: ProposalAction::UpdateValidators {
                changes: vec![Validator { key: kp(41).public(), power: 0, name: String::new() }],
                effective_height: later + 5,
            },
        },
        Code::Failed,
        "not in the set",
    );
    w.fail(
        &a,
        Operation::Propose {
            action: ProposalAction::UpdateValidators {
                changes: vec![Validator {
                    key: w.agencies[0].public(),
                    power: 0,
                    name: String::new(),
                }],
                effective_height: later + 5,
            },
        },
        Code::Failed,
        "1..=",
    );
    // Scheduled changes compose in height order only.
    w.fail(&a, Operation::Propose { action: change(later - 1) }, Code::Failed, "already scheduled");
    w.height = later - 1;
    w.next_block();
    assert_eq!(current_validators(&w.st), vec![(w.agencies[0].public(), 20)]);
}

/// Governance cannot raise the block limits past what a node can store and send in one frame
/// (`MAX_ENCODED_BLOCK_BYTES`): a decided block that large would stop every node.
#[test]
fn block_limits_beyond_the_encoded_block_ceiling_are_refused() {
    let mut w = World::with_agencies(1);
    let a = w.agencies[0].clone();
    let too_big = [
        Params { max_block_bytes: 1 << 30, ..Params::default() },
        Params { max_block_bytes: 16 << 20, ..Params::default() },
        // The framing of a million 1-byte transactions counts too.
        Params { max_block_bytes: 8 << 20, max_block_txs: 1_000_000, ..Params::default() },
    ];
    for params in too_big {
        assert!(params.validate().unwrap_err().contains("MAX_ENCODED_BLOCK_BYTES"), "{params:?}");
        let bytes = w.sign(&a, Operation::Propose { action: ProposalAction::SetParams { params } });
        let err = check_stateless(&bytes, CHAIN).unwrap_err().to_string();
        assert!(err.contains("max_block_bytes"), "{err}");
    }
    // At the ceiling is fine.
    let fits = Params {
        max_block_bytes: MAX_ENCODED_BLOCK_BYTES - 64 * 1024 - 8 * 10_000,
        ..Params::default()
    };
    assert_eq!(fits.max_encoded_block_bytes(), MAX_ENCODED_BLOCK_BYTES);
    let id = propose(&mut w, 0, ProposalAction::SetParams { params: fits.clone() });
    assert_eq!(proposal(&w, id).status, ProposalStatus::Executed);
    assert_eq!(params(&w.st), fits);
}
