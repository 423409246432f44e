//! `GET /v1/decisions`: search the policy decisions the ledger recorded (every transaction's
//! receipt carries the decision that let it run or refused it), newest first, by who asked,
//! what for, on what, and how it ended.
//!
//! There is no index behind it: a page walks receipts down from the tip (or from the cursor),
//! at most [`SCAN_RECEIPTS_MAX`] receipts and [`SCAN_BLOCKS_MAX`] blocks per request, so a
//! search whose matches are rare answers a short (even empty) page with a `next` cursor to go
//! on from; `next` is null only when the range is exhausted. A decision is shown to whoever
//! may read its transaction (its parties and the supervisors, as `GET /v1/txs/{hash}`);
//! others' decisions are skipped as if absent.

use axum::Json;
use axum::extract::State;
use dpx_contracts::{Receipt, read::Access};
use dpx_crypto::PublicKey;
use dpx_ledger::Store;
use serde::Deserialize;
use serde_json::{Value, json};

use dpx_app::LatestState;

use super::auth::{Caller, Reader, read_ok};
use super::error::hex32;
use super::{ApiError, ApiQuery, ApiResult, AppState};

/// Most decisions one page holds.
pub const PAGE_MAX: usize = 200;
const PAGE_DEFAULT: usize = 50;
/// Most receipts one request reads.
pub const SCAN_RECEIPTS_MAX: usize = 20_000;
/// Most blocks one request reads (empty ones included).
pub const SCAN_BLOCKS_MAX: u64 = 5_000;
/// Longest action name accepted in a filter (the longest Cedar action is far shorter).
const ACTION_MAX: usize = 64;
/// Longest resource uid accepted in a filter: a type name and a quoted 64-hex id.
const RESOURCE_MAX: usize = 160;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    /// The account that asked (64 hex).
    pub principal: Option<String>,
    /// The product decided on (64 hex): shorthand for `resource=Product::"<hex>"`.
    pub product: Option<String>,
    /// The Cedar resource uid, exactly.
    pub resource: Option<String>,
    /// The Cedar action, exactly (e.g. `order`, `use_grant`).
    pub action: Option<String>,
    /// `allowed` or `denied`.
    pub outcome: Option<String>,
    /// Lowest height searched (default 1).
    pub from_height: Option<u64>,
    /// Highest height searched (default the tip).
    pub to_height: Option<u64>,
    /// The `next` cursor of the previous page: `<height>.<index>`, exclusive.
    pub before: Option<String>,
    pub limit: Option<usize>,
}

/// A parsed, checked search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub principal: Option<PublicKey>,
    pub resource: Option<String>,
    pub action: Option<String>,
    pub allowed: Option<bool>,
}

impl Filter {
    fn matches(&self, r: &Receipt) -> bool {
        let Some(d) = &r.decision else { return false };
        self.principal.is_none_or(|p| d.principal == p)
            && self.resource.as_ref().is_none_or(|x| &d.resource == x)
            && self.action.as_ref().is_none_or(|x| &d.action == x)
            && self.allowed.is_none_or(|a| d.allowed == a)
    }
}

/// Where a page starts: below `(height, index)`, down to `floor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub height: u64,
    /// Only receipts with a smaller index in the block at `height` (`u32::MAX`: all).
    pub index: u32,
    pub floor: u64,
}

/// One page: the decisions, and where the next page starts (`None`: the range is exhausted).
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Value>,
    pub next: Option<(u64, u32)>,
    pub scanned_receipts: usize,
    pub scanned_blocks: u64,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_query", message)
}

