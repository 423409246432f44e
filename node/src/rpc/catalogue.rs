//! `GET /v1/catalogue`: the supermarket's shelves — products searched by category, grade,
//! domain, provider, price and words of their name or domain. The general state list
//! (`/v1/state/products`) filters top-level fields only; a product's category, grade and
//! domain sit in its `spec`.
//!
//! Products are stored by id, so a search reads them in id order and keeps the matches: at
//! most [`SCAN_MAX`] products per request. A page cut short by that bound (or by the read
//! policy: a delisted product is for active participants) still names where to continue;
//! `next` is null only when the catalogue is exhausted.

use axum::Json;
use axum::extract::State;
use dpx_contracts::{Category, Product, keys};
use dpx_crypto::PublicKey;
use serde::Deserialize;
use serde_json::{Value, json};

use dpx_app::LatestState;
use dpx_app::views::render_state;

use super::auth::{Caller, Reader, read_ok};
use super::error::hex32;
use super::{ApiError, ApiQuery, ApiResult, AppState};
use dpx_contracts::read;

/// Most products one page holds.
pub const PAGE_MAX: usize = 200;
const PAGE_DEFAULT: usize = 50;
/// Most products one request reads.
pub const SCAN_MAX: usize = 10_000;
/// Longest domain or text filter, in bytes (a product's domain is at most 256).
const TEXT_MAX: usize = 256;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CatalogueQuery {
    /// `data_service`, `software`, `report` or `other`.
    pub category: Option<String>,
    /// Exactly this grade (1–4).
    pub grade: Option<u8>,
    /// At most this grade (1–4).
    pub grade_max: Option<u8>,
    /// Exactly this domain.
    pub domain: Option<String>,
    /// The provider's key (64 hex).
    pub provider: Option<String>,
    /// At most this price (minor units).
    pub price_max: Option<u64>,
    /// Words that must all appear in the name or the domain, case-insensitively.
    pub q: Option<String>,
    /// `true` (default): listed products; `false`: delisted ones; `any`: both.
    pub listed: Option<String>,
    /// The `next` cursor of the previous page (the last product id, 64 hex).
    pub after: Option<String>,
    pub limit: Option<usize>,
}

/// A checked search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub category: Option<Category>,
    pub grade: Option<u8>,
    pub grade_max: Option<u8>,
    pub domain: Option<String>,
    pub provider: Option<PublicKey>,
    pub price_max: Option<u64>,
    /// Lower-cased words.
    pub words: Vec<String>,
    /// `None`: listed or not.
    pub listed: Option<bool>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("bad_query", message)
}

fn text(name: &str, v: &str) -> ApiResult<String> {
    if v.trim().is_empty() || v.len() > TEXT_MAX {
        return Err(bad(format!("{name} must be 1..={TEXT_MAX} bytes, not blank")));
    }
    Ok(v.to_owned())
}

impl CatalogueQuery {
    /// The search, the id to continue after and the page size, or a 400 naming the parameter.
    pub fn check(&self) -> ApiResult<(Search, Option<[u8; 32]>, usize)> {
        let category = match &self.category {
            Some(c) => Some(
                (1..=16).filter_map(Category::from_code).find(|k| k.as_str() == c).ok_or_else(
                    || bad("category must be data_service, software, report or other"),
                )?,
            ),
            None => None,
        };
        for (name, g) in [("grade", self.grade), ("grade_max", self.grade_max)] {
            if g.is_some_and(|g| !(1..=4).contains(&g)) {
                return Err(bad(format!("{name} must be 1..=4")));
            }
        }
        let provider = match &self.provider {
            Some(p) => Some(
                PublicKey::from_bytes(&hex32("provider", p, "bad_query")?)
                    .map_err(|_| bad("provider is not a valid public key"))?,
            ),
            None => None,
        };
        let words = match &self.q {
            Some(q) => text("q", q)?.split_whitespace().map(str::to_lowercase).collect(),
            None => Vec::new(),
        };
        let listed = match self.listed.as_deref() {
            None | Some("true") => Some(true),
            Some("false") => Some(false),
            Some("any") => None,
            Some(_) => return Err(bad("listed must be true, false or any")),
        };
        let limit = self.limit.unwrap_or(PAGE_DEFAULT);
        if !(1..=PAGE_MAX).contains(&limit) {
            return Err(bad(format!("limit must be 1..={PAGE_MAX}")));
        }
        let after = self.after.as_deref().map(|a| hex32("after", a, "bad_cursor")).transpose()?;
        let search = Search {
            category,
            grade: self.grade,
            grade_max: self.grade_max,
            domain: self.domain.as_deref().map(|d| text("domain", d)).transpose()?,
            provider,
            price_max: self.price_max,
            words,
            listed,
        };
        Ok((search, after, limit))
    }
}

impl Search {
    pub fn matches(&self, p: &Product) -> bool {
        let s = &p.spec;
        let haystack = || format!("{} {}", s.name, s.domain).to_lowercase();
        self.category.is_none_or(|c| s.category == c)
            && self.grade.is_none_or(|g| s.grade == g)
            && self.grade_max.is_none_or(|g| s.grade <= g)
            && self.domain.as_ref().is_none_or(|d| &s.domain == d)
            && self.provider.is_none_or(|k| p.provider == k)
            && self.price_max.is_none_or(|m| s.price <= m)
            && self.listed.is_none_or(|l| p.listed == l)
            && (self.words.is_empty() || {
                let h = haystack();
                self.words.iter().all(|w| h.contains(w.as_str()))
            })
    }
}

