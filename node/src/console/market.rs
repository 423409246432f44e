//! The Market page (participants by role and status, products by grade and category with their
//! providers, open demands, orders by state) and the pages of one participant and one product.
//! Each shows only records the viewer may read; counts are over those records.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use dpx_contracts::{
    Category, DemandStatus, GrantRecord, ListStatus, Order, OrderStatus, Participant, Product,
    ProductId, Role, UsageReceipt, keys,
};
use dpx_contracts::{Demand, State as _};
use dpx_crypto::PublicKey;
use dpx_ledger::Store;
use maud::{Markup, html};

use super::page::{hidden, showing, time};
use super::{Body, LIST_MAX, Names, Who, decode, scan};
use dpx_app::LatestState;

/// The records of one kind the viewer may read, from one bounded scan.
pub(crate) struct Visible<T> {
    pub items: Vec<(Vec<u8>, T)>,
    /// Whether the scan reached the end of the kind. How many records it saw is not kept:
    /// the number of records a viewer may not read (grants, orders) is not the viewer's to
    /// know either.
    pub complete: bool,
}

pub(crate) fn visible<T: serde::de::DeserializeOwned>(
    store: &Store,
    who: &Who,
    prefix: &[u8],
    keep: impl Fn(&T) -> bool,
) -> anyhow::Result<Visible<T>> {
    let scanned = scan(store, prefix)?;
    let st = LatestState::new(store);
    let mut items = Vec::new();
    for (k, v) in &scanned.entries {
        if !who.may(&st, k, v) {
            continue;
        }
        if let Some(t) = decode::<T>(k, v)
            && keep(&t)
        {
            items.push((k.clone(), t));
        }
    }
    crate::rpc::auth::read_ok(&st).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(Visible { items, complete: scanned.complete })
}

fn status_of(p: &Participant) -> &'static str {
    if p.suspended {
        "suspended"
    } else if p.list_status == ListStatus::NegativeListed {
        "negative-listed"
    } else if p.list_status == ListStatus::Whitelisted {
        "white-listed"
    } else {
        "admitted"
    }
}

