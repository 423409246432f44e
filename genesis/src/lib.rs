//! dpx-genesis: under construction.
