//! Deterministic Raft tests on the in-memory network (no sockets, no sleeps).
