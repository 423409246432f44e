//! Trades, and the records of the life-cycle attestations of the data received (the rules of
//! the life cycle — stages in order, retention, overdue destruction, review — are in the
//! `lifecycle` module): in short, collected → transmitted → stored → (processed | shared
//! onward)* → destroyed, destruction last and once, each attestation reviewable once by a
//! regulator.
//!
//! **An order's life cycle**, and where its money is at each step (see the `money` module):
//!
//! ```text
//! ordered ──accept──► accepted ──deliver──► delivered ──confirm──► settled
//!    │                   │                      │
//!    └─cancel─► cancelled ◄─cancel─┘            └─dispute─► disputed ─resolve(share)─► settled
//!                   ▲                                           │
//!                   └─────────────────resolve(None)─────────────┘
//!
//! accept        buyer's balance ──price──► escrow              (fee rate fixed on the order)
//! confirm       escrow ──► provider − fee, fee ──► treasury
//! cancel        escrow ──► buyer                               (nothing held before accept)
//! resolve       share ──► provider − fee(share), fee ──► treasury, escrow − share ──► buyer
//! ```
//!
//! - **Accept** takes the order price from the buyer's balance into escrow (refused, changing
//!   nothing, when the buyer holds less) and fixes the platform fee rate on the order, so a
//!   later governance change does not alter it. A suspended or negative-listed buyer's order
//!   is not accepted (it can only be cancelled).
//! - **Confirm** by the buyer settles: the whole escrow is released to the provider minus the
//!   fee. Nobody types a settlement amount: the former operator's `settle_order`, whose number
//!   created money out of nothing, is retired (its wire field is reserved), and the status
//!   `confirmed` is no longer reached.
//! - **Cancel** (either party, before delivery) refunds the escrow, if any.
//! - **Dispute** (either party, after delivery) freezes the escrow until an operator's
//!   **ruling** (`resolve_dispute`): `settle_amount` is the provider's share of the escrow
//!   (at most the escrow; the fee is charged on that share only), the rest is refunded;
//!   `None` refunds everything and cancels.
//! - An order placed against a **demand** the buyer posted and awarded to the product's
//!   provider takes the awarded response's price and proposal (as its terms) instead of the
//!   product's list price and terms, and closes the demand, so it leads to one order only.
//!   If the response named a product, the order must be for that product.

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::demands::{Demand, DemandResponse};
use crate::error::{ContractError, DecodeError};
use crate::exec::Exec;
use crate::grants::{self, UseRequest};
use crate::keys;
use crate::lifecycle::{self, Review};
use crate::money::{self, Release};
use crate::ops::Operation;
use crate::participants::Participant;
use crate::policy::{Action, PolicyContext, Resource};
use crate::products::{Product, load_listed, require_provider_standing};
use crate::receipt::Event;
use crate::state::State;
use crate::types::{DemandId, DemandStatus, GrantId, OrderId, OrderStatus, ProductId, Stage};

pub use crate::lifecycle::MAX_ATTESTATIONS;

/// One trade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub product: ProductId,
    pub buyer: PublicKey,
    pub provider: PublicKey,
    /// The product's price when ordered, or the awarded response's for a demand's order.
    pub price: u64,
    pub status: OrderStatus,
    pub delivery_hash: Option<Hash>,
    /// The provider's share of the escrow (before the fee) when it was released.
    pub settlement_amount: Option<u64>,
    pub dispute_reason_hash: Option<Hash>,
    /// The grant consumed by this order (grade ≥ 3 products).
    pub grant: Option<GrantId>,
    pub demand: Option<DemandId>,
    pub purpose: String,
    pub ordered_height: u64,
    pub updated_height: u64,
    /// Held in escrow for this order now (from acceptance until release).
    pub escrow: u64,
    /// The platform fee rate fixed when the escrow was taken.
    pub fee_basis_points: Option<u32>,
    /// Paid to the treasury when the escrow was released.
    pub fee_amount: Option<u64>,
    /// Returned to the buyer when the escrow was released.
    pub refund_amount: Option<u64>,
    /// The terms agreed: the product's terms, or the awarded response's proposal.
    pub terms_hash: Hash,
}

