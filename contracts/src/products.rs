//! The product registry (上架 / 下架): a provider lists a processed data product — never the
//! raw data — with category, domain, classification grade, price, a hash of its terms and the
//! conditions the policies check.
//!
//! Whether a product can be ordered and used is computed, never stored: [`availability`] reads
//! the product's listing and its provider's record as they are now, so a suspension, negative
//! listing or lowered rating takes a provider's products out of business at once, and a
//! reinstatement or new rating brings them back, without any flag to keep in step.

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError};
use crate::exec::Exec;
use crate::keys;
use crate::lifecycle::MAX_RETENTION_DAYS;
use crate::participants::load_participant;
use crate::policy::{Action, PolicyContext, Resource};
use crate::receipt::Event;
use crate::state::State;
use crate::types::{Category, ListStatus, MAX_GRADE, MAX_RATING, MAX_TEXT_BYTES, ProductId, Role};

/// Most purposes a product may restrict its grants to.
pub const MAX_PURPOSES: usize = 16;

/// Per-product conditions, evaluated by the policies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProductConditions {
    /// Consumers need at least this certification rating.
    pub min_consumer_rating: u8,
    /// Only whitelisted consumers may order or use it.
    pub whitelist_only: bool,
    /// If not empty, grants for this product must name one of these purposes.
    pub purposes: Vec<String>,
}

/// What a provider states about a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSpec {
    pub name: String,
    pub category: Category,
    /// Application domain: finance, transport, legal, education, tax, safety…
    pub domain: String,
    /// Data classification grade, 1 (open) to 4 (most restricted).
    pub grade: u8,
    /// Price in the smallest currency unit (fen).
    pub price: u64,
    /// blake3 of the product's terms document.
    pub terms_hash: Hash,
    #[serde(default)]
    pub conditions: ProductConditions,
    /// Days a buyer or consumer may keep the data delivered, 1..=`MAX_RETENTION_DAYS`; then
    /// its destruction is due (see the `lifecycle` module). `None`: no retention period.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

/// A product as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub id: ProductId,
    /// The provider's account key.
    pub provider: PublicKey,
    pub spec: ProductSpec,
    pub listed: bool,
    pub listed_height: u64,
    pub updated_height: u64,
    /// Incremented by every update.
    pub version: u32,
}

fn text_ok(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_TEXT_BYTES {
        return Err(format!("{what} must be 1..={MAX_TEXT_BYTES} bytes"));
    }
    Ok(())
}

impl ProductSpec {
    pub(crate) fn validate(&self) -> Result<(), String> {
        text_ok(&self.name, "product name")?;
        text_ok(&self.domain, "product domain")?;
        if !(1..=MAX_GRADE).contains(&self.grade) {
            return Err(format!("grade {} not in 1..={MAX_GRADE}", self.grade));
        }
        let c = &self.conditions;
        if c.min_consumer_rating > MAX_RATING {
            return Err(format!("min_consumer_rating above {MAX_RATING}"));
        }
        if c.purposes.len() > MAX_PURPOSES {
            return Err(format!("more than {MAX_PURPOSES} purposes"));
        }
        if let Some(d) = self.retention_days.filter(|d| !(1..=MAX_RETENTION_DAYS).contains(d)) {
            return Err(format!("retention_days {d} not in 1..={MAX_RETENTION_DAYS}"));
        }
        c.purposes.iter().try_for_each(|p| text_ok(p, "purpose"))
    }
}