/// A `<height>.<index>` cursor.
pub fn parse_cursor(s: &str) -> ApiResult<(u64, u32)> {
    let refuse =
        || ApiError::bad_request("bad_cursor", "before must be <height>.<index>, as a page's next");
    let (h, i) = s.split_once('.').ok_or_else(refuse)?;
    // Digits only: `u64::from_str` would also take a sign.
    if h.is_empty() || i.is_empty() || !(h.bytes().chain(i.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    Ok((h.parse().map_err(|_| refuse())?, i.parse().map_err(|_| refuse())?))
}

impl DecisionQuery {
    /// The filter and the range to search below `tip`, or a 400 naming the bad parameter.
    pub fn check(&self, tip: u64) -> ApiResult<(Filter, Range, usize)> {
        let principal = match &self.principal {
            Some(p) => Some(
                PublicKey::from_bytes(&hex32("principal", p, "bad_query")?)
                    .map_err(|_| bad("principal is not a valid public key"))?,
            ),
            None => None,
        };
        let resource = match (&self.product, &self.resource) {
            (Some(_), Some(_)) => return Err(bad("give product or resource, not both")),
            (Some(p), None) => {
                Some(format!("Product::\"{}\"", hex::encode(hex32("product", p, "bad_query")?)))
            }
            (None, Some(r)) if r.is_empty() || r.len() > RESOURCE_MAX => {
                return Err(bad(format!("resource must be 1..={RESOURCE_MAX} bytes")));
            }
            (None, r) => r.clone(),
        };
        if let Some(a) = &self.action
            && (a.is_empty() || a.len() > ACTION_MAX)
        {
            return Err(bad(format!("action must be 1..={ACTION_MAX} bytes")));
        }
        let allowed = match self.outcome.as_deref() {
            None => None,
            Some("allowed") => Some(true),
            Some("denied") => Some(false),
            Some(_) => return Err(bad("outcome must be allowed or denied")),
        };
        let limit = self.limit.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&limit) {
            return Err(bad(format!("limit must be 1..={PAGE_MAX}")));
        }
        let floor = self.from_height.unwrap_or(1).max(1);
        let top = self.to_height.unwrap_or(tip).min(tip);
        if let (Some(f), Some(t)) = (self.from_height, self.to_height)
            && f > t
        {
            return Err(bad("from_height is above to_height"));
        }
        let (height, index) = match &self.before {
            Some(c) => {
                let (h, i) = parse_cursor(c)?;
                if h > top { (top, u32::MAX) } else { (h, i) }
            }
            None => (top, u32::MAX),
        };
        let filter = Filter { principal, resource, action: self.action.clone(), allowed };
        Ok((filter, Range { height, index, floor }, limit))
    }
}

/// Walks receipts down from `range`, keeping the decisions `filter` matches and `visible`
/// lets through, until `limit` are found or a scan bound is reached.
pub fn search(
    store: &Store,
    filter: &Filter,
    range: Range,
    limit: usize,
    mut visible: impl FnMut(&[u8], &[u8]) -> bool,
) -> anyhow::Result<Page> {
    let mut page = Page::default();
    let mut h = range.height;
    let mut first = true;
    while h >= range.floor && h > 0 {
        if page.scanned_blocks == SCAN_BLOCKS_MAX || page.scanned_receipts >= SCAN_RECEIPTS_MAX {
            // Everything above `h` has been read.
            page.next = Some((h, u32::MAX));
            return Ok(page);
        }
        page.scanned_blocks += 1;
        let receipts = store.receipts(h)?;
        let below = if first { range.index } else { u32::MAX };
        first = false;
        let time_ms = store.header(h)?.map_or(0, |hd| hd.time_ms);
        let top = receipts.len().min(below as usize);
        for i in (0..top).rev() {
            if page.scanned_receipts >= SCAN_RECEIPTS_MAX {
                // A block can hold more receipts than the bound: stop inside it.
                page.next = Some((h, i as u32 + 1));
                return Ok(page);
            }
            page.scanned_receipts += 1;
            let Ok(r) = Receipt::decode(&receipts[i]) else { continue };
            if !filter.matches(&r) {
                continue;
            }
            let tx = store.tx(&r.tx_hash)?.map(|(_, _, t)| t).unwrap_or_default();
            if !visible(&tx, &receipts[i]) {
                continue;
            }
            let mut item = serde_json::to_value(&r.decision).unwrap_or(Value::Null);
            if let Some(m) = item.as_object_mut() {
                m.insert("height".into(), json!(h));
                m.insert("index".into(), json!(i));
                m.insert("time_ms".into(), json!(time_ms));
                m.insert("tx_hash".into(), json!(r.tx_hash.to_string()));
                m.insert("code".into(), json!(r.code.as_str()));
            }
            page.items.push(item);
            if page.items.len() == limit {
                page.next = (i > 0 || h > range.floor).then_some((h, i as u32));
                return Ok(page);
            }
        }
        h -= 1;
    }
    Ok(page)
}

/// The handler.
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DecisionQuery>,
) -> ApiResult<Json<Value>> {
    let (filter, range, limit) = q.check(s.store.tip_height())?;
    let reader = Reader::of(s.checker.is_opaque(), caller);
    let store = s.store.clone();
    let page = tokio::task::spawn_blocking(move || {
        let st = LatestState::new(&store);
        let page = search(&store, &filter, range, limit, |tx, receipt| {
            reader.sees_all() || reader.may(&visible_to(&st, tx, receipt))
        });
        read_ok(&st)?;
        page.map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(json!({
        "items": page.items,
        "next": page.next.map(|(h, i)| format!("{h}.{i}")),
        "scanned": { "blocks": page.scanned_blocks, "receipts": page.scanned_receipts },
    })))
}

fn visible_to(st: &LatestState<'_>, tx: &[u8], receipt: &[u8]) -> Access {
    crate::events::tx_access(st, tx, Some(receipt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> DecisionQuery {
        DecisionQuery::default()
    }

    #[test]
    fn cursors_are_height_dot_index_and_nothing_else() {
        assert_eq!(parse_cursor("12.3").unwrap(), (12, 3));
        assert_eq!(parse_cursor("0.0").unwrap(), (0, 0));
        assert_eq!(
            parse_cursor(&format!("{}.{}", u64::MAX, u32::MAX)).unwrap(),
            (u64::MAX, u32::MAX)
        );
        for bad in [
            "",
            ".",
            "12",
            "12.",
            ".3",
            "+1.2",
            "1.-2",
            "a.b",
            "1.2.3",
            "18446744073709551616.0",
            "1.4294967296",
            " 1.2",
        ] {
            let e = parse_cursor(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "bad_cursor"), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Any text is refused or parsed, never a panic; what parses is exactly digits, a dot,
        /// digits, and a cursor a page gave back parses to itself.
        #[test]
        fn any_cursor_text_is_parsed_or_refused(text in "\\PC{0,40}", h in proptest::prelude::any::<u64>(), i in proptest::prelude::any::<u32>()) {
            let shaped = text.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
            });
            if parse_cursor(&text).is_ok() {
                proptest::prop_assert!(shaped, "{text:?} parsed");
            }
            proptest::prop_assert_eq!(parse_cursor(&format!("{h}.{i}")).unwrap(), (h, i));
        }

        /// Hostile values in every field: a checked search or a 400, never a panic.
        #[test]
        fn any_query_is_checked_or_refused(
            principal in proptest::option::of("\\PC{0,70}"),
            product in proptest::option::of("[0-9a-f]{0,70}"),
            action in proptest::option::of("\\PC{0,70}"),
            outcome in proptest::option::of("\\PC{0,10}"),
            from_height in proptest::option::of(proptest::prelude::any::<u64>()),
            to_height in proptest::option::of(proptest::prelude::any::<u64>()),
            before in proptest::option::of("[0-9.]{0,30}"),
            limit in proptest::option::of(proptest::prelude::any::<usize>()),
            tip in proptest::prelude::any::<u64>(),
        ) {
            let q = DecisionQuery { principal, product, resource: None, action, outcome, from_height, to_height, before, limit };
            if let Ok((_, r, limit)) = q.check(tip) {
                proptest::prop_assert!(r.height <= tip && (1..=PAGE_MAX).contains(&limit));
            }
        }
    }

    #[test]
    fn bad_parameters_are_refused_with_the_reason() {
        let refused = |q: DecisionQuery, want: &str| {
            let e = q.check(10).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "bad_query"));
            assert!(e.message.contains(want), "{want:?} not in {:?}", e.message);
        };
        refused(DecisionQuery { principal: Some("zz".into()), ..q() }, "principal");
        refused(DecisionQuery { product: Some("ab".repeat(33)), ..q() }, "product");
        refused(
            DecisionQuery { product: Some("ab".repeat(32)), resource: Some("x".into()), ..q() },
            "not both",
        );
        refused(DecisionQuery { resource: Some("x".repeat(RESOURCE_MAX + 1)), ..q() }, "resource");
        refused(DecisionQuery { action: Some(String::new()), ..q() }, "action");
        refused(DecisionQuery { outcome: Some("maybe".into()), ..q() }, "outcome");
        refused(DecisionQuery { limit: Some(0), ..q() }, "limit");
        refused(DecisionQuery { limit: Some(PAGE_MAX + 1), ..q() }, "limit");
        refused(DecisionQuery { from_height: Some(5), to_height: Some(4), ..q() }, "from_height");
    }

    #[test]
    fn ranges_start_at_the_tip_or_the_cursor() {
        let (f, r, limit) = q().check(10).unwrap();
        assert_eq!(
            (f, r, limit),
            (Filter::default(), Range { height: 10, index: u32::MAX, floor: 1 }, PAGE_DEFAULT)
        );
        // A range above the tip is cut to it; a cursor above the range starts at its top.
        let (_, r, _) = DecisionQuery { to_height: Some(99), before: Some("50.2".into()), ..q() }
            .check(10)
            .unwrap();
        assert_eq!(r, Range { height: 10, index: u32::MAX, floor: 1 });
        let (_, r, _) = DecisionQuery { from_height: Some(3), before: Some("7.2".into()), ..q() }
            .check(10)
            .unwrap();
        assert_eq!(r, Range { height: 7, index: 2, floor: 3 });
        let (f, _, _) = DecisionQuery {
            product: Some("ab".repeat(32)),
            outcome: Some("denied".into()),
            action: Some("order".into()),
            ..q()
        }
        .check(10)
        .unwrap();
        assert_eq!(
            f.resource.as_deref(),
            Some(format!("Product::\"{}\"", "ab".repeat(32)).as_str())
        );
        assert_eq!((f.allowed, f.action.as_deref()), (Some(false), Some("order")));
    }
}
