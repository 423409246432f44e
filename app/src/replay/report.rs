//! The audit report of a successful replay, built from certificates, headers and the
//! re-derived receipts (their events and policy decisions) — nothing the source merely claims.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use dpx_consensus::{Certificate, ValidatorSet};
use dpx_contracts::{self as contracts, DestructionDue, Event, Receipt, keys};
use dpx_crypto::{Hash, PublicKey};
use dpx_genesis::Genesis;
use dpx_ledger::{Block, MAX_SCAN_LIMIT, Store};
use serde::{Deserialize, Serialize};

use super::ReplayError;
use crate::views::{KINDS, kind_prefix};

/// One validator's record over the replayed heights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorRecord {
    pub key: PublicKey,
    /// Voting power in the last set it belonged to.
    pub power: u64,
    /// Heights at which it was in the validator set.
    pub heights_in_set: u64,
    /// Certificates carrying its precommit signature.
    pub signed: u64,
    /// Heights in the set without its signature in the certificate.
    pub missed: u64,
    /// Blocks it proposed.
    pub proposed: u64,
}

/// A refused grant operation (e.g. an attempted second use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRefusalRecord {
    pub height: u64,
    pub tx_index: u32,
    pub tx_hash: Hash,
    pub grant: String,
    pub op: String,
    pub by: String,
    pub reason: String,
}

/// A policy decision that denied an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedDecision {
    pub height: u64,
    pub tx_index: u32,
    pub tx_hash: Hash,
    pub action: String,
    pub principal: PublicKey,
    pub resource: String,
    pub policy_version: u64,
    pub determining: Vec<String>,
    pub reason: String,
}

/// Grant life-cycle counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantCounts {
    pub issued: u64,
    pub consumed: u64,
    pub revoked: u64,
    pub expired: u64,
    /// Every refused grant operation.
    pub refused: u64,
    /// Refusals because the grant was already consumed.
    pub second_use_attempts: u64,
}

/// Trade counts and settlement totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeCounts {
    pub orders_placed: u64,
    /// Order status transitions by the status reached.
    pub transitions: BTreeMap<String, u64>,
    pub settled: u64,
    pub settlement_total: u128,
}

/// Money on the ledger, in minor units of the chain's currency: what the receipts' events moved
/// over the replay (from genesis), and what the final state holds. `dpx audit replay` checks
/// that the state holds exactly `deposited - withdrawn` (accounts + escrows + treasury) and
/// that the events account for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyTotals {
    pub deposited: u128,
    pub withdrawn: u128,
    /// Taken into escrow when orders were accepted.
    pub escrowed: u128,
    /// Released from escrow to providers (after the fee).
    pub paid_to_providers: u128,
    /// Platform fees, into the treasury.
    pub fees: u128,
    /// Returned from escrow to buyers (cancellations, rulings).
    pub refunded: u128,
    /// Paid out of the treasury by governance.
    pub treasury_paid_out: u128,
    /// In the final state: participants' balances.
    pub held_in_accounts: u128,
    /// In the final state: escrows of open orders.
    pub held_in_escrow: u128,
    /// In the final state: the treasury.
    pub held_in_treasury: u128,
}

/// The data's life cycle after delivery: destructions made due, reported overdue at block
/// starts, attested.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleCounts {
    /// Destructions made due (`lifecycle.destruction_due`, re-queued ones included).
    pub destructions_due: u64,
    /// Destructions attested (`lifecycle.attested` with stage `destroyed`).
    pub destructions_attested: u64,
    /// Of those, attested after they were due.
    pub destroyed_late: u64,
    /// Reported overdue by a block start over the replay (each report once).
    pub destructions_overdue: u64,
    /// In the final state: reported overdue and still not attested destroyed.
    pub overdue_outstanding: u64,
    /// Every overdue report, in order.
    pub overdue: Vec<OverdueRecord>,
}

/// A destruction a block start reported overdue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueRecord {
    pub height: u64,
    /// `order:<id>` or `grant:<id>`.
    pub target: String,
    pub holder: PublicKey,
    pub due_ms: u64,
    /// Due again because a regulator rejected an attested destruction.
    pub reopened: bool,
}