/// What an attestation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestTarget {
    Order(OrderId),
    /// The use of a consumed grant.
    Grant(GrantId),
}

/// A holder's signed statement (the transaction's signature) about a later stage of the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub target: AttestTarget,
    pub stage: Stage,
    /// Hash of the holder's evidence (e.g. a destruction certificate).
    pub hash: Hash,
    pub attester: PublicKey,
    pub height: u64,
    pub tx_hash: Hash,
    pub seq: u32,
    /// A regulator's verdict, once given.
    pub review: Option<Review>,
}

impl AttestTarget {
    /// Key tag and id bytes.
    pub fn key_parts(&self) -> (u8, [u8; 32]) {
        match self {
            Self::Order(id) => (keys::TARGET_ORDER, id.0.0),
            Self::Grant(id) => (keys::TARGET_GRANT, id.0.0),
        }
    }
}

impl Wire for AttestTarget {
    type Pb = pb::AttestTarget;
    const MAX_BYTES: usize = 64;
    fn to_pb(&self) -> pb::AttestTarget {
        use pb::attest_target::Kind;
        let kind = match self {
            Self::Order(id) => Kind::Order(id.to_wire()),
            Self::Grant(id) => Kind::Grant(id.to_wire()),
        };
        pb::AttestTarget { kind: Some(kind) }
    }
    fn from_pb(p: pb::AttestTarget) -> Result<Self, DecodeError> {
        use pb::attest_target::Kind;
        Ok(match codec::req(p.kind, "target")? {
            Kind::Order(b) => Self::Order(OrderId::from_wire(&b, "target.order")?),
            Kind::Grant(b) => Self::Grant(GrantId::from_wire(&b, "target.grant")?),
        })
    }
}

impl Wire for Attestation {
    type Pb = pb::Attestation;
    const MAX_BYTES: usize = 512;
    fn to_pb(&self) -> pb::Attestation {
        pb::Attestation {
            target: Some(self.target.to_pb()),
            stage: self.stage.code(),
            hash: self.hash.0.to_vec(),
            attester: self.attester.to_bytes().to_vec(),
            height: self.height,
            tx_hash: self.tx_hash.0.to_vec(),
            seq: self.seq,
            review: self.review.as_ref().map(Wire::to_pb),
        }
    }
    fn from_pb(p: pb::Attestation) -> Result<Self, DecodeError> {
        Ok(Self {
            target: AttestTarget::from_pb(codec::req(p.target, "target")?)?,
            stage: Stage::from_wire(p.stage, "stage")?,
            hash: codec::hash(&p.hash, "hash")?,
            attester: codec::key(&p.attester, "attester")?,
            height: p.height,
            tx_hash: codec::hash(&p.tx_hash, "tx_hash")?,
            seq: p.seq,
            review: p.review.map(Review::from_pb).transpose()?,
        })
    }
}

