//! The Decisions page: search the policy decisions receipts recorded (the RPC's
//! `GET /v1/decisions`, same filters, same read policy, same bounds), page to older ones, and
//! see the policy set in force with its history of governed changes.

use axum::http::StatusCode;
use dpx_contracts::{PolicySetRecord, keys};
use maud::{Markup, html};

use super::page::time;
use super::{Body, LIST_MAX, Names, Who, decode};
use crate::rpc::decisions::{DecisionQuery, search};
use dpx_app::LatestState;
use dpx_ledger::Store;

/// Policy versions listed at most (newest first).
const HISTORY_MAX: usize = 50;

/// The query string of a search with `before` replaced (for the "older" link).
fn older_link(q: &DecisionQuery, before: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("principal", &q.principal),
        ("product", &q.product),
        ("resource", &q.resource),
        ("action", &q.action),
        ("outcome", &q.outcome),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            s.append_pair(k, v);
        }
    }
    for (k, v) in [("from_height", q.from_height), ("to_height", q.to_height)] {
        if let Some(v) = v {
            s.append_pair(k, &v.to_string());
        }
    }
    if let Some(l) = q.limit {
        s.append_pair("limit", &l.to_string());
    }
    s.append_pair("before", before);
    format!("/console/decisions?{}", s.finish())
}

/// An HTML form sends every field, empty ones as `""`: those mean "any".
fn without_empty(mut q: DecisionQuery) -> DecisionQuery {
    for f in [&mut q.principal, &mut q.product, &mut q.resource, &mut q.action, &mut q.outcome] {
        if f.as_deref().is_some_and(str::is_empty) {
            *f = None;
        }
    }
    q
}

fn form(q: &DecisionQuery) -> Markup {
    let v = |x: &Option<String>| x.clone().unwrap_or_default();
    let outcome = q.outcome.as_deref().unwrap_or("");
    html! {
        form method="get" action="/console/decisions" id="decision-search" class="search" {
            label { "principal " input name="principal" id="f-principal" size="20" placeholder="64 hex" value=(v(&q.principal)); }
            label { "product " input name="product" id="f-product" size="20" placeholder="64 hex" value=(v(&q.product)); }
            label { "action " input name="action" id="f-action" size="12" placeholder="e.g. order" value=(v(&q.action)); }
            label { "outcome "
                select name="outcome" id="f-outcome" {
                    @for (val, label) in [("", "any"), ("allowed", "allowed"), ("denied", "denied")] {
                        option value=(val) selected[outcome == val] { (label) }
                    }
                }
            }
            button type="submit" id="f-search" { "search" }
        }
    }
}

/// The resource as a link when it is a product.
fn resource(r: &str) -> Markup {
    match r.strip_prefix("Product::\"").and_then(|x| x.strip_suffix('"')) {
        Some(id) if id.len() == 64 => html! {
            a class="mono" href={ "/console/products/" (id) } title=(r) { "product " (&id[..12]) "…" }
        },
        _ => html! { span class="mono" { (r) } },
    }
}

fn policies(store: &Store, who: &Who) -> anyhow::Result<Markup> {
    let st = LatestState::new(store);
    let mut versions: Vec<PolicySetRecord> = store
        .scan_prefix(keys::PREFIX_POLICY_VERSION, None, super::SCAN_MAX)?
        .into_iter()
        .filter(|(k, v)| who.may(&st, k, v))
        .filter_map(|(k, v)| decode(&k, &v))
        .collect();
    versions.sort_by_key(|p| std::cmp::Reverse(p.version));
    let Some(current) = versions.first() else {
        return Ok(html! { p class="muted" { "No policy set is visible to this viewer." } });
    };
    Ok(html! {
        section class="card" id="policy-set" {
            h2 { "Policy set in force" }
            p {
                "version " b id="policy-version" { (current.version) } " since height " (current.height)
                " · blake3 " span class="mono" { (current.hash) }
            }
            details { summary { "the Cedar text" } pre id="policy-text" { (current.text) } }
            h2 { "History of governed changes" }
            table id="policy-history" {
                thead { tr { th { "version" } th { "took effect at height" } th { "blake3 of the text" } } }
                tbody {
                    @for p in versions.iter().take(HISTORY_MAX) {
                        tr { td { (p.version) } td { (p.height) } td class="mono" { (p.hash) } }
                    }
                }
            }
            @if versions.len() > HISTORY_MAX {
                p class="note" { "the latest " (HISTORY_MAX) " of " (versions.len()) " versions" }
            }
        }
    })
}

