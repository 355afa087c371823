//! kvnode: the bundled replicated key-value store that faultline tests (a black box to the harness).
