//! Execution: the cheap stateful checks the mempool runs, and the deterministic state
//! transition of a transaction and of a block.
//!
//! A transaction that fails the stateful checks (`Code::Invalid`) changes nothing. One that
//! passes them always moves its signer's nonce; its own writes are staged in an [`Overlay`] and
//! applied only if the operation succeeds.
//!
//! Who signs what: every operation is signed by an admitted participant's current key or by an
//! enrolled data subject's current key ([`Operation::signers`]); any other key is refused like
//! a bad nonce (`Invalid`, nothing written, not even a nonce), so unknown keys cannot create
//! state.

use std::fmt::Display;

use dpx_crypto::{Hash, PublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, Wire};
use crate::error::{ContractError, GrantRefusal, TxError};
use crate::governance;
use crate::grants::{self, SignedGrant};
use crate::lifecycle::{OrderedState, process_overdue_destructions};
use crate::ops::{Operation, Signers};
use crate::params::params;
use crate::participants::{Participant, load_participant};
use crate::policy::{self, Action, PolicyContext, Resource};
use crate::receipt::{DecisionReceipt, Event, Receipt};
use crate::state::{Overlay, State, apply};
use crate::subjects::{self, resolve_subject};
use crate::tx::{VerifiedTx, check_stateless};
use crate::types::{BankRecordKind, Code, SubjectId};
use crate::{compute, demands, keys, money, participants, products, trades};

/// What the block being executed tells the contracts. `time_ms` is the proposer's header time
/// (checked by validators within a bound), never a local clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockContext {
    pub chain_id: String,
    pub height: u64,
    pub time_ms: u64,
}

/// The next nonce `signer` must use.
pub fn next_nonce<S: State + ?Sized>(st: &S, signer: &PublicKey) -> Result<u64, TxError> {
    match st.get(&keys::nonce(signer)) {
        None => Ok(0),
        Some(b) => <[u8; 8]>::try_from(b.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| TxError::Corrupt { reason: format!("nonce of {signer}") }),
    }
}

/// The participant `key` signs for: its account if `key` is an account's current key, the
/// bound account if `key` was rotated in, `None` for a key that is no participant's.
pub fn resolve_account<S: State + ?Sized>(
    st: &S,
    key: &PublicKey,
) -> Result<Option<Participant>, TxError> {
    let corrupt = |e: ContractError| TxError::Corrupt { reason: e.to_string() };
    if let Some(p) = load_participant(st, key).map_err(corrupt)? {
        return if p.current_key == *key {
            Ok(Some(p))
        } else {
            Err(TxError::RotatedKey { signer: key.to_hex() })
        };
    }
    let Some(account) = st.get(&keys::key_binding(key)) else { return Ok(None) };
    let account = codec::key(&account, "key binding")
        .map_err(|e| TxError::Corrupt { reason: e.to_string() })?;
    load_participant(st, &account).map_err(corrupt)
}

/// Who signed a transaction. One per transaction, moved at once into `Exec`, so the size
/// difference between variants does not matter.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Signer {
    Participant(Participant),
    /// An enrolled data subject's current key, by subject id.
    Subject(SubjectId),
}

/// The mempool's cheap stateful check: chain, size, expiry, nonce, signer, and the expiry of a
/// carried grant against `last_time_ms`, the last committed block's time. Execution decides
/// with the block's own time; this only keeps grants already expired out of the pool.
pub fn check_stateful<S: State + ?Sized>(
    st: &S,
    tx: &VerifiedTx,
    height: u64,
    last_time_ms: u64,
) -> Result<(), TxError> {
    precheck(st, tx, height)?;
    if let Some(sg) =
        tx.body.op.carried_grants().into_iter().find(|g| grants::expired_at(g, last_time_ms))
    {
        return Err(TxError::GrantExpired {
            expires_at_ms: sg.grant.expires_at_ms,
            time_ms: last_time_ms,
        });
    }
    Ok(())
}