pub fn page(store: &Store, who: &Who, q: DecisionQuery) -> anyhow::Result<Body> {
    let q = without_empty(q);
    let checked = q.check(store.tip_height());
    let (filter, range, limit) = match checked {
        Ok(c) => c,
        Err(e) => {
            return Ok(Body::Status(
                StatusCode::BAD_REQUEST,
                html! { (form(&q)) div class="hidden-box" id="bad-search" { (e.message) } },
            ));
        }
    };
    let st = LatestState::new(store);
    let reader = &who.reader;
    let page = search(store, &filter, range, limit.min(LIST_MAX), |tx, receipt| {
        reader.sees_all() || reader.may(&crate::events::tx_access(&st, tx, Some(receipt)))
    })?;
    if let Some(e) = st.error() {
        anyhow::bail!("reading the state: {e}");
    }
    let mut names = Names::default();
    let rows: Vec<_> =
        page.items.iter().filter_map(|d| serde_json::from_value::<Row>(d.clone()).ok()).collect();
    Ok(Body::Ok(html! {
        // The form stays out of `#live`: a block committing must not wipe what is being typed.
        section class="card" { (form(&q)) }
        div id="live" {
            section class="card" {
                p class="note" {
                    "Every transaction's receipt records the policy decision that let it run or refused it. "
                    "A decision is shown to the parties to its transaction and to supervisors; this viewer sees "
                    (rows.len()) " on this page (" (page.scanned_receipts) " receipts in "
                    (page.scanned_blocks) " blocks read)."
                }
                table id="decisions" {
                    thead { tr { th { "time" } th { "height" } th { "who asked" } th { "action" } th { "on" } th { "outcome" } th { "deciding policies" } th { "transaction" } } }
                    tbody {
                        @for r in &rows {
                            tr class={ "decision " (if r.allowed { "allowed" } else { "denied" }) } {
                                td { (time(r.time_ms)) }
                                td { (r.height) }
                                td { (names.link(store, &r.principal)) }
                                td { (r.action) }
                                td { (resource(&r.resource)) }
                                td class="outcome" { @if r.allowed { "allowed" } @else { "denied" } }
                                td { (r.determining.join(", ")) @if !r.reason.is_empty() { br; span class="muted reason" { (r.reason) } } }
                                td class="mono" title=(r.tx_hash) { (&r.tx_hash[..12]) "…" }
                            }
                        }
                    }
                }
                @if let Some((h, i)) = page.next {
                    p { a id="older" href=(older_link(&q, &format!("{h}.{i}"))) { "older decisions →" } }
                } @else {
                    p class="note" id="no-older" { "no older decisions match" }
                }
            }
            (policies(store, who)?)
        }
    }))
}

/// One decision as the search returns it.
#[derive(Debug, serde::Deserialize)]
struct Row {
    height: u64,
    time_ms: u64,
    tx_hash: String,
    action: String,
    principal: dpx_crypto::PublicKey,
    resource: String,
    allowed: bool,
    determining: Vec<String>,
    reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_link_keeps_the_filters_and_escapes_them() {
        let q = DecisionQuery {
            from_height: Some(3),
            action: Some("order".into()),
            outcome: Some("denied".into()),
            resource: Some("Product::\"ab\"&x=1".into()),
            principal: Some(String::new()),
            ..DecisionQuery::default()
        };
        assert_eq!(
            older_link(&q, "7.2"),
            "/console/decisions?resource=Product%3A%3A%22ab%22%26x%3D1&action=order&outcome=denied&from_height=3&before=7.2"
        );
        let q = without_empty(q);
        assert_eq!(q.principal, None);
        assert_eq!(q.outcome.as_deref(), Some("denied"));
    }
}
