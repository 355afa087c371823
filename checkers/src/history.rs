//! The history: the contract between every part of faultline (DESIGN.md, "History").
//!
//! One [`Event`] per line of `history.jsonl`. Workers append an `invoke` before calling the
//! system and a completion (`ok` | `fail` | `info`) after; the nemesis appends `info` events
//! under the process `"nemesis"`. Checkers pair events into operations; this module only
//! defines the data, so that writers (the harness) and readers (checkers, report) agree.

use serde::{Deserialize, Serialize};

/// Who issued an event: a client process (a number) or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A client process. A process that got `info` never issues another op.
    Client(u64),
    /// The fault injector; serialized as the string `"nemesis"`.
    #[serde(with = "nemesis_str")]
    Nemesis,
}

mod nemesis_str {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("nemesis")
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        let s = String::deserialize(d)?;
        if s == "nemesis" {
            Ok(())
        } else {
            Err(D::Error::custom(format!(
                "process must be an integer or \"nemesis\", got {s:?}"
            )))
        }
    }
}

/// The kind of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The call began.
    Invoke,
    /// The call completed and took effect.
    Ok,
    /// The call definitely did not take effect.
    Fail,
    /// Unknown outcome: it may take effect at any later time (or never).
    Info,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, 0-based and dense.
    pub index: u64,
    /// Nanoseconds since the test started, on the harness's monotonic clock.
    pub time: u64,
    /// Client process number, or the nemesis.
    pub process: Process,
    /// invoke | ok | fail | info.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The function: `read`, `write`, `cas`, `get`, `put`, `append`, or a nemesis action.
    pub f: String,
    /// The key, for multi-key workloads; absent for single-register histories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Integers for registers, `[expected, new]` for cas, null for a read's invoke.
    #[serde(default)]
    pub value: serde_json::Value,
    /// The node that served the op, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why an op failed or is indeterminate, in words (`timeout`, `not-leader`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