/// What `dpx audit replay` found when every check held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub verified: bool,
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub source: String,
    pub source_tip: u64,
    pub from_height: u64,
    pub to_height: u64,
    pub blocks: u64,
    pub transactions: u64,
    pub genesis_time_ms: u64,
    pub first_block_time_ms: Option<u64>,
    pub last_block_time_ms: Option<u64>,
    pub final_state_root: Hash,
    pub final_receipts_hash: Hash,
    pub elapsed_ms: u64,
    pub blocks_per_s: f64,
    pub txs_per_s: f64,
    pub validators: Vec<ValidatorRecord>,
    /// Misbehaviour evidence (equivocation) is gossiped, not committed to the ledger, so a
    /// replay cannot report it; this says so instead of reporting "none".
    pub evidence_note: String,
    pub tx_ok: u64,
    pub tx_failed: u64,
    /// Transactions by receipt code.
    pub tx_codes: BTreeMap<String, u64>,
    /// Every event kind emitted, with its count.
    pub events: BTreeMap<String, u64>,
    /// Objects in the final state, by kind (participants, products, orders, grants, ...).
    pub objects: BTreeMap<String, u64>,
    pub participants_admitted: u64,
    pub products_listed: u64,
    pub trades: TradeCounts,
    pub money: MoneyTotals,
    pub lifecycle: LifecycleCounts,
    /// Compute jobs in the final state, by status, and what they read.
    pub jobs: contracts::JobTotals,
    pub grants: GrantCounts,
    pub grant_refusals: Vec<GrantRefusalRecord>,
    pub policy_decisions: u64,
    pub policy_denied: Vec<DeniedDecision>,
}

/// Accumulates an [`AuditReport`] block by block.
#[derive(Debug)]
pub struct Tally {
    report: AuditReport,
    validators: BTreeMap<PublicKey, ValidatorRecord>,
}

impl Tally {
    pub(super) fn new(genesis: &Genesis, source: String, source_tip: u64) -> Self {
        Self {
            report: AuditReport {
                verified: false,
                chain_id: genesis.chain_id.clone(),
                genesis_hash: genesis.hash(),
                source,
                source_tip,
                from_height: 1,
                to_height: 0,
                blocks: 0,
                transactions: 0,
                genesis_time_ms: genesis.genesis_time_ms,
                first_block_time_ms: None,
                last_block_time_ms: None,
                final_state_root: Hash::ZERO,
                final_receipts_hash: Hash::ZERO,
                elapsed_ms: 0,
                blocks_per_s: 0.0,
                txs_per_s: 0.0,
                validators: Vec::new(),
                evidence_note: "equivocation evidence is not committed to the ledger; a replay \
                                cannot see it (ask each node's /v1/evidence)"
                    .into(),
                tx_ok: 0,
                tx_failed: 0,
                tx_codes: BTreeMap::new(),
                events: BTreeMap::new(),
                objects: BTreeMap::new(),
                participants_admitted: 0,
                products_listed: 0,
                trades: TradeCounts::default(),
                money: MoneyTotals::default(),
                lifecycle: LifecycleCounts::default(),
                jobs: contracts::JobTotals::default(),
                grants: GrantCounts::default(),
                grant_refusals: Vec::new(),
                policy_decisions: 0,
                policy_denied: Vec::new(),
            },
            validators: BTreeMap::new(),
        }
    }

    /// Count a verified, re-executed block: its certificate, its receipts, and the
    /// destructions its start reported overdue (`contracts::overdue_reports` of its height).
    pub(super) fn block(
        &mut self,
        block: &Block,
        cert: &Certificate,
        set: &ValidatorSet,
        receipts: &[Vec<u8>],
        overdue: &[(DestructionDue, Event)],
    ) {
        let h = block.header.height;
        let r = &mut self.report;
        r.to_height = h;
        r.blocks += 1;
        r.transactions += block.txs.len() as u64;
        r.first_block_time_ms.get_or_insert(block.header.time_ms);
        r.last_block_time_ms = Some(block.header.time_ms);
        let signers: std::collections::BTreeSet<u32> =
            cert.signatures.iter().map(|(i, _)| i.0).collect();
        for (i, v) in set.validators().iter().enumerate() {
            let rec = self.validators.entry(v.key).or_insert(ValidatorRecord {
                key: v.key,
                power: v.power,
                heights_in_set: 0,
                signed: 0,
                missed: 0,
                proposed: 0,
            });
            rec.power = v.power;
            rec.heights_in_set += 1;
            if signers.contains(&(i as u32)) {
                rec.signed += 1;
            } else {
                rec.missed += 1;
            }
            if v.key == block.header.proposer {
                rec.proposed += 1;
            }
        }
        for (i, bytes) in receipts.iter().enumerate() {
            // The replay's own receipts: they always decode.
            if let Ok(receipt) = Receipt::decode(bytes) {
                self.receipt(h, i as u32, &receipt);
            }
        }
        for (rec, e) in overdue {
            let r = &mut self.report;
            *r.events.entry(e.kind.clone()).or_default() += 1;
            r.lifecycle.destructions_overdue += 1;
            r.lifecycle.overdue.push(OverdueRecord {
                height: h,
                target: contracts::lifecycle::target_label(&rec.target),
                holder: rec.holder,
                due_ms: rec.due_ms,
                reopened: rec.reopened,
            });
        }
    }

