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
//!
//! # Transactions
//!
//! A transaction ([`Op::Txn`]) is one log entry: its micro-ops are evaluated in order against
//! the data plus the transaction's own earlier writes (so a read sees them), and either all
//! writes are installed or, if a micro-op aborts (an `expect` that does not match, a type
//! error), none. Since every replica applies entries in log order and nothing else runs in
//! between, transactions through a replicated log are strictly serializable by construction.
//!
//! # Two-phase commit records (sharded mode, `shard.rs` and `twopc.rs`)
//!
//! A group is a participant or the coordinator of cross-shard transactions:
//! - [`Op::Prepare`]: evaluate this group's micro-ops now, keep the results and the writes,
//!   and lock every key they touch (reads too: the locks are what serializes the whole
//!   transaction against others). Refused, with nothing locked, if a key is locked already
//!   (no waiting: no deadlock), if a micro-op aborts, or if the transaction was resolved
//!   before its prepare arrived (a late duplicate).
//! - [`Op::Decide`]: the coordinator group records commit or abort; the first record wins
//!   and every later `Decide` is answered with it. Anyone may propose `Decide(abort)` for a
//!   transaction whose coordinator went silent: either it lands first (the coordinator's
//!   commit then learns abort) or the commit did (and the asker learns commit). Never both.
//! - [`Op::Resolve`]: install or drop the prepared writes, release the locks.
//!
//! While a key is locked, a single-group transaction touching it aborts
//! ([`AbortReason::Conflict`]) and a `PUT`/CAS of it is refused (503).

use crate::msg::{AbortReason, Command, MicroOp, Op, Reply, TwoPcReply, TxnAbort, TxnId, Value};
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
    /// 2PC participant: transactions prepared here and not yet resolved.
    #[serde(default)]
    prepared: BTreeMap<TxnId, Prepared>,
    /// 2PC participant: key -> the prepared transaction holding its lock.
    #[serde(default)]
    locks: HashMap<String, TxnId>,
    /// 2PC participant: resolved transactions (true = committed), so that a prepare arriving
    /// after its transaction's resolve is refused instead of locking keys forever.
    #[serde(default)]
    resolved: HashMap<TxnId, bool>,
    /// 2PC coordinator group: the recorded decisions (true = commit).
    #[serde(default)]
    decisions: HashMap<TxnId, bool>,
}

/// A transaction prepared in this group: what it read, what it will write, what it locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    /// The group that logs the decision.
    pub coordinator: u32,
    /// Keys locked (every key the group's micro-ops touch).
    pub keys: Vec<String>,
    /// Final values to install on commit.
    pub writes: BTreeMap<String, Value>,
    /// Micro-op results by position in the whole transaction (the answer to a re-sent
    /// prepare).
    pub results: Vec<(usize, Option<Value>)>,
}

