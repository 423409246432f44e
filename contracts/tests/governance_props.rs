//! Invariant: governance can never lock itself out. Whatever sequence of transactions anyone
//! sends — plain suspensions and listings of agencies by any participant, standing proposals and
//! (repeated) approvals by any agency — at least one agency stays active, and the active
//! agencies can always still pass a proposal.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::*;
use dpx_contracts::*;
use proptest::prelude::*;

const AGENCIES: usize = 5;

/// One step: (kind, actor, target, agencies that approve a new proposal at once, as bits).
fn step(
    w: &mut World,
    proposals: &mut Vec<ProposalId>,
    (kind, actor, target, approvers): (u8, usize, usize, u8),
) {
    // Proposals come from, and barring ones aim at, active agencies: the edge (one active
    // agency left) is reached often.
    let active = active_agencies(&w.st).unwrap();
    let agency = w.agencies.iter().find(|a| a.public() == active[actor % active.len()]).unwrap();
    let agency = agency.clone();
    let target_key = match kind % 8 {
        0 | 2 => active[target % active.len()],
        _ => w.agencies[target % AGENCIES].public(),
    };
    let outsiders = [w.operator.clone(), w.regulator.clone(), agency.clone()];
    let outsider = outsiders[actor % outsiders.len()].clone();
    let action = match kind % 8 {
        0 => ProposalAction::SuspendAgency { key: target_key, reason: "r".into() },
        1 => ProposalAction::ReinstateAgency { key: target_key },
        2 => ProposalAction::SetAgencyListStatus {
            key: target_key,
            status: ListStatus::NegativeListed,
        },
        3 => ProposalAction::SetAgencyListStatus { key: target_key, status: ListStatus::Normal },
        4 | 5 => {
            if let Some(id) = proposals.get(target % proposals.len().max(1)).copied() {
                w.run(&agency, Operation::Approve { proposal: id });
            }
            return;
        }
        6 => {
            w.run(&outsider, Operation::Suspend { participant: target_key, reason: "r".into() });
            return;
        }
        _ => {
            w.run(
                &outsider,
                Operation::SetListStatus {
                    participant: target_key,
                    status: ListStatus::NegativeListed,
                },
            );
            return;
        }
    };
    let id = ProposalId::derive(CHAIN, &agency.public(), w.nonce(&agency.public()));
    if w.run(&agency, Operation::Propose { action }).is_ok() {
        proposals.push(id);
        for i in (0..AGENCIES).filter(|i| approvers & (1 << i) != 0) {
            let a = w.agencies[i].clone();
            w.run(&a, Operation::Approve { proposal: id });
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn governance_never_locks_itself_out(
        steps in proptest::collection::vec(
            (any::<u8>(), 0..AGENCIES, 0..AGENCIES, any::<u8>()),
            1..40,
        )
    ) {
        let mut w = World::with_agencies(AGENCIES as u8);
        let mut proposals = Vec::new();
        for s in steps {
            step(&mut w, &mut proposals, s);
            let active = active_agencies(&w.st).unwrap();
            prop_assert!(!active.is_empty(), "no active agency left");
            // Only governance changes an agency's standing: every barred agency got there by
            // an executed proposal, never by a plain operation.
            prop_assert_eq!(w.events("participant.suspended").filter(|e| {
                e.get("by") != Some("governance")
                    && w.agencies.iter().any(|a| Some(a.public().to_string().as_str()) == e.get("participant"))
            }).count(), 0);
        }
        // The active agencies pass a proposal on their own.
        let active = active_agencies(&w.st).unwrap();
        let idx: Vec<usize> = active
            .iter()
            .map(|k| w.agencies.iter().position(|a| a.public() == *k).unwrap())
            .collect();
        let first = w.agencies[idx[0]].clone();
        let id = ProposalId::derive(CHAIN, &first.public(), w.nonce(&first.public()));
        let change = ProposalAction::SetParams {
            params: Params { max_block_txs: 4242, ..Params::default() },
        };
        w.ok(&first, Operation::Propose { action: change });
        for i in &idx[1..] {
            let a = w.agencies[*i].clone();
            if params(&w.st).max_block_txs == 4242 {
                break;
            }
            w.ok(&a, Operation::Approve { proposal: id });
        }
        prop_assert_eq!(params(&w.st).max_block_txs, 4242);
    }
}