fn precheck<S: State + ?Sized>(st: &S, tx: &VerifiedTx, height: u64) -> Result<Signer, TxError> {
    if let Some(chain) = st.get(keys::CHAIN_ID).filter(|c| c != tx.body.chain_id.as_bytes()) {
        return Err(TxError::WrongChain {
            expected: String::from_utf8_lossy(&chain).into_owned(),
            got: tx.body.chain_id.clone(),
        });
    }
    let max = params(st).max_tx_bytes as usize;
    if tx.size > max {
        return Err(TxError::TooLarge { size: tx.size, max });
    }
    if let Some(expiry_height) = tx.body.expiry_height.filter(|e| height > *e) {
        return Err(TxError::Expired { expiry_height, height });
    }
    let expected = next_nonce(st, &tx.signer)?;
    let got = tx.body.nonce;
    if got < expected {
        return Err(TxError::NonceTooLow { expected, got });
    }
    if got > expected {
        return Err(TxError::NonceTooHigh { expected, got });
    }
    let op = &tx.body.op;
    let signer = match resolve_account(st, &tx.signer)? {
        Some(p) => Signer::Participant(p),
        None => match resolve_subject(st, &tx.signer)? {
            Some(s) => Signer::Subject(s.id),
            None => return Err(TxError::UnknownSigner { signer: tx.signer.to_hex() }),
        },
    };
    match (&signer, op.signers()) {
        (Signer::Participant(_), Signers::Subjects) => Err(TxError::SubjectOnly { op: op.name() }),
        (Signer::Subject(_), Signers::Participants) => {
            Err(TxError::SubjectCannotSign { op: op.name() })
        }
        _ => Ok(signer),
    }
}

/// Start a block: apply a validator set scheduled for this height, then report the
/// destructions overdue at the block's time ([`process_overdue_destructions`]), returning
/// those events. `execute_block` calls it; a caller executing transactions one by one must call
/// it first at every height. The events belong to the block, not to a transaction: they are
/// kept in state (`overdue/<height>`) and read back by [`crate::lifecycle::overdue_reports`].
pub fn begin_block<S: OrderedState + ?Sized>(st: &mut S, ctx: &BlockContext) -> Vec<Event> {
    governance::activate_validators(st, ctx.height);
    process_overdue_destructions(st, ctx)
}

/// Execute a block of encoded signed transactions. Undecodable or badly signed ones get a
/// `Code::Undecodable` receipt and change nothing.
pub fn execute_block<S: OrderedState + ?Sized>(
    st: &mut S,
    ctx: &BlockContext,
    txs: &[Vec<u8>],
) -> Vec<Receipt> {
    let checked: Vec<_> = txs.iter().map(|b| check_stateless(b, &ctx.chain_id)).collect();
    execute_checked_block(st, ctx, txs, checked)
}

/// [`execute_block`] for a caller that already ran the stateless checks: `checked[i]` must be
/// exactly what [`check_stateless`] returns for `txs[i]` (a node verifies signatures in batches
/// and once per transaction, then executes here). Same receipts and writes as `execute_block`.
pub fn execute_checked_block<S: OrderedState + ?Sized>(
    st: &mut S,
    ctx: &BlockContext,
    txs: &[Vec<u8>],
    checked: Vec<Result<VerifiedTx, TxError>>,
) -> Vec<Receipt> {
    assert_eq!(txs.len(), checked.len(), "one stateless check per transaction");
    begin_block(st, ctx);
    txs.iter()
        .zip(checked)
        .map(|(bytes, c)| match c {
            Ok(tx) => execute(st, ctx, &tx),
            Err(e) => Receipt {
                tx_hash: Hash::digest(bytes),
                code: Code::Undecodable,
                reason: e.to_string(),
                events: Vec::new(),
                decision: None,
            },
        })
        .collect()
}

/// Execute one verified transaction. Deterministic: the receipt and the writes depend only on
/// the state, the context and the transaction.
pub fn execute<S: State + ?Sized>(st: &mut S, ctx: &BlockContext, tx: &VerifiedTx) -> Receipt {
    let mut receipt = Receipt {
        tx_hash: tx.hash,
        code: Code::Ok,
        reason: String::new(),
        events: Vec::new(),
        decision: None,
    };
    let signer = match precheck(st, tx, ctx.height) {
        Ok(a) if tx.body.chain_id == ctx.chain_id => a,
        Ok(_) => {
            receipt.code = Code::Invalid;
            receipt.reason = TxError::WrongChain {
                expected: ctx.chain_id.clone(),
                got: tx.body.chain_id.clone(),
            }
            .to_string();
            return receipt;
        }
        Err(e) => {
            receipt.code = Code::Invalid;
            receipt.reason = e.to_string();
            return receipt;
        }
    };
    let mut x = Exec::new(&*st, ctx, tx, signer);
    let result = dispatch(&mut x, &tx.body.op);
    let Exec { st: overlay, events, decision, account, .. } = x;
    receipt.decision = decision;
    match result {
        Ok(()) => {
            let writes = overlay.into_writes();
            apply(st, writes);
            receipt.events = events;
        }
        Err(e) => {
            drop(overlay);
            receipt.code = e.code();
            receipt.reason = e.to_string();
            receipt.events = failure_events(
                &e,
                &tx.body.op,
                &tx.signer,
                account.as_ref(),
                receipt.decision.as_ref(),
            );
        }
    }
    st.put(keys::nonce(&tx.signer), (tx.body.nonce + 1).to_be_bytes().to_vec());
    receipt
}

