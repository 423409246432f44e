//! Demand postings (需求发布) and responses (应答): a government body or company posts a need,
//! providers answer, the poster awards one answer and closes the posting.
//!
//! **Deadline.** A demand may carry `deadline_ms`, a block time (ms since the epoch, compared
//! with the header's agreed time `BlockContext::time_ms`, never a local clock): a response in a
//! block whose time is at most the deadline is accepted, one in a later block is refused. The
//! comparison is exact integer arithmetic on values every node and every replay has, so the
//! verdict is the same everywhere. An open demand past its deadline is *treated as closed for
//! responses* — nothing has to be written, and no one but the poster has a say over it: the
//! poster may still award one of the responses it received in time, or close it.

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError};
use crate::exec::Exec;
use crate::keys;
use crate::ops::Operation;
use crate::policy::{Action, PolicyContext, Resource};
use crate::products::{Product, require_provider_standing};
use crate::receipt::Event;
use crate::state::State;
use crate::types::{DemandId, DemandStatus, ProductId};

/// A posted need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    pub id: DemandId,
    pub poster: PublicKey,
    pub title: String,
    pub domain: String,
    pub budget: u64,
    /// blake3 of the full description (kept off the ledger).
    pub description_hash: Hash,
    /// Block time (ms since the epoch) of the last accepted response.
    pub deadline_ms: Option<u64>,
    pub status: DemandStatus,
    pub responses: u32,
    pub awarded_to: Option<PublicKey>,
    pub posted_height: u64,
    pub updated_height: u64,
}

/// One provider's answer to a demand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandResponse {
    pub demand: DemandId,
    pub responder: PublicKey,
    /// A listed product of the responder's that meets the need, if any.
    pub product: Option<ProductId>,
    pub price: u64,
    pub proposal_hash: Hash,
    pub height: u64,
}

impl Wire for Demand {
    type Pb = pb::Demand;
    const MAX_BYTES: usize = 4096;
    fn to_pb(&self) -> pb::Demand {
        pb::Demand {
            id: self.id.to_wire(),
            poster: self.poster.to_bytes().to_vec(),
            title: self.title.clone(),
            domain: self.domain.clone(),
            budget: self.budget,
            description_hash: self.description_hash.0.to_vec(),
            deadline_ms: self.deadline_ms,
            status: self.status.code(),
            responses: self.responses,
            awarded_to: self.awarded_to.map(|k| k.to_bytes().to_vec()),
            posted_height: self.posted_height,
            updated_height: self.updated_height,
        }
    }
    fn from_pb(p: pb::Demand) -> Result<Self, DecodeError> {
        Ok(Self {
            id: DemandId::from_wire(&p.id, "id")?,
            poster: codec::key(&p.poster, "poster")?,
            title: p.title,
            domain: p.domain,
            budget: p.budget,
            description_hash: codec::hash(&p.description_hash, "description_hash")?,
            deadline_ms: p.deadline_ms,
            status: DemandStatus::from_wire(p.status, "status")?,
            responses: p.responses,
            awarded_to: p.awarded_to.map(|k| codec::key(&k, "awarded_to")).transpose()?,
            posted_height: p.posted_height,
            updated_height: p.updated_height,
        })
    }
}

impl Wire for DemandResponse {
    type Pb = pb::DemandResponse;
    const MAX_BYTES: usize = 1024;
    fn to_pb(&self) -> pb::DemandResponse {
        pb::DemandResponse {
            demand: self.demand.to_wire(),
            responder: self.responder.to_bytes().to_vec(),
            product: self.product.map(super::types::ProductId::to_wire),
            price: self.price,
            proposal_hash: self.proposal_hash.0.to_vec(),
            height: self.height,
        }
    }
    fn from_pb(p: pb::DemandResponse) -> Result<Self, DecodeError> {
        Ok(Self {
            demand: DemandId::from_wire(&p.demand, "demand")?,
            responder: codec::key(&p.responder, "responder")?,
            product: p.product.map(|b| ProductId::from_wire(&b, "product")).transpose()?,
            price: p.price,
            proposal_hash: codec::hash(&p.proposal_hash, "proposal_hash")?,
            height: p.height,
        })
    }
}

/// Furthest a deadline may lie after the block that posts the demand: 366 days.
pub const MAX_DEADLINE_AHEAD_MS: u64 = 366 * 24 * 60 * 60 * 1000;

impl Demand {
    /// Whether responses are still accepted at block time `time_ms`: open, and the deadline
    /// (if any) not passed. Exact and replayable.
    pub fn accepts_responses_at(&self, time_ms: u64) -> bool {
        self.status == DemandStatus::Open && self.deadline_ms.is_none_or(|dl| time_ms <= dl)
    }
}

fn wrong(d: &Demand, action: &'static str, expected: &str) -> ContractError {
    ContractError::WrongState {
        kind: "demand",
        id: d.id.to_string(),
        state: d.status.to_string(),
        action,
        expected: expected.into(),
    }
}

