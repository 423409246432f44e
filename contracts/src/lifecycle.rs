//! The data's whole life cycle after delivery: the holder's attestations of each stage, in
//! order; the destruction a product's retention period makes due; the overdue destructions
//! found at the start of each block; and a regulator's review of an attestation.
//!
//! **Stages in order.** The life cycle is collection, transmission, storage, processing,
//! exchange, destruction (采集、传输、存储、加工、交换、销毁, [`Stage::LIFE_CYCLE`]). What may
//! follow the target's last attestation:
//!
//! ```text
//! (none)        → collected
//! collected     → transmitted
//! transmitted   → stored
//! stored        → processed | shared_onward | destroyed
//! processed     → processed | shared_onward | destroyed
//! shared_onward → shared_onward | destroyed
//! destroyed     → nothing; a destruction a regulator rejected → destroyed (again)
//! ```
//!
//! Collection, transmission, storage and destruction are mandatory and happen once;
//! processing and exchange are optional and may repeat (each use is its own attestation, up
//! to [`MAX_ATTESTATIONS`] per target). Anything else is refused, changing nothing.
//!
//! **Retention.** A product may carry `retention_days`. When data reaches a consumer — an
//! order is settled or a dispute resolved after delivery, or a grant is consumed by
//! `use_grant` (a grant consumed by an order is covered by the order; one consumed by a
//! compute job gives its consumer no data, so nothing to attest) — the destruction of
//! that target becomes due at the block time plus the retention: a [`DestructionDue`] record
//! under `destroyat/<target>` and an entry in the due-queue `destroydue/‖u64be(due_ms)‖target`,
//! ordered by due time then target. Attesting destruction removes both (on time or late).
//!
//! **Overdue.** [`process_overdue_destructions`] runs at the start of a block with the block's
//! time: it takes the queue's first entries due at or before that time, at most
//! [`MAX_OVERDUE_PER_BLOCK`], emits `lifecycle.destruction_overdue` for each, marks the record
//! (`overdue_height`) and takes the entry off the queue, so each is reported once; the rest
//! wait for the next block. The record stays until destruction is attested; a copy as reported
//! stays for good under `overdue/<height>`, where a block's start events and the audit's count
//! of overdue destructions come from ([`overdue_reports`]).
//!
//! **Review.** A regulator (the Cedar action `review_attestation`) confirms or rejects an
//! attestation, once. A rejected destruction reopens the target: its destruction is queued
//! again, due at once (reported overdue by the next block), and the holder must attest a new
//! destruction. Other rejected stages stay on record as the regulator's finding and do not
//! rewind the order of stages.

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::compute::{Job, JobAuthority};
use crate::error::{ContractError, DecodeError, GrantRefusal};
use crate::exec::{BlockContext, Exec};
use crate::grants::{GrantRecord, UsageReceipt};
use crate::keys;
use crate::policy::{Action, PolicyContext, Resource};
use crate::receipt::Event;
use crate::state::{MemState, State};
use crate::trades::{AttestTarget, Attestation, Order};
use crate::types::{GrantState, JobId, OrderStatus, Stage, Verdict};

/// Most attestations per order or grant use.
pub const MAX_ATTESTATIONS: u32 = 64;
/// Longest retention period a product may state (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3_650;
/// Milliseconds in a retention day.
pub const DAY_MS: u64 = 86_400_000;
/// Most `lifecycle.destruction_overdue` events one block start emits; the rest follow.
pub const MAX_OVERDUE_PER_BLOCK: usize = 32;

/// A regulator's verdict on one attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The regulator's account key.
    pub reviewer: PublicKey,
    pub verdict: Verdict,
    /// Hash of the regulator's reasons.
    pub reason_hash: Hash,
    pub height: u64,
}

/// A destruction that is due (and, once `overdue_height` is set, reported overdue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestructionDue {
    pub target: AttestTarget,
    /// Block time from which the destruction is overdue.
    pub due_ms: u64,
    pub queued_height: u64,
    /// The height whose block start reported it overdue.
    pub overdue_height: Option<u64>,
    /// Queued again because a regulator rejected the destruction attested.
    pub reopened: bool,
    /// Who must destroy: the buyer or the consumer.
    pub holder: PublicKey,
}

impl Wire for Review {
    type Pb = pb::Review;
    const MAX_BYTES: usize = 128;
    fn to_pb(&self) -> pb::Review {
        pb::Review {
            reviewer: self.reviewer.to_bytes().to_vec(),
            verdict: self.verdict.code(),
            reason_hash: self.reason_hash.0.to_vec(),
            height: self.height,
        }
    }
    fn from_pb(p: pb::Review) -> Result<Self, DecodeError> {
        Ok(Self {
            reviewer: codec::key(&p.reviewer, "reviewer")?,
            verdict: Verdict::from_wire(p.verdict, "verdict")?,
            reason_hash: codec::hash(&p.reason_hash, "reason_hash")?,
            height: p.height,
        })
    }
}