    fn receipt(&mut self, height: u64, tx_index: u32, receipt: &Receipt) {
        let r = &mut self.report;
        if receipt.is_ok() {
            r.tx_ok += 1;
        } else {
            r.tx_failed += 1;
        }
        *r.tx_codes.entry(receipt.code.as_str().to_owned()).or_default() += 1;
        if let Some(d) = &receipt.decision {
            r.policy_decisions += 1;
            if !d.allowed {
                r.policy_denied.push(DeniedDecision {
                    height,
                    tx_index,
                    tx_hash: receipt.tx_hash,
                    action: d.action.clone(),
                    principal: d.principal,
                    resource: d.resource.clone(),
                    policy_version: d.policy_version,
                    determining: d.determining.clone(),
                    reason: d.reason.clone(),
                });
            }
        }
        for e in &receipt.events {
            self.event(height, tx_index, receipt.tx_hash, e);
        }
    }

    fn event(&mut self, height: u64, tx_index: u32, tx_hash: Hash, e: &Event) {
        let r = &mut self.report;
        *r.events.entry(e.kind.clone()).or_default() += 1;
        let attr = |k: &str| e.get(k).unwrap_or_default().to_owned();
        match e.kind.as_str() {
            "participant.admitted" => r.participants_admitted += 1,
            "product.listed" => r.products_listed += 1,
            "order.placed" => r.trades.orders_placed += 1,
            "money.deposited" => r.money.deposited += num(&attr("amount")),
            "money.withdrawn" => r.money.withdrawn += num(&attr("amount")),
            "treasury.paid" => r.money.treasury_paid_out += num(&attr("amount")),
            "lifecycle.destruction_due" => r.lifecycle.destructions_due += 1,
            "lifecycle.attested" if attr("stage") == "destroyed" => {
                r.lifecycle.destructions_attested += 1;
                if attr("overdue") == "true" {
                    r.lifecycle.destroyed_late += 1;
                }
            }
            "grant.issued" => r.grants.issued += 1,
            "grant.consumed" => r.grants.consumed += 1,
            "grant.revoked" => r.grants.revoked += 1,
            "grant.expired" => r.grants.expired += 1,
            "grant.refused" => {
                r.grants.refused += 1;
                let reason = attr("reason");
                // `GrantRefusal::AlreadyConsumed`'s message.
                if reason.starts_with("grant already consumed") {
                    r.grants.second_use_attempts += 1;
                }
                r.grant_refusals.push(GrantRefusalRecord {
                    height,
                    tx_index,
                    tx_hash,
                    grant: attr("grant"),
                    op: attr("op"),
                    by: attr("by"),
                    reason,
                });
            }
            kind => {
                if let Some(status) = kind.strip_prefix("order.") {
                    *r.trades.transitions.entry(status.to_owned()).or_default() += 1;
                    r.money.escrowed += num(&attr("escrow"));
                    r.money.paid_to_providers += num(&attr("provider_amount"));
                    r.money.fees += num(&attr("fee"));
                    r.money.refunded += num(&attr("refund"));
                    if status == "settled" {
                        r.trades.settled += 1;
                        r.trades.settlement_total += num(&attr("settlement_amount"));
                    }
                }
            }
        }
    }

    /// Close the report: final roots, object counts from the replayed state, speed.
    pub(super) fn finish(
        &mut self,
        store: &Store,
        state_root: Hash,
        receipts_hash: Hash,
        elapsed: Duration,
    ) -> Result<(), ReplayError> {
        let r = &mut self.report;
        r.final_state_root = state_root;
        r.final_receipts_hash = receipts_hash;
        r.elapsed_ms = elapsed.as_millis() as u64;
        let secs = elapsed.as_secs_f64().max(1e-9);
        r.blocks_per_s = r.blocks as f64 / secs;
        r.txs_per_s = r.transactions as f64 / secs;
        for kind in KINDS {
            let Some(prefix) = kind_prefix(kind) else { continue };
            let mut count = 0u64;
            for_each_page(store, &prefix, |page| {
                count += page.len() as u64;
                Ok(())
            })?;
            r.objects.insert((*kind).to_owned(), count);
        }
        check_money(store, &mut r.money)?;
        r.lifecycle.overdue_outstanding = overdue_outstanding(store)?;
        r.jobs = job_totals(store)?;
        r.validators = self.validators.values().cloned().collect();
        r.verified = true;
        Ok(())
    }