impl Wire for ProductSpec {
    type Pb = pb::ProductSpec;
    const MAX_BYTES: usize = 8192;
    fn to_pb(&self) -> pb::ProductSpec {
        pb::ProductSpec {
            name: self.name.clone(),
            category: self.category.code(),
            domain: self.domain.clone(),
            grade: u32::from(self.grade),
            price: self.price,
            terms_hash: self.terms_hash.0.to_vec(),
            conditions: Some(pb::ProductConditions {
                min_consumer_rating: u32::from(self.conditions.min_consumer_rating),
                whitelist_only: self.conditions.whitelist_only,
                purposes: self.conditions.purposes.clone(),
            }),
            retention_days: self.retention_days,
        }
    }
    fn from_pb(p: pb::ProductSpec) -> Result<Self, DecodeError> {
        let c = p.conditions.unwrap_or_default();
        Ok(Self {
            name: p.name,
            category: Category::from_wire(p.category, "category")?,
            domain: p.domain,
            grade: codec::small(p.grade, "grade")?,
            price: p.price,
            terms_hash: codec::hash(&p.terms_hash, "terms_hash")?,
            conditions: ProductConditions {
                min_consumer_rating: codec::small(c.min_consumer_rating, "min_consumer_rating")?,
                whitelist_only: c.whitelist_only,
                purposes: c.purposes,
            },
            retention_days: p.retention_days,
        })
    }
}

impl Wire for Product {
    type Pb = pb::Product;
    const MAX_BYTES: usize = 8192;
    fn to_pb(&self) -> pb::Product {
        pb::Product {
            id: self.id.to_wire(),
            provider: self.provider.to_bytes().to_vec(),
            spec: Some(self.spec.to_pb()),
            listed: self.listed,
            listed_height: self.listed_height,
            updated_height: self.updated_height,
            version: self.version,
        }
    }
    fn from_pb(p: pb::Product) -> Result<Self, DecodeError> {
        Ok(Self {
            id: ProductId::from_wire(&p.id, "id")?,
            provider: codec::key(&p.provider, "provider")?,
            spec: ProductSpec::from_pb(codec::req(p.spec, "spec")?)?,
            listed: p.listed,
            listed_height: p.listed_height,
            updated_height: p.updated_height,
            version: p.version,
        })
    }
}

/// Whether a product can be ordered and used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Available,
    /// Taken down by its provider.
    Delisted,
    ProviderSuspended,
    ProviderNegativeListed,
    /// The provider's certification rating is below the product's grade.
    ProviderRatedBelowGrade,
    /// The provider's record is gone or no longer holds the provider role.
    ProviderNotAProvider,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Delisted => "delisted",
            Self::ProviderSuspended => "provider_suspended",
            Self::ProviderNegativeListed => "provider_negative_listed",
            Self::ProviderRatedBelowGrade => "provider_rated_below_grade",
            Self::ProviderNotAProvider => "provider_not_a_provider",
        }
    }
}

impl std::fmt::Display for Availability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `p`'s provider is in good standing for it: not suspended, not negative-listed, a
/// provider, rated at least the product's grade. `Available` if so (listing aside).
pub fn provider_standing<S: State + ?Sized>(
    st: &S,
    p: &Product,
) -> Result<Availability, ContractError> {
    let Some(provider) = load_participant(st, &p.provider)? else {
        return Ok(Availability::ProviderNotAProvider);
    };
    Ok(if provider.suspended {
        Availability::ProviderSuspended
    } else if provider.list_status == ListStatus::NegativeListed {
        Availability::ProviderNegativeListed
    } else if !provider.has_role(Role::Provider) {
        Availability::ProviderNotAProvider
    } else if provider.rating < p.spec.grade {
        Availability::ProviderRatedBelowGrade
    } else {
        Availability::Available
    })
}

/// Whether `p` can be ordered and used now: listed, and its provider in good standing.
pub fn availability<S: State + ?Sized>(st: &S, p: &Product) -> Result<Availability, ContractError> {
    if !p.listed {
        return Ok(Availability::Delisted);
    }
    provider_standing(st, p)
}

fn unavailable(p: &Product, a: Availability) -> ContractError {
    ContractError::WrongState {
        kind: "product",
        id: p.id.to_string(),
        state: a.to_string(),
        action: "this",
        expected: "a listed product of a provider in good standing".into(),
    }
}

