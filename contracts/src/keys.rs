//! The state key of every object. Each kind has a `PREFIX_*` so the RPC can list a kind by
//! prefix and an auditor can prove a single object by its key.
//!
//! Layout: `<prefix><fixed-width binary id>`; numbers are big-endian so keys sort numerically.

use dpx_crypto::{Hash, PublicKey};

use crate::trades::AttestTarget;
use crate::types::{DemandId, GrantId, JobId, OrderId, ProductId, ProposalId, SubjectId};

pub const PREFIX_PARTICIPANT: &[u8] = b"participant/";
/// Maps a rotated-in signing key to its participant's account key.
pub const PREFIX_KEY_BINDING: &[u8] = b"keybind/";
pub const PREFIX_NONCE: &[u8] = b"nonce/";
pub const PREFIX_PRODUCT: &[u8] = b"product/";
pub const PREFIX_DEMAND: &[u8] = b"demand/";
pub const PREFIX_RESPONSE: &[u8] = b"response/";
pub const PREFIX_ORDER: &[u8] = b"order/";
pub const PREFIX_GRANT: &[u8] = b"grant/";
pub const PREFIX_USAGE: &[u8] = b"usage/";
/// An enrolled data subject, by subject id.
pub const PREFIX_SUBJECT: &[u8] = b"subject/";
/// Every key a data subject ever held (current and rotated out), to its subject id: a subject
/// key is never reused, by another subject or by a participant.
pub const PREFIX_SUBJECT_KEY: &[u8] = b"subjectkey/";
pub const PREFIX_ATTESTATION: &[u8] = b"attest/";
pub const PREFIX_ATTESTATION_COUNT: &[u8] = b"attestcount/";
/// A target's due destruction (`lifecycle::DestructionDue`), by target.
pub const PREFIX_DESTRUCTION: &[u8] = b"destroyat/";
/// The due-queue: `<u64be due_ms><tag><32-byte id>`, empty values, ordered by due time then
/// target; an entry leaves when its overdue event is emitted or destruction is attested.
pub const PREFIX_DESTRUCTION_QUEUE: &[u8] = b"destroydue/";
/// Overdue destructions as reported: `<u64be height><tag><32-byte id>` → the `DestructionDue`
/// record as the block start at that height marked it. Never removed: the audit trail of every
/// overdue report, and where a block's start events are read from, live or replayed.
pub const PREFIX_OVERDUE: &[u8] = b"overdue/";
/// A compute job, by job id.
pub const PREFIX_JOB: &[u8] = b"job/";
/// An order's live job (the job id, 32 bytes): an order authorises one job at a time, and
/// once that job is attested, never another.
pub const PREFIX_ORDER_JOB: &[u8] = b"orderjob/";
pub const PREFIX_PROPOSAL: &[u8] = b"proposal/";
pub const PREFIX_APPROVAL: &[u8] = b"approval/";
pub const PREFIX_POLICY_VERSION: &[u8] = b"policyv/";
pub const PREFIX_VALIDATOR_UPDATE: &[u8] = b"valupdate/";
pub const PREFIX_META: &[u8] = b"meta/";
/// A participant's money account, by account key (so a balance follows a key rotation).
pub const PREFIX_ACCOUNT: &[u8] = b"account/";
/// A settlement bank's record of one deposit or withdrawal, by bank and reference.
pub const PREFIX_BANK_RECORD: &[u8] = b"bankref/";
/// Ledger-wide money totals: the treasury and the supply.
pub const PREFIX_MONEY: &[u8] = b"money/";

