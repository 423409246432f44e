//! Computations whose data stays invisible (可用不可见, "usable but not visible"): a compute
//! node runs a job over one or more products' data for a consumer who receives only the
//! result. The computation happens off the ledger; the ledger proves it was authorised, what
//! it consumed, and that nobody received the raw data.
//!
//! ```text
//! requested ──attest_job (node)──► attested ──confirm_job (consumer)──► received
//!     │
//!     ├──cancel_job (consumer)──► cancelled
//!     └──reject_job (node)──────► rejected
//! ```
//!
//! - **Compute nodes** (`Role::ComputeNode`) are admitted only by governance
//!   (`admit_compute_node`), like registrars and settlement banks; a plain `admit` refuses the
//!   role. Operators and agencies suspend and reinstate them with the plain operations.
//! - **`request_job`**, by the consumer: 1..=[`MAX_JOB_INPUTS`] distinct products, one
//!   [`JobAuthorization`] per product, an admitted compute node in good standing (never the
//!   consumer itself), a purpose and the hash of the code to run. Each authorization is either
//!   a **grant** (inline or registered) naming this consumer, this product and the job's
//!   purpose — consumed by the job exactly as `use_grant` consumes it (the same code: one use,
//!   a usage receipt whose request hash is the job id, `grant.consumed`, and
//!   `grant.grade4_used` for grade 4) — or an **order**: the consumer's own order for that
//!   product, delivered, confirmed or settled, for the job's purpose if the order named one.
//!   An order authorises one job at a time (`orderjob/<order>`), and once that job is attested
//!   never another. Every product must be available (listed, provider in good standing), and
//!   the Cedar action `request_job` is asked for each product in turn, so the product's own
//!   rules apply (grade ≥ 3 needs a consumed grant — an order's, or the job's —, whitelist,
//!   minimum rating, purposes, provider in good standing, suspended or negative-listed
//!   consumers). The receipt carries the last decision (the first denial, if one denies).
//! - **`attest_job`**, by the job's compute node only, while requested: the code hash that ran
//!   (must be the one requested), one input commitment per product in the job's order, the
//!   result hash, and `inputs_destroyed`, which must be true: a node that did not destroy the
//!   inputs and intermediates cannot attest (the transaction is refused before it reaches a
//!   block). The transaction's signature is the node's signed attestation; its hash is kept
//!   on the job (`attestation_tx`).
//! - **`confirm_job`**, by the consumer, after attestation: the result hash it received must be
//!   the attested one. This is the consumer's receipt (`received`).
//! - **`cancel_job`** (consumer) and **`reject_job`** (compute node, with a reason hash), while
//!   requested. Grants the request consumed stay consumed — a grant is one use, and that use
//!   was the request —; orders are freed and may authorise another job.
//!
//! **No money moves** in a job: payment for data goes through orders (`trades`, `money`).
//! Nor does the consumer become a holder of the data: a job makes no destruction due (the
//! compute node attests destruction in the job itself), and `attest` on a grant a job
//! consumed is refused.
//!
//! **Events** (for the audit's job totals, or use [`JobTotals`] over the stored jobs):
//! `job.requested` (job, consumer, compute_node, one `provider` per distinct provider,
//! products, purpose, code_hash, grants, orders), `job.attested` (job, consumer,
//! compute_node, code_hash, result_hash, inputs, inputs_destroyed), `job.received` (job,
//! consumer, compute_node, result_hash), `job.cancelled` (job, consumer, compute_node),
//! `job.rejected` (job, consumer, compute_node, reason_hash).

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::error::{ContractError, DecodeError};
use crate::exec::Exec;
use crate::grants::{self, GrantRef, UseRequest};
use crate::keys;
use crate::participants::{Participant, load_participant};
use crate::policy::{Action, PolicyContext, Resource};
use crate::products::load_listed;
use crate::receipt::Event;
use crate::state::State;
use crate::trades::Order;
use crate::types::{GrantId, JobId, JobStatus, OrderId, OrderStatus, ProductId, Role};

