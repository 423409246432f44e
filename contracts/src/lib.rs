//! `dpx-contracts`: what the dpx ledger means — the transaction format and the deterministic
//! state-transition rules of the data-product marketplace.
//!
//! - [`tx`]: [`SignedTransaction`] over a [`TransactionBody`] (chain id, nonce, optional expiry,
//!   one [`Operation`]); [`check_stateless`] / [`decode_unverified`] for the mempool and batch
//!   verification.
//! - [`exec`]: [`check_stateful`] (nonce, expiry, signer) and [`execute`] / [`execute_block`],
//!   which produce a [`Receipt`] for every transaction. A failed transaction changes nothing but
//!   its signer's nonce.
//! - The marketplace: [`participants`], [`products`], [`demands`], [`trades`] (orders and
//!   their escrow), [`lifecycle`] (the data's life cycle after delivery: stages attested in
//!   order, destruction due after a product's retention period, overdue destructions reported
//!   at block start by [`process_overdue_destructions`], a regulator's review) and [`grants`] — one use, one authorization: a grant moves
//!   `Issued → Consumed | Revoked | Expired` exactly once; [`subjects`]: the data subjects
//!   registrars enrol, whose current key alone signs their grants.
//! - [`compute`]: computations whose data stays invisible (可用不可见): a compute node
//!   (admitted by governance) runs a job over products' data for a consumer who receives only
//!   the result; the ledger records the request and what authorised each input (a grant,
//!   consumed, or the consumer's order, one job each), the node's attestation (code hash,
//!   input commitments, result hash, inputs destroyed) and the consumer's receipt. No money
//!   moves in a job.
//! - [`policy`]: Cedar policies with a built-in schema, held in state and evaluated for every
//!   guarded operation; each decision is recorded as a [`DecisionReceipt`]. A policy that errors
//!   denies (fail closed).
//! - [`money`]: balances in the genesis currency's minor unit, deposits and withdrawals recorded
//!   by settlement banks, the escrow of accepted orders, the platform fee and the treasury;
//!   nothing but a deposit or a withdrawal creates or destroys money.
//! - [`governance`]: proposals approved by more than 2/3 of the *active* agencies change
//!   policies, the validator set (from a later height), parameters and the platform fee, admit
//!   agencies, registrars, settlement banks and compute nodes, pay from the treasury, and
//!   suspend, reinstate or list agencies — an agency's standing changes by governance only.
//! - [`read`]: the read policy — who may see which record, transaction and event.
//! - [`keys`]: the state key of every object; [`render`] turns any stored value into JSON.
//!
//! The crate does no I/O and reads no clock, randomness or floating point: the same state,
//! block context and transactions give the same receipts and state on every node.
//!
//! ```
//! use dpx_contracts::*;
//! use dpx_crypto::{Hash, Keypair};
//!
//! let chain = "dpx-doc";
//! let agency = Keypair::from_seed([1; 32]);
//! let mut state = MemState::new();
//! let genesis = GenesisApp {
//!     agencies: vec![GenesisAgency { name: "Data Bureau".into(), key: agency.public() }],
//!     validators: vec![Validator { key: agency.public(), power: 10, name: "v0".into() }],
//!     policies: None, // the built-in default policies
//!     params: Params::default(),
//!     currency: Currency::default(), // CNY, in fen
//!     platform_fee_basis_points: 0,
//! };
//! init_genesis(&mut state, chain, &genesis).unwrap();
//!
//! // The agency admits a provider.
//! let provider = Keypair::from_seed([2; 32]);
//! let op = Operation::Admit { key: provider.public(), name: "Acme Data".into(), roles: vec![Role::Provider] };
//! let bytes = TransactionBody::new(chain, 0, op).sign(&agency).encode();
//! let tx = check_stateless(&bytes, chain).unwrap();
//! let ctx = BlockContext { chain_id: chain.into(), height: 1, time_ms: 0 };
//! let receipt = execute(&mut state, &ctx, &tx);
//! assert!(receipt.is_ok(), "{}", receipt.reason);
//! assert_eq!(receipt.decision.unwrap().determining, ["agencies-admit-and-suspend"]);
//!
//! // The same transaction again is refused (replay) and changes nothing.
//! let again = execute(&mut state, &ctx, &tx);
//! assert_eq!(again.code, Code::Invalid);
//! ```

#![forbid(unsafe_code)]

mod codec;
pub mod compute;
pub mod demands;
mod error;
pub mod exec;
mod genesis;
pub mod governance;
pub mod grants;
pub mod keys;
pub mod lifecycle;
pub mod money;
mod ops;
mod params;
pub mod participants;
pub mod policy;
pub mod products;
pub mod read;
mod receipt;
mod render;
mod state;
pub mod subjects;
pub mod trades;
pub mod tx;
mod types;

pub use compute::{Job, JobAuthority, JobAuthorization, JobTotals, MAX_JOB_INPUTS};
pub use demands::{Demand, DemandResponse};
pub use error::{ContractError, DecodeError, GrantRefusal, TxError};
pub use exec::{
    BlockContext, begin_block, check_stateful, execute, execute_block, execute_checked_block,
    next_nonce, resolve_account,
};
pub use genesis::{GenesisAgency, GenesisApp, init_genesis};
pub use governance::{
    MAX_AGENCIES, Proposal, ProposalAction, Validator, ValidatorChange, active_agencies, agencies,
    agency_count, current_validators, is_active_agency, quorum_reached, scheduled_validator_set,
    validator_set, validator_updates,
};
pub use grants::{Grant, GrantRecord, GrantRef, SignedGrant, UsageReceipt, grant_id};
pub use lifecycle::{
    DestructionDue, MAX_OVERDUE_PER_BLOCK, OrderedState, Review, overdue_reports,
    process_overdue_destructions,
};
pub use money::{
    Account, BankRecord, Currency, MAX_FEE_BASIS_POINTS, Supply, Treasury, balance, currency,
    load_account, money_in_object, platform_fee_bps, supply, treasury,
};
pub use ops::{Operation, Signers};
pub use params::{MAX_ENCODED_BLOCK_BYTES, Params, Purpose, default_purposes, params};
pub use participants::{Participant, ROTATE_KEY_DOMAIN, load_participant, rotation_message};
pub use policy::{
    Action, DEFAULT_POLICIES, PolicySetRecord, SCHEMA_TEXT, authorize_read, current_policies,
    parse_policies,
};
pub use products::{
    Availability, Product, ProductConditions, ProductSpec, availability, provider_standing,
};
pub use receipt::{Attr, DecisionReceipt, Event, Receipt};
pub use render::{render, render_in, rfc3339_ms};
pub use state::{MemState, State};
pub use subjects::{SUBJECT_KEY_DOMAIN, Subject, load_subject, subject_key_message};
pub use trades::{AttestTarget, Attestation, Order};
pub use tx::{
    MAX_TX_BYTES, SignedTransaction, TransactionBody, UnverifiedTx, VerifiedTx, check_stateless,
    decode_unverified,
};
pub use types::{
    BankRecordKind, Category, Code, DemandId, DemandStatus, GrantId, GrantState, JobId, JobStatus,
    ListStatus, MAX_GRADE, MAX_RATING, OBJECT_ID_DOMAIN, OrderId, OrderStatus, ProductId,
    ProposalId, ProposalStatus, Role, Stage, SubjectId, SubjectStatus, Verdict,
};

#[cfg(test)]
mod roundtrip_tests;