    pub(super) fn into_report(self) -> AuditReport {
        self.report
    }
}

/// The compute jobs of the final state, a page at a time.
fn job_totals(store: &Store) -> Result<contracts::JobTotals, ReplayError> {
    let mut totals = contracts::JobTotals::default();
    for_each_page(store, keys::PREFIX_JOB, |page| {
        let t = contracts::JobTotals::from_values(page.iter().map(|(_, v)| v.as_slice())).map_err(
            |e| ReplayError::Execution {
                height: store.tip_height(),
                reason: format!("a stored job: {e}"),
            },
        )?;
        totals.merge(&t);
        Ok(())
    })?;
    Ok(totals)
}

/// Due destructions in the final state that a block start has reported overdue.
fn overdue_outstanding(store: &Store) -> Result<u64, ReplayError> {
    let mut count = 0;
    for_each_page(store, keys::PREFIX_DESTRUCTION, |page| {
        count += page
            .iter()
            .filter_map(|(k, v)| contracts::render(k, v))
            .filter(|v| v.get("overdue_height").is_some_and(|h| !h.is_null()))
            .count() as u64;
        Ok(())
    })?;
    Ok(count)
}

/// Hand every entry of the latest state under `prefix` to `f`, one page at a time.
fn for_each_page(
    store: &Store,
    prefix: &[u8],
    mut f: impl FnMut(&[dpx_ledger::StateEntry]) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(prefix, after.as_deref(), MAX_SCAN_LIMIT)?;
        f(&page)?;
        if page.len() < MAX_SCAN_LIMIT {
            return Ok(());
        }
        after = page.last().map(|(k, _)| k.clone());
    }
}

/// An event attribute's amount (absent: 0).
fn num(v: &str) -> u128 {
    v.parse().unwrap_or(0)
}

/// Sum what the final state holds and check conservation against the supply and the events.
fn check_money(store: &Store, m: &mut MoneyTotals) -> Result<(), ReplayError> {
    let mut held = [0u128; 3];
    for (slot, prefix) in [(0, keys::PREFIX_ACCOUNT), (1, keys::PREFIX_ORDER), (2, keys::TREASURY)]
    {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.scan_prefix(prefix, after.as_deref(), MAX_SCAN_LIMIT)?;
            for (k, v) in &page {
                let amount = contracts::money_in_object(k, v)
                    .map_err(|e| ReplayError::Money(format!("undecodable object: {e}")))?;
                held[slot] += u128::from(amount.unwrap_or(0));
            }
            if page.len() < MAX_SCAN_LIMIT {
                break;
            }
            after = page.last().map(|(k, _)| k.clone());
        }
    }
    [m.held_in_accounts, m.held_in_escrow, m.held_in_treasury] = held;
    let st = crate::LatestState::new(store);
    let supply = contracts::supply(&st).map_err(|e| ReplayError::Money(e.to_string()))?;
    if let Some(e) = st.into_error() {
        return Err(ReplayError::Money(format!("reading the supply: {e}")));
    }
    let total: u128 = held.iter().sum();
    let net = u128::from(supply.deposited).checked_sub(u128::from(supply.withdrawn));
    if net != Some(total) {
        return Err(ReplayError::Money(format!(
            "accounts {} + escrows {} + treasury {} = {total}, but deposited {} - withdrawn {} is not",
            held[0], held[1], held[2], supply.deposited, supply.withdrawn
        )));
    }
    if (m.deposited, m.withdrawn) != (supply.deposited.into(), supply.withdrawn.into()) {
        return Err(ReplayError::Money(format!(
            "the events deposit {} and withdraw {}, the state's supply says {} and {}",
            m.deposited, m.withdrawn, supply.deposited, supply.withdrawn
        )));
    }
    let escrow_now = m.escrowed.checked_sub(m.paid_to_providers + m.fees + m.refunded);
    if escrow_now != Some(m.held_in_escrow) {
        return Err(ReplayError::Money(format!(
            "the events escrow {} and release {}, but the orders hold {}",
            m.escrowed,
            m.paid_to_providers + m.fees + m.refunded,
            m.held_in_escrow
        )));
    }
    Ok(())
}