/// Load a demand the signer posted.
fn own<S: State + ?Sized>(x: &Exec<'_, S>, id: &DemandId) -> Result<Demand, ContractError> {
    let d: Demand = x.must(&keys::demand(id), "demand", id)?;
    if d.poster != x.me()?.account {
        return Err(ContractError::forbidden(format!(
            "only the poster of demand {id} may do this"
        )));
    }
    Ok(d)
}

pub(crate) fn dispatch<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    op: &Operation,
) -> Result<(), ContractError> {
    let h = x.height();
    match op {
        Operation::PostDemand { title, domain, budget, description_hash, deadline_ms } => {
            x.authorize(Action::PostDemand, &Resource::Market, &PolicyContext::none())?;
            let now = x.time_ms();
            if let Some(dl) = *deadline_ms {
                if dl <= now {
                    return Err(ContractError::invalid(format!(
                        "deadline {dl} ms is not after the block time {now} ms"
                    )));
                }
                if dl - now > MAX_DEADLINE_AHEAD_MS {
                    return Err(ContractError::invalid(format!(
                        "deadline {dl} ms is more than {MAX_DEADLINE_AHEAD_MS} ms after the block time {now} ms"
                    )));
                }
            }
            let id = DemandId::derive(x.chain_id(), &x.signer, x.nonce);
            let poster = x.me()?.account;
            let d = Demand {
                id,
                poster,
                title: title.clone(),
                domain: domain.clone(),
                budget: *budget,
                description_hash: *description_hash,
                deadline_ms: *deadline_ms,
                status: DemandStatus::Open,
                responses: 0,
                awarded_to: None,
                posted_height: h,
                updated_height: h,
            };
            x.store(keys::demand(&id), &d);
            x.emit(
                Event::new("demand.posted")
                    .attr("demand", id)
                    .attr("poster", poster)
                    .attr("domain", domain)
                    .attr("budget", budget),
            );
        }
        Operation::RespondDemand { demand, product, price, proposal_hash } => {
            x.authorize(Action::RespondDemand, &Resource::Market, &PolicyContext::none())?;
            let mut d: Demand = x.must(&keys::demand(demand), "demand", demand)?;
            let me = x.me()?;
            // Also enforced by the default policies; here so no policy set can lift it.
            if me.is_barred() {
                return Err(ContractError::forbidden(
                    "a suspended or negative-listed participant cannot answer demands",
                ));
            }
            let me = me.account;
            if d.status != DemandStatus::Open {
                return Err(wrong(&d, "respond", "open"));
            }
            let now = x.time_ms();
            if !d.accepts_responses_at(now) {
                return Err(ContractError::conflict(format!(
                    "demand {demand} closed for responses at its deadline ({} ms; block time {now} ms)",
                    d.deadline_ms.unwrap_or_default()
                )));
            }
            if d.poster == me {
                return Err(ContractError::forbidden("a poster cannot answer its own demand"));
            }
            if let Some(pid) = product {
                let p: Product = x.must(&keys::product(pid), "product", pid)?;
                if p.provider != me || !p.listed {
                    return Err(ContractError::forbidden(format!(
                        "product {pid} is not a listed product of the responder"
                    )));
                }
                // A downgraded provider cannot offer a product above its rating.
                require_provider_standing(x, &p)?;
            }
            let key = keys::response(demand, &me);
            if x.st.get(&key).is_some() {
                return Err(ContractError::conflict(format!(
                    "{me} already answered demand {demand}"
                )));
            }
            let r = DemandResponse {
                demand: *demand,
                responder: me,
                product: *product,
                price: *price,
                proposal_hash: *proposal_hash,
                height: h,
            };
            x.store(key, &r);
            d.responses += 1;
            d.updated_height = h;
            x.store(keys::demand(demand), &d);
            x.emit(
                Event::new("demand.responded")
                    .attr("demand", demand)
                    .attr("responder", me)
                    .attr("price", price),
            );
        }
        Operation::AwardDemand { demand, responder } => {
            x.authorize(Action::AwardDemand, &Resource::Market, &PolicyContext::none())?;
            let mut d = own(x, demand)?;
            if d.status != DemandStatus::Open {
                return Err(wrong(&d, "award", "open"));
            }
            if x.st.get(&keys::response(demand, responder)).is_none() {
                return Err(ContractError::not_found(
                    "response",
                    format!("of {responder} to demand {demand}"),
                ));
            }
            d.status = DemandStatus::Awarded;
            d.awarded_to = Some(*responder);
            d.updated_height = h;
            x.store(keys::demand(demand), &d);
            x.emit(
                Event::new("demand.awarded").attr("demand", demand).attr("responder", responder),
            );
        }
        Operation::CloseDemand { demand } => {
            x.authorize(Action::CloseDemand, &Resource::Market, &PolicyContext::none())?;
            let mut d = own(x, demand)?;
            if d.status == DemandStatus::Closed {
                return Err(wrong(&d, "close", "open or awarded"));
            }
            d.status = DemandStatus::Closed;
            d.updated_height = h;
            x.store(keys::demand(demand), &d);
            x.emit(Event::new("demand.closed").attr("demand", demand));
        }
        _ => {
            return Err(ContractError::invalid(format!("{} is not a demand operation", op.name())));
        }
    }
    Ok(())
}
