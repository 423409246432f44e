//! Governance: proposals approved by more than 2/3 of the active agencies change policies,
//! validators, parameters, admit agencies, and suspend, reinstate or list them.

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
    // (Suspending an agency is itself a proposal: 2 of 2 active agencies.)
    let target = w.agencies[1].public();
    let suspend =
        propose(&mut w, 0, ProposalAction::SuspendAgency { key: target, reason: "r".into() });
    approve(&mut w, 1, suspend);
    assert!(w.participant(&w.agencies[1].public()).suspended);
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

// ---- agency standing is a governance act; quorums count active agencies ----------------------

fn status(w: &World, id: ProposalId) -> ProposalStatus {
    proposal(w, id).status
}

fn suspend_agency(w: &World, i: usize) -> ProposalAction {
    ProposalAction::SuspendAgency { key: w.agencies[i].public(), reason: "audit findings".into() }
}

fn active(w: &World) -> usize {
    active_agencies(&w.st).unwrap().len()
}

fn small_change(n: u32) -> ProposalAction {
    ProposalAction::SetParams { params: Params { max_block_txs: n, ..Params::default() } }
}

/// The lock-out attack: one operator (or one agency, or a regulator) tries to bar every agency.
/// Each attempt is refused and changes nothing; governance then works as before.
#[test]
fn one_participant_cannot_lock_the_agencies_out() {
    let mut w = World::with_agencies(4);
    let op = w.operator.clone();
    let reg = w.regulator.clone();
    let a0 = w.agencies[0].clone();
    for i in 0..4 {
        let target = w.agencies[i].public();
        for who in [&op, &a0] {
            w.fail(
                who,
                Operation::Suspend { participant: target, reason: "take over".into() },
                Code::Failed,
                "only by a governance proposal",
            );
            w.fail(
                who,
                Operation::Reinstate { participant: target },
                Code::Failed,
                "only by a governance proposal",
            );
        }
        w.fail(
            &reg,
            Operation::SetListStatus { participant: target, status: ListStatus::NegativeListed },
            Code::Failed,
            "only by a governance proposal",
        );
        assert!(is_active_agency(&w.participant(&target)));
    }
    assert_eq!(active(&w), 4);
    // Non-agencies are still suspended and listed by the plain operations.
    let x = kp(5);
    w.admit(&x, &[Role::Provider]);
    w.ok(&op, Operation::Suspend { participant: x.public(), reason: "r".into() });
    w.ok(&op, Operation::Reinstate { participant: x.public() });
    w.ok(
        &reg,
        Operation::SetListStatus { participant: x.public(), status: ListStatus::Whitelisted },
    );
    // Governance still works: 3 of 4 agencies change a parameter.
    let id = propose(&mut w, 0, small_change(11));
    approve(&mut w, 1, id);
    approve(&mut w, 2, id);
    assert_eq!(status(&w, id), ProposalStatus::Executed);
    assert_eq!(params(&w.st).max_block_txs, 11);
    // A lone agency cannot pass a suspension of the others either.
    let id = {
        let a = suspend_agency(&w, 0);
        propose(&mut w, 3, a)
    };
    assert_eq!(status(&w, id), ProposalStatus::Open);
    assert_eq!(active(&w), 4);
}