/// What a failed transaction leaves for auditors: refused grant operations (e.g. an attempted
/// second use) and denied policy decisions.
fn failure_events(
    e: &ContractError,
    op: &Operation,
    signer: &PublicKey,
    account: Option<&Participant>,
    decision: Option<&DecisionReceipt>,
) -> Vec<Event> {
    let who = account.map_or(*signer, |a| a.account);
    let mut out = Vec::new();
    if let ContractError::Grant { id, refusal } = e {
        out.push(
            Event::new("grant.refused")
                .attr("grant", id)
                .attr("op", op.name())
                .attr("by", who)
                .attr("reason", refusal),
        );
    }
    if let Some(d) = decision.filter(|d| !d.allowed) {
        out.push(
            Event::new("policy.denied")
                .attr("action", &d.action)
                .attr("principal", d.principal)
                .attr("resource", &d.resource)
                .attr("reason", &d.reason),
        );
    }
    out.push(Event::new("tx.failed").attr("op", op.name()).attr("by", who).attr("reason", e));
    out
}

fn dispatch<S: State + ?Sized>(x: &mut Exec<'_, S>, op: &Operation) -> Result<(), ContractError> {
    use Operation as O;
    match op {
        O::Admit { key, name, roles } => participants::admit(x, *key, name, roles),
        O::RotateKey { new_key, new_key_signature } => {
            participants::rotate_key(x, *new_key, new_key_signature)
        }
        O::SetRating { participant, rating } => participants::set_rating(x, participant, *rating),
        O::SetListStatus { participant, status } => {
            participants::set_list_status(x, participant, *status)
        }
        O::Suspend { participant, reason } => participants::suspend(x, participant, reason),
        O::Reinstate { participant } => participants::reinstate(x, participant),
        O::ListProduct { spec } => products::list(x, spec),
        O::UpdateProduct { product, spec } => products::update(x, product, spec),
        O::DelistProduct { product } => products::delist(x, product),
        O::PostDemand { .. }
        | O::RespondDemand { .. }
        | O::AwardDemand { .. }
        | O::CloseDemand { .. } => demands::dispatch(x, op),
        O::PlaceOrder { .. }
        | O::AcceptOrder { .. }
        | O::DeliverOrder { .. }
        | O::ConfirmOrder { .. }
        | O::CancelOrder { .. }
        | O::DisputeOrder { .. }
        | O::ResolveDispute { .. }
        | O::Attest { .. }
        | O::ReviewAttestation { .. } => trades::dispatch(x, op),
        O::RegisterGrant { grant } => grants::register(x, grant),
        O::UseGrant { grant, subject, product, purpose, request_hash } => grants::use_grant(
            x,
            grant,
            &grants::UseRequest {
                subject: Some(*subject),
                product: *product,
                purpose,
                request_hash: *request_hash,
            },
        ),
        O::RevokeGrant { serial } => grants::revoke(x, serial),
        O::ExpireGrant { grant } => grants::expire(x, grant),
        O::EnrolSubject { subject_id, subject_key } => subjects::enrol(x, subject_id, *subject_key),
        O::RotateSubjectKey { subject_id, new_key, new_key_signature } => {
            subjects::rotate(x, subject_id, *new_key, new_key_signature)
        }
        O::RevokeAllGrants => subjects::revoke_all(x),
        O::Propose { action } => governance::propose(x, action),
        O::Approve { proposal } => governance::approve(x, proposal),
        O::Deposit { account, amount, reference } => {
            money::bank_transfer(x, BankRecordKind::Deposit, account, *amount, reference)
        }
        O::Withdraw { account, amount, reference } => {
            money::bank_transfer(x, BankRecordKind::Withdrawal, account, *amount, reference)
        }
        O::RequestJob { products, authorizations, compute_node, purpose, code_hash } => {
            compute::request(x, products, authorizations, compute_node, purpose, *code_hash)
        }
        O::AttestJob { job, code_hash, input_commitments, result_hash, inputs_destroyed } => {
            compute::attest(x, job, *code_hash, input_commitments, *result_hash, *inputs_destroyed)
        }
        O::ConfirmJob { job, result_hash } => compute::confirm(x, job, *result_hash),
        O::CancelJob { job } => compute::close(x, job, None),
        O::RejectJob { job, reason_hash } => compute::close(x, job, Some(*reason_hash)),
    }
}

