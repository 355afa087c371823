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

/// A stored value: the key-value API writes JSON integers and strings; a transaction's
/// `append` builds lists of them (which every read returns like any other value).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A signed 64-bit integer.
    Int(i64),
    /// A UTF-8 string.
    Str(String),
    /// A list, built only by `append` micro-ops (`PUT` and `w` accept scalars only).
    List(Vec<Value>),
}

impl Value {
    /// Whether this is an integer or a string (what `PUT`, CAS and `w` accept).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Value::List(_))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(l) => {
                f.write_str("[")?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// One micro-operation of a transaction. On the wire (HTTP and log) it is the history's
/// three-element list `[f, key, value]`: `["r","x",null]`, `["w","x",5]`,
/// `["append","x",5]`, plus `["add","x",3]` (integer increment, a missing key counts as 0)
/// and `["expect","x",v]` (the transaction aborts unless `x` holds `v`; `null` = missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMicroOp", into = "RawMicroOp")]
pub enum MicroOp {
    /// Read `key`; the result is its value (`null` when missing).
    Read {
        /// Key read.
        key: String,
    },
    /// Overwrite `key` with a scalar.
    Write {
        /// Key written.
        key: String,
        /// New value (integer or string).
        value: Value,
    },
    /// Append a scalar to the list at `key` (a missing key is the empty list).
    Append {
        /// The list's key.
        key: String,
        /// Element appended (integer or string).
        value: Value,
    },
    /// Add `delta` to the integer at `key` (missing = 0).
    Add {
        /// The counter's key.
        key: String,
        /// Increment (may be negative).
        delta: i64,
    },
    /// Abort the whole transaction unless `key` holds `value` (`None` = missing).
    Expect {
        /// Key compared.
        key: String,
        /// Value required.
        value: Option<Value>,
    },
}

impl MicroOp {
    /// The key this micro-op touches.
    pub fn key(&self) -> &str {
        match self {
            MicroOp::Read { key }
            | MicroOp::Write { key, .. }
            | MicroOp::Append { key, .. }
            | MicroOp::Add { key, .. }
            | MicroOp::Expect { key, .. } => key,
        }
    }

    /// The wire name of the micro-op (`r`, `w`, `append`, `add`, `expect`).
    pub fn f(&self) -> &'static str {
        match self {
            MicroOp::Read { .. } => "r",
            MicroOp::Write { .. } => "w",
            MicroOp::Append { .. } => "append",
            MicroOp::Add { .. } => "add",
            MicroOp::Expect { .. } => "expect",
        }
    }

    /// Whether applying it may change state (everything but `r` and `expect`).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            MicroOp::Write { .. } | MicroOp::Append { .. } | MicroOp::Add { .. }
        )
    }

    /// The value this micro-op leaves at its key, given what the key holds now (`None` =
    /// missing): `Some` for `w`, `append` and `add`, `None` for `r` and a matching `expect`;
    /// or why the transaction must abort (an `expect` that does not hold, a type error).
    /// The one definition of the micro-ops' meaning: the replicated state machine and NWR's
    /// per-micro-op quorums both evaluate them here.
    pub fn next_value(&self, cur: Option<&Value>) -> Result<Option<Value>, (AbortReason, String)> {
        let key = self.key();
        let show = |v: Option<&Value>| v.map_or("nothing".to_string(), |v| v.to_string());
        match self {
            MicroOp::Read { .. } => Ok(None),
            MicroOp::Write { value, .. } => Ok(Some(value.clone())),
            MicroOp::Append { value, .. } => match cur {
                None => Ok(Some(Value::List(vec![value.clone()]))),
                Some(Value::List(l)) => {
                    let mut l = l.clone();
                    l.push(value.clone());
                    Ok(Some(Value::List(l)))
                }
                Some(other) => Err((
                    AbortReason::Type,
                    format!("cannot append to {key:?}: it holds {other}, not a list"),
                )),
            },
            MicroOp::Add { delta, .. } => match cur {
                None => Ok(Some(Value::Int(*delta))),
                Some(Value::Int(n)) => n
                    .checked_add(*delta)
                    .map(|n| Some(Value::Int(n)))
                    .ok_or_else(|| {
                        (
                            AbortReason::Type,
                            format!("adding {delta} to {key:?} leaves the 64-bit integer range"),
                        )
                    }),
                Some(other) => Err((
                    AbortReason::Type,
                    format!("cannot add to {key:?}: it holds {other}, not an integer"),
                )),
            },
            MicroOp::Expect { value, .. } if value.as_ref() != cur => Err((
                AbortReason::Precondition,
                format!(
                    "expected {key:?} to hold {}, it holds {}",
                    show(value.as_ref()),
                    show(cur)
                ),
            )),
            MicroOp::Expect { .. } => Ok(None),
        }
    }
}

/// The wire form of a [`MicroOp`]: `[f, key, value]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawMicroOp(pub String, pub String, pub Option<Value>);