impl Wire for DestructionDue {
    type Pb = pb::DestructionDue;
    const MAX_BYTES: usize = 256;
    fn to_pb(&self) -> pb::DestructionDue {
        pb::DestructionDue {
            target: Some(self.target.to_pb()),
            due_ms: self.due_ms,
            queued_height: self.queued_height,
            overdue_height: self.overdue_height,
            reopened: self.reopened,
            holder: self.holder.to_bytes().to_vec(),
        }
    }
    fn from_pb(p: pb::DestructionDue) -> Result<Self, DecodeError> {
        Ok(Self {
            target: AttestTarget::from_pb(codec::req(p.target, "target")?)?,
            due_ms: p.due_ms,
            queued_height: p.queued_height,
            overdue_height: p.overdue_height,
            reopened: p.reopened,
            holder: codec::key(&p.holder, "holder")?,
        })
    }
}

/// `order:<hex>` or `grant:<hex>`, as events name a target.
pub fn target_label(t: &AttestTarget) -> String {
    match t {
        AttestTarget::Order(id) => format!("order:{id}"),
        AttestTarget::Grant(id) => format!("grant:{id}"),
    }
}

/// The stages that may follow `last`, the target's latest attestation (see the module doc).
pub fn allowed_after(last: Option<&Attestation>) -> &'static [Stage] {
    use Stage as S;
    let Some(a) = last else { return &[S::Collected] };
    match a.stage {
        S::Collected => &[S::Transmitted],
        S::Transmitted => &[S::Stored],
        S::Stored | S::Processed => &[S::Processed, S::SharedOnward, S::Destroyed],
        S::SharedOnward => &[S::SharedOnward, S::Destroyed],
        S::Destroyed => match a.review.as_ref().map(|r| r.verdict) {
            Some(Verdict::Rejected) => &[S::Destroyed],
            _ => &[],
        },
    }
}

/// Who holds the data of `target` (and so attests its life cycle).
fn holder<S: State + ?Sized>(
    x: &Exec<'_, S>,
    target: AttestTarget,
) -> Result<PublicKey, ContractError> {
    match target {
        AttestTarget::Order(id) => {
            let o: Order = x.must(&keys::order(&id), "order", id)?;
            let received = [
                OrderStatus::Delivered,
                OrderStatus::Confirmed,
                OrderStatus::Settled,
                OrderStatus::Disputed,
            ];
            // A dispute resolved by a full refund cancels an order whose data was delivered.
            let delivered = o.delivery_hash.is_some();
            if !received.contains(&o.status) && !delivered {
                return Err(ContractError::WrongState {
                    kind: "order",
                    id: id.to_string(),
                    state: o.status.to_string(),
                    action: "attest",
                    expected: "delivered data".into(),
                });
            }
            Ok(o.buyer)
        }
        AttestTarget::Grant(id) => {
            let rec: GrantRecord = x.must(&keys::grant(&id), "grant", id)?;
            if rec.state != GrantState::Consumed {
                return Err(ContractError::grant(id, GrantRefusal::NotIssued { state: rec.state }));
            }
            let usage: UsageReceipt = x.must(&keys::usage(&id), "usage receipt", id)?;
            // A grant a compute job consumed (its usage's request hash is the job id) gave
            // the consumer only a result, never the data: there is no life cycle to attest;
            // the job's compute node attested the destruction in the job itself.
            let job: Option<Job> = x.load(&keys::job(&JobId(usage.request_hash)))?;
            if job.is_some_and(|j| j.authorities.contains(&JobAuthority::Grant(id))) {
                return Err(ContractError::conflict(format!(
                    "grant {id} was consumed by compute job {}: its consumer received only \
                     the result, and the compute node attested the data destroyed",
                    usage.request_hash
                )));
            }
            Ok(usage.consumer)
        }
    }
}

fn attestation_count<S: State + ?Sized>(x: &Exec<'_, S>, target: &AttestTarget) -> u32 {
    let (tag, tid) = target.key_parts();
    x.st.get(&keys::attestation_count(tag, &tid))
        .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
        .map_or(0, u32::from_be_bytes)
}

fn last_attestation<S: State + ?Sized>(
    x: &Exec<'_, S>,
    target: &AttestTarget,
) -> Result<Option<Attestation>, ContractError> {
    let count = attestation_count(x, target);
    if count == 0 {
        return Ok(None);
    }
    let (tag, tid) = target.key_parts();
    x.must(&keys::attestation(tag, &tid, count - 1), "attestation", count - 1).map(Some)
}