/// The execution context of one transaction.
pub(crate) struct Exec<'a, S: State + ?Sized> {
    /// Staged writes over the block state.
    pub st: Overlay<'a, S>,
    block: &'a BlockContext,
    pub tx_hash: Hash,
    /// The key that signed (may differ from the account after a rotation).
    pub signer: PublicKey,
    pub nonce: u64,
    /// The stateless checks' verdict on the carried grant's signature, if they made one.
    grant_signature: Option<bool>,
    account: Option<Participant>,
    /// The signing subject's id, when a data subject signed.
    subject: Option<SubjectId>,
    events: Vec<Event>,
    decision: Option<DecisionReceipt>,
}

impl<'a, S: State + ?Sized> Exec<'a, S> {
    fn new(st: &'a S, block: &'a BlockContext, tx: &VerifiedTx, signer: Signer) -> Self {
        let (account, subject) = match signer {
            Signer::Participant(p) => (Some(p), None),
            Signer::Subject(id) => (None, Some(id)),
        };
        Self {
            st: Overlay::new(st),
            block,
            tx_hash: tx.hash,
            signer: tx.signer,
            nonce: tx.body.nonce,
            // The verdict is about the one grant `Operation::signed_grant` names; an operation
            // carrying none (e.g. `request_job`, whose grants are checked one by one) ignores it.
            grant_signature: tx.grant_signature.filter(|_| tx.body.op.signed_grant().is_some()),
            account,
            subject,
            events: Vec::new(),
            decision: None,
        }
    }

    /// The signing data subject's id, if a subject (current key) signed.
    pub fn subject_id(&self) -> Option<SubjectId> {
        self.subject
    }

    /// Whether the signer is an admitted participant's key.
    pub fn is_participant(&self) -> bool {
        self.account.is_some()
    }

    /// The transaction's grant's signature: the verdict of the stateless checks when they
    /// made one (the same as verifying here), else verified now.
    pub fn check_grant_signature(&self, sg: &SignedGrant) -> Result<(), GrantRefusal> {
        match self.grant_signature {
            Some(true) => Ok(()),
            Some(false) => Err(GrantRefusal::BadSignature),
            None => sg.verify(self.chain_id()),
        }
    }

    pub fn height(&self) -> u64 {
        self.block.height
    }

    pub fn chain_id(&self) -> &str {
        &self.block.chain_id
    }

    /// The block's agreed time (the header's, never a local clock), in ms since the epoch.
    pub fn time_ms(&self) -> u64 {
        self.block.time_ms
    }

    /// The signer's participant record.
    pub fn me(&self) -> Result<&Participant, ContractError> {
        self.account.as_ref().ok_or_else(|| {
            ContractError::forbidden(format!("signer {} is not a participant", self.signer))
        })
    }

    pub fn load<T: Wire>(&self, key: &[u8]) -> Result<Option<T>, ContractError> {
        Ok(self.st.get(key).map(|b| codec::decode(&b)).transpose()?)
    }

    /// Load an object that must exist.
    pub fn must<T: Wire>(
        &self,
        key: &[u8],
        kind: &'static str,
        id: impl Display,
    ) -> Result<T, ContractError> {
        self.load(key)?.ok_or_else(|| ContractError::not_found(kind, id))
    }

    pub fn store<T: Wire>(&mut self, key: Vec<u8>, value: &T) {
        let mine = self
            .account
            .as_ref()
            .filter(|a| key == keys::participant(&a.account))
            .map(|a| a.account);
        self.st.put(key, codec::encode(value));
        // Keep the signer's cached record current when this transaction changes it.
        if let Some(account) = mine {
            self.account = load_participant(&self.st, &account).ok().flatten();
        }
    }

    pub fn emit(&mut self, event: Event) {
        self.events.push(event);
    }

    /// Ask the policy set; record the decision in the receipt; fail on deny.
    pub fn authorize(
        &mut self,
        action: Action,
        resource: &Resource,
        ctx: &PolicyContext,
    ) -> Result<(), ContractError> {
        let me = self.me()?.clone();
        let d = policy::decide(&self.st, &me, action, resource, ctx)?;
        let allowed = d.allowed;
        let reason = d.reason.clone();
        self.decision = Some(d);
        if allowed { Ok(()) } else { Err(ContractError::Denied { reason }) }
    }
}
