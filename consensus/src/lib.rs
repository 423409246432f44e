//! dpx-consensus: under construction.
