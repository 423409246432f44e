//! The Grants page (counts by state over the grants the viewer may read, and a list) and one
//! grant's life: registered, used (its usage receipt), revoked or expired — for its subject,
//! its consumer and supervisors only; anyone else is told it is hidden, whether or not it
//! exists (the RPC's rule for party-only records).

use axum::http::StatusCode;
use dpx_contracts::State as _;
use dpx_contracts::{GrantId, GrantRecord, GrantState, UsageReceipt, keys};
use dpx_ledger::Store;
use maud::{Markup, PreEscaped, html};

use super::market::visible;
use super::page::{hidden, showing, time};
use super::{Body, LIST_MAX, Names, Who, decode};
use dpx_app::LatestState;

/// The state a grant shows: an issued grant past its expiry is expired even before anything
/// marks it so (the ledger refuses its use from `expires_at_ms + 1`).
fn shown_state(g: &GrantRecord, tip_time_ms: u64) -> &'static str {
    match (g.state, &g.grant) {
        (GrantState::Issued, Some(sg)) if tip_time_ms > sg.grant.expires_at_ms => "expired",
        (s, _) => s.as_str(),
    }
}

/// A product's name, when this viewer may read the product (a delisted one is for active
/// participants).
fn product_name(st: &LatestState<'_>, who: &Who, id: &dpx_contracts::ProductId) -> Option<String> {
    let k = keys::product(id);
    let v = st.get(&k).filter(|v| who.may(st, &k, v))?;
    decode::<dpx_contracts::Product>(&k, &v).map(|p| p.spec.name)
}

fn tip_time_ms(store: &Store) -> anyhow::Result<u64> {
    Ok(store.header(store.tip_height())?.map_or(0, |h| h.time_ms))
}

pub(crate) fn grant_table(
    store: &Store,
    names: &mut Names,
    grants: &[(Vec<u8>, GrantRecord)],
) -> Markup {
    let tip = tip_time_ms(store).unwrap_or(0);
    html! {
        table class="grant-list" {
            thead { tr { th { "grant" } th { "state" } th { "consumer" } th { "product" } th { "purpose" } th { "expires" } } }
            tbody {
                @for (k, g) in grants.iter().take(LIST_MAX) {
                    @let id = hex::encode(&k[keys::PREFIX_GRANT.len()..]);
                    tr {
                        td { a class="mono" href={ "/console/grants/" (id) } { (&id[..16]) "…" } }
                        td { (shown_state(g, tip)) }
                        @match &g.grant {
                            Some(sg) => {
                                td { (names.link(store, &sg.grant.consumer)) }
                                td { a class="mono" href={ "/console/products/" (sg.grant.product) } { (&sg.grant.product.to_string()[..16]) "…" } }
                                td { (sg.grant.purpose) }
                                td { (time(sg.grant.expires_at_ms)) }
                            }
                            None => { td colspan="4" class="muted" { "revoked before anyone registered it" } }
                        }
                    }
                }
            }
        }
    }
}

/// The Grants page; `tail` goes at the end of its live part.
pub fn summary(store: &Store, who: &Who, tail: &Markup) -> anyhow::Result<Markup> {
    let grants = visible::<GrantRecord>(store, who, keys::PREFIX_GRANT, |_| true)?;
    let tip = tip_time_ms(store)?;
    let mut names = Names::default();
    let count = |s: &str| grants.items.iter().filter(|(_, g)| shown_state(g, tip) == s).count();
    Ok(html! {
        div id="live" {
            section class="card" {
                div class="stats" id="grant-counts" {
                    @for s in ["issued", "consumed", "revoked", "expired"] {
                        div class="stat" { span class="muted" { (s) } b id={ "grants-" (s) } { (count(s)) } }
                    }
                }
                p class="note" {
                    "Grants are seen by their data subject and consumer, and by supervisors: the counts cover the "
                    (grants.items.len()) " this viewer may read"
                    @if !grants.complete { " among the first " (super::SCAN_MAX) " grants" } "."
                }
                (grant_table(store, &mut names, &grants.items))
                (showing(grants.items.len().min(LIST_MAX), grants.items.len(), grants.complete, "readable grants"))
            }
            (tail)
        }
    })
}