/// The `attest` operation: the holder's statement of the next stage, in order.
pub(crate) fn attest<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: AttestTarget,
    stage: Stage,
    hash: Hash,
) -> Result<(), ContractError> {
    x.authorize(Action::Attest, &Resource::Market, &PolicyContext::none())?;
    let me = x.me()?.account;
    let holder = holder(x, target)?;
    if me != holder {
        return Err(ContractError::forbidden(format!(
            "only the holder of the data ({holder}) may attest its life cycle"
        )));
    }
    let count = attestation_count(x, &target);
    if count >= MAX_ATTESTATIONS {
        return Err(ContractError::conflict(format!(
            "at most {MAX_ATTESTATIONS} attestations per use"
        )));
    }
    let last = last_attestation(x, &target)?;
    let allowed = allowed_after(last.as_ref());
    if !allowed.contains(&stage) {
        let after = last.as_ref().map_or_else(|| "unattested".to_string(), |a| a.stage.to_string());
        let expected = if allowed.is_empty() {
            "nothing: the data was attested destroyed".to_string()
        } else {
            allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
        };
        return Err(ContractError::conflict(format!(
            "life cycle out of order: {stage} cannot follow {after} for {}; next may be {expected}",
            target_label(&target)
        )));
    }
    let (tag, tid) = target.key_parts();
    let a = Attestation {
        target,
        stage,
        hash,
        attester: me,
        height: x.height(),
        tx_hash: x.tx_hash,
        seq: count,
        review: None,
    };
    x.store(keys::attestation(tag, &tid, count), &a);
    x.st.put(keys::attestation_count(tag, &tid), (count + 1).to_be_bytes().to_vec());
    let mut e = Event::new("lifecycle.attested")
        .attr("target", target_label(&target))
        .attr("stage", stage)
        .attr("hash", hash)
        .attr("by", me)
        .attr("seq", count);
    if stage == Stage::Destroyed
        && let Some(due) = clear_due(x, &target)?
    {
        let late = due.overdue_height.is_some() || x.time_ms() >= due.due_ms;
        e = e.attr("due_ms", due.due_ms).attr("overdue", late);
    }
    x.emit(e);
    Ok(())
}

/// Remove `target`'s due record and queue entry, returning the record if there was one.
fn clear_due<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: &AttestTarget,
) -> Result<Option<DestructionDue>, ContractError> {
    let (tag, tid) = target.key_parts();
    let at = keys::destruction(tag, &tid);
    let Some(due) = x.load::<DestructionDue>(&at)? else { return Ok(None) };
    x.st.delete(&at);
    x.st.delete(&keys::destruction_queue(due.due_ms, tag, &tid));
    Ok(Some(due))
}

/// Make the destruction of `target`'s data, held by `holder`, due `retention_days` from now
/// (nothing without a retention period, when the holder already attested destruction, or when
/// it is due already — e.g. reopened by a rejection before settlement: a later settlement
/// never postpones it).
pub(crate) fn make_due<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: AttestTarget,
    holder: PublicKey,
    retention_days: Option<u32>,
) -> Result<(), ContractError> {
    let Some(days) = retention_days else { return Ok(()) };
    let (tag, tid) = target.key_parts();
    if x.st.get(&keys::destruction(tag, &tid)).is_some() {
        return Ok(());
    }
    if let Some(last) = last_attestation(x, &target)?
        && last.stage == Stage::Destroyed
        && last.review.as_ref().is_none_or(|r| r.verdict == Verdict::Confirmed)
    {
        return Ok(());
    }
    let due_ms = x.time_ms().checked_add(u64::from(days) * DAY_MS).ok_or_else(|| {
        ContractError::Overflow {
            what: format!("destruction due time of {}", target_label(&target)),
        }
    })?;
    queue(x, target, holder, due_ms, false)
}

fn queue<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: AttestTarget,
    holder: PublicKey,
    due_ms: u64,
    reopened: bool,
) -> Result<(), ContractError> {
    // A target is queued at most once: a reopening replaces an earlier due time.
    clear_due(x, &target)?;
    let (tag, tid) = target.key_parts();
    let rec = DestructionDue {
        target,
        due_ms,
        queued_height: x.height(),
        overdue_height: None,
        reopened,
        holder,
    };
    x.store(keys::destruction(tag, &tid), &rec);
    x.st.put(keys::destruction_queue(due_ms, tag, &tid), Vec::new());
    x.emit(
        Event::new("lifecycle.destruction_due")
            .attr("target", target_label(&target))
            .attr("holder", holder)
            .attr("due_ms", due_ms)
            .attr("reopened", reopened),
    );
    Ok(())
}