impl AuditReport {
    /// The readable summary printed by `dpx audit replay`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "VERIFIED: chain {} replayed from genesis ({}) via {}\n",
            self.chain_id,
            self.genesis_hash.short(),
            self.source
        );
        let _ = writeln!(
            s,
            "  heights {}..={} of {} ({} blocks, {} transactions), block time {} .. {} ms",
            self.from_height,
            self.to_height,
            self.source_tip,
            self.blocks,
            self.transactions,
            self.first_block_time_ms.unwrap_or(self.genesis_time_ms),
            self.last_block_time_ms.unwrap_or(self.genesis_time_ms),
        );
        let _ = writeln!(s, "  final state root {}", self.final_state_root);
        let _ = writeln!(
            s,
            "  speed: {:.0} blocks/s, {:.0} tx/s ({} ms)",
            self.blocks_per_s, self.txs_per_s, self.elapsed_ms
        );
        s.push_str("validators (signed / missed / proposed):\n");
        for v in &self.validators {
            let _ = writeln!(
                s,
                "  {} power {}: {} / {} / {} of {} heights",
                v.key.to_hex().get(..16).unwrap_or_default(),
                v.power,
                v.signed,
                v.missed,
                v.proposed,
                v.heights_in_set
            );
        }
        let _ = writeln!(s, "  evidence: {}", self.evidence_note);
        let _ = writeln!(
            s,
            "transactions: {} ok, {} failed {:?}",
            self.tx_ok, self.tx_failed, self.tx_codes
        );
        let _ = writeln!(s, "objects in state: {:?}", self.objects);
        let _ = writeln!(
            s,
            "participants admitted {}, products listed {}, orders placed {}, settled {} (total {})",
            self.participants_admitted,
            self.products_listed,
            self.trades.orders_placed,
            self.trades.settled,
            self.trades.settlement_total
        );
        let m = &self.money;
        let _ = writeln!(
            s,
            "money (minor units): deposited {}, withdrawn {}; escrowed {}, to providers {}, fees {}, refunded {}, treasury paid out {}; held now: accounts {}, escrow {}, treasury {} (= deposited - withdrawn: checked)",
            m.deposited,
            m.withdrawn,
            m.escrowed,
            m.paid_to_providers,
            m.fees,
            m.refunded,
            m.treasury_paid_out,
            m.held_in_accounts,
            m.held_in_escrow,
            m.held_in_treasury
        );
        let life = &self.lifecycle;
        let _ = writeln!(
            s,
            "life cycle: destructions due {}, attested {} ({} late), reported overdue {} ({} still outstanding)",
            life.destructions_due,
            life.destructions_attested,
            life.destroyed_late,
            life.destructions_overdue,
            life.overdue_outstanding
        );
        for o in &life.overdue {
            let _ = writeln!(
                s,
                "  overdue at {}: {} held by {} (due at {} ms{})",
                o.height,
                o.target.get(..22).unwrap_or(&o.target),
                o.holder.to_hex().get(..16).unwrap_or_default(),
                o.due_ms,
                if o.reopened { ", reopened by a rejected destruction" } else { "" }
            );
        }
        let jobs = &self.jobs;
        let _ = writeln!(
            s,
            "compute jobs: requested {}, attested {}, received {}, cancelled {}, rejected {}; inputs {} ({} by grant, {} by order); inputs destroyed (attested) {}",
            jobs.requested,
            jobs.attested,
            jobs.received,
            jobs.cancelled,
            jobs.rejected,
            jobs.inputs,
            jobs.grant_inputs,
            jobs.order_inputs,
            jobs.inputs_destroyed
        );
        let g = &self.grants;
        let _ = writeln!(
            s,
            "grants: issued {}, consumed {}, revoked {}, expired {}, refused {} (second-use attempts {})",
            g.issued, g.consumed, g.revoked, g.expired, g.refused, g.second_use_attempts
        );
        for r in &self.grant_refusals {
            let _ = writeln!(
                s,
                "  refused at {}#{}: {} of grant {} by {}: {}",
                r.height,
                r.tx_index,
                r.op,
                r.grant.get(..16).unwrap_or(&r.grant),
                r.by.get(..16).unwrap_or(&r.by),
                r.reason
            );
        }
        let _ = writeln!(
            s,
            "policy decisions: {} ({} denied)",
            self.policy_decisions,
            self.policy_denied.len()
        );
        for d in &self.policy_denied {
            let _ = writeln!(
                s,
                "  denied at {}#{}: {} on {} by {} (policy v{}): {}",
                d.height,
                d.tx_index,
                d.action,
                d.resource,
                d.principal.to_hex().get(..16).unwrap_or_default(),
                d.policy_version,
                d.reason
            );
        }
        s
    }
}
