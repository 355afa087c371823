//! kvnode: the bundled replicated key-value store that faultline tests (a black box to the
//! harness). The principal type is the [`engine::Engine`] trait: replication engines are
//! pure state machines (raft-rs's `RawNode` shape) and everything with I/O is shared.
//!
//! # Layout
//!
//! - [`engine`]: the Engine trait and `Ready` contract; [`engine::raft`] is Raft.
//! - [`msg`]: ids, commands, values, log entries, replies, the peer frame.
//! - [`storage`]: durable checksummed record log and snapshot file (+ in-memory impl).
//! - [`snapshot`]: the snapshot type, its checksummed format, and chunked transfer.
//! - [`membership`]: configurations (voters, learners, addresses), changes, refusals.
//! - [`state_machine`]: the key-value store with client de-duplication.
//! - [`transport`]: one-directional TCP peer links.
//! - [`http`]: the HTTP/JSON client API and its status-code contract.
//! - [`driver`]: the driver loop of `engine/mod.rs` as synchronous code ([`driver::NodeCore`]),
//!   shared by the real node and the simulator.
//! - [`node`]: the real node's async shell around the driver (timers, channels, fsync).
//! - [`shard`]: `--shards S`, several replication groups per process sharing the peer links;
//!   [`twopc`]: two-phase commit of transactions across them (pure state machine).
//! - `cli`: flags, runtime, signals ([`run_cli`]); [`EngineSpec`] resolves kvnode's engine
//!   flags for the binary and the simulator alike.

mod cli;
pub mod driver;
pub mod engine;
pub mod http;
pub mod membership;
pub mod msg;
pub mod node;
pub mod ports;
pub mod shard;
pub mod snapshot;
pub mod state_machine;
pub mod storage;
pub mod transport;
pub mod twopc;

pub use cli::{run_cli, EngineFlagsError, EngineKind, EngineSpec};
