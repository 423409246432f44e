//! `dpx-app`: the application — what a transaction and a block must pass, and what they do,
//! between the network (`dpx-node`) and the rules (`dpx-contracts`) over the ledger
//! (`dpx-ledger`). Everything here is synchronous and free of networking: the node calls it
//! from its driver, RPC and relay, and the auditor's replay uses it alone.
//!
//! The modules follow a transaction's path:
//!
//! - [`admit`]: admission to a mempool — the stateless checks with a cache that verifies each
//!   signature once per node ([`admit::TxChecker`]), the stateful checks against the latest
//!   state ([`admit::check_stateful`]) and why a transaction is refused ([`admit::Refusal`]).
//! - [`validate`]: block validity, shared by proposal validation, block sync and replay — the
//!   header against our tip, the parent certificate, the parameters' limits, every
//!   transaction's stateless checks.
//! - [`execute`]: a decided block run through `dpx-contracts` on a ledger overlay (the writes to
//!   commit and the receipts), and the validator set and block limits the state gives each
//!   height.
//! - [`views`]: JSON views of receipts, transactions and state values; the object kinds the RPC
//!   lists and fetches.
//! - [`proofs`]: proof bundles that check a state value offline against the genesis file.
//! - [`replay`]: the auditor's independent replay of a whole ledger from genesis, which stops at
//!   the first divergence, and [`replay::ChainBuilder`], a certified chain built without
//!   consensus for tests and benchmarks.
//!
//! ```
//! use dpx_app::admit::TxChecker;
//! use dpx_app::validate::check_block_txs;
//! use dpx_contracts::{Operation, Role, TransactionBody};
//! use dpx_crypto::Keypair;
//!
//! let chain = "dpx-doc";
//! let checker = TxChecker::new(chain, false, 1024);
//! let (agency, newcomer) = (Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32]));
//! let op = Operation::Admit {
//!     key: newcomer.public(),
//!     name: "Acme".into(),
//!     roles: vec![Role::Consumer],
//! };
//! let tx = TransactionBody::new(chain, 0, op).sign(&agency).encode();
//!
//! // Admission verifies the signature...
//! assert!(checker.check_batch(vec![tx.clone()])[0].is_ok());
//! assert_eq!(checker.verifications(), 1);
//! // ...and validating a block that carries the transaction does not verify it again.
//! let txs = [tx];
//! let hashes = dpx_ledger::TxHashes::of(&txs);
//! check_block_txs(&checker, &txs, hashes.digests()).unwrap();
//! assert_eq!(checker.verifications(), 1);
//! ```

#![forbid(unsafe_code)]

pub mod admit;
pub mod execute;
pub mod proofs;
pub mod replay;
mod state;
pub mod validate;
pub mod views;

pub use state::LatestState;