pub fn one(store: &Store, who: &Who, id_hex: &str) -> anyhow::Result<Body> {
    let Ok(id) = id_hex.parse::<dpx_crypto::Hash>() else {
        return Ok(Body::Status(
            StatusCode::NOT_FOUND,
            html! { div class="hidden-box" { "not a grant id (64 hex characters)" } },
        ));
    };
    let id = GrantId(id);
    let st = LatestState::new(store);
    let k = keys::grant(&id);
    let v = st.get(&k);
    let access = match &v {
        Some(v) => dpx_contracts::read::state_access(&st, &k, v),
        None => dpx_contracts::read::absent_access(&k),
    };
    if !who.reader.may(&access) {
        return Ok(Body::Status(StatusCode::FORBIDDEN, hidden("This grant")));
    }
    let Some(v) = v else {
        return Ok(Body::Status(
            StatusCode::NOT_FOUND,
            html! { div class="hidden-box" id="not-found" { "no grant has this id" } },
        ));
    };
    let Some(g) = decode::<GrantRecord>(&k, &v) else {
        anyhow::bail!("the grant record does not decode")
    };
    let uk = keys::usage(&id);
    let usage =
        st.get(&uk).filter(|u| who.may(&st, &uk, u)).and_then(|u| decode::<UsageReceipt>(&uk, &u));
    let tip = tip_time_ms(store)?;
    let mut names = Names::default();
    let steps = crate::rpc::grants::history(store, &id, &g)?["steps"].take();
    Ok(Body::Ok(html! {
        div id="live" {
            section class="card" id="grant" {
                h2 { "Grant " span class="mono" { (id) } }
                table {
                    tr { th { "state" } td id="grant-state" { (shown_state(&g, tip)) } }
                    tr { th { "data subject" } td class="mono" { (g.subject) } }
                    @if let Some(sg) = &g.grant {
                        tr { th { "consumer" } td { (names.link(store, &sg.grant.consumer)) } }
                        tr { th { "product" } td { a href={ "/console/products/" (sg.grant.product) } { (product_name(&st, who, &sg.grant.product).unwrap_or_else(|| sg.grant.product.to_string())) } } }
                        tr { th { "purpose" } td { (sg.grant.purpose) } }
                        tr { th { "signed by" } td class="mono" { (sg.grant.key.to_hex()) " (epoch " (sg.grant.epoch) ")" } }
                    }
                }
            }
            section class="card" id="life" {
                h2 { "Its life" }
                ol {
                    @match &g.grant {
                        Some(sg) => {
                            li { "signed by the subject; valid until " (time(sg.grant.expires_at_ms)) }
                            @if g.registered_height > 0 { li { "first seen by the ledger at height " (g.registered_height) } }
                        }
                        None => { li { "the subject revoked its serial before anyone registered it" } }
                    }
                    @if let Some(u) = &usage {
                        li id="used" {
                            "used once at height " (u.height) ", " (time(u.time_ms)) " by " (names.link(store, &u.consumer))
                            " for " (u.purpose) " (transaction " span class="mono" { (u.tx_hash) } ")"
                        }
                    }
                    @match shown_state(&g, tip) {
                        "revoked" => { li id="revoked" { "revoked at height " (g.state_height) ", " (time(g.state_time_ms)) } }
                        "expired" => { li id="expired" { "expired: it can no longer be used" } }
                        "issued" => { li { "still usable once, until it expires" } }
                        _ => {}
                    }
                }
                p class="note" { "From the grant's record and its usage receipt in the latest state." }
            }
            section class="card" id="steps" {
                h2 { "Each step, proved" }
                table {
                    thead { tr { th { "step" } th { "height" } th { "time" } th { "transaction" } th { "proof" } } }
                    tbody {
                        @for st in steps.as_array().into_iter().flatten() {
                            tr {
                                td { (st["step"].as_str().unwrap_or("")) @if let Some(stage) = st["stage"].as_str() { " (" (stage) ")" } }
                                td { (st["height"]) }
                                td { (st["time_ms"].as_u64().map(time).unwrap_or_default()) }
                                @match st["tx_hash"].as_str() {
                                    Some(h) => {
                                        td class="mono" title=(h) { (&h[..16.min(h.len())]) "…" }
                                        td { span class="proof" data-tx=(h) { "not checked (this page's script checks it)" } }
                                    }
                                    None => { td class="muted" { "—" } td class="muted" { "no transaction found for this step" } }
                                }
                            }
                        }
                    }
                }
                p class="note" {
                    "Your browser fetches each transaction's proof bundle and checks it here (SPEC.md §11.2, §11.3): "
                    "the transaction in its block's certified header, its receipt in the next one, each certificate "
                    "signed by more than two thirds of the validator set in force, walked from the genesis set. "
                    "The trust root is the genesis validator set, hash "
                    span class="mono" id="trust-root" { "…" }
                    ". The node serves both this page's verifier and that set: a check means something once you "
                    "have compared the hash with the validators of your own copy of the genesis file (the "
                    "validator_set_hash of any header before the first validator-set change, or dpx audit verify "
                    "of a bundle with that file)."
                }
            }
        }
        script { (PreEscaped(super::page::VERIFY_JS)) }
        script { (PreEscaped(super::page::PROOF_SCRIPT)) }
    }))
}