#[test]
fn governance_suspends_and_reinstates_an_agency() {
    let mut w = World::with_agencies(4);
    let target = w.agencies[3].public();
    let id = {
        let a = suspend_agency(&w, 3);
        propose(&mut w, 0, a)
    };
    approve(&mut w, 1, id);
    assert_eq!(status(&w, id), ProposalStatus::Open, "2 of 4 is not > 2/3");
    let r = approve(&mut w, 2, id);
    assert_eq!(status(&w, id), ProposalStatus::Executed);
    let e = r.events_of("participant.suspended").next().unwrap();
    assert_eq!(e.get("participant"), Some(target.to_string().as_str()));
    assert_eq!(e.get("by"), Some("governance"));
    let p = w.participant(&target);
    assert!(p.suspended && p.suspension_reason == "audit findings");
    assert_eq!((agency_count(&w.st), active(&w)), (4, 3));
    // The suspended agency can neither propose nor approve.
    let a3 = w.agencies[3].clone();
    w.fail(&a3, Operation::Propose { action: small_change(3) }, Code::Failed, "suspended");
    let pending = propose(&mut w, 0, small_change(4));
    w.fail(&a3, Operation::Approve { proposal: pending }, Code::Failed, "suspended");
    // Suspending it again is refused (when proposed).
    let a0 = w.agencies[0].clone();
    w.fail(&a0, Operation::Propose { action: suspend_agency(&w, 3) }, Code::Failed, "already");
    // Reinstated by the three active agencies (3 of 3).
    let back = ProposalAction::ReinstateAgency { key: target };
    let id = propose(&mut w, 0, back.clone());
    approve(&mut w, 1, id);
    assert_eq!(status(&w, id), ProposalStatus::Open, "2 of 3 is not > 2/3");
    let r = approve(&mut w, 2, id);
    assert_eq!(r.events_of("participant.reinstated").count(), 1);
    assert!(!w.participant(&target).suspended);
    assert_eq!(active(&w), 4);
    w.fail(&a0, Operation::Propose { action: back }, Code::Failed, "not suspended");
    // It governs again.
    approve(&mut w, 3, pending);
}

#[test]
fn agencies_are_negative_listed_only_by_governance() {
    let mut w = World::with_agencies(3);
    let target = w.agencies[2].public();
    let listing = |status| ProposalAction::SetAgencyListStatus { key: target, status };
    let id = propose(&mut w, 0, listing(ListStatus::NegativeListed));
    approve(&mut w, 1, id);
    assert_eq!(status(&w, id), ProposalStatus::Open, "2 of 3 is not > 2/3");
    approve(&mut w, 2, id); // the target's own approval counts while it is active
    assert_eq!(w.participant(&target).list_status, ListStatus::NegativeListed);
    assert_eq!(active(&w), 2);
    let a2 = w.agencies[2].clone();
    w.fail(&a2, Operation::Propose { action: small_change(5) }, Code::Failed, "negative-listed");
    // Whitelisting it again: 2 of 2 active.
    let id = propose(&mut w, 0, listing(ListStatus::Whitelisted));
    approve(&mut w, 1, id);
    assert_eq!(w.participant(&target).list_status, ListStatus::Whitelisted);
    assert_eq!(active(&w), 3);
    // Only agencies are governed this way.
    let a0 = w.agencies[0].clone();
    let op = w.operator.public();
    w.fail(
        &a0,
        Operation::Propose {
            action: ProposalAction::SuspendAgency { key: op, reason: "r".into() },
        },
        Code::Failed,
        "is not an agency",
    );
    w.fail(
        &a0,
        Operation::Propose { action: ProposalAction::ReinstateAgency { key: kp(77).public() } },
        Code::Failed,
        "not found",
    );
}

/// After suspensions the quorum is more than 2/3 of the *active* agencies, and only active
/// agencies' approvals count — also for proposals that were pending when the set changed.
#[test]
fn quorum_after_suspensions_counts_active_agencies_only() {
    let mut w = World::with_agencies(4);
    // A pending proposal approved by the agency about to be suspended and one other.
    let pending = propose(&mut w, 3, small_change(21));
    approve(&mut w, 2, pending);
    let id = {
        let a = suspend_agency(&w, 3);
        propose(&mut w, 0, a)
    };
    approve(&mut w, 1, id);
    approve(&mut w, 2, id);
    assert_eq!(active(&w), 3);
    // The suspended agency's approval no longer counts: 2 of 3 (a2, a0) is not > 2/3, although
    // three approvals are on record.
    let r = approve(&mut w, 0, pending);
    assert_eq!(r.events_of("governance.executed").count(), 0);
    assert_eq!((status(&w, pending), proposal(&w, pending).approvals), (ProposalStatus::Open, 3));
    let r = approve(&mut w, 1, pending);
    let e = r.events_of("governance.executed").next().unwrap();
    assert_eq!((e.get("approvals"), e.get("agencies")), (Some("3"), Some("3")));
    assert_eq!(params(&w.st).max_block_txs, 21);
    // A fresh proposal among 3 active agencies needs all 3.
    let id = propose(&mut w, 0, small_change(22));
    approve(&mut w, 1, id);
    assert_eq!(status(&w, id), ProposalStatus::Open);
    approve(&mut w, 2, id);
    assert_eq!(status(&w, id), ProposalStatus::Executed);
}

