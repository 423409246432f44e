//! prost-generated wire types; kept crate-private behind the domain types.
#![allow(clippy::all, clippy::pedantic, missing_debug_implementations)]

include!(concat!(env!("OUT_DIR"), "/dpx.ledger.v1.rs"));
