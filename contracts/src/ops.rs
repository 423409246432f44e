//! The operations a transaction can carry, their wire form and their stateless validation.

use dpx_crypto::{Hash, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire, pb};
use crate::compute::{self, JobAuthorization, MAX_JOB_INPUTS};
use crate::error::{DecodeError, TxError};
use crate::governance::ProposalAction;
use crate::grants::{GrantRef, SignedGrant};
use crate::money::MAX_REFERENCE_BYTES;
use crate::products::ProductSpec;
use crate::trades::AttestTarget;
use crate::types::{
    DemandId, GrantId, JobId, ListStatus, MAX_RATING, MAX_TEXT_BYTES, OrderId, ProductId,
    ProposalId, Role, Stage, SubjectId, Verdict,
};

/// Most roles one participant can hold.
pub const MAX_ROLES: usize = 8;

/// Who may sign an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signers {
    /// An admitted participant's current key.
    Participants,
    /// An enrolled data subject's current key.
    Subjects,
    /// Either (`rotate_subject_key`: the subject itself, or its registrar).
    Both,
}

/// One marketplace operation. JSON form: `{"type": "list_product", "spec": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    // ---- participants
    /// Admit an organisation (agency or operator). Agencies themselves join by governance.
    Admit {
        key: PublicKey,
        name: String,
        roles: Vec<Role>,
    },
    /// Move the signer's account to a new key; `new_key_signature` is the new key's signature
    /// (domain `ROTATE_KEY_DOMAIN`) over the account key, proving possession.
    RotateKey {
        new_key: PublicKey,
        new_key_signature: Signature,
    },
    /// Certification rating, by a rating body.
    SetRating {
        participant: PublicKey,
        rating: u8,
    },
    /// Whitelist / negative list, by a regulator.
    SetListStatus {
        participant: PublicKey,
        status: ListStatus,
    },
    Suspend {
        participant: PublicKey,
        reason: String,
    },
    Reinstate {
        participant: PublicKey,
    },
    // ---- products
    ListProduct {
        spec: ProductSpec,
    },
    UpdateProduct {
        product: ProductId,
        spec: ProductSpec,
    },
    DelistProduct {
        product: ProductId,
    },
    // ---- demands
    PostDemand {
        title: String,
        domain: String,
        budget: u64,
        description_hash: Hash,
        /// Block time (ms since the epoch) of the last accepted response.
        deadline_ms: Option<u64>,
    },
    RespondDemand {
        demand: DemandId,
        product: Option<ProductId>,
        price: u64,
        proposal_hash: Hash,
    },
    AwardDemand {
        demand: DemandId,
        responder: PublicKey,
    },
    CloseDemand {
        demand: DemandId,
    },
    // ---- trades
    /// Order a product; a grade ≥ 3 product needs `grant`, consumed by this order.
    PlaceOrder {
        product: ProductId,
        grant: Option<GrantRef>,
        purpose: String,
        demand: Option<DemandId>,
    },
    AcceptOrder {
        order: OrderId,
    },
    DeliverOrder {
        order: OrderId,
        delivery_hash: Hash,
    },
    /// By the buyer: the escrow goes to the provider minus the platform fee (settles the order).
    ConfirmOrder {
        order: OrderId,
    },
    CancelOrder {
        order: OrderId,
    },
    DisputeOrder {
        order: OrderId,
        reason_hash: Hash,
    },
    /// Close a dispute (an operator's ruling): `settle_amount` is the provider's share of the
    /// escrow (the rest is refunded to the buyer); `None` refunds all and cancels.
    ResolveDispute {
        order: OrderId,
        settle_amount: Option<u64>,
    },
    /// A life-cycle stage of data received through an order or a grant use, by its holder.
    Attest {
        target: AttestTarget,
        stage: Stage,
        hash: Hash,
    },
    /// A regulator's verdict on the `seq`-th attestation of `target`, once.
    ReviewAttestation {
        target: AttestTarget,
        seq: u32,
        verdict: Verdict,
        reason_hash: Hash,
    },
    // ---- one-use grants
    /// By the grant's subject (current key).
    RegisterGrant {
        grant: Box<SignedGrant>,
    },
    /// By the consumer: use once, for the data of `subject` only.
    UseGrant {
        grant: GrantRef,
        subject: SubjectId,
        product: ProductId,
        purpose: String,
        request_hash: Hash,
    },
    /// By a subject: revoke its grant with this serial, registered or not.
    RevokeGrant {
        serial: Hash,
    },
    /// By any participant, once the grant's time has passed.
    ExpireGrant {
        grant: GrantId,
    },
    // ---- data subjects
    /// By a registrar: bind a subject id (a keyed commitment of the real identifier) to a key.
    EnrolSubject {
        subject_id: SubjectId,
        subject_key: PublicKey,
    },
    /// By the subject (current key) or its registrar; `new_key_signature` is the new key's
    /// signature (`SUBJECT_KEY_DOMAIN`) over the subject id.
    RotateSubjectKey {
        subject_id: SubjectId,
        new_key: PublicKey,
        new_key_signature: Signature,
    },
    /// By a subject: every grant it signed so far is refused from now on.
    RevokeAllGrants,
    // ---- governance
    Propose {
        action: ProposalAction,
    },
    Approve {
        proposal: ProposalId,
    },
    // ---- money, recorded by settlement banks
    /// Money received off the ledger for `account` (a participant's account key, or its
    /// current key), in the currency's minor unit; `reference` is the bank's own id of the
    /// transfer, used once per bank.
    Deposit {
        account: PublicKey,
        amount: u64,
        reference: String,
    },
    /// Money paid out off the ledger from `account`'s balance, which it may not exceed.
    Withdraw {
        account: PublicKey,
        amount: u64,
        reference: String,
    },
    // ---- compute jobs (see `compute`): the data stays invisible
    /// By the consumer: run `code_hash` on `compute_node` over `products` (1..=8, distinct),
    /// each authorised by the grant or order at the same position in `authorizations`.
    RequestJob {
        products: Vec<ProductId>,
        authorizations: Vec<JobAuthorization>,
        compute_node: PublicKey,
        purpose: String,
        code_hash: Hash,
    },
    /// By the job's compute node: what ran, on what, with what result; `inputs_destroyed`
    /// must be true.
    AttestJob {
        job: JobId,
        code_hash: Hash,
        input_commitments: Vec<Hash>,
        result_hash: Hash,
        inputs_destroyed: bool,
    },
    /// By the consumer: receipt of the attested result.
    ConfirmJob {
        job: JobId,
        result_hash: Hash,
    },
    /// By the consumer, before attestation.
    CancelJob {
        job: JobId,
    },
    /// By the job's compute node, before attestation.
    RejectJob {
        job: JobId,
        reason_hash: Hash,
    },
}