/// The handler.
pub async fn search(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CatalogueQuery>,
) -> ApiResult<Json<Value>> {
    let (search, after, limit) = q.check()?;
    let reader = Reader::of(s.checker.is_opaque(), caller);
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        let st = LatestState::new(&store);
        let prefix = keys::PREFIX_PRODUCT;
        let mut cursor = after.map(|id| [prefix, &id[..]].concat());
        let (mut items, mut scanned, mut exhausted) = (Vec::new(), 0usize, false);
        'scan: while scanned < SCAN_MAX {
            let want = (SCAN_MAX - scanned).min(1000);
            let batch = store
                .scan_prefix(prefix, cursor.as_deref(), want)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if batch.len() < want {
                exhausted = true;
            }
            for (k, v) in batch {
                scanned += 1;
                cursor = Some(k.clone());
                let Some(p) = dpx_app::views::decode_view::<Product>(&k, &v) else { continue };
                if !search.matches(&p) || !reader.may(&read::state_access(&st, &k, &v)) {
                    continue;
                }
                items.extend(render_state(&k, &v));
                if items.len() == limit {
                    exhausted = false;
                    break 'scan;
                }
            }
            if exhausted {
                break;
            }
        }
        read_ok(&st)?;
        let next = if exhausted { None } else { cursor.map(|k| hex::encode(&k[prefix.len()..])) };
        // How many were read tells how many exist, the hidden ones included: for supervisors.
        let scanned = reader.sees_all().then_some(scanned);
        Ok(Json(json!({ "items": items, "next": next, "scanned": scanned })))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q() -> CatalogueQuery {
        CatalogueQuery::default()
    }

    #[test]
    fn bad_parameters_are_refused_with_the_reason() {
        let refused = |q: CatalogueQuery, code: &str, want: &str| {
            let e = q.check().unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, code));
            assert!(e.message.contains(want), "{want:?} not in {:?}", e.message);
        };
        refused(CatalogueQuery { category: Some("food".into()), ..q() }, "bad_query", "category");
        refused(CatalogueQuery { grade: Some(0), ..q() }, "bad_query", "grade");
        refused(CatalogueQuery { grade_max: Some(5), ..q() }, "bad_query", "grade_max");
        refused(CatalogueQuery { provider: Some("00".into()), ..q() }, "bad_query", "provider");
        refused(CatalogueQuery { q: Some("  ".into()), ..q() }, "bad_query", "q");
        refused(
            CatalogueQuery { domain: Some("d".repeat(TEXT_MAX + 1)), ..q() },
            "bad_query",
            "domain",
        );
        refused(CatalogueQuery { listed: Some("yes".into()), ..q() }, "bad_query", "listed");
        refused(CatalogueQuery { limit: Some(0), ..q() }, "bad_query", "limit");
        refused(CatalogueQuery { limit: Some(PAGE_MAX + 1), ..q() }, "bad_query", "limit");
        refused(CatalogueQuery { after: Some("zz".repeat(32)), ..q() }, "bad_cursor", "after");
    }

    #[test]
    fn a_search_matches_on_every_field_it_names() {
        use dpx_contracts::{ProductConditions, ProductId, ProductSpec};
        let provider = dpx_crypto::Keypair::from_seed([7; 32]).public();
        let p = Product {
            id: ProductId(dpx_crypto::Hash([1; 32])),
            provider,
            spec: ProductSpec {
                name: "Traffic Flow, hourly".into(),
                category: Category::DataService,
                domain: "transport".into(),
                grade: 2,
                price: 500,
                terms_hash: dpx_crypto::Hash([2; 32]),
                conditions: ProductConditions::default(),
                retention_days: None,
            },
            listed: true,
            listed_height: 1,
            updated_height: 1,
            version: 0,
        };
        let (all, _, _) = q().check().unwrap();
        assert!(all.matches(&p));
        let yes = |q: CatalogueQuery| assert!(q.check().unwrap().0.matches(&p), "{q:?}");
        let no = |q: CatalogueQuery| assert!(!q.check().unwrap().0.matches(&p), "{q:?}");
        yes(CatalogueQuery { category: Some("data_service".into()), ..q() });
        no(CatalogueQuery { category: Some("report".into()), ..q() });
        yes(CatalogueQuery { grade: Some(2), grade_max: Some(2), ..q() });
        no(CatalogueQuery { grade_max: Some(1), ..q() });
        no(CatalogueQuery { grade: Some(3), ..q() });
        yes(CatalogueQuery { domain: Some("transport".into()), ..q() });
        no(CatalogueQuery { domain: Some("Transport".into()), ..q() });
        yes(CatalogueQuery { provider: Some(provider.to_hex()), ..q() });
        yes(CatalogueQuery { price_max: Some(500), ..q() });
        no(CatalogueQuery { price_max: Some(499), ..q() });
        yes(CatalogueQuery { q: Some("flow TRANSPORT".into()), ..q() });
        no(CatalogueQuery { q: Some("flow weather".into()), ..q() });
        no(CatalogueQuery { listed: Some("false".into()), ..q() });
        yes(CatalogueQuery { listed: Some("any".into()), ..q() });
    }
}