/// What evaluating micro-ops yields: results by position, and the final value of every key
/// written.
type Evaluated = (Vec<(usize, Option<Value>)>, BTreeMap<String, Value>);

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
            prepared: BTreeMap::new(),
            locks: HashMap::new(),
            resolved: HashMap::new(),
            decisions: HashMap::new(),
        }
    }

    /// Transactions prepared in this group and not yet resolved, with their coordinator
    /// groups (for the 2PC layer's recovery of transactions whose coordinator went silent).
    pub fn prepared(&self) -> impl Iterator<Item = (&TxnId, &Prepared)> {
        self.prepared.iter()
    }

    /// The prepared transaction holding `key`'s lock, if any.
    pub fn lock_holder(&self, key: &str) -> Option<&TxnId> {
        self.locks.get(key)
    }

    /// The decision recorded for `txn` in this (coordinator) group, if any.
    pub fn decision(&self, txn: &str) -> Option<bool> {
        self.decisions.get(txn).copied()
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
            Op::Put { key, .. } | Op::Cas { key, .. } if self.locks.contains_key(key) => {
                Reply::Unavailable(format!(
                    "key {key:?} is locked by prepared transaction {}; not applied",
                    self.locks[key]
                ))
            }
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
            Op::Txn { ops } => self.apply_txn(ops),
            Op::Prepare {
                txn,
                coordinator,
                ops,
            } => self.prepare(txn, *coordinator, ops),
            Op::Decide { txn, commit } => {
                let commit = *self.decisions.entry(txn.clone()).or_insert(*commit);
                Reply::TwoPc(TwoPcReply::Decided { commit })
            }
            Op::Resolve { txn, commit } => {
                self.resolve(txn, *commit);
                Reply::Ok
            }
        }
    }

    fn apply_txn(&mut self, ops: &[MicroOp]) -> Reply {
        if let Some(abort) = self.conflict(ops.iter().enumerate()) {
            return Reply::TxnAborted(abort);
        }
        match self.evaluate(ops.iter().enumerate()) {
            Ok((results, writes)) => {
                self.data.extend(writes);
                Reply::Txn(results.into_iter().map(|(_, r)| r).collect())
            }
            Err(abort) => Reply::TxnAborted(abort),
        }
    }

    /// A [`AbortReason::Conflict`] abort if one of the micro-ops' keys is locked.
    fn conflict<'a>(
        &self,
        mut ops: impl Iterator<Item = (usize, &'a MicroOp)>,
    ) -> Option<TxnAbort> {
        ops.find_map(|(i, m)| {
            self.locks.get(m.key()).map(|holder| TxnAbort {
                reason: AbortReason::Conflict,
                op: Some(i),
                message: format!(
                    "key {:?} is locked by prepared transaction {holder}",
                    m.key()
                ),
            })
        })
    }

    /// Evaluates micro-ops in order against the data plus their own earlier writes, without
    /// changing anything.
    fn evaluate<'a>(
        &self,
        ops: impl Iterator<Item = (usize, &'a MicroOp)>,
    ) -> Result<Evaluated, TxnAbort> {
        let mut writes: BTreeMap<String, Value> = BTreeMap::new();
        let mut results = Vec::new();
        for (i, m) in ops {
            let key = m.key();
            let cur = writes.get(key).or_else(|| self.data.get(key));
            let abort = |reason, message: String| TxnAbort {
                reason,
                op: Some(i),
                message,
            };
            let result = match m {
                MicroOp::Read { .. } => cur.cloned(),
                _ => None,
            };
            match m.next_value(cur) {
                Ok(Some(v)) => {
                    writes.insert(key.to_string(), v);
                }
                Ok(None) => {}
                Err((reason, message)) => return Err(abort(reason, message)),
            }
            results.push((i, result));
        }
        Ok((results, writes))
    }

    fn prepare(&mut self, txn: &TxnId, coordinator: u32, ops: &[(usize, MicroOp)]) -> Reply {
        if let Some(p) = self.prepared.get(txn) {
            return Reply::TwoPc(TwoPcReply::Prepared(p.results.clone()));
        }
        if let Some(commit) = self.resolved.get(txn) {
            return Reply::TwoPc(TwoPcReply::Refused(TxnAbort {
                reason: AbortReason::Conflict,
                op: None,
                message: format!(
                    "transaction {txn} was already resolved here ({}) before this prepare",
                    if *commit { "committed" } else { "aborted" }
                ),
            }));
        }
        let refuse = |abort| Reply::TwoPc(TwoPcReply::Refused(abort));
        if let Some(abort) = self.conflict(ops.iter().map(|(i, m)| (*i, m))) {
            return refuse(abort);
        }
        let (results, writes) = match self.evaluate(ops.iter().map(|(i, m)| (*i, m))) {
            Ok(e) => e,
            Err(abort) => return refuse(abort),
        };
        let mut keys: Vec<String> = ops.iter().map(|(_, m)| m.key().to_string()).collect();
        keys.sort();
        keys.dedup();
        for k in &keys {
            self.locks.insert(k.clone(), txn.clone());
        }
        self.prepared.insert(
            txn.clone(),
            Prepared {
                coordinator,
                keys,
                writes,
                results: results.clone(),
            },
        );
        Reply::TwoPc(TwoPcReply::Prepared(results))
    }

    fn resolve(&mut self, txn: &TxnId, commit: bool) {
        if let Some(p) = self.prepared.remove(txn) {
            for k in &p.keys {
                self.locks.remove(k);
            }
            if commit {
                self.data.extend(p.writes);
            }
            self.resolved.insert(txn.clone(), commit);
        } else {
            // Resolved before (or without) its prepare: remember it, so a late prepare is
            // refused rather than locking keys nobody will release.
            self.resolved.entry(txn.clone()).or_insert(commit);
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

    fn mops(json: &str) -> Vec<MicroOp> {
        serde_json::from_str(json).expect("valid micro-ops")
    }

    fn txn(sm: &mut KvStateMachine, json: &str) -> Reply {
        sm.apply(&cmd(Op::Txn { ops: mops(json) }, None))
    }

    fn int(i: i64) -> Option<Value> {
        Some(Value::Int(i))
    }

    fn list(l: &[i64]) -> Option<Value> {
        Some(Value::List(l.iter().map(|i| Value::Int(*i)).collect()))
    }

    #[test]
    fn a_transaction_reads_its_own_writes_and_applies_whole() {
        let mut sm = KvStateMachine::default();
        let r = txn(
            &mut sm,
            r#"[["r","x",null],["append","x",1],["append","x",2],["r","x",null],
                ["w","y",5],["r","y",null],["add","c",3],["add","c",-1],["r","c",null]]"#,
        );
        assert_eq!(
            r,
            Reply::Txn(vec![
                None,
                None,
                None,
                list(&[1, 2]),
                None,
                int(5),
                None,
                None,
                int(2)
            ])
        );
        assert_eq!(sm.get("x"), list(&[1, 2]));
        assert_eq!(sm.get("c"), int(2));
    }

    #[test]
    fn an_aborted_transaction_changes_nothing() {
        let mut sm = KvStateMachine::default();
        txn(&mut sm, r#"[["w","a",10],["w","s","text"]]"#);
        for (ops, reason, at) in [
            (
                r#"[["w","a",1],["expect","a",11]]"#,
                AbortReason::Precondition,
                1,
            ),
            (
                r#"[["w","b",1],["expect","zz",1]]"#,
                AbortReason::Precondition,
                1,
            ),
            (r#"[["w","b",1],["append","a",1]]"#, AbortReason::Type, 1),
            (r#"[["w","b",1],["add","s",1]]"#, AbortReason::Type, 1),
            (
                r#"[["w","b",1],["add","a",9223372036854775807]]"#,
                AbortReason::Type,
                1,
            ),
        ] {
            match txn(&mut sm, ops) {
                Reply::TxnAborted(a) => {
                    assert_eq!((a.reason, a.op), (reason, Some(at)), "{ops}: {}", a.message)
                }
                other => panic!("{ops}: {other:?}"),
            }
            assert_eq!(sm.get("a"), int(10), "{ops}");
            assert_eq!(sm.get("b"), None, "{ops}");
        }
        // An expect that holds lets the transaction through; expecting null = missing.
        let r = txn(
            &mut sm,
            r#"[["expect","a",10],["expect","b",null],["w","b",2]]"#,
        );
        assert_eq!(r, Reply::Txn(vec![None, None, None]));
        assert_eq!(sm.get("b"), int(2));
    }

    fn prepare(sm: &mut KvStateMachine, txn: &str, ops: &str) -> Reply {
        let ops = mops(ops).into_iter().enumerate().collect();
        sm.apply(&cmd(
            Op::Prepare {
                txn: txn.into(),
                coordinator: 0,
                ops,
            },
            None,
        ))
    }

    fn resolve(sm: &mut KvStateMachine, txn: &str, commit: bool) -> Reply {
        sm.apply(&cmd(
            Op::Resolve {
                txn: txn.into(),
                commit,
            },
            None,
        ))
    }

    #[test]
    fn prepare_locks_until_resolved_and_is_idempotent() {
        let mut sm = KvStateMachine::default();
        txn(&mut sm, r#"[["append","x",1]]"#);
        let p = prepare(
            &mut sm,
            "t1",
            r#"[["r","x",null],["append","x",2],["r","x",null]]"#,
        );
        let prepared = Reply::TwoPc(TwoPcReply::Prepared(vec![
            (0, list(&[1])),
            (1, None),
            (2, list(&[1, 2])),
        ]));
        assert_eq!(p, prepared);
        // Not visible before the commit; the lock refuses others.
        assert_eq!(sm.get("x"), list(&[1]));
        assert_eq!(sm.lock_holder("x").map(String::as_str), Some("t1"));
        match txn(&mut sm, r#"[["r","y",null],["r","x",null]]"#) {
            Reply::TxnAborted(a) => assert_eq!((a.reason, a.op), (AbortReason::Conflict, Some(1))),
            other => panic!("{other:?}"),
        }
        match prepare(&mut sm, "t2", r#"[["w","x",3]]"#) {
            Reply::TwoPc(TwoPcReply::Refused(a)) => assert_eq!(a.reason, AbortReason::Conflict),
            other => panic!("{other:?}"),
        }
        let put = Op::Put {
            key: "x".into(),
            value: Value::Int(0),
        };
        assert!(matches!(sm.apply(&cmd(put, None)), Reply::Unavailable(_)));
        // A re-sent prepare gets the same answer and changes nothing.
        assert_eq!(
            prepare(
                &mut sm,
                "t1",
                r#"[["r","x",null],["append","x",2],["r","x",null]]"#
            ),
            prepared
        );
        assert_eq!(resolve(&mut sm, "t1", true), Reply::Ok);
        assert_eq!(sm.get("x"), list(&[1, 2]));
        assert_eq!(sm.lock_holder("x"), None);
        assert_eq!(sm.prepared().count(), 0);
        // Resolving again changes nothing; a late prepare of a resolved transaction is refused.
        assert_eq!(resolve(&mut sm, "t1", true), Reply::Ok);
        assert_eq!(sm.get("x"), list(&[1, 2]));
        assert!(matches!(
            prepare(&mut sm, "t1", r#"[["append","x",2]]"#),
            Reply::TwoPc(TwoPcReply::Refused(_))
        ));
        assert_eq!(sm.lock_holder("x"), None);
    }

    #[test]
    fn an_abort_drops_the_prepared_writes_and_a_refused_prepare_locks_nothing() {
        let mut sm = KvStateMachine::default();
        prepare(&mut sm, "t1", r#"[["w","x",1],["w","y",1]]"#);
        resolve(&mut sm, "t1", false);
        assert_eq!((sm.get("x"), sm.get("y")), (None, None));
        // Abort before prepare: the prepare that arrives later is refused.
        resolve(&mut sm, "t2", false);
        assert!(matches!(
            prepare(&mut sm, "t2", r#"[["w","x",2]]"#),
            Reply::TwoPc(TwoPcReply::Refused(_))
        ));
        // A prepare whose micro-ops abort locks nothing.
        assert!(matches!(
            prepare(&mut sm, "t3", r#"[["w","x",3],["expect","y",5]]"#),
            Reply::TwoPc(TwoPcReply::Refused(TxnAbort {
                reason: AbortReason::Precondition,
                ..
            }))
        ));
        assert_eq!(sm.lock_holder("x"), None);
    }

    #[test]
    fn the_first_decision_wins() {
        let mut sm = KvStateMachine::default();
        let decide = |sm: &mut KvStateMachine, commit| {
            sm.apply(&cmd(
                Op::Decide {
                    txn: "t".into(),
                    commit,
                },
                None,
            ))
        };
        assert_eq!(
            decide(&mut sm, true),
            Reply::TwoPc(TwoPcReply::Decided { commit: true })
        );
        assert_eq!(
            decide(&mut sm, false),
            Reply::TwoPc(TwoPcReply::Decided { commit: true })
        );
        assert_eq!(sm.decision("t"), Some(true));
        assert_eq!(sm.decision("u"), None);
    }

    #[test]
    fn the_whole_state_round_trips_through_serde() {
        let mut sm = KvStateMachine::new(3);
        txn(&mut sm, r#"[["append","x",1],["w","y","s"]]"#);
        prepare(&mut sm, "t1", r#"[["w","z",1]]"#);
        sm.apply(&cmd(
            Op::Decide {
                txn: "t0".into(),
                commit: false,
            },
            None,
        ));
        let json = serde_json::to_string(&sm).unwrap();
        let back: KvStateMachine = serde_json::from_str(&json).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&sm).unwrap()
        );
        assert_eq!(back.lock_holder("z").map(String::as_str), Some("t1"));
    }

    #[test]
    fn micro_ops_parse_from_and_print_as_the_history_shape() {
        let ops = mops(
            r#"[["r","x",null],["w","x",1],["append","x","s"],["add","c",-2],["expect","x",[1,"s"]]]"#,
        );
        assert_eq!(
            serde_json::to_string(&ops).unwrap(),
            r#"[["r","x",null],["w","x",1],["append","x","s"],["add","c",-2],["expect","x",[1,"s"]]]"#
        );
        for bad in [
            r#"[["r","x",1]]"#,
            r#"[["w","x",[1]]]"#,
            r#"[["w","x",null]]"#,
            r#"[["append","x",[1]]]"#,
            r#"[["add","x","1"]]"#,
            r#"[["cas","x",1]]"#,
            r#"[["r",1,null]]"#,
            r#"[["r","x"]]"#,
            r#"[["w","x",1.5]]"#,
        ] {
            assert!(serde_json::from_str::<Vec<MicroOp>>(bad).is_err(), "{bad}");
        }
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