impl Wire for Order {
    type Pb = pb::Order;
    const MAX_BYTES: usize = 2048;
    fn to_pb(&self) -> pb::Order {
        pb::Order {
            id: self.id.to_wire(),
            product: self.product.to_wire(),
            buyer: self.buyer.to_bytes().to_vec(),
            provider: self.provider.to_bytes().to_vec(),
            price: self.price,
            status: self.status.code(),
            delivery_hash: self.delivery_hash.map(|h| h.0.to_vec()),
            settlement_amount: self.settlement_amount,
            dispute_reason_hash: self.dispute_reason_hash.map(|h| h.0.to_vec()),
            grant: self.grant.map(super::types::GrantId::to_wire),
            demand: self.demand.map(super::types::DemandId::to_wire),
            purpose: self.purpose.clone(),
            ordered_height: self.ordered_height,
            updated_height: self.updated_height,
            escrow: self.escrow,
            fee_basis_points: self.fee_basis_points,
            fee_amount: self.fee_amount,
            refund_amount: self.refund_amount,
            terms_hash: self.terms_hash.0.to_vec(),
        }
    }
    fn from_pb(p: pb::Order) -> Result<Self, DecodeError> {
        Ok(Self {
            id: OrderId::from_wire(&p.id, "id")?,
            product: ProductId::from_wire(&p.product, "product")?,
            buyer: codec::key(&p.buyer, "buyer")?,
            provider: codec::key(&p.provider, "provider")?,
            price: p.price,
            status: OrderStatus::from_wire(p.status, "status")?,
            delivery_hash: codec::opt_hash(p.delivery_hash.as_ref(), "delivery_hash")?,
            settlement_amount: p.settlement_amount,
            dispute_reason_hash: codec::opt_hash(
                p.dispute_reason_hash.as_ref(),
                "dispute_reason_hash",
            )?,
            grant: p.grant.map(|g| GrantId::from_wire(&g, "grant")).transpose()?,
            demand: p.demand.map(|d| DemandId::from_wire(&d, "demand")).transpose()?,
            purpose: p.purpose,
            ordered_height: p.ordered_height,
            updated_height: p.updated_height,
            escrow: p.escrow,
            fee_basis_points: p.fee_basis_points,
            fee_amount: p.fee_amount,
            refund_amount: p.refund_amount,
            terms_hash: codec::hash(&p.terms_hash, "terms_hash")?,
        })
    }
}

/// Who may take a step on an order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Party {
    Buyer,
    Provider,
    Either,
    /// Decided by the policy alone (operators settle).
    Policy,
}

/// The price and terms of an order against `did`, which must be the buyer's demand, awarded to
/// the product's provider and not yet closed; returns them with the demand.
fn awarded_terms<S: State + ?Sized>(
    x: &Exec<'_, S>,
    did: &DemandId,
    buyer: &PublicKey,
    prod: &Product,
) -> Result<(u64, Hash, Demand), ContractError> {
    let d: Demand = x.must(&keys::demand(did), "demand", did)?;
    if d.poster != *buyer {
        return Err(ContractError::forbidden(format!(
            "only the poster of demand {did} may order against it"
        )));
    }
    if d.status != DemandStatus::Awarded {
        return Err(ContractError::WrongState {
            kind: "demand",
            id: did.to_string(),
            state: d.status.to_string(),
            action: "order",
            expected: "awarded (a demand leads to one order)".into(),
        });
    }
    if d.awarded_to != Some(prod.provider) {
        return Err(ContractError::conflict(format!(
            "demand {did} was not awarded to the provider of product {}",
            prod.id
        )));
    }
    let r: DemandResponse = x.must(
        &keys::response(did, &prod.provider),
        "response",
        format_args!("of {} to demand {did}", prod.provider),
    )?;
    if let Some(offered) = r.product.filter(|p| *p != prod.id) {
        return Err(ContractError::conflict(format!(
            "the awarded response to demand {did} offers product {offered}, not {}",
            prod.id
        )));
    }
    Ok((r.price, r.proposal_hash, d))
}

