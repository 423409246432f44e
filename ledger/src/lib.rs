//! dpx-ledger: under construction.