fn text(s: &str, what: &str) -> Result<(), TxError> {
    if s.is_empty() || s.len() > MAX_TEXT_BYTES {
        return Err(TxError::invalid_op(format!("{what} must be 1..={MAX_TEXT_BYTES} bytes")));
    }
    Ok(())
}

impl Operation {
    /// snake_case name, as in JSON and events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Admit { .. } => "admit",
            Self::RotateKey { .. } => "rotate_key",
            Self::SetRating { .. } => "set_rating",
            Self::SetListStatus { .. } => "set_list_status",
            Self::Suspend { .. } => "suspend",
            Self::Reinstate { .. } => "reinstate",
            Self::ListProduct { .. } => "list_product",
            Self::UpdateProduct { .. } => "update_product",
            Self::DelistProduct { .. } => "delist_product",
            Self::PostDemand { .. } => "post_demand",
            Self::RespondDemand { .. } => "respond_demand",
            Self::AwardDemand { .. } => "award_demand",
            Self::CloseDemand { .. } => "close_demand",
            Self::PlaceOrder { .. } => "place_order",
            Self::AcceptOrder { .. } => "accept_order",
            Self::DeliverOrder { .. } => "deliver_order",
            Self::ConfirmOrder { .. } => "confirm_order",
            Self::CancelOrder { .. } => "cancel_order",
            Self::DisputeOrder { .. } => "dispute_order",
            Self::ResolveDispute { .. } => "resolve_dispute",
            Self::Attest { .. } => "attest",
            Self::ReviewAttestation { .. } => "review_attestation",
            Self::RegisterGrant { .. } => "register_grant",
            Self::UseGrant { .. } => "use_grant",
            Self::RevokeGrant { .. } => "revoke_grant",
            Self::ExpireGrant { .. } => "expire_grant",
            Self::EnrolSubject { .. } => "enrol_subject",
            Self::RotateSubjectKey { .. } => "rotate_subject_key",
            Self::RevokeAllGrants => "revoke_all_grants",
            Self::Propose { .. } => "propose",
            Self::Approve { .. } => "approve",
            Self::Deposit { .. } => "deposit",
            Self::Withdraw { .. } => "withdraw",
            Self::RequestJob { .. } => "request_job",
            Self::AttestJob { .. } => "attest_job",
            Self::ConfirmJob { .. } => "confirm_job",
            Self::CancelJob { .. } => "cancel_job",
            Self::RejectJob { .. } => "reject_job",
        }
    }

    /// Who may sign this operation. A key that is neither a participant's nor an enrolled
    /// subject's signs nothing: unknown keys cannot create state.
    pub fn signers(&self) -> Signers {
        match self {
            Self::RegisterGrant { .. } | Self::RevokeGrant { .. } | Self::RevokeAllGrants => {
                Signers::Subjects
            }
            Self::RotateSubjectKey { .. } => Signers::Both,
            _ => Signers::Participants,
        }
    }

    /// The data subject's signed grant this operation carries, if any.
    pub fn signed_grant(&self) -> Option<&SignedGrant> {
        match self {
            Self::RegisterGrant { grant }
            | Self::UseGrant { grant: GrantRef::Inline(grant), .. }
            | Self::PlaceOrder { grant: Some(GrantRef::Inline(grant)), .. } => Some(grant),
            _ => None,
        }
    }

    /// Every data subject's signed grant this operation carries: [`Self::signed_grant`]'s, or
    /// the inline grants of a `request_job` (whose signatures execution checks one by one).
    pub fn carried_grants(&self) -> Vec<&SignedGrant> {
        match self {
            Self::RequestJob { authorizations, .. } => authorizations
                .iter()
                .filter_map(|a| match a {
                    JobAuthorization::Grant(GrantRef::Inline(g)) => Some(&**g),
                    _ => None,
                })
                .collect(),
            _ => self.signed_grant().into_iter().collect(),
        }
    }

    /// Checks that need no state: text lengths, ranges, embedded grants well-formed.
    pub fn validate(&self) -> Result<(), TxError> {
        match self {
            Self::Admit { name, roles, .. } => {
                text(name, "name")?;
                if roles.is_empty() || roles.len() > MAX_ROLES {
                    return Err(TxError::invalid_op(format!("1..={MAX_ROLES} roles needed")));
                }
                if roles.contains(&Role::Registrar) {
                    return Err(TxError::invalid_op(
                        "a registrar is admitted only by a governance proposal (admit_registrar)",
                    ));
                }
                if roles.contains(&Role::SettlementBank) {
                    return Err(TxError::invalid_op(
                        "a settlement bank is admitted only by a governance proposal \
                         (admit_settlement_bank)",
                    ));
                }
                if roles.contains(&Role::ComputeNode) {
                    return Err(TxError::invalid_op(
                        "a compute node is admitted only by a governance proposal \
                         (admit_compute_node)",
                    ));
                }
            }
            Self::SetRating { rating, .. } if *rating > MAX_RATING => {
                return Err(TxError::invalid_op(format!("rating above {MAX_RATING}")));
            }
            Self::Suspend { reason, .. } => text(reason, "reason")?,
            Self::ListProduct { spec } | Self::UpdateProduct { spec, .. } => {
                spec.validate().map_err(TxError::invalid_op)?;
            }
            Self::PostDemand { title, domain, .. } => {
                text(title, "title")?;
                text(domain, "domain")?;
            }
            Self::PlaceOrder { grant, purpose, .. } => {
                if !purpose.is_empty() {
                    text(purpose, "purpose")?;
                }
                if let Some(GrantRef::Inline(g)) = grant {
                    g.grant.validate().map_err(TxError::invalid_op)?;
                }
            }
            Self::UseGrant { grant, purpose, .. } => {
                text(purpose, "purpose")?;
                if let GrantRef::Inline(g) = grant {
                    g.grant.validate().map_err(TxError::invalid_op)?;
                }
            }
            Self::RegisterGrant { grant } => grant.grant.validate().map_err(TxError::invalid_op)?,
            Self::Propose { action } => action.validate().map_err(TxError::invalid_op)?,
            Self::Deposit { amount, reference, .. } | Self::Withdraw { amount, reference, .. } => {
                if *amount == 0 {
                    return Err(TxError::invalid_op("a transfer's amount must be positive"));
                }
                if reference.is_empty() || reference.len() > MAX_REFERENCE_BYTES {
                    return Err(TxError::invalid_op(format!(
                        "a bank reference must be 1..={MAX_REFERENCE_BYTES} bytes"
                    )));
                }
            }
            Self::RequestJob { products, authorizations, purpose, .. } => {
                text(purpose, "purpose")?;
                if products.is_empty() || products.len() > MAX_JOB_INPUTS {
                    return Err(TxError::invalid_op(format!(
                        "a job reads 1..={MAX_JOB_INPUTS} products"
                    )));
                }
                if authorizations.len() != products.len() {
                    return Err(TxError::invalid_op(
                        "a job needs exactly one authorization per product, in the same order",
                    ));
                }
                let distinct: std::collections::BTreeSet<_> = products.iter().collect();
                if distinct.len() != products.len() {
                    return Err(TxError::invalid_op("a job names each product once"));
                }
                for a in authorizations {
                    if let JobAuthorization::Grant(GrantRef::Inline(g)) = a {
                        g.grant.validate().map_err(TxError::invalid_op)?;
                    }
                }
            }
            Self::AttestJob { input_commitments, inputs_destroyed, .. } => {
                if !inputs_destroyed {
                    return Err(TxError::invalid_op(
                        "a compute node attests a job only after destroying its inputs and \
                         intermediates (inputs_destroyed must be true)",
                    ));
                }
                if input_commitments.is_empty() || input_commitments.len() > MAX_JOB_INPUTS {
                    return Err(TxError::invalid_op(format!(
                        "1..={MAX_JOB_INPUTS} input commitments, one per product"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn pk(k: &PublicKey) -> Vec<u8> {
    k.to_bytes().to_vec()
}

fn h(x: &Hash) -> Vec<u8> {
    x.0.to_vec()
}

fn transfer_pb(account: &PublicKey, amount: u64, reference: &str) -> pb::BankTransfer {
    pb::BankTransfer { account: pk(account), amount, reference: reference.to_owned() }
}

impl Wire for Operation {
    type Pb = pb::Operation;
    const MAX_BYTES: usize = crate::tx::MAX_TX_BYTES;

    fn to_pb(&self) -> pb::Operation {
        use pb::operation::Kind as K;
        let kind = match self {
            Self::Admit { key, name, roles } => K::Admit(pb::Admit {
                key: pk(key),
                name: name.clone(),
                roles: roles.iter().map(|r| r.code()).collect(),
            }),
            Self::RotateKey { new_key, new_key_signature } => K::RotateKey(pb::RotateKey {
                new_key: pk(new_key),
                new_key_signature: new_key_signature.to_bytes().to_vec(),
            }),
            Self::SetRating { participant, rating } => K::SetRating(pb::SetRating {
                participant: pk(participant),
                rating: u32::from(*rating),
            }),
            Self::SetListStatus { participant, status } => K::SetListStatus(pb::SetListStatus {
                participant: pk(participant),
                status: status.code(),
            }),
            Self::Suspend { participant, reason } => {
                K::Suspend(pb::Suspend { participant: pk(participant), reason: reason.clone() })
            }
            Self::Reinstate { participant } => {
                K::Reinstate(pb::Reinstate { participant: pk(participant) })
            }
            Self::ListProduct { spec } => {
                K::ListProduct(pb::ListProduct { spec: Some(spec.to_pb()) })
            }
            Self::UpdateProduct { product, spec } => K::UpdateProduct(pb::UpdateProduct {
                product: product.to_wire(),
                spec: Some(spec.to_pb()),
            }),
            Self::DelistProduct { product } => {
                K::DelistProduct(pb::DelistProduct { product: product.to_wire() })
            }
            Self::PostDemand { title, domain, budget, description_hash, deadline_ms } => {
                K::PostDemand(pb::PostDemand {
                    title: title.clone(),
                    domain: domain.clone(),
                    budget: *budget,
                    description_hash: h(description_hash),
                    deadline_ms: *deadline_ms,
                })
            }
            Self::RespondDemand { demand, product, price, proposal_hash } => {
                K::RespondDemand(pb::RespondDemand {
                    demand: demand.to_wire(),
                    product: product.map(super::types::ProductId::to_wire),
                    price: *price,
                    proposal_hash: h(proposal_hash),
                })
            }
            Self::AwardDemand { demand, responder } => K::AwardDemand(pb::AwardDemand {
                demand: demand.to_wire(),
                responder: pk(responder),
            }),
            Self::CloseDemand { demand } => {
                K::CloseDemand(pb::CloseDemand { demand: demand.to_wire() })
            }
            Self::PlaceOrder { product, grant, purpose, demand } => K::PlaceOrder(pb::PlaceOrder {
                product: product.to_wire(),
                grant: grant.as_ref().map(Wire::to_pb),
                purpose: purpose.clone(),
                demand: demand.map(super::types::DemandId::to_wire),
            }),
            Self::AcceptOrder { order } => K::AcceptOrder(pb::OrderStep { order: order.to_wire() }),
            Self::DeliverOrder { order, delivery_hash } => K::DeliverOrder(pb::DeliverOrder {
                order: order.to_wire(),
                delivery_hash: h(delivery_hash),
            }),
            Self::ConfirmOrder { order } => {
                K::ConfirmOrder(pb::OrderStep { order: order.to_wire() })
            }
            Self::CancelOrder { order } => K::CancelOrder(pb::OrderStep { order: order.to_wire() }),
            Self::DisputeOrder { order, reason_hash } => K::DisputeOrder(pb::DisputeOrder {
                order: order.to_wire(),
                reason_hash: h(reason_hash),
            }),
            Self::ResolveDispute { order, settle_amount } => {
                K::ResolveDispute(pb::ResolveDispute {
                    order: order.to_wire(),
                    settle_amount: *settle_amount,
                })
            }
            Self::Attest { target, stage, hash } => K::Attest(pb::Attest {
                target: Some(target.to_pb()),
                stage: stage.code(),
                hash: h(hash),
            }),
            Self::ReviewAttestation { target, seq, verdict, reason_hash } => {
                K::ReviewAttestation(pb::ReviewAttestation {
                    target: Some(target.to_pb()),
                    seq: *seq,
                    verdict: verdict.code(),
                    reason_hash: h(reason_hash),
                })
            }
            Self::RegisterGrant { grant } => {
                K::RegisterGrant(pb::RegisterGrant { grant: Some(grant.to_pb()) })
            }
            Self::UseGrant { grant, subject, product, purpose, request_hash } => {
                K::UseGrant(pb::UseGrant {
                    grant: Some(grant.to_pb()),
                    subject: subject.to_wire(),
                    product: product.to_wire(),
                    purpose: purpose.clone(),
                    request_hash: h(request_hash),
                })
            }
            Self::RevokeGrant { serial } => K::RevokeGrant(pb::RevokeGrant { serial: h(serial) }),
            Self::ExpireGrant { grant } => K::ExpireGrant(pb::GrantIdOp { id: grant.to_wire() }),
            Self::EnrolSubject { subject_id, subject_key } => K::EnrolSubject(pb::EnrolSubject {
                subject_id: subject_id.to_wire(),
                subject_key: pk(subject_key),
            }),
            Self::RotateSubjectKey { subject_id, new_key, new_key_signature } => {
                K::RotateSubjectKey(pb::RotateSubjectKey {
                    subject_id: subject_id.to_wire(),
                    new_key: pk(new_key),
                    new_key_signature: new_key_signature.to_bytes().to_vec(),
                })
            }
            Self::RevokeAllGrants => K::RevokeAllGrants(pb::RevokeAllGrants {}),
            Self::Propose { action } => K::Propose(pb::Propose { action: Some(action.to_pb()) }),
            Self::Approve { proposal } => K::Approve(pb::Approve { proposal: proposal.to_wire() }),
            Self::Deposit { account, amount, reference } => {
                K::Deposit(transfer_pb(account, *amount, reference))
            }
            Self::Withdraw { account, amount, reference } => {
                K::Withdraw(transfer_pb(account, *amount, reference))
            }
            Self::RequestJob { products, authorizations, compute_node, purpose, code_hash } => {
                K::RequestJob(pb::RequestJob {
                    products: compute::products_to_pb(products),
                    authorizations: compute::authorizations_to_pb(authorizations),
                    compute_node: pk(compute_node),
                    purpose: purpose.clone(),
                    code_hash: h(code_hash),
                })
            }
            Self::AttestJob {
                job,
                code_hash,
                input_commitments,
                result_hash,
                inputs_destroyed,
            } => K::AttestJob(pb::AttestJob {
                job: job.to_wire(),
                code_hash: h(code_hash),
                input_commitments: compute::hashes(input_commitments),
                result_hash: h(result_hash),
                inputs_destroyed: *inputs_destroyed,
            }),
            Self::ConfirmJob { job, result_hash } => {
                K::ConfirmJob(pb::ConfirmJob { job: job.to_wire(), result_hash: h(result_hash) })
            }
            Self::CancelJob { job } => K::CancelJob(pb::JobStep { job: job.to_wire() }),
            Self::RejectJob { job, reason_hash } => {
                K::RejectJob(pb::RejectJob { job: job.to_wire(), reason_hash: h(reason_hash) })
            }
        };
        pb::Operation { kind: Some(kind) }
    }

    fn from_pb(p: pb::Operation) -> Result<Self, DecodeError> {
        use pb::operation::Kind as K;
        let key = codec::key;
        let hash = codec::hash;
        Ok(match codec::req(p.kind, "op")? {
            K::Admit(o) => Self::Admit {
                key: key(&o.key, "key")?,
                name: o.name,
                roles: o
                    .roles
                    .into_iter()
                    .map(|r| Role::from_wire(r, "roles"))
                    .collect::<Result<_, _>>()?,
            },
            K::RotateKey(o) => Self::RotateKey {
                new_key: key(&o.new_key, "new_key")?,
                new_key_signature: codec::sig(&o.new_key_signature, "new_key_signature")?,
            },
            K::SetRating(o) => Self::SetRating {
                participant: key(&o.participant, "participant")?,
                rating: codec::small(o.rating, "rating")?,
            },
            K::SetListStatus(o) => Self::SetListStatus {
                participant: key(&o.participant, "participant")?,
                status: ListStatus::from_wire(o.status, "status")?,
            },
            K::Suspend(o) => {
                Self::Suspend { participant: key(&o.participant, "participant")?, reason: o.reason }
            }
            K::Reinstate(o) => Self::Reinstate { participant: key(&o.participant, "participant")? },
            K::ListProduct(o) => {
                Self::ListProduct { spec: ProductSpec::from_pb(codec::req(o.spec, "spec")?)? }
            }
            K::UpdateProduct(o) => Self::UpdateProduct {
                product: ProductId::from_wire(&o.product, "product")?,
                spec: ProductSpec::from_pb(codec::req(o.spec, "spec")?)?,
            },
            K::DelistProduct(o) => {
                Self::DelistProduct { product: ProductId::from_wire(&o.product, "product")? }
            }
            K::PostDemand(o) => Self::PostDemand {
                title: o.title,
                domain: o.domain,
                budget: o.budget,
                description_hash: hash(&o.description_hash, "description_hash")?,
                deadline_ms: o.deadline_ms,
            },
            K::RespondDemand(o) => Self::RespondDemand {
                demand: DemandId::from_wire(&o.demand, "demand")?,
                product: o.product.map(|p| ProductId::from_wire(&p, "product")).transpose()?,
                price: o.price,
                proposal_hash: hash(&o.proposal_hash, "proposal_hash")?,
            },
            K::AwardDemand(o) => Self::AwardDemand {
                demand: DemandId::from_wire(&o.demand, "demand")?,
                responder: key(&o.responder, "responder")?,
            },
            K::CloseDemand(o) => {
                Self::CloseDemand { demand: DemandId::from_wire(&o.demand, "demand")? }
            }
            K::PlaceOrder(o) => Self::PlaceOrder {
                product: ProductId::from_wire(&o.product, "product")?,
                grant: o.grant.map(GrantRef::from_pb).transpose()?,
                purpose: o.purpose,
                demand: o.demand.map(|d| DemandId::from_wire(&d, "demand")).transpose()?,
            },
            K::AcceptOrder(o) => {
                Self::AcceptOrder { order: OrderId::from_wire(&o.order, "order")? }
            }
            K::DeliverOrder(o) => Self::DeliverOrder {
                order: OrderId::from_wire(&o.order, "order")?,
                delivery_hash: hash(&o.delivery_hash, "delivery_hash")?,
            },
            K::ConfirmOrder(o) => {
                Self::ConfirmOrder { order: OrderId::from_wire(&o.order, "order")? }
            }
            K::CancelOrder(o) => {
                Self::CancelOrder { order: OrderId::from_wire(&o.order, "order")? }
            }
            K::DisputeOrder(o) => Self::DisputeOrder {
                order: OrderId::from_wire(&o.order, "order")?,
                reason_hash: hash(&o.reason_hash, "reason_hash")?,
            },
            K::ResolveDispute(o) => Self::ResolveDispute {
                order: OrderId::from_wire(&o.order, "order")?,
                settle_amount: o.settle_amount,
            },
            K::Attest(o) => Self::Attest {
                target: AttestTarget::from_pb(codec::req(o.target, "target")?)?,
                stage: Stage::from_wire(o.stage, "stage")?,
                hash: hash(&o.hash, "hash")?,
            },
            K::ReviewAttestation(o) => Self::ReviewAttestation {
                target: AttestTarget::from_pb(codec::req(o.target, "target")?)?,
                seq: o.seq,
                verdict: Verdict::from_wire(o.verdict, "verdict")?,
                reason_hash: hash(&o.reason_hash, "reason_hash")?,
            },
            K::RegisterGrant(o) => Self::RegisterGrant {
                grant: Box::new(SignedGrant::from_pb(codec::req(o.grant, "grant")?)?),
            },
            K::UseGrant(o) => Self::UseGrant {
                grant: GrantRef::from_pb(codec::req(o.grant, "grant")?)?,
                subject: SubjectId::from_wire(&o.subject, "subject")?,
                product: ProductId::from_wire(&o.product, "product")?,
                purpose: o.purpose,
                request_hash: hash(&o.request_hash, "request_hash")?,
            },
            K::RevokeGrant(o) => Self::RevokeGrant { serial: hash(&o.serial, "serial")? },
            K::EnrolSubject(o) => Self::EnrolSubject {
                subject_id: SubjectId::from_wire(&o.subject_id, "subject_id")?,
                subject_key: key(&o.subject_key, "subject_key")?,
            },
            K::RotateSubjectKey(o) => Self::RotateSubjectKey {
                subject_id: SubjectId::from_wire(&o.subject_id, "subject_id")?,
                new_key: key(&o.new_key, "new_key")?,
                new_key_signature: codec::sig(&o.new_key_signature, "new_key_signature")?,
            },
            K::RevokeAllGrants(pb::RevokeAllGrants {}) => Self::RevokeAllGrants,
            K::ExpireGrant(o) => Self::ExpireGrant { grant: GrantId::from_wire(&o.id, "grant")? },
            K::Propose(o) => {
                Self::Propose { action: ProposalAction::from_pb(codec::req(o.action, "action")?)? }
            }
            K::Approve(o) => {
                Self::Approve { proposal: ProposalId::from_wire(&o.proposal, "proposal")? }
            }
            K::Deposit(o) => Self::Deposit {
                account: key(&o.account, "account")?,
                amount: o.amount,
                reference: o.reference,
            },
            K::Withdraw(o) => Self::Withdraw {
                account: key(&o.account, "account")?,
                amount: o.amount,
                reference: o.reference,
            },
            K::RequestJob(o) => Self::RequestJob {
                products: compute::product_ids(o.products, "products")?,
                authorizations: compute::authorizations_from_pb(o.authorizations)?,
                compute_node: key(&o.compute_node, "compute_node")?,
                purpose: o.purpose,
                code_hash: hash(&o.code_hash, "code_hash")?,
            },
            K::AttestJob(o) => Self::AttestJob {
                job: JobId::from_wire(&o.job, "job")?,
                code_hash: hash(&o.code_hash, "code_hash")?,
                input_commitments: compute::hash_list(o.input_commitments, "input_commitments")?,
                result_hash: hash(&o.result_hash, "result_hash")?,
                inputs_destroyed: o.inputs_destroyed,
            },
            K::ConfirmJob(o) => Self::ConfirmJob {
                job: JobId::from_wire(&o.job, "job")?,
                result_hash: hash(&o.result_hash, "result_hash")?,
            },
            K::CancelJob(o) => Self::CancelJob { job: JobId::from_wire(&o.job, "job")? },
            K::RejectJob(o) => Self::RejectJob {
                job: JobId::from_wire(&o.job, "job")?,
                reason_hash: hash(&o.reason_hash, "reason_hash")?,
            },
        })
    }
}