/// The policy set in force.
pub const POLICY_CURRENT: &[u8] = b"meta/policy";
/// Chain parameters.
pub const PARAMS: &[u8] = b"meta/params";
/// The validator set in force.
pub const VALIDATORS: &[u8] = b"meta/validators";
/// The validator set after every scheduled update, with the height it takes effect.
pub const VALIDATORS_LATEST: &[u8] = b"meta/validators-latest";
/// Number of agencies, the denominator of the governance quorum.
pub const AGENCY_COUNT: &[u8] = b"meta/agency-count";
/// Every agency's account key (suspended ones too), sorted: 32 bytes each, concatenated.
pub const AGENCIES: &[u8] = b"meta/agencies";
/// The currency every amount is in; absent means the default (CNY in fen).
pub const CURRENCY: &[u8] = b"meta/currency";
/// The platform fee in basis points (u32 big-endian), set by governance; absent means 0.
pub const PLATFORM_FEE: &[u8] = b"meta/platform-fee";
/// The platform treasury, where fees go; spent only by governance.
pub const TREASURY: &[u8] = b"money/treasury";
/// Everything deposited and withdrawn so far: what the ledger holds must equal the difference.
pub const SUPPLY: &[u8] = b"money/supply";
/// Chain id, written at genesis; its presence marks an initialised state.
pub const CHAIN_ID: &[u8] = b"meta/chain-id";

