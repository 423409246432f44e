//! `dpx-node`: the `dpx` binary's library — wiring the pure cores into a running validator.
//!
//! - [`p2p`]: libp2p (TCP + Noise + Yamux), permissioned full mesh, block sync transport.
//! - [`mempool`]: bounded (in total and per signer), deduplicated, nonce-ordered pending
//!   transactions.
//! - [`relay`]: transactions relayed by peers — capped verification work, a penalty for peers
//!   that relay invalid ones.
//! - [`driver`]: the consensus driver — feeds `dpx-consensus`, persists the safety state before
//!   anything it signs leaves, builds blocks, has `dpx-app` validate and execute them, and
//!   commits them through `dpx-ledger`.
//! - [`serve_sync`]: answers peers' block-sync requests from the store.
//! - [`membership`]: the validator set per height with names, scheduled changes, the keys p2p
//!   lets in.
//! - [`rpc`]: the HTTP API (JSON and protobuf), server-sent events, `/metrics`, `/health`.
//! - [`console`]: the supervision console, HTML pages at `/console` under the read policy,
//!   with sign-in by a signed login token.
//! - [`replay`]: where `dpx audit replay` takes blocks from (a home directory, a node's RPC);
//!   the replay itself is `dpx_app::replay`.
//! - [`cli`]: `dpx keygen`, `dpx testnet init`, `dpx node start`, transaction and query commands.
//!
//! The application — admission checks, block validity, execution, JSON views, proofs — is
//! `dpx-app`, beneath this crate.
//!
//! ```no_run
//! // What `dpx node start --home DIR` does:
//! # async fn f() -> anyhow::Result<()> {
//! dpx_node::node::run(std::path::Path::new("/var/lib/dpx")).await?;
//! # Ok(()) }
//! ```

pub mod aggregates;
pub mod cli;
pub mod config;
pub mod console;
pub mod driver;
pub mod events;
pub mod membership;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod relay;
pub mod replay;
pub mod rpc;
pub mod safety;
pub mod serve_fetch;
pub mod serve_sync;
#[doc(hidden)]
pub mod testing;
pub mod testnet;

/// Generated protobuf types of the node's own wire messages (`proto/node.proto`).
#[allow(clippy::pedantic, missing_debug_implementations)]
pub mod wire {
    include!(concat!(env!("OUT_DIR"), "/dpx.node.v1.rs"));
}