/// Most products one job reads.
pub const MAX_JOB_INPUTS: usize = 8;
/// Largest stored job.
pub const MAX_JOB_BYTES: usize = 4096;
/// Statuses in which an order authorises a job: its data was delivered under its terms.
const ORDER_DONE: [OrderStatus; 3] =
    [OrderStatus::Delivered, OrderStatus::Confirmed, OrderStatus::Settled];

/// What authorises a job's use of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAuthorization {
    /// A one-use grant (inline or registered), consumed by the job.
    Grant(GrantRef),
    /// The consumer's own delivered, confirmed or settled order for the product.
    Order(OrderId),
}

/// What authorised a job's use of one product, as stored on the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAuthority {
    /// The grant the job consumed.
    Grant(GrantId),
    /// The order that authorised it.
    Order(OrderId),
}

/// A compute job: the request, the compute node's attestation and the consumer's receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub consumer: PublicKey,
    pub compute_node: PublicKey,
    pub products: Vec<ProductId>,
    /// The products' providers, in the same order.
    pub providers: Vec<PublicKey>,
    /// One per product, in the same order.
    pub authorities: Vec<JobAuthority>,
    pub purpose: String,
    /// The code the consumer asked to run.
    pub code_hash: Hash,
    pub status: JobStatus,
    pub requested_height: u64,
    pub requested_time_ms: u64,
    /// The compute node's commitments to the inputs it read, one per product (attested).
    pub input_commitments: Vec<Hash>,
    /// The result's hash (attested).
    pub result_hash: Option<Hash>,
    /// The compute node stated that inputs and intermediates were destroyed (attested).
    pub inputs_destroyed: bool,
    pub attested_height: Option<u64>,
    /// The hash of the compute node's `attest_job` transaction: its signed attestation.
    pub attestation_tx: Option<Hash>,
    /// When the consumer confirmed receipt of the result.
    pub received_height: Option<u64>,
    /// The compute node's reasons for rejecting the job.
    pub reject_reason_hash: Option<Hash>,
    pub updated_height: u64,
}

pub(crate) fn hashes(v: &[Hash]) -> Vec<Vec<u8>> {
    v.iter().map(|h| h.0.to_vec()).collect()
}

/// Decode a repeated field of at most [`MAX_JOB_INPUTS`] items.
fn bounded<T, U>(
    items: Vec<T>,
    field: &'static str,
    each: impl Fn(T) -> Result<U, DecodeError>,
) -> Result<Vec<U>, DecodeError> {
    if items.len() > MAX_JOB_INPUTS {
        return Err(DecodeError::field(field, format!("more than {MAX_JOB_INPUTS} items")));
    }
    items.into_iter().map(each).collect()
}

pub(crate) fn product_ids(
    v: Vec<Vec<u8>>,
    field: &'static str,
) -> Result<Vec<ProductId>, DecodeError> {
    bounded(v, field, |b| ProductId::from_wire(&b, field))
}

pub(crate) fn hash_list(v: Vec<Vec<u8>>, field: &'static str) -> Result<Vec<Hash>, DecodeError> {
    bounded(v, field, |b| codec::hash(&b, field))
}

pub(crate) fn authorizations_to_pb(v: &[JobAuthorization]) -> Vec<pb::JobAuthorization> {
    v.iter().map(Wire::to_pb).collect()
}

pub(crate) fn authorizations_from_pb(
    v: Vec<pb::JobAuthorization>,
) -> Result<Vec<JobAuthorization>, DecodeError> {
    bounded(v, "authorizations", JobAuthorization::from_pb)
}

pub(crate) fn products_to_pb(v: &[ProductId]) -> Vec<Vec<u8>> {
    v.iter().map(|p| p.to_wire()).collect()
}

impl Wire for JobAuthorization {
    type Pb = pb::JobAuthorization;
    const MAX_BYTES: usize = grants::MAX_GRANT_BYTES + 16;
    fn to_pb(&self) -> pb::JobAuthorization {
        use pb::job_authorization::Kind;
        let kind = match self {
            Self::Grant(g) => Kind::Grant(g.to_pb()),
            Self::Order(o) => Kind::Order(o.to_wire()),
        };
        pb::JobAuthorization { kind: Some(kind) }
    }
    fn from_pb(p: pb::JobAuthorization) -> Result<Self, DecodeError> {
        use pb::job_authorization::Kind;
        Ok(match codec::req(p.kind, "authorization")? {
            Kind::Grant(g) => Self::Grant(GrantRef::from_pb(g)?),
            Kind::Order(o) => Self::Order(OrderId::from_wire(&o, "authorization.order")?),
        })
    }
}

