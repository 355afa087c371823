//! The replicated key-value state machine: applies committed commands in log order and
//! remembers, per client, the last (seq, result) so that a retried command is applied once.
//!
//! It is deterministic: every replica applying the same commands in the same order ends in
//! the same state, including which clients the bounded de-duplication table forgets (the
//! least recently *applied* ones, ordered by apply sequence, never by wall time).
//!
//! A snapshot is the whole struct through serde ([`KvStateMachine::encode`]), so every
//! field — including ones added later — travels with it and a restored replica continues
//! exactly where the snapshotted one was (de-duplication table and eviction order too).

use crate::msg::{Command, Op, Reply, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// How many clients' last results are remembered by default.
pub const DEFAULT_DEDUP_CLIENTS: usize = 100_000;

/// The key-value store.
#[derive(Debug, Serialize, Deserialize)]
pub struct KvStateMachine {
    data: HashMap<String, Value>,
    /// client_id -> (last seq, its result, apply counter when last used).
    sessions: HashMap<String, (u64, Reply, u64)>,
    /// apply counter -> client_id, for least-recently-used eviction.
    lru: BTreeMap<u64, String>,
    counter: u64,
    max_clients: usize,
}

impl Default for KvStateMachine {
    fn default() -> Self {
        Self::new(DEFAULT_DEDUP_CLIENTS)
    }
}

impl KvStateMachine {
    /// An empty store remembering at most `max_clients` client sessions.
    pub fn new(max_clients: usize) -> Self {
        KvStateMachine {
            data: HashMap::new(),
            sessions: HashMap::new(),
            lru: BTreeMap::new(),
            counter: 0,
            max_clients: max_clients.max(1),
        }
    }

    /// The snapshot encoding of the whole state (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the state machine serializes")
    }

    /// Restores a state from [`KvStateMachine::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<KvStateMachine, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Reads a key without going through the log (read-index / lease reads).
    pub fn get(&self, key: &str) -> Option<Value> {
        self.data.get(key).cloned()
    }

    /// Applies one command and returns its result.
    ///
    /// With `client_id` and `seq`: a seq equal to the stored one returns the stored result
    /// without re-applying; a seq lower than the stored one (a retry overtaken by a newer
    /// request from the same client) is not applied and answers `Unknown`.
    pub fn apply(&mut self, cmd: &Command) -> Reply {
        self.counter += 1;
        let (Some(client), Some(seq)) = (&cmd.client_id, cmd.seq) else {
            return self.apply_op(&cmd.op);
        };
        if let Some((last, result, used)) = self.sessions.get_mut(client) {
            if seq == *last {
                let r = result.clone();
                self.lru.remove(used);
                *used = self.counter;
                self.lru.insert(self.counter, client.clone());
                return r;
            }
            if seq < *last {
                return Reply::Unknown;
            }
        }
        let result = self.apply_op(&cmd.op);
        if let Some((_, _, used)) = self.sessions.remove(client) {
            self.lru.remove(&used);
        }
        self.sessions
            .insert(client.clone(), (seq, result.clone(), self.counter));
        self.lru.insert(self.counter, client.clone());
        while self.sessions.len() > self.max_clients {
            let Some((_, oldest)) = self.lru.pop_first() else {
                break;
            };
            self.sessions.remove(&oldest);
        }
        result
    }

    fn apply_op(&mut self, op: &Op) -> Reply {
        match op {
            Op::Get { key } => Reply::Value(self.get(key)),
            Op::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                Reply::Ok
            }
            Op::Cas { key, from, to } => {
                let cur = self.data.get(key);
                if cur == Some(from) {
                    self.data.insert(key.clone(), to.clone());
                    Reply::Ok
                } else {
                    Reply::CasMismatch(cur.cloned())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(op: Op, client: Option<(&str, u64)>) -> Command {
        Command {
            op,
            client_id: client.map(|c| c.0.to_string()),
            seq: client.map(|c| c.1),
        }
    }

    #[test]
    fn put_get_cas() {
        let mut sm = KvStateMachine::default();
        let k = || "k".to_string();
        let put = Op::Put {
            key: k(),
            value: Value::Int(1),
        };
        assert_eq!(sm.apply(&cmd(put, None)), Reply::Ok);
        let cas = Op::Cas {
            key: k(),
            from: Value::Int(2),
            to: Value::Int(3),
        };
        assert_eq!(
            sm.apply(&cmd(cas, None)),
            Reply::CasMismatch(Some(Value::Int(1)))
        );
        let cas = Op::Cas {
            key: k(),
            from: Value::Int(1),
            to: Value::Str("x".into()),
        };
        assert_eq!(sm.apply(&cmd(cas, None)), Reply::Ok);
        assert_eq!(sm.get("k"), Some(Value::Str("x".into())));
    }

    #[test]
    fn retried_command_is_applied_once() {
        let mut sm = KvStateMachine::new(2);
        let cas = || Op::Cas {
            key: "k".into(),
            from: Value::Int(0),
            to: Value::Int(1),
        };
        sm.apply(&cmd(
            Op::Put {
                key: "k".into(),
                value: Value::Int(0),
            },
            None,
        ));
        assert_eq!(sm.apply(&cmd(cas(), Some(("c", 1)))), Reply::Ok);
        // The retry would mismatch if re-applied; it returns the stored result instead.
        assert_eq!(sm.apply(&cmd(cas(), Some(("c", 1)))), Reply::Ok);
        assert_eq!(sm.apply(&cmd(cas(), Some(("c", 0)))), Reply::Unknown);
        // Eviction is LRU by apply order.
        sm.apply(&cmd(cas(), Some(("d", 1))));
        sm.apply(&cmd(cas(), Some(("e", 1))));
        assert!(!sm.sessions.contains_key("c"));
    }

    #[test]
    fn a_restored_snapshot_continues_exactly_including_dedup_and_eviction() {
        let mut a = KvStateMachine::new(2);
        let put = |v| Op::Put {
            key: "k".into(),
            value: Value::Int(v),
        };
        a.apply(&cmd(put(1), Some(("c", 1))));
        a.apply(&cmd(put(2), Some(("d", 1))));
        let mut b = KvStateMachine::decode(&a.encode()).unwrap();
        assert_eq!(b.get("k"), Some(Value::Int(2)));
        // The retry of c's seq 1 is de-duplicated on the restored replica too...
        assert_eq!(b.apply(&cmd(put(9), Some(("c", 1)))), Reply::Ok);
        assert_eq!(b.get("k"), Some(Value::Int(2)));
        // ...and both replicas evict the same client next.
        for sm in [&mut a, &mut b] {
            sm.apply(&cmd(put(9), Some(("c", 1))));
            sm.apply(&cmd(put(3), Some(("e", 1))));
        }
        assert_eq!(a.encode().len(), b.encode().len());
        assert_eq!(
            a.sessions.keys().collect::<std::collections::BTreeSet<_>>(),
            b.sessions.keys().collect()
        );
        assert!(KvStateMachine::decode(b"{").is_err());
    }
}
