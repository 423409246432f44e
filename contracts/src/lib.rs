//! dpx-contracts: under construction.