impl Wire for JobAuthority {
    type Pb = pb::JobAuthority;
    const MAX_BYTES: usize = 64;
    fn to_pb(&self) -> pb::JobAuthority {
        use pb::job_authority::Kind;
        let kind = match self {
            Self::Grant(g) => Kind::Grant(g.to_wire()),
            Self::Order(o) => Kind::Order(o.to_wire()),
        };
        pb::JobAuthority { kind: Some(kind) }
    }
    fn from_pb(p: pb::JobAuthority) -> Result<Self, DecodeError> {
        use pb::job_authority::Kind;
        Ok(match codec::req(p.kind, "authority")? {
            Kind::Grant(g) => Self::Grant(GrantId::from_wire(&g, "authority.grant")?),
            Kind::Order(o) => Self::Order(OrderId::from_wire(&o, "authority.order")?),
        })
    }
}

impl Wire for Job {
    type Pb = pb::Job;
    const MAX_BYTES: usize = MAX_JOB_BYTES;
    fn to_pb(&self) -> pb::Job {
        pb::Job {
            id: self.id.to_wire(),
            consumer: self.consumer.to_bytes().to_vec(),
            compute_node: self.compute_node.to_bytes().to_vec(),
            products: products_to_pb(&self.products),
            providers: self.providers.iter().map(|k| k.to_bytes().to_vec()).collect(),
            authorities: self.authorities.iter().map(Wire::to_pb).collect(),
            purpose: self.purpose.clone(),
            code_hash: self.code_hash.0.to_vec(),
            status: self.status.code(),
            requested_height: self.requested_height,
            requested_time_ms: self.requested_time_ms,
            input_commitments: hashes(&self.input_commitments),
            result_hash: self.result_hash.map(|h| h.0.to_vec()),
            inputs_destroyed: self.inputs_destroyed,
            attested_height: self.attested_height,
            attestation_tx: self.attestation_tx.map(|h| h.0.to_vec()),
            received_height: self.received_height,
            reject_reason_hash: self.reject_reason_hash.map(|h| h.0.to_vec()),
            updated_height: self.updated_height,
        }
    }
    fn from_pb(p: pb::Job) -> Result<Self, DecodeError> {
        Ok(Self {
            id: JobId::from_wire(&p.id, "id")?,
            consumer: codec::key(&p.consumer, "consumer")?,
            compute_node: codec::key(&p.compute_node, "compute_node")?,
            products: product_ids(p.products, "products")?,
            providers: bounded(p.providers, "providers", |k| codec::key(&k, "providers"))?,
            authorities: bounded(p.authorities, "authorities", JobAuthority::from_pb)?,
            purpose: p.purpose,
            code_hash: codec::hash(&p.code_hash, "code_hash")?,
            status: JobStatus::from_wire(p.status, "status")?,
            requested_height: p.requested_height,
            requested_time_ms: p.requested_time_ms,
            input_commitments: hash_list(p.input_commitments, "input_commitments")?,
            result_hash: codec::opt_hash(p.result_hash.as_ref(), "result_hash")?,
            inputs_destroyed: p.inputs_destroyed,
            attested_height: p.attested_height,
            attestation_tx: codec::opt_hash(p.attestation_tx.as_ref(), "attestation_tx")?,
            received_height: p.received_height,
            reject_reason_hash: codec::opt_hash(
                p.reject_reason_hash.as_ref(),
                "reject_reason_hash",
            )?,
            updated_height: p.updated_height,
        })
    }
}

/// Job totals for the audit: how many jobs are in each status, and what they read. A pure
/// function of the stored jobs (every value under [`keys::PREFIX_JOB`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTotals {
    pub requested: u64,
    pub attested: u64,
    pub received: u64,
    pub cancelled: u64,
    pub rejected: u64,
    /// Product inputs over all jobs (a job over three products counts three).
    pub inputs: u64,
    /// Inputs authorised by a grant (each one a grant consumed by a job).
    pub grant_inputs: u64,
    /// Inputs authorised by an order.
    pub order_inputs: u64,
    /// Jobs whose compute node attested that inputs and intermediates were destroyed.
    pub inputs_destroyed: u64,
}