impl TryFrom<RawMicroOp> for MicroOp {
    type Error = String;
    fn try_from(RawMicroOp(f, key, value): RawMicroOp) -> Result<Self, String> {
        let scalar = |what: &str, v: Option<Value>| match v {
            Some(v) if v.is_scalar() => Ok(v),
            other => Err(format!(
                "[{f:?}, {key:?}, ..]: {what} must be an integer or a string, got {}",
                other.map_or("null".to_string(), |v| v.to_string())
            )),
        };
        Ok(match f.as_str() {
            "r" => match value {
                None => MicroOp::Read { key },
                Some(v) => return Err(format!("[\"r\", {key:?}, ..]: a read's value must be null, got {v}")),
            },
            "w" => {
                let value = scalar("the written value", value)?;
                MicroOp::Write { key, value }
            }
            "append" => {
                let value = scalar("the appended element", value)?;
                MicroOp::Append { key, value }
            }
            "add" => match value {
                Some(Value::Int(delta)) => MicroOp::Add { key, delta },
                other => {
                    return Err(format!(
                        "[\"add\", {key:?}, ..]: the increment must be an integer, got {}",
                        other.map_or("null".to_string(), |v| v.to_string())
                    ))
                }
            },
            "expect" => MicroOp::Expect { key, value },
            other => {
                return Err(format!(
                    "unknown micro-op {other:?} (expected \"r\", \"w\", \"append\", \"add\" or \"expect\")"
                ))
            }
        })
    }
}

impl From<MicroOp> for RawMicroOp {
    fn from(m: MicroOp) -> RawMicroOp {
        let f = m.f().to_string();
        match m {
            MicroOp::Read { key } => RawMicroOp(f, key, None),
            MicroOp::Write { key, value } | MicroOp::Append { key, value } => {
                RawMicroOp(f, key, Some(value))
            }
            MicroOp::Add { key, delta } => RawMicroOp(f, key, Some(Value::Int(delta))),
            MicroOp::Expect { key, value } => RawMicroOp(f, key, value),
        }
    }
}

/// Names one cross-shard transaction cluster-wide: `<coordinator node>/<boot id>/<counter>`.
pub type TxnId = String;

/// Why a transaction was not applied (it definitely had no effect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnAbort {
    /// What kind of reason.
    pub reason: AbortReason,
    /// The micro-op (position in the transaction) that caused it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<usize>,
    /// The reason in a sentence.
    pub message: String,
}

/// The kinds of [`TxnAbort`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AbortReason {
    /// An `expect` micro-op found another value.
    Precondition,
    /// A micro-op met a value of the wrong type (`append` to a scalar, `add` to a string or
    /// past the integer range).
    Type,
    /// A key is locked by a prepared cross-shard transaction (sharded mode only).
    Conflict,
}

impl AbortReason {
    /// Wire name (`precondition`, `type`, `conflict`).
    pub fn as_str(self) -> &'static str {
        match self {
            AbortReason::Precondition => "precondition",
            AbortReason::Type => "type",
            AbortReason::Conflict => "conflict",
        }
    }
}

/// A state-machine answer that only the two-phase-commit layer (`twopc.rs`) sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TwoPcReply {
    /// The participant logged the prepare and holds its locks; the results of its
    /// micro-ops, by position in the whole transaction.
    Prepared(Vec<(usize, Option<Value>)>),
    /// The participant refuses: the transaction must abort.
    Refused(TxnAbort),
    /// The decision recorded in the coordinator group (the first one proposed wins).
    Decided {
        /// True = commit.
        commit: bool,
    },
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
    /// A transaction: micro-ops applied in order, all or nothing, as one log entry.
    Txn {
        /// The micro-ops.
        ops: Vec<MicroOp>,
    },
    /// 2PC, participant group: evaluate `ops` (this group's share of transaction `txn`,
    /// with their positions in it), lock their keys and keep the writes until resolved.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// The group that logs the decision.
        coordinator: u32,
        /// This group's micro-ops with their positions in the whole transaction.
        ops: Vec<(usize, MicroOp)>,
    },
    /// 2PC, coordinator group: record the decision for `txn` unless one is recorded already;
    /// the answer is the recorded one.
    Decide {
        /// The transaction.
        txn: TxnId,
        /// The decision proposed (true = commit).
        commit: bool,
    },
    /// 2PC, participant group: apply (commit) or drop (abort) the prepared writes of `txn`
    /// and release its locks.
    Resolve {
        /// The transaction.
        txn: TxnId,
        /// The decision.
        commit: bool,
    },
}

impl Op {
    /// The key of a single-key operation (`None` for transactions and 2PC records).
    pub fn key(&self) -> Option<&str> {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Cas { key, .. } => Some(key),
            Op::Txn { .. } | Op::Prepare { .. } | Op::Decide { .. } | Op::Resolve { .. } => None,
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
    /// A committed transaction (200): one result per micro-op (the value read for `r`,
    /// `None` for reads of missing keys and for every other micro-op).
    Txn(Vec<Option<Value>>),
    /// The transaction definitely had no effect (409).
    TxnAborted(TxnAbort),
    /// Internal to two-phase commit (never sent to an HTTP client).
    TwoPc(TwoPcReply),
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