/// A proposal that a shrinking active set brings to quorum is executed by a repeated approval;
/// before that, a repeated approval is refused.
#[test]
fn a_pending_proposal_brought_to_quorum_by_a_suspension_executes_on_reapproval() {
    let mut w = World::with_agencies(5);
    let pending = propose(&mut w, 0, small_change(31));
    approve(&mut w, 1, pending);
    approve(&mut w, 2, pending);
    assert_eq!(status(&w, pending), ProposalStatus::Open, "3 of 5 is not > 2/3");
    let a0 = w.agencies[0].clone();
    w.fail(&a0, Operation::Approve { proposal: pending }, Code::Failed, "already approved");
    let id = {
        let a = suspend_agency(&w, 4);
        propose(&mut w, 0, a)
    };
    for i in 1..4 {
        approve(&mut w, i, id);
    }
    assert_eq!(active(&w), 4);
    // 3 of 4 active approved: quorum, executed by a repeated approval.
    let r = approve(&mut w, 0, pending);
    assert_eq!(r.events_of("governance.executed").count(), 1);
    assert_eq!(params(&w.st).max_block_txs, 31);
    w.fail(&a0, Operation::Approve { proposal: pending }, Code::Failed, "is executed");
}

/// The last active agency cannot be suspended or negative-listed, neither when proposed nor
/// when a proposal that was fine then would execute later.
#[test]
fn the_last_active_agency_cannot_be_barred() {
    let mut w = World::with_agencies(1);
    let a0 = w.agencies[0].clone();
    for action in [
        suspend_agency(&w, 0),
        ProposalAction::SetAgencyListStatus {
            key: a0.public(),
            status: ListStatus::NegativeListed,
        },
    ] {
        w.fail(&a0, Operation::Propose { action }, Code::Failed, "last active agency");
    }
    let id = propose(
        &mut w,
        0,
        ProposalAction::SetAgencyListStatus { key: a0.public(), status: ListStatus::Whitelisted },
    );
    assert_eq!(status(&w, id), ProposalStatus::Executed, "whitelisting bars nobody");

    // Two agencies, each proposing to suspend the other: the first passes, the second would
    // leave nobody and is refused when it would execute.
    let mut w = World::with_agencies(2);
    let (a0, a1) = (w.agencies[0].clone(), w.agencies[1].clone());
    let p1 = {
        let a = suspend_agency(&w, 1);
        propose(&mut w, 0, a)
    };
    let p2 = {
        let a = suspend_agency(&w, 0);
        propose(&mut w, 1, a)
    };
    approve(&mut w, 0, p2);
    assert!(w.participant(&a0.public()).suspended);
    assert_eq!(active(&w), 1);
    w.fail(&a1, Operation::Approve { proposal: p1 }, Code::Failed, "last active agency");
    assert!(!w.participant(&a1.public()).suspended);
    assert_eq!(status(&w, p1), ProposalStatus::Open);
    // The remaining agency governs alone and brings the other back.
    let back = propose(&mut w, 1, ProposalAction::ReinstateAgency { key: a0.public() });
    assert_eq!(status(&w, back), ProposalStatus::Executed);
    assert_eq!(active(&w), 2);
}

#[test]
fn agency_standing_actions_are_validated() {
    let w = World::with_agencies(1);
    let a = w.agencies[0].clone();
    for reason in [String::new(), "x".repeat(10_000)] {
        let bytes = w.sign(
            &a,
            Operation::Propose {
                action: ProposalAction::SuspendAgency { key: a.public(), reason },
            },
        );
        let err = check_stateless(&bytes, CHAIN).unwrap_err().to_string();
        assert!(err.contains("reason"), "{err}");
    }
}