impl JobTotals {
    /// Count one job.
    pub fn add(&mut self, job: &Job) {
        match job.status {
            JobStatus::Requested => self.requested += 1,
            JobStatus::Attested => self.attested += 1,
            JobStatus::Received => self.received += 1,
            JobStatus::Cancelled => self.cancelled += 1,
            JobStatus::Rejected => self.rejected += 1,
        }
        for a in &job.authorities {
            self.inputs += 1;
            match a {
                JobAuthority::Grant(_) => self.grant_inputs += 1,
                JobAuthority::Order(_) => self.order_inputs += 1,
            }
        }
        self.inputs_destroyed += u64::from(job.inputs_destroyed);
    }

    /// Every job in the state: pass the encoded values under [`keys::PREFIX_JOB`] (e.g.
    /// `MemState::scan`, or the store's prefix iterator). An undecodable value is an error.
    pub fn from_values<'a>(
        values: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, DecodeError> {
        let mut t = Self::default();
        for v in values {
            t.add(&codec::decode::<Job>(v)?);
        }
        Ok(t)
    }

    /// Add the totals of another set of jobs (e.g. the next page of a scan).
    pub fn merge(&mut self, o: &Self) {
        self.requested += o.requested;
        self.attested += o.attested;
        self.received += o.received;
        self.cancelled += o.cancelled;
        self.rejected += o.rejected;
        self.inputs += o.inputs;
        self.grant_inputs += o.grant_inputs;
        self.order_inputs += o.order_inputs;
        self.inputs_destroyed += o.inputs_destroyed;
    }

    /// All jobs, whatever their status.
    pub fn jobs(&self) -> u64 {
        self.requested + self.attested + self.received + self.cancelled + self.rejected
    }
}

/// Decode a stored job (for tools: the RPC's JSON view is [`crate::render`]).
pub fn decode_job(bytes: &[u8]) -> Result<Job, DecodeError> {
    codec::decode(bytes)
}

// ----- execution ----------------------------------------------------------------------------

/// An admitted compute node, neither suspended nor negative-listed.
fn live_compute_node<S: State + ?Sized>(
    x: &Exec<'_, S>,
    key: &PublicKey,
) -> Result<Participant, ContractError> {
    let Some(p) = load_participant(&x.st, key)? else {
        return Err(ContractError::not_found("compute node", key));
    };
    if !p.has_role(Role::ComputeNode) {
        return Err(ContractError::forbidden(format!(
            "{key} is not a compute node (compute nodes are admitted by governance: \
             admit_compute_node)"
        )));
    }
    if p.is_barred() {
        return Err(ContractError::forbidden(format!(
            "compute node {key} is suspended or negative-listed"
        )));
    }
    Ok(p)
}

/// Check that order `oid` authorises job `job` on `product` for `consumer`, and mark it used
/// by the job. Returns whether the order consumed a grant (the policy's `grant_consumed`).
fn use_order<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    oid: &OrderId,
    consumer: &PublicKey,
    product: &ProductId,
    purpose: &str,
    job: &JobId,
) -> Result<bool, ContractError> {
    let o: Order = x.must(&keys::order(oid), "order", oid)?;
    if o.buyer != *consumer {
        return Err(ContractError::forbidden(format!(
            "order {oid} is not the consumer's own: only its buyer may use it for a job"
        )));
    }
    if o.product != *product {
        return Err(ContractError::conflict(format!(
            "order {oid} is for product {}, not {product}",
            o.product
        )));
    }
    if !ORDER_DONE.contains(&o.status) {
        return Err(ContractError::WrongState {
            kind: "order",
            id: oid.to_string(),
            state: o.status.to_string(),
            action: "request_job",
            expected: "delivered, confirmed or settled".into(),
        });
    }
    if !o.purpose.is_empty() && o.purpose != purpose {
        return Err(ContractError::conflict(format!(
            "order {oid} is for purpose {:?}, the job's is {purpose:?}",
            o.purpose
        )));
    }
    if let Some(other) = x.st.get(&keys::order_job(oid)) {
        let other = codec::hash(&other, "order job").map_err(ContractError::from)?;
        return Err(ContractError::conflict(format!(
            "order {oid} already authorises job {other} (an order authorises one job)"
        )));
    }
    x.st.put(keys::order_job(oid), job.to_wire());
    Ok(o.grant.is_some())
}

