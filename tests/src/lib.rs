//! dpx-tests: cluster simulation and end-to-end tests.