/// The `review_attestation` operation: a regulator's verdict, once per attestation.
pub(crate) fn review<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    target: AttestTarget,
    seq: u32,
    verdict: Verdict,
    reason_hash: Hash,
) -> Result<(), ContractError> {
    x.authorize(Action::ReviewAttestation, &Resource::Market, &PolicyContext::none())?;
    let me = x.me()?.account;
    let (tag, tid) = target.key_parts();
    let key = keys::attestation(tag, &tid, seq);
    let label = target_label(&target);
    let mut a: Attestation = x.must(&key, "attestation", format_args!("{seq} of {label}"))?;
    if let Some(r) = &a.review {
        return Err(ContractError::conflict(format!(
            "attestation {seq} of {label} was already {} by {} at height {}",
            r.verdict, r.reviewer, r.height
        )));
    }
    a.review = Some(Review { reviewer: me, verdict, reason_hash, height: x.height() });
    x.store(key, &a);
    x.emit(
        Event::new("lifecycle.reviewed")
            .attr("target", &label)
            .attr("seq", seq)
            .attr("stage", a.stage)
            .attr("attester", a.attester)
            .attr("verdict", verdict)
            .attr("reason_hash", reason_hash)
            .attr("by", me),
    );
    let superseded = attestation_count(x, &target) > seq + 1;
    if a.stage == Stage::Destroyed && verdict == Verdict::Rejected && !superseded {
        // Not destroyed after all: destruction is due again, now.
        let now = x.time_ms();
        queue(x, target, a.attester, now, true)?;
    }
    Ok(())
}

/// State that lists its keys in order, as the due-queue step needs. Execution otherwise never
/// scans; this is the one bounded, ordered read, taken at the start of a block.
pub trait OrderedState: State {
    /// Up to `limit` keys in `[from, to)`, ascending.
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Vec<Vec<u8>>;
}

impl OrderedState for MemState {
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Vec<Vec<u8>> {
        self.map.range(from.to_vec()..to.to_vec()).take(limit).map(|(k, _)| k.clone()).collect()
    }
}

/// The start-of-block step: report destructions due at or before the block's time, each once,
/// at most [`MAX_OVERDUE_PER_BLOCK`] per block, earliest due first (then by target). The block
/// executor ([`crate::execute_checked_block`]) runs it with the block's context before the
/// block's transactions. Each report is also stored under `overdue/<height>` (the record as it
/// was marked), so the events belong to the block and are found again by
/// [`overdue_reports`] — by a node deriving the block's events, live or replayed, and by audit.
pub fn process_overdue_destructions<S: OrderedState + ?Sized>(
    st: &mut S,
    ctx: &BlockContext,
) -> Vec<Event> {
    let from = keys::PREFIX_DESTRUCTION_QUEUE.to_vec();
    // Every entry due at or before `time_ms` sorts before the queue key of `time_ms + 1`.
    let to = match ctx.time_ms.checked_add(1) {
        Some(t) => keys::destruction_queue_from(t),
        None => keys::destruction_queue_end(),
    };
    let mut events = Vec::new();
    for qkey in st.keys_in(&from, &to, MAX_OVERDUE_PER_BLOCK) {
        st.delete(&qkey);
        let Some((_, target)) = keys::parse_destruction_queue(&qkey) else { continue };
        let (tag, tid) = target.key_parts();
        let at = keys::destruction(tag, &tid);
        let Some(mut rec) = st.get(&at).and_then(|b| codec::decode::<DestructionDue>(&b).ok())
        else {
            continue;
        };
        rec.overdue_height = Some(ctx.height);
        let bytes = codec::encode(&rec);
        st.put(keys::overdue(ctx.height, tag, &tid), bytes.clone());
        st.put(at, bytes);
        events.push(overdue_event(&rec, ctx.height));
    }
    events
}

/// The destructions the start of block `height` reported overdue (at most
/// [`MAX_OVERDUE_PER_BLOCK`]), in the order reported, each with its
/// `lifecycle.destruction_overdue` event — the same events [`process_overdue_destructions`]
/// returned for that block.
pub fn overdue_reports<S: OrderedState + ?Sized>(
    st: &S,
    height: u64,
) -> Vec<(DestructionDue, Event)> {
    let from = keys::overdue_from(height);
    let to = height.checked_add(1).map_or_else(keys::overdue_end, keys::overdue_from);
    st.keys_in(&from, &to, MAX_OVERDUE_PER_BLOCK)
        .into_iter()
        .filter_map(|k| st.get(&k).and_then(|b| codec::decode::<DestructionDue>(&b).ok()))
        .map(|rec| {
            let e = overdue_event(&rec, height);
            (rec, e)
        })
        .collect()
}

fn overdue_event(rec: &DestructionDue, height: u64) -> Event {
    Event::new("lifecycle.destruction_overdue")
        .attr("target", target_label(&rec.target))
        .attr("holder", rec.holder)
        .attr("due_ms", rec.due_ms)
        .attr("height", height)
        .attr("reopened", rec.reopened)
}
