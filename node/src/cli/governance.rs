//! `dpx governance`: the agencies' membership decisions, with readable answers. A thin layer
//! over `dpx tx propose|approve` (the same transactions): it builds the proposal from flags,
//! finds the proposal id in the receipt, and says where the vote stands (approvals against the
//! more than 2/3 of active agencies needed) and when a validator change takes effect.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use dpx_contracts::{Operation, ProposalAction, ProposalId, ValidatorChange};
use dpx_crypto::PublicKey;

use super::{Client, Output, emit, tx};

/// Participants read at most when counting the active agencies (pages of 500).
const PARTICIPANT_PAGES_MAX: usize = 20;

#[derive(Subcommand, Debug)]
pub enum GovernanceCmd {
    /// Propose a validator-set change: add a node's key, remove keys, or both in one step
    /// (a key rotation: remove the old key, add the new one, at the same height).
    ProposeValidator {
        /// The proposing agency's key file.
        #[arg(long)]
        key: PathBuf,
        /// A node key (hex) to add, e.g. from its operator's `dpx init`.
        #[arg(long, requires = "name")]
        add: Option<PublicKey>,
        /// The name shown for the added validator (e.g. the agency and the node).
        #[arg(long)]
        name: Option<String>,
        /// The added validator's voting power.
        #[arg(long, default_value_t = 10, requires = "add")]
        power: u64,
        /// A validator key (hex) to remove; repeatable.
        #[arg(long)]
        remove: Vec<PublicKey>,
        /// The first height the new set validates. It must still be at least the chain's
        /// `validator_update_delay` ahead when the last approval commits.
        #[arg(long, conflicts_with = "in_blocks")]
        effective_height: Option<u64>,
        /// Or: this many blocks after the current tip (room for the other agencies' approvals).
        #[arg(long, default_value_t = 30)]
        in_blocks: u64,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Propose admitting a new agency (it then takes part in governance and the quorum).
    AdmitAgency {
        /// The proposing agency's key file.
        #[arg(long)]
        key: PathBuf,
        /// The new agency's account key (hex).
        #[arg(long)]
        agency: PublicKey,
        #[arg(long)]
        name: String,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Propose admitting a settlement bank (it records deposits and withdrawals that happen
    /// off the ledger).
    AdmitSettlementBank {
        /// The proposing agency's key file.
        #[arg(long)]
        key: PathBuf,
        /// The bank's account key (hex).
        #[arg(long)]
        bank: PublicKey,
        #[arg(long)]
        name: String,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Propose admitting a compute node (it runs jobs over products' data off the ledger and
    /// attests what ran; consumers receive only the result).
    AdmitComputeNode {
        /// The proposing agency's key file.
        #[arg(long)]
        key: PathBuf,
        /// The compute node's account key (hex).
        #[arg(long)]
        node: PublicKey,
        #[arg(long)]
        name: String,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Propose a new platform fee, in basis points (0..=10000) of the provider's share of each
    /// settled escrow; orders accepted before the change keep the fee they were accepted with.
    SetPlatformFee {
        /// The proposing agency's key file.
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        basis_points: u32,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Propose paying from the treasury (the fees collected) into a participant's account.
    PayFromTreasury {
        /// The proposing agency's key file.
        #[arg(long)]
        key: PathBuf,
        /// The receiving participant's account key (hex).
        #[arg(long)]
        account: PublicKey,
        /// In the currency's minor unit (e.g. fen).
        #[arg(long)]
        amount: u64,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Approve an open proposal, as an agency.
    Approve {
        /// The proposal id (hex), as `propose-*` printed it.
        proposal: ProposalId,
        /// The approving agency's key file.
        #[arg(long)]
        key: PathBuf,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
    /// Where a proposal stands: approvals, the quorum, executed or not.
    Show {
        proposal: ProposalId,
        #[arg(long, env = "DPX_RPC", default_value = "http://127.0.0.1:26657")]
        rpc: String,
    },
}

/// Approvals needed: more than 2/3 of `active` (`contracts::quorum_reached`).
pub fn needed(active: u64) -> u64 {
    active * 2 / 3 + 1
}

/// The validator changes the flags describe.
fn changes(
    add: Option<PublicKey>,
    name: Option<String>,
    power: u64,
    remove: &[PublicKey],
) -> anyhow::Result<Vec<ValidatorChange>> {
    let mut out: Vec<ValidatorChange> =
        remove.iter().map(|k| ValidatorChange { key: *k, power: 0, name: String::new() }).collect();
    if let Some(key) = add {
        anyhow::ensure!(power > 0, "--power must be positive (removing is --remove)");
        anyhow::ensure!(!remove.contains(&key), "--add and --remove name the same key {key}");
        out.push(ValidatorChange { key, power, name: name.unwrap_or_default() });
    }
    if out.is_empty() {
        bail!("nothing to propose: give --add KEY --name NAME and/or --remove KEY");
    }
    Ok(out)
}

/// The value of attribute `attr` of the first `kind` event in a committed answer's receipt.
fn event_attr(v: &Value, kind: &str, attr: &str) -> Option<String> {
    v["receipt"]["events"].as_array()?.iter().find(|e| e["kind"] == kind).and_then(|e| {
        e["attrs"].as_array()?.iter().find(|a| a["key"] == attr)?["value"]
            .as_str()
            .map(str::to_owned)
    })
}

/// Agencies active now (neither suspended nor negative-listed), if the participants could be
/// read within the page budget.
async fn active_agencies(c: &Client) -> anyhow::Result<Option<u64>> {
    let mut after: Option<String> = None;
    let mut n = 0u64;
    for _ in 0..PARTICIPANT_PAGES_MAX {
        let path = match &after {
            Some(a) => format!("/v1/state/participants?limit=500&after={a}"),
            None => "/v1/state/participants?limit=500".to_owned(),
        };
        let v = c.get(&path).await?;
        for p in v["items"].as_array().into_iter().flatten() {
            let agency = p["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == "agency"));
            let barred = p["suspended"] == true || p["list_status"] == "negative";
            if agency && !barred {
                n += 1;
            }
        }
        match v["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return Ok(Some(n)),
        }
    }
    Ok(None)
}

/// Where proposal `id` stands, as JSON and text.
async fn standing(c: &Client, id: &ProposalId) -> anyhow::Result<(Value, String)> {
    let p = c.get(&format!("/v1/state/proposals/{id}")).await?["value"].clone();
    anyhow::ensure!(p.is_object(), "the node has no proposal {id}");
    let active = active_agencies(c).await?;
    let approvals = p["approvals"].as_u64().unwrap_or(0);
    let status = p["status"].as_str().unwrap_or("?").to_owned();
    let mut text = format!("proposal {id}: {}\n", describe(&p["action"]));
    let _ = match active {
        Some(a) => write!(
            text,
            "  approvals {approvals} of {a} active agencies (more than 2/3 needed: {})",
            needed(a)
        ),
        None => write!(text, "  approvals {approvals}"),
    };
    let _ = if status == "executed" {
        write!(text, "; executed at height {}", p["decided_height"])
    } else {
        write!(text, "; {status}, expires after height {}", p["expiry_height"])
    };
    let v = json!({ "proposal": p, "active_agencies": active,
                    "needed": active.map(needed) });
    Ok((v, text))
}

/// One line for a proposal's action.
fn describe(action: &Value) -> String {
    if let Some(u) = action.get("update_validators") {
        let mut parts = Vec::new();
        for c in u["changes"].as_array().into_iter().flatten() {
            let key = c["key"].as_str().unwrap_or("?");
            if c["power"] == 0 {
                parts.push(format!("remove {key}"));
            } else {
                parts.push(format!(
                    "add {key} ({}, power {})",
                    c["name"].as_str().unwrap_or(""),
                    c["power"]
                ));
            }
        }
        return format!(
            "update_validators from height {}: {}",
            u["effective_height"],
            parts.join(", ")
        );
    }
    for kind in ["admit_agency", "admit_registrar", "admit_settlement_bank", "admit_compute_node"] {
        if let Some(a) = action.get(kind) {
            return format!(
                "{kind} {} ({})",
                a["key"].as_str().unwrap_or("?"),
                a["name"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(f) = action.get("set_platform_fee") {
        return format!("set_platform_fee {} basis points", f["basis_points"]);
    }
    if let Some(p) = action.get("pay_from_treasury") {
        return format!(
            "pay_from_treasury {} to {}",
            p["amount"],
            p["account"].as_str().unwrap_or("?")
        );
    }
    action.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_else(|| action.to_string())
}

/// Submit `op`, report the proposal's standing; exit 3 if the ledger refused it.
async fn submit_and_report(
    rpc: &str,
    key: &std::path::Path,
    op: Operation,
    known: Option<ProposalId>,
    out: Output,
) -> anyhow::Result<ExitCode> {
    let v = tx::send(rpc, key, op, "commit", None, None).await?;
    if v["status"] != "committed" {
        bail!("not committed yet ({}); follow it with dpx query", v["status"]);
    }
    let code = v["receipt"]["code"].as_str().unwrap_or("?");
    if !code.eq_ignore_ascii_case("ok") {
        let reason = v["receipt"]["reason"].as_str().unwrap_or("");
        emit(out, &v, || format!("refused at height {}: {code} ({reason})", v["height"]));
        return Ok(ExitCode::from(3));
    }
    let id = match known {
        Some(id) => id,
        None => event_attr(&v, "governance.proposed", "proposal")
            .context("the receipt names no proposal")?
            .parse()
            .map_err(|_| anyhow::anyhow!("the receipt's proposal id is not an id"))?,
    };
    let c = Client::new(rpc)?;
    let (mut s, text) = standing(&c, &id).await?;
    s["tx"] = json!({ "hash": v["hash"], "height": v["height"] });
    emit(out, &s, || format!("committed at height {}\n{text}", v["height"]));
    Ok(ExitCode::SUCCESS)
}

pub async fn run(cmd: GovernanceCmd, out: Output) -> anyhow::Result<ExitCode> {
    match cmd {
        GovernanceCmd::ProposeValidator {
            key,
            add,
            name,
            power,
            remove,
            effective_height,
            in_blocks,
            rpc,
        } => {
            let changes = changes(add, name, power, &remove)?;
            let effective_height = if let Some(h) = effective_height {
                h
            } else {
                let tip = Client::new(&rpc)?.get("/v1/status").await?["height"]
                    .as_u64()
                    .context("status.height")?;
                tip + in_blocks.max(1)
            };
            let action = ProposalAction::UpdateValidators { changes, effective_height };
            submit_and_report(&rpc, &key, Operation::Propose { action }, None, out).await
        }
        GovernanceCmd::AdmitAgency { key, agency, name, rpc } => {
            let action = ProposalAction::AdmitAgency { key: agency, name };
            submit_and_report(&rpc, &key, Operation::Propose { action }, None, out).await
        }
        GovernanceCmd::AdmitSettlementBank { key, bank, name, rpc } => {
            let action = ProposalAction::AdmitSettlementBank { key: bank, name };
            submit_and_report(&rpc, &key, Operation::Propose { action }, None, out).await
        }
        GovernanceCmd::AdmitComputeNode { key, node, name, rpc } => {
            let action = ProposalAction::AdmitComputeNode { key: node, name };
            submit_and_report(&rpc, &key, Operation::Propose { action }, None, out).await
        }
        GovernanceCmd::SetPlatformFee { key, basis_points, rpc } => {
            let action = ProposalAction::SetPlatformFee { basis_points };
            submit_and_report(&rpc, &key, Operation::Propose { action }, None, out).await
        }
        GovernanceCmd::PayFromTreasury { key, account, amount, rpc } => {
            let action = ProposalAction::PayFromTreasury { account, amount };
            submit_and_report(&rpc, &key, Operation::Propose { action }, None, out).await
        }
        GovernanceCmd::Approve { proposal, key, rpc } => {
            let op = Operation::Approve { proposal };
            submit_and_report(&rpc, &key, op, Some(proposal), out).await
        }
        GovernanceCmd::Show { proposal, rpc } => {
            let (v, text) = standing(&Client::new(&rpc)?, &proposal).await?;
            emit(out, &v, || text);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quorum_is_more_than_two_thirds() {
        for active in 1..=30u64 {
            let n = needed(active);
            assert!(dpx_contracts::quorum_reached(n, active), "{active}");
            assert!(!dpx_contracts::quorum_reached(n - 1, active), "{active}");
        }
        assert_eq!(needed(4), 3);
        assert_eq!(needed(5), 4);
    }

    #[test]
    fn flags_become_changes_and_nonsense_is_refused() {
        let k = |i: u8| dpx_crypto::Keypair::from_seed([i; 32]).public();
        let c = changes(Some(k(1)), Some("E".into()), 10, &[k(2)]).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].key, c[0].power), (k(2), 0));
        assert_eq!((c[1].key, c[1].power, c[1].name.as_str()), (k(1), 10, "E"));
        assert!(changes(None, None, 10, &[]).is_err());
        assert!(changes(Some(k(1)), Some("E".into()), 0, &[]).is_err());
        assert!(changes(Some(k(1)), Some("E".into()), 1, &[k(1)]).is_err());
    }

    #[test]
    fn receipts_name_the_proposal_and_actions_read_as_text() {
        let v = json!({"receipt": {"events": [{"kind": "governance.proposed",
            "attrs": [{"key": "proposal", "value": "ab"}]}]}});
        assert_eq!(event_attr(&v, "governance.proposed", "proposal").as_deref(), Some("ab"));
        assert_eq!(event_attr(&v, "governance.executed", "proposal"), None);
        let a = json!({"update_validators": {"effective_height": 40, "changes": [
            {"key": "aa", "power": 0, "name": ""}, {"key": "bb", "power": 10, "name": "E"}]}});
        assert_eq!(
            describe(&a),
            "update_validators from height 40: remove aa, add bb (E, power 10)"
        );
    }
}