fn place<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    product: &ProductId,
    grant: Option<&grants::GrantRef>,
    purpose: &str,
    demand: Option<&DemandId>,
) -> Result<(), ContractError> {
    let prod = load_listed(x, product)?;
    let buyer = x.me()?.account;
    if prod.provider == buyer {
        return Err(ContractError::forbidden("a provider cannot order its own product"));
    }
    let (price, terms_hash, awarded) = match demand {
        Some(did) => {
            let (price, terms, d) = awarded_terms(x, did, &buyer, &prod)?;
            (price, terms, Some(d))
        }
        None => (prod.spec.price, prod.spec.terms_hash, None),
    };
    let id = OrderId::derive(x.chain_id(), &x.signer, x.nonce);
    let consumed = match grant {
        Some(gref) => Some(grants::consume(
            x,
            gref,
            &UseRequest { subject: None, product: *product, purpose, request_hash: id.0 },
        )?),
        None => None,
    };
    let ctx = PolicyContext { grant_consumed: consumed.is_some(), purpose: purpose.to_string() };
    x.authorize(Action::Order, &Resource::Product(prod.clone()), &ctx)?;
    let h = x.height();
    let order = Order {
        id,
        product: *product,
        buyer,
        provider: prod.provider,
        price,
        status: OrderStatus::Ordered,
        delivery_hash: None,
        settlement_amount: None,
        dispute_reason_hash: None,
        grant: consumed,
        demand: demand.copied(),
        purpose: purpose.to_string(),
        ordered_height: h,
        updated_height: h,
        escrow: 0,
        fee_basis_points: None,
        fee_amount: None,
        refund_amount: None,
        terms_hash,
    };
    x.store(keys::order(&id), &order);
    let mut event = Event::new("order.placed")
        .attr("order", id)
        .attr("product", product)
        .attr("buyer", buyer)
        .attr("provider", prod.provider)
        .attr("price", price);
    if let Some(gid) = consumed {
        event = event.attr("grant", gid);
    }
    x.emit(event);
    if let Some(mut d) = awarded {
        // The demand led to its trade: closed, so no second order can follow.
        d.status = DemandStatus::Closed;
        d.updated_height = h;
        x.store(keys::demand(&d.id), &d);
        x.emit(Event::new("demand.closed").attr("demand", d.id).attr("order", id));
    }
    Ok(())
}

/// Move an order from one of `from` to `to`, after the party and policy checks; `edit` makes
/// the step's own changes (and moves its money), returning what a release of escrow paid.
#[allow(clippy::too_many_arguments)]
fn step<'a, S: State + ?Sized>(
    x: &mut Exec<'a, S>,
    id: &OrderId,
    action: Action,
    party: Party,
    from: &[OrderStatus],
    to: OrderStatus,
    edit: impl FnOnce(&mut Exec<'a, S>, &mut Order) -> Result<Option<Release>, ContractError>,
) -> Result<(Order, Option<Release>), ContractError> {
    let mut o: Order = x.must(&keys::order(id), "order", id)?;
    let me = x.me()?.account;
    let ok = match party {
        Party::Buyer => me == o.buyer,
        Party::Provider => me == o.provider,
        Party::Either => me == o.buyer || me == o.provider,
        Party::Policy => true,
    };
    if !ok {
        return Err(ContractError::forbidden(format!(
            "{me} is not the party who may {action} order {id}"
        )));
    }
    if !from.contains(&o.status) {
        let expected: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        return Err(ContractError::WrongState {
            kind: "order",
            id: id.to_string(),
            state: o.status.to_string(),
            action: action.as_str(),
            expected: expected.join(" or "),
        });
    }
    // The product may have been delisted since the order; the policy still sees it as it is.
    let product: Product = x.must(&keys::product(&o.product), "product", o.product)?;
    // A provider out of business (suspended, negative-listed, downgraded below the grade)
    // neither accepts nor delivers until reinstated or re-rated; the buyer may still cancel.
    if matches!(action, Action::AcceptOrder | Action::DeliverOrder) {
        require_provider_standing(x, &product)?;
    }
    x.authorize(action, &Resource::Product(product), &PolicyContext::none())?;
    let paid = edit(x, &mut o)?;
    o.status = to;
    o.updated_height = x.height();
    x.store(keys::order(id), &o);
    Ok((o, paid))
}

/// `accept_order`'s money: the buyer's price into escrow.
fn accept<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    o: &mut Order,
) -> Result<Option<Release>, ContractError> {
    let buyer: Participant = x.must(&keys::participant(&o.buyer), "participant", o.buyer)?;
    if buyer.is_barred() {
        return Err(ContractError::forbidden(format!(
            "buyer {} is suspended or negative-listed: its order can only be cancelled",
            o.buyer
        )));
    }
    money::take_escrow(x, o)?;
    Ok(None)
}

