//! Where `dpx audit replay` takes its blocks from: a stopped node's home directory
//! ([`HomeSource`]) or a node's RPC ([`RpcSource`]). The replay itself (block checks,
//! re-execution, comparisons, the report) is `dpx_app::replay`, which needs neither a network
//! nor a runtime; a source only has to implement [`dpx_app::replay::Source`].

mod home;
mod rpc;

use dpx_app::replay::ReplayError;

pub use home::HomeSource;
pub use rpc::{Backoff, RpcSource};

/// A source that cannot answer: the replay stops with this error (not a divergence).
fn src(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::Source(e.to_string())
}