fn cat(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let len = prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.extend_from_slice(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// A participant, by account key (the key it was admitted with).
pub fn participant(account: &PublicKey) -> Vec<u8> {
    cat(PREFIX_PARTICIPANT, &[account.as_bytes()])
}

/// The account a rotated-in signing key acts for.
pub fn key_binding(signing_key: &PublicKey) -> Vec<u8> {
    cat(PREFIX_KEY_BINDING, &[signing_key.as_bytes()])
}

/// The next nonce of a signing key.
pub fn nonce(signer: &PublicKey) -> Vec<u8> {
    cat(PREFIX_NONCE, &[signer.as_bytes()])
}

pub fn product(id: &ProductId) -> Vec<u8> {
    cat(PREFIX_PRODUCT, &[id.0.as_bytes()])
}

pub fn demand(id: &DemandId) -> Vec<u8> {
    cat(PREFIX_DEMAND, &[id.0.as_bytes()])
}

/// One responder's answer to a demand; all answers to a demand share the prefix
/// `PREFIX_RESPONSE ‖ demand`.
pub fn response(demand: &DemandId, responder: &PublicKey) -> Vec<u8> {
    cat(PREFIX_RESPONSE, &[demand.0.as_bytes(), responder.as_bytes()])
}

pub fn order(id: &OrderId) -> Vec<u8> {
    cat(PREFIX_ORDER, &[id.0.as_bytes()])
}

pub fn grant(id: &GrantId) -> Vec<u8> {
    cat(PREFIX_GRANT, &[id.0.as_bytes()])
}

/// An enrolled data subject.
pub fn subject(id: &SubjectId) -> Vec<u8> {
    cat(PREFIX_SUBJECT, &[id.0.as_bytes()])
}

/// The subject a key belongs (or belonged) to.
pub fn subject_key(key: &PublicKey) -> Vec<u8> {
    cat(PREFIX_SUBJECT_KEY, &[key.as_bytes()])
}

/// The usage receipt of a consumed grant (a grant is used at most once, so one per grant).
pub fn usage(grant: &GrantId) -> Vec<u8> {
    cat(PREFIX_USAGE, &[grant.0.as_bytes()])
}

/// Tag byte of an attestation target in keys.
pub const TARGET_ORDER: u8 = b'o';
pub const TARGET_GRANT: u8 = b'g';

/// The `seq`-th life-cycle attestation of an order or grant use.
pub fn attestation(target_tag: u8, target: &[u8; 32], seq: u32) -> Vec<u8> {
    cat(PREFIX_ATTESTATION, &[&[target_tag], target, &seq.to_be_bytes()])
}

/// Number of attestations recorded for a target.
pub fn attestation_count(target_tag: u8, target: &[u8; 32]) -> Vec<u8> {
    cat(PREFIX_ATTESTATION_COUNT, &[&[target_tag], target])
}

/// The due destruction of an attestation target.
pub fn destruction(target_tag: u8, target: &[u8; 32]) -> Vec<u8> {
    cat(PREFIX_DESTRUCTION, &[&[target_tag], target])
}

/// A target's entry in the due-queue.
pub fn destruction_queue(due_ms: u64, target_tag: u8, target: &[u8; 32]) -> Vec<u8> {
    cat(PREFIX_DESTRUCTION_QUEUE, &[&due_ms.to_be_bytes(), &[target_tag], target])
}

/// The report of `target`'s destruction overdue at the start of block `height`.
pub fn overdue(height: u64, target_tag: u8, target: &[u8; 32]) -> Vec<u8> {
    cat(PREFIX_OVERDUE, &[&height.to_be_bytes(), &[target_tag], target])
}

/// The first possible key of the overdue reports of block `height` (those of earlier blocks
/// sort before it).
pub fn overdue_from(height: u64) -> Vec<u8> {
    cat(PREFIX_OVERDUE, &[&height.to_be_bytes()])
}

/// A key after every overdue report.
pub fn overdue_end() -> Vec<u8> {
    cat(PREFIX_OVERDUE, &[&[0xff; 9]])
}

/// The first possible queue key of entries due at `due_ms` (every entry due earlier sorts
/// before it).
pub fn destruction_queue_from(due_ms: u64) -> Vec<u8> {
    cat(PREFIX_DESTRUCTION_QUEUE, &[&due_ms.to_be_bytes()])
}

/// A key after every queue entry.
pub fn destruction_queue_end() -> Vec<u8> {
    cat(PREFIX_DESTRUCTION_QUEUE, &[&[0xff; 9]])
}

/// The due time and target of a queue key.
pub fn parse_destruction_queue(key: &[u8]) -> Option<(u64, AttestTarget)> {
    let rest = key.strip_prefix(PREFIX_DESTRUCTION_QUEUE)?;
    let (due, rest) = rest.split_at_checked(8)?;
    let due = u64::from_be_bytes(due.try_into().ok()?);
    Some((due, parse_target(rest)?))
}

/// `<tag><32-byte id>` as an attestation target.
pub fn parse_target(rest: &[u8]) -> Option<AttestTarget> {
    let (&tag, id) = rest.split_first()?;
    let id = Hash::from_slice(id).ok()?;
    match tag {
        TARGET_ORDER => Some(AttestTarget::Order(OrderId(id))),
        TARGET_GRANT => Some(AttestTarget::Grant(GrantId(id))),
        _ => None,
    }
}

/// A compute job.
pub fn job(id: &JobId) -> Vec<u8> {
    cat(PREFIX_JOB, &[id.0.as_bytes()])
}

/// The job an order authorises (see [`PREFIX_ORDER_JOB`]).
pub fn order_job(order: &OrderId) -> Vec<u8> {
    cat(PREFIX_ORDER_JOB, &[order.0.as_bytes()])
}

pub fn proposal(id: &ProposalId) -> Vec<u8> {
    cat(PREFIX_PROPOSAL, &[id.0.as_bytes()])
}

/// Marker that `agency` approved `proposal`.
pub fn approval(proposal: &ProposalId, agency: &PublicKey) -> Vec<u8> {
    cat(PREFIX_APPROVAL, &[proposal.0.as_bytes(), agency.as_bytes()])
}

/// A past or present policy set, by version.
pub fn policy_version(version: u64) -> Vec<u8> {
    cat(PREFIX_POLICY_VERSION, &[&version.to_be_bytes()])
}

/// The full validator set that takes effect at `height`.
pub fn validator_update(height: u64) -> Vec<u8> {
    cat(PREFIX_VALIDATOR_UPDATE, &[&height.to_be_bytes()])
}

/// A participant's money account.
pub fn account(owner: &PublicKey) -> Vec<u8> {
    cat(PREFIX_ACCOUNT, &[owner.as_bytes()])
}

/// A bank's record of the transfer with this reference (fixed width: the reference's blake3),
/// which also marks the reference as used by that bank.
pub fn bank_record(bank: &PublicKey, reference: &str) -> Vec<u8> {
    cat(PREFIX_BANK_RECORD, &[bank.as_bytes(), Hash::digest(reference.as_bytes()).as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::Keypair;

    #[test]
    fn keys_start_with_their_prefix_and_differ() {
        let pk = Keypair::from_seed([1; 32]).public();
        let id = Hash::digest(b"x");
        let all = [
            (participant(&pk), PREFIX_PARTICIPANT),
            (key_binding(&pk), PREFIX_KEY_BINDING),
            (nonce(&pk), PREFIX_NONCE),
            (product(&ProductId(id)), PREFIX_PRODUCT),
            (demand(&DemandId(id)), PREFIX_DEMAND),
            (response(&DemandId(id), &pk), PREFIX_RESPONSE),
            (order(&OrderId(id)), PREFIX_ORDER),
            (grant(&GrantId(id)), PREFIX_GRANT),
            (usage(&GrantId(id)), PREFIX_USAGE),
            (subject(&SubjectId(id)), PREFIX_SUBJECT),
            (subject_key(&pk), PREFIX_SUBJECT_KEY),
            (attestation(TARGET_ORDER, &id.0, 0), PREFIX_ATTESTATION),
            (attestation_count(TARGET_ORDER, &id.0), PREFIX_ATTESTATION_COUNT),
            (destruction(TARGET_ORDER, &id.0), PREFIX_DESTRUCTION),
            (destruction_queue(7, TARGET_GRANT, &id.0), PREFIX_DESTRUCTION_QUEUE),
            (overdue(7, TARGET_GRANT, &id.0), PREFIX_OVERDUE),
            (job(&JobId(id)), PREFIX_JOB),
            (order_job(&OrderId(id)), PREFIX_ORDER_JOB),
            (proposal(&ProposalId(id)), PREFIX_PROPOSAL),
            (approval(&ProposalId(id), &pk), PREFIX_APPROVAL),
            (policy_version(3), PREFIX_POLICY_VERSION),
            (validator_update(9), PREFIX_VALIDATOR_UPDATE),
            (account(&pk), PREFIX_ACCOUNT),
            (bank_record(&pk, "ref-1"), PREFIX_BANK_RECORD),
            (TREASURY.to_vec(), PREFIX_MONEY),
            (SUPPLY.to_vec(), PREFIX_MONEY),
            (CURRENCY.to_vec(), PREFIX_META),
            (PLATFORM_FEE.to_vec(), PREFIX_META),
        ];
        for (k, p) in &all {
            assert!(k.starts_with(p));
        }
        // No prefix is a prefix of another kind's prefix, so listing one kind never shows another.
        for (i, (_, a)) in all.iter().enumerate() {
            for (j, (_, b)) in all.iter().enumerate() {
                if i != j && a != b {
                    assert!(
                        !a.starts_with(b),
                        "{:?} vs {:?}",
                        String::from_utf8_lossy(a),
                        String::from_utf8_lossy(b)
                    );
                }
            }
        }
        assert!(validator_update(2) < validator_update(10));
        // The due-queue sorts by due time, then target, and its bounds enclose it.
        let (a, b) =
            (destruction_queue(2, TARGET_ORDER, &id.0), destruction_queue(10, TARGET_GRANT, &id.0));
        assert!(a < b && destruction_queue_from(3) > a && destruction_queue_from(3) < b);
        assert!(destruction_queue(u64::MAX, TARGET_ORDER, &[0xff; 32]) < destruction_queue_end());
        let parsed = parse_destruction_queue(&b).unwrap();
        assert_eq!(parsed, (10, AttestTarget::Grant(GrantId(id))));
    }
}