/// Release the escrow with `share` to the provider (`None`: refund all). An order whose escrow
/// was never taken (cancelled before acceptance) moves no money.
fn settle<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    o: &mut Order,
    share: Option<u64>,
) -> Result<Option<Release>, ContractError> {
    if o.fee_basis_points.is_none() {
        return Ok(None);
    }
    let r = money::release(x, o, share.unwrap_or(0))?;
    o.settlement_amount = share;
    Ok(Some(r))
}

pub(crate) fn dispatch<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    op: &Operation,
) -> Result<(), ContractError> {
    use OrderStatus as St;
    let (o, paid) = match op {
        Operation::PlaceOrder { product, grant, purpose, demand } => {
            return place(x, product, grant.as_ref(), purpose, demand.as_ref());
        }
        Operation::Attest { target, stage, hash } => {
            return lifecycle::attest(x, *target, *stage, *hash);
        }
        Operation::ReviewAttestation { target, seq, verdict, reason_hash } => {
            return lifecycle::review(x, *target, *seq, *verdict, *reason_hash);
        }
        Operation::AcceptOrder { order } => step(
            x,
            order,
            Action::AcceptOrder,
            Party::Provider,
            &[St::Ordered],
            St::Accepted,
            accept,
        )?,
        Operation::DeliverOrder { order, delivery_hash } => step(
            x,
            order,
            Action::DeliverOrder,
            Party::Provider,
            &[St::Accepted],
            St::Delivered,
            |_, o| {
                o.delivery_hash = Some(*delivery_hash);
                Ok(None)
            },
        )?,
        Operation::ConfirmOrder { order } => step(
            x,
            order,
            Action::ConfirmOrder,
            Party::Buyer,
            &[St::Delivered],
            St::Settled,
            |x, o| {
                let all = o.escrow;
                settle(x, o, Some(all))
            },
        )?,
        Operation::CancelOrder { order } => step(
            x,
            order,
            Action::CancelOrder,
            Party::Either,
            &[St::Ordered, St::Accepted],
            St::Cancelled,
            |x, o| settle(x, o, None),
        )?,
        Operation::DisputeOrder { order, reason_hash } => step(
            x,
            order,
            Action::DisputeOrder,
            Party::Either,
            &[St::Delivered],
            St::Disputed,
            |_, o| {
                o.dispute_reason_hash = Some(*reason_hash);
                Ok(None)
            },
        )?,
        Operation::ResolveDispute { order, settle_amount: share } => {
            let to = if share.is_some() { St::Settled } else { St::Cancelled };
            step(x, order, Action::ResolveDispute, Party::Policy, &[St::Disputed], to, |x, o| {
                settle(x, o, *share)
            })?
        }
        _ => return Err(ContractError::invalid(format!("{} is not a trade operation", op.name()))),
    };
    let mut e = Event::new(&format!("order.{}", o.status))
        .attr("order", o.id)
        .attr("product", o.product)
        .attr("buyer", o.buyer)
        .attr("provider", o.provider);
    if let Some(h) = o.delivery_hash.filter(|_| o.status == St::Delivered) {
        e = e.attr("delivery_hash", h);
    }
    if o.status == St::Accepted {
        e = e.attr("escrow", o.escrow).attr("fee_basis_points", o.fee_basis_points.unwrap_or(0));
    }
    if let Some(a) = o.settlement_amount {
        e = e.attr("settlement_amount", a);
    }
    if let Some(r) = paid {
        e = e.attr("provider_amount", r.share - r.fee).attr("fee", r.fee).attr("refund", r.refund);
    }
    x.emit(e);
    // Data delivered and the trade closed: the buyer's retention period starts.
    let closed = matches!(op, Operation::ConfirmOrder { .. } | Operation::ResolveDispute { .. });
    if closed && o.delivery_hash.is_some() {
        let product: Product = x.must(&keys::product(&o.product), "product", o.product)?;
        lifecycle::make_due(x, AttestTarget::Order(o.id), o.buyer, product.spec.retention_days)?;
    }
    Ok(())
}