/// The `request_job` operation (shape checked by `Operation::validate`).
pub(crate) fn request<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    products: &[ProductId],
    authorizations: &[JobAuthorization],
    compute_node: &PublicKey,
    purpose: &str,
    code_hash: Hash,
) -> Result<(), ContractError> {
    if products.is_empty() || products.len() != authorizations.len() {
        return Err(ContractError::invalid("a job needs one authorization per product"));
    }
    let consumer = x.me()?.account;
    let node = live_compute_node(x, compute_node)?;
    if node.account == consumer {
        return Err(ContractError::forbidden(
            "a compute node cannot run a job for itself: it would see the raw data",
        ));
    }
    let id = JobId::derive(x.chain_id(), &x.signer, x.nonce);
    let mut providers = Vec::with_capacity(products.len());
    let mut authorities = Vec::with_capacity(products.len());
    for (product, auth) in products.iter().zip(authorizations) {
        let (authority, grant_consumed) = match auth {
            JobAuthorization::Grant(gref) => {
                let req =
                    UseRequest { subject: None, product: *product, purpose, request_hash: id.0 };
                (JobAuthority::Grant(grants::consume(x, gref, &req)?), true)
            }
            JobAuthorization::Order(oid) => {
                let via_grant = use_order(x, oid, &consumer, product, purpose, &id)?;
                (JobAuthority::Order(*oid), via_grant)
            }
        };
        let prod = load_listed(x, product)?;
        providers.push(prod.provider);
        let ctx = PolicyContext { grant_consumed, purpose: purpose.to_string() };
        x.authorize(Action::RequestJob, &Resource::Product(prod), &ctx)?;
        authorities.push(authority);
    }
    let height = x.height();
    let job = Job {
        id,
        consumer,
        compute_node: node.account,
        products: products.to_vec(),
        providers,
        authorities,
        purpose: purpose.to_string(),
        code_hash,
        status: JobStatus::Requested,
        requested_height: height,
        requested_time_ms: x.time_ms(),
        input_commitments: Vec::new(),
        result_hash: None,
        inputs_destroyed: false,
        attested_height: None,
        attestation_tx: None,
        received_height: None,
        reject_reason_hash: None,
        updated_height: height,
    };
    x.store(keys::job(&id), &job);
    let list = |items: Vec<String>| items.join(",");
    let mut event = job_event("job.requested", &job);
    let mut seen: Vec<PublicKey> = Vec::new();
    for p in &job.providers {
        if !seen.contains(p) {
            seen.push(*p);
            event = event.attr("provider", p);
        }
    }
    let (mut granted, mut ordered) = (Vec::new(), Vec::new());
    for a in &job.authorities {
        match a {
            JobAuthority::Grant(g) => granted.push(g.to_string()),
            JobAuthority::Order(o) => ordered.push(o.to_string()),
        }
    }
    x.emit(
        event
            .attr("products", list(job.products.iter().map(ToString::to_string).collect()))
            .attr("purpose", &job.purpose)
            .attr("code_hash", job.code_hash)
            .attr("grants", list(granted))
            .attr("orders", list(ordered)),
    );
    Ok(())
}

fn job_event(kind: &str, job: &Job) -> Event {
    Event::new(kind)
        .attr("job", job.id)
        .attr("consumer", job.consumer)
        .attr("compute_node", job.compute_node)
}

/// Who may take a step on a job.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Party {
    Consumer,
    ComputeNode,
}

