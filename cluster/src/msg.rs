//! Types every layer shares: node ids, client commands and values, log entries, the
//! replies the engine and state machine give back to clients, and the peer wire frame.
//!
//! Engine-specific protocol messages (Raft's `AppendEntries`, Paxos's `Prepare`, ...) are NOT
//! here: each engine declares its own `Engine::Msg` type, and the transport ships any
//! serde type inside a [`Frame`]. Adding an engine therefore never touches this file.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node's name as given by `--id` and `--peers` (e.g. `"n1"`).
pub type NodeId = String;

/// Identifies one in-flight client request on the node that received it (never sent to peers
/// as a meaningful value except by engines that coordinate requests themselves, like NWR).
pub type ReqId = u64;

/// A register value: the client API accepts JSON integers and strings only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A signed 64-bit integer.
    Int(i64),
    /// A UTF-8 string.
    Str(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One key-value operation, the unit the state machine applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Read a key (only logged when reads go through the log, `--read log`).
    Get {
        /// Key to read.
        key: String,
    },
    /// Overwrite a key.
    Put {
        /// Key to write.
        key: String,
        /// New value.
        value: Value,
    },
    /// Compare-and-set: write `to` only if the current value equals `from`.
    Cas {
        /// Key to update.
        key: String,
        /// Expected current value.
        from: Value,
        /// Value written on match.
        to: Value,
    },
}

impl Op {
    /// The key this operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Cas { key, .. } => key,
        }
    }
}

/// A client command: an operation plus the optional (client_id, seq) used for de-duplication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The operation to apply.
    pub op: Op,
    /// Client identity for exactly-once retries (with `seq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Client sequence number; a repeated (client_id, seq) returns the stored result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// What a log entry carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Payload {
    /// No operation (Raft's entry on election, Paxos's hole filler).
    Noop,
    /// A client command for the state machine.
    Command(Command),
    /// Engine-private bytes the state machine never sees (e.g. a Paxos StartWorking marker).
    Engine(Vec<u8>),
}

/// One durable log record. `term` is the engine's epoch (Raft term, Paxos ballot, NWR timestamp).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log, starting at 1.
    pub index: u64,
    /// Epoch in which the entry was created.
    pub term: u64,
    /// Contents.
    pub payload: Payload,
}

/// The outcome of a client request, before it is mapped to an HTTP status by `http.rs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Write or successful CAS applied (200).
    Ok,
    /// Read result (200), `None` for a missing key.
    Value(Option<Value>),
    /// CAS did not match; carries the current value (409, definite failure).
    CasMismatch(Option<Value>),
    /// This node cannot serve the request; it was not proposed (421, definite failure).
    NotLeader(Option<NodeId>),
    /// The request was definitely not proposed (503).
    Unavailable(String),
    /// The request may or may not take effect later (504).
    Unknown,
    /// The engine does not offer this operation (501).
    Unsupported,
}

/// What travels on a peer TCP connection: length-delimited JSON frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Frame<M> {
    /// First frame on every connection: who dialed (connections are one-directional).
    Hello {
        /// Sender's node id.
        from: NodeId,
    },
    /// An engine message from the sender identified by `Hello`.
    Msg(M),
}