fn roles(p: &Participant) -> String {
    p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

/// The Market page; `tail` goes at the end of its live part.
pub fn market(store: &Store, who: &Who, tail: &Markup) -> anyhow::Result<Markup> {
    let mut names = Names::default();
    let parts = visible::<Participant>(store, who, keys::PREFIX_PARTICIPANT, |_| true)?;
    let prods = visible::<Product>(store, who, keys::PREFIX_PRODUCT, |_| true)?;
    let demands = visible::<Demand>(store, who, keys::PREFIX_DEMAND, |_| true)?;
    let orders = visible::<Order>(store, who, keys::PREFIX_ORDER, |_| true)?;
    let by_role: BTreeMap<Role, usize> = Role::ALL
        .iter()
        .map(|r| (*r, parts.items.iter().filter(|(_, p)| p.has_role(*r)).count()))
        .collect();
    let count = |f: &dyn Fn(&Participant) -> bool| parts.items.iter().filter(|(_, p)| f(p)).count();
    let open: Vec<&Demand> =
        demands.items.iter().map(|(_, d)| d).filter(|d| d.status == DemandStatus::Open).collect();
    let st = LatestState::new(store);
    Ok(html! {
        div id="live" {
            section class="card" id="participants" {
                h2 { "Participants" }
                div class="stats" {
                    @for (role, n) in &by_role {
                        div class="stat" { span class="muted" { (role.as_str()) } b { (n) } }
                    }
                }
                table {
                    thead { tr { th { "admitted" } th { "active" } th { "rated" } th { "white-listed" } th { "negative-listed" } th { "suspended" } } }
                    tbody { tr {
                        td { (parts.items.len()) }
                        td { (count(&|p| !p.is_barred())) }
                        td { (count(&|p| p.rating > 0)) }
                        td { (count(&|p| p.list_status == ListStatus::Whitelisted)) }
                        td { (count(&|p| p.list_status == ListStatus::NegativeListed)) }
                        td { (count(&|p| p.suspended)) }
                    } }
                }
                h2 { "Register" }
                (register(&parts.items.iter().map(|(_, p)| p).take(LIST_MAX).collect::<Vec<_>>()))
                (showing(parts.items.len().min(LIST_MAX), parts.items.len(), parts.complete, "participants"))
            }
            section class="card" id="products" {
                h2 { "Products by grade and category" }
                table {
                    thead { tr { th { "grade" } @for c in Category::ALL { th { (c.as_str()) } } th { "total" } } }
                    tbody {
                        @for g in 1..=dpx_contracts::MAX_GRADE {
                            tr {
                                td { (g) }
                                @for c in Category::ALL {
                                    td { (prods.items.iter().filter(|(_, p)| p.spec.grade == g && p.spec.category == *c).count()) }
                                }
                                td { (prods.items.iter().filter(|(_, p)| p.spec.grade == g).count()) }
                            }
                        }
                    }
                }
                h2 { "Catalogue" }
                table id="product-list" {
                    thead { tr { th { "product" } th { "provider" } th { "category" } th { "domain" } th { "grade" } th { "price" } th { "availability" } } }
                    tbody {
                        @for (_, p) in prods.items.iter().take(super::LIST_MAX) {
                            tr {
                                td { a href={ "/console/products/" (p.id) } { (p.spec.name) } }
                                td { (names.link(store, &p.provider)) }
                                td { (p.spec.category.as_str()) }
                                td { (p.spec.domain) }
                                td { (p.spec.grade) }
                                td { (p.spec.price) }
                                td { (dpx_contracts::availability(&st, p).map_or_else(|e| e.to_string(), |a| a.to_string())) }
                            }
                        }
                    }
                }
                (showing(prods.items.len().min(LIST_MAX), prods.items.len(), prods.complete, "products"))
            }
            section class="card" id="demands" {
                h2 { "Open demands" }
                @if !who.reader.may(&dpx_contracts::read::Access::Participants) {
                    p class="note" id="demands-hidden" { "Demands are visible to active participants only." }
                }
                table {
                    thead { tr { th { "title" } th { "domain" } th { "budget" } th { "responses" } th { "poster" } th { "deadline" } } }
                    tbody {
                        @for d in open.iter().take(LIST_MAX) {
                            tr {
                                td { (d.title) } td { (d.domain) } td { (d.budget) } td { (d.responses) }
                                td { (names.link(store, &d.poster)) }
                                td { (d.deadline_ms.map_or_else(|| "none".to_owned(), time)) }
                            }
                        }
                    }
                }
                (showing(open.len().min(LIST_MAX), open.len(), demands.complete, "open demands"))
            }
            section class="card" id="orders" {
                h2 { "Orders by state" }
                (order_counts(&orders.items.iter().map(|(_, o)| o).collect::<Vec<_>>()))
                p class="note" { "Orders are seen by their buyer, provider and the grant's subject, and by supervisors: counts cover the " (orders.items.len()) " this viewer may read." }
            }
            (tail)
        }
    })
}

/// The participants' table (names are anyone's choice: maud escapes them).
fn register(parts: &[&Participant]) -> Markup {
    html! {
        table id="participant-list" {
            thead { tr { th { "name" } th { "roles" } th { "rating" } th { "status" } th { "admitted at" } } }
            tbody {
                @for p in parts {
                    tr {
                        td { (super::page::participant_link(&p.account, Some(&p.name))) }
                        td { (roles(p)) }
                        td { (p.rating) }
                        td class=[(p.is_barred()).then_some("bad")] { (status_of(p)) }
                        td { "height " (p.admitted_height) }
                    }
                }
            }
        }
    }
}

fn order_counts(orders: &[&Order]) -> Markup {
    let settled: u64 = orders.iter().filter_map(|o| o.settlement_amount).sum();
    html! {
        table class="order-counts" {
            thead { tr { @for s in OrderStatus::ALL { th { (s.as_str()) } } th { "settled amount" } } }
            tbody { tr {
                @for s in OrderStatus::ALL { td { (orders.iter().filter(|o| o.status == *s).count()) } }
                td { (settled) }
            } }
        }
    }
}

fn not_found(what: &str) -> Body {
    Body::Status(StatusCode::NOT_FOUND, html! { div class="hidden-box" id="not-found" { (what) } })
}

pub fn participant(store: &Store, who: &Who, key_hex: &str) -> anyhow::Result<Body> {
    let Ok(account) = key_hex.parse::<PublicKey>() else {
        return Ok(not_found("not a participant key (64 hex characters)"));
    };
    let st = LatestState::new(store);
    let k = keys::participant(&account);
    let Some(v) = st.get(&k) else {
        return Ok(not_found("no participant has this account key"));
    };
    let Some(p) = decode::<Participant>(&k, &v) else {
        anyhow::bail!("the participant record does not decode");
    };
    let mut names = Names::default();
    let products = super::market::visible::<Product>(store, who, keys::PREFIX_PRODUCT, |x| {
        x.provider == account
    })?;
    let orders = visible::<Order>(store, who, keys::PREFIX_ORDER, |o| {
        o.buyer == account || o.provider == account
    })?;
    let grants = visible::<GrantRecord>(store, who, keys::PREFIX_GRANT, |g| {
        g.grant.as_ref().is_some_and(|sg| sg.grant.consumer == account)
    })?;
    Ok(Body::Ok(html! {
        div id="live" {
            section class="card" id="profile" {
                h2 id="participant-name" { (p.name) }
                table {
                    tr { th { "account" } td class="mono" { (p.account.to_hex()) } }
                    tr { th { "current key" } td class="mono" { (p.current_key.to_hex()) } }
                    tr { th { "roles" } td { (roles(&p)) } }
                    tr { th { "rating" } td { (p.rating) } }
                    tr { th { "status" } td { (status_of(&p)) @if p.suspended { " — " (p.suspension_reason) } } }
                    tr { th { "admitted by" } td { (names.link(store, &p.admitted_by)) " at height " (p.admitted_height) } }
                    tr { th { "last change" } td { "height " (p.updated_height) } }
                }
            }
            section class="card" {
                h2 { "Products it provides" }
                table { tbody {
                    @for (_, x) in products.items.iter().take(LIST_MAX) {
                        tr { td { a href={ "/console/products/" (x.id) } { (x.spec.name) } } td { "grade " (x.spec.grade) } td { (x.spec.category.as_str()) } td { @if x.listed { "listed" } @else { "delisted" } } }
                    }
                } }
                (showing(products.items.len().min(LIST_MAX), products.items.len(), products.complete, "products"))
            }
            section class="card" {
                h2 { "Orders it is party to (those this viewer may read)" }
                (order_counts(&orders.items.iter().map(|(_, o)| o).collect::<Vec<_>>()))
            }
            section class="card" {
                h2 { "Grants it holds as consumer (those this viewer may read)" }
                (super::grants::grant_table(store, &mut names, &grants.items))
                (showing(grants.items.len().min(LIST_MAX), grants.items.len(), grants.complete, "readable grants"))
            }
        }
    }))
}

pub fn product(store: &Store, who: &Who, id_hex: &str) -> anyhow::Result<Body> {
    let Ok(id) = id_hex.parse::<dpx_crypto::Hash>() else {
        return Ok(not_found("not a product id (64 hex characters)"));
    };
    let id = ProductId(id);
    let st = LatestState::new(store);
    let k = keys::product(&id);
    let v = st.get(&k);
    let access = match &v {
        Some(v) => dpx_contracts::read::state_access(&st, &k, v),
        None => dpx_contracts::read::absent_access(&k),
    };
    if !who.reader.may(&access) {
        return Ok(Body::Status(StatusCode::FORBIDDEN, hidden("This product")));
    }
    let Some(v) = v else { return Ok(not_found("no product has this id")) };
    let Some(p) = decode::<Product>(&k, &v) else {
        anyhow::bail!("the product record does not decode");
    };
    let mut names = Names::default();
    let orders = visible::<Order>(store, who, keys::PREFIX_ORDER, |o| o.product == id)?;
    let uses = visible::<UsageReceipt>(store, who, keys::PREFIX_USAGE, |u| u.product == id)?;
    let availability =
        dpx_contracts::availability(&st, &p).map_or_else(|e| e.to_string(), |a| a.to_string());
    Ok(Body::Ok(html! {
        div id="live" {
            section class="card" id="product" {
                h2 id="product-name" { (p.spec.name) }
                table {
                    tr { th { "id" } td class="mono" { (p.id) } }
                    tr { th { "provider" } td { (names.link(store, &p.provider)) } }
                    tr { th { "category / domain" } td { (p.spec.category.as_str()) " / " (p.spec.domain) } }
                    tr { th { "grade" } td { (p.spec.grade) } }
                    tr { th { "price" } td { (p.spec.price) } }
                    tr { th { "terms hash" } td class="mono" { (p.spec.terms_hash) } }
                    tr { th { "listed" } td { (p.listed) " (since height " (p.listed_height) ", version " (p.version) ")" } }
                    tr { th { "availability" } td id="availability" { (availability) } }
                }
            }
            section class="card" {
                h2 { "Orders (those this viewer may read)" }
                (order_counts(&orders.items.iter().map(|(_, o)| o).collect::<Vec<_>>()))
            }
            section class="card" {
                h2 { "Grant uses (those this viewer may read)" }
                table { tbody {
                    @for (_, u) in uses.items.iter().take(LIST_MAX) {
                        tr {
                            td { a href={ "/console/grants/" (u.grant) } class="mono" { (u.grant) } }
                            td { (names.link(store, &u.consumer)) }
                            td { (u.purpose) }
                            td { "height " (u.height) ", " (time(u.time_ms)) }
                        }
                    }
                } }
                (showing(uses.items.len().min(LIST_MAX), uses.items.len(), uses.complete, "readable usage receipts"))
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::Keypair;

    const HOSTILE: &str = "<script>alert(1)</script><img src=x onerror=\"alert(2)\">&amp;";

    fn hostile() -> Participant {
        let k = Keypair::from_seed([9; 32]).public();
        Participant {
            account: k,
            current_key: k,
            name: HOSTILE.to_owned(),
            roles: vec![Role::Consumer],
            rating: 0,
            list_status: ListStatus::Normal,
            suspended: true,
            suspension_reason: "</td><script>x()</script>".to_owned(),
            admitted_by: k,
            admitted_height: 3,
            updated_height: 3,
        }
    }

    #[test]
    fn hostile_names_render_as_text() {
        let p = hostile();
        let html = register(&[&p]).into_string();
        assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=&quot;alert(2)&quot;&gt;&amp;amp;"), "{html}");
        // In the frame too: the signed-in name in the header.
        let who = Who { name: Some(HOSTILE.to_owned()), ..Who::anonymous() };
        let page = super::super::page::page(
            HOSTILE,
            "/console",
            &Who { key: Some(p.account), ..who },
            &register(&[&p]),
        )
        .into_string();
        assert_eq!(page.matches("<script").count(), 1, "only the page's own script: {page}");
        assert!(!page.contains("<img"));
    }
}