/// Load job `id` and check the signer is `party` and the job is in `from`; then ask the
/// policy for `action` (on the market: a job spans several products).
fn step<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &JobId,
    action: Action,
    party: Party,
    from: JobStatus,
) -> Result<Job, ContractError> {
    let job: Job = x.must(&keys::job(id), "job", id)?;
    let me = x.me()?.account;
    let (who, name) = match party {
        Party::Consumer => (job.consumer, "consumer"),
        Party::ComputeNode => (job.compute_node, "compute node"),
    };
    if me != who {
        return Err(ContractError::forbidden(format!(
            "only job {id}'s {name} may {action} it; {me} is not"
        )));
    }
    if job.status != from {
        return Err(ContractError::WrongState {
            kind: "job",
            id: id.to_string(),
            state: job.status.to_string(),
            action: action.as_str(),
            expected: from.to_string(),
        });
    }
    let ctx = PolicyContext { grant_consumed: false, purpose: job.purpose.clone() };
    x.authorize(action, &Resource::Market, &ctx)?;
    Ok(job)
}

/// The `attest_job` operation, by the job's compute node (`inputs_destroyed` was checked by
/// `Operation::validate`: only `true` reaches execution).
pub(crate) fn attest<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &JobId,
    code_hash: Hash,
    input_commitments: &[Hash],
    result_hash: Hash,
    inputs_destroyed: bool,
) -> Result<(), ContractError> {
    let mut job = step(x, id, Action::AttestJob, Party::ComputeNode, JobStatus::Requested)?;
    if !inputs_destroyed {
        return Err(ContractError::invalid(
            "a compute node attests a job only after destroying its inputs and intermediates",
        ));
    }
    if code_hash != job.code_hash {
        return Err(ContractError::conflict(format!(
            "job {id} asked for code {}, the attestation names {code_hash}",
            job.code_hash
        )));
    }
    if input_commitments.len() != job.products.len() {
        return Err(ContractError::invalid(format!(
            "job {id} reads {} products: one input commitment each, {} given",
            job.products.len(),
            input_commitments.len()
        )));
    }
    let h = x.height();
    job.status = JobStatus::Attested;
    job.input_commitments = input_commitments.to_vec();
    job.result_hash = Some(result_hash);
    job.inputs_destroyed = true;
    job.attested_height = Some(h);
    job.attestation_tx = Some(x.tx_hash);
    job.updated_height = h;
    x.store(keys::job(id), &job);
    x.emit(
        job_event("job.attested", &job)
            .attr("code_hash", job.code_hash)
            .attr("result_hash", result_hash)
            .attr("inputs", job.input_commitments.len())
            .attr("inputs_destroyed", true),
    );
    Ok(())
}

/// The `confirm_job` operation: the consumer's receipt of the attested result.
pub(crate) fn confirm<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &JobId,
    result_hash: Hash,
) -> Result<(), ContractError> {
    let mut job = step(x, id, Action::ConfirmJob, Party::Consumer, JobStatus::Attested)?;
    if job.result_hash != Some(result_hash) {
        return Err(ContractError::conflict(format!(
            "result {result_hash} is not the result attested for job {id}"
        )));
    }
    let h = x.height();
    job.status = JobStatus::Received;
    job.received_height = Some(h);
    job.updated_height = h;
    x.store(keys::job(id), &job);
    x.emit(job_event("job.received", &job).attr("result_hash", result_hash));
    Ok(())
}

/// `cancel_job` (consumer) or `reject_job` (compute node, with its reasons), while requested:
/// the job's orders are freed; its grants stay consumed.
pub(crate) fn close<S: State + ?Sized>(
    x: &mut Exec<'_, S>,
    id: &JobId,
    reject_reason_hash: Option<Hash>,
) -> Result<(), ContractError> {
    let (action, party, status, kind) = match reject_reason_hash {
        None => (Action::CancelJob, Party::Consumer, JobStatus::Cancelled, "job.cancelled"),
        Some(_) => (Action::RejectJob, Party::ComputeNode, JobStatus::Rejected, "job.rejected"),
    };
    let mut job = step(x, id, action, party, JobStatus::Requested)?;
    for a in &job.authorities {
        if let JobAuthority::Order(oid) = a {
            x.st.delete(&keys::order_job(oid));
        }
    }
    let h = x.height();
    job.status = status;
    job.reject_reason_hash = reject_reason_hash;
    job.updated_height = h;
    x.store(keys::job(id), &job);
    let mut e = job_event(kind, &job);
    if let Some(r) = reject_reason_hash {
        e = e.attr("reason_hash", r);
    }
    x.emit(e);
    Ok(())
}