/// Refuse unless `p`'s provider is in good standing (a delisted product passes: orders placed
/// before the delisting may still be served).
pub(crate) fn require_provider_standing<S: State + ?Sized>(
    x: &Exec<'_, S>,
    p: &Product,
) -> Result<(), ContractError> {
    match provider_standing(&x.st, p)? {
        Availability::Available => Ok(()),
        a => Err(unavailable(p, a)),
    }
}

/// A product that can be ordered and used now ([`availability`] is `Available`): listed, and
/// its provider neither suspended, negative-listed nor rated below its grade. Every order and
/// grant use goes through here.
pub(crate) fn load_listed<S: State + ?Sized>(
    x: &Exec<'_, S>,
    id: &ProductId,
) -> Result<Product, ContractError> {
    let p: Product = x.must(&keys::product(id), "product", id)?;
    match availability(&x.st, &p)? {
        Availability::Available => Ok(p),
        a => Err(unavailable(&p, a)),
    }
}

/// The signer's own listed product, whatever its standing: a downgraded provider may still
/// lower the grade to its rating, or delist.
fn own_listed<S: State + ?Sized>(
    x: &Exec<'_, S>,
    id: &ProductId,
) -> Result<Product, ContractError> {
    let p: Product = x.must(&keys::product(id), "product", id)?;
    if !p.listed {
        return Err(unavailable(&p, Availability::Delisted));
    }
    if p.provider != x.me()?.account {
        return Err(ContractError::forbidden(format!(
            "only the provider of product {id} may change it"
        )));
    }
    Ok(p)
}

fn product_event(kind: &str, p: &Product) -> Event {
    Event::new(kind)
        .attr("product", p.id)
        .attr("provider", p.provider)
        .attr("category", p.spec.category)
        .attr("grade", p.spec.grade)
        .attr("price", p.spec.price)
        .attr("terms_hash", p.spec.terms_hash)
}

pub(crate) fn list<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    spec: &ProductSpec,
) -> Result<(), ContractError> {
    let provider = x.me()?.account;
    let id = ProductId::derive(x.chain_id(), &x.signer, x.nonce);
    let h = x.height();
    let p = Product {
        id,
        provider,
        spec: spec.clone(),
        listed: true,
        listed_height: h,
        updated_height: h,
        version: 1,
    };
    x.authorize(Action::ListProduct, &Resource::Product(p.clone()), &PolicyContext::none())?;
    if x.st.get(&keys::product(&id)).is_some() {
        return Err(ContractError::conflict(format!("product {id} exists")));
    }
    x.store(keys::product(&id), &p);
    x.emit(product_event("product.listed", &p));
    Ok(())
}

pub(crate) fn update<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &ProductId,
    spec: &ProductSpec,
) -> Result<(), ContractError> {
    let mut p = own_listed(x, id)?;
    p.spec = spec.clone();
    p.version = p.version.saturating_add(1);
    p.updated_height = x.height();
    // The policy judges the product as it would be after the update (e.g. a raised grade).
    x.authorize(Action::UpdateProduct, &Resource::Product(p.clone()), &PolicyContext::none())?;
    x.store(keys::product(id), &p);
    x.emit(product_event("product.updated", &p).attr("version", p.version));
    Ok(())
}

pub(crate) fn delist<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &ProductId,
) -> Result<(), ContractError> {
    let mut p = own_listed(x, id)?;
    x.authorize(Action::DelistProduct, &Resource::Product(p.clone()), &PolicyContext::none())?;
    p.listed = false;
    p.updated_height = x.height();
    x.store(keys::product(id), &p);
    x.emit(product_event("product.delisted", &p));
    Ok(())
}

/// The catalogue view of a stored product: its JSON with the computed `availability` (see
/// [`availability`]) as of `st`. `None` if `value` is not a product.
pub fn catalogue_view<S: State + ?Sized>(st: &S, value: &[u8]) -> Option<serde_json::Value> {
    let p: Product = codec::decode(value).ok()?;
    let a = availability(st, &p).ok()?;
    let mut v = serde_json::to_value(&p).ok()?;
    v.as_object_mut()?.insert("availability".into(), serde_json::Value::from(a.as_str()));
    Some(v)
}
