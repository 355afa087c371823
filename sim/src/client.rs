//! The simulated clients' protocol: what the harness's kvnode client (`harness/src/client.rs`)
//! sends for a workload op and how it classifies every answer, restated over simulated HTTP
//! exchanges instead of reqwest.
//!
//! The classification is the contract with the checker and must match the real client's
//! exactly: 200 is `ok`; 409 a definite `fail` that teaches the current value; 421 follows
//! the named leader (at most [`MAX_REDIRECTS`] times) or fails; 503 and 501 fail; 504, a
//! client timeout or a connection lost after the request was sent are `info` (unknown);
//! a refused connection fails (nothing was sent).

use checkers::history::EventType;
use cluster::msg::{Command, Op as KvOp, Reply, Value};
use cluster::node::ClientOp;
use serde_json::json;
use workloads::Op;

/// Redirects (421 with a leader) followed within one op, as the harness's client.
pub const MAX_REDIRECTS: usize = 2;

/// Key of the single-register workload, as the harness's client.
pub const REGISTER_KEY: &str = "r";

/// What the simulated HTTP layer answered one request with.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The node's reply, mapped to a status code as `http.rs` does.
    Reply(Reply),
    /// The node's HTTP deadline passed (504).
    ServerTimeout,
    /// Nothing listens on the node's port (it is down): nothing was sent.
    Refused,
    /// The node died after the request was sent.
    Lost,
    /// The client's own deadline passed.
    ClientTimeout,
}

/// How one attempt ends for the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The op is over: record this completion.
    Done(Completion),
    /// Ask node `to` (by index) instead.
    Redirect(usize),
}

/// A completion event's contents, and what the worker learned from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// ok | fail | info.
    pub kind: EventType,
    /// The completion value.
    pub value: serde_json::Value,
    /// The node that answered (or was asked).
    pub node: Option<String>,
    /// Why it failed or is unknown.
    pub error: Option<String>,
    /// The value the key now holds as far as this client learned (a read's result, its own
    /// write, the current value a failed cas reported).
    pub observed: Option<i64>,
}

/// The kvnode request for a workload op issued by `process` as its `seq`-th op; `None` for
/// transactional ops, which the simulated cluster cannot serve (`Simulator::new` refuses
/// those workloads, so this is only a guard: the op is answered as refused, never a panic).
pub fn request(op: &Op, process: u64, seq: u64) -> Option<ClientOp> {
    let key = op.key().unwrap_or(REGISTER_KEY).to_string();
    let cmd = |op| {
        ClientOp::Write(Command {
            op,
            client_id: Some(format!("p{process}")),
            seq: Some(seq),
        })
    };
    Some(match op {
        Op::Read { .. } => ClientOp::Read(key),
        Op::Write { value, .. } => cmd(KvOp::Put {
            key,
            value: Value::Int(*value),
        }),
        Op::Cas { from, to, .. } => cmd(KvOp::Cas {
            key,
            from: Value::Int(*from),
            to: Value::Int(*to),
        }),
        Op::Txn { .. }
        | Op::Transfer { .. }
        | Op::ReadBalances { .. }
        | Op::SetAdd { .. }
        | Op::SetRead
        | Op::CounterAdd { .. }
        | Op::CounterRead => return None,
    })
}

fn value_json(v: &Option<Value>) -> serde_json::Value {
    match v {
        None => serde_json::Value::Null,
        Some(Value::Int(i)) => json!(i),
        Some(Value::Str(s)) => json!(s),
        Some(Value::List(l)) => l.iter().map(|v| value_json(&Some(v.clone()))).collect(),
    }
}

/// Classifies the answer to attempt number `attempt` (0-based) of `op`, sent to node
/// `node` (index) of `ids`.
pub fn classify(op: &Op, answer: Answer, node: usize, attempt: usize, ids: &[String]) -> Step {
    let id = Some(ids[node].clone());
    let done = |kind, value, error: Option<&str>, observed| {
        Step::Done(Completion {
            kind,
            value,
            node: id.clone(),
            error: error.map(str::to_string),
            observed,
        })
    };
    let reply = match answer {
        Answer::Reply(r) => r,
        Answer::ServerTimeout | Answer::ClientTimeout => {
            return done(EventType::Info, op.invoke_value(), Some("timeout"), None)
        }
        Answer::Refused => {
            return done(
                EventType::Fail,
                op.invoke_value(),
                Some("connection refused"),
                None,
            )
        }
        Answer::Lost => {
            return done(
                EventType::Info,
                op.invoke_value(),
                Some("connection lost: connection closed before message completed"),
                None,
            )
        }
    };
    match reply {
        Reply::Ok | Reply::Value(_) => {
            let value = match (&reply, op) {
                (Reply::Value(v), Op::Read { .. }) => value_json(v),
                (_, Op::Read { .. }) => serde_json::Value::Null,
                _ => op.invoke_value(),
            };
            let observed = match op {
                Op::Read { .. } => value.as_i64(),
                Op::Write { value, .. } => Some(*value),
                Op::Cas { to, .. } => Some(*to),
                _ => None,
            };
            done(EventType::Ok, value, None, observed)
        }
        Reply::CasMismatch(cur) => done(
            EventType::Fail,
            op.invoke_value(),
            Some("cas-mismatch"),
            value_json(&cur).as_i64(),
        ),
        Reply::NotLeader(leader) => {
            let next = leader.and_then(|l| ids.iter().position(|i| *i == l));
            match next {
                Some(next) if next != node && attempt < MAX_REDIRECTS => Step::Redirect(next),
                Some(next) if next != node => Step::Done(Completion {
                    kind: EventType::Fail,
                    value: op.invoke_value(),
                    node: None,
                    error: Some("not-leader (too many redirects)".into()),
                    observed: None,
                }),
                _ => done(EventType::Fail, op.invoke_value(), Some("not-leader"), None),
            }
        }
        Reply::Unavailable(_) => done(
            EventType::Fail,
            op.invoke_value(),
            Some("unavailable"),
            None,
        ),
        Reply::Unsupported => done(
            EventType::Fail,
            op.invoke_value(),
            Some("unsupported"),
            None,
        ),
        Reply::Unknown => done(EventType::Info, op.invoke_value(), Some("timeout"), None),
        // Transaction replies never answer a register op; the outcome is not known.
        Reply::Txn(_) | Reply::TxnAborted(_) | Reply::TwoPc(_) => done(
            EventType::Info,
            op.invoke_value(),
            Some("unexpected reply"),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        ["n1", "n2", "n3"].map(String::from).to_vec()
    }

    #[test]
    fn classifies_like_the_harness_client() {
        let w = Op::Write {
            key: None,
            value: 7,
        };
        let r = Op::Read { key: None };
        let Step::Done(c) = classify(
            &r,
            Answer::Reply(Reply::Value(Some(Value::Int(3)))),
            0,
            0,
            &ids(),
        ) else {
            panic!()
        };
        assert_eq!(
            (c.kind, c.value, c.observed),
            (EventType::Ok, json!(3), Some(3))
        );
        assert_eq!(
            classify(
                &w,
                Answer::Reply(Reply::NotLeader(Some("n2".into()))),
                0,
                0,
                &ids()
            ),
            Step::Redirect(1)
        );
        // The third attempt may not redirect again.
        let Step::Done(c) = classify(
            &w,
            Answer::Reply(Reply::NotLeader(Some("n3".into()))),
            1,
            2,
            &ids(),
        ) else {
            panic!()
        };
        assert_eq!((c.kind, c.node), (EventType::Fail, None));
        for (a, kind) in [
            (Answer::Reply(Reply::Unknown), EventType::Info),
            (Answer::ClientTimeout, EventType::Info),
            (Answer::Lost, EventType::Info),
            (Answer::Refused, EventType::Fail),
            (
                Answer::Reply(Reply::Unavailable("x".into())),
                EventType::Fail,
            ),
            (Answer::Reply(Reply::NotLeader(None)), EventType::Fail),
        ] {
            let Step::Done(c) = classify(&w, a.clone(), 0, 0, &ids()) else {
                panic!()
            };
            assert_eq!(c.kind, kind, "{a:?}");
            assert_eq!(c.value, json!(7));
        }
        let cas = Op::Cas {
            key: None,
            from: 1,
            to: 2,
        };
        let Step::Done(c) = classify(
            &cas,
            Answer::Reply(Reply::CasMismatch(Some(Value::Int(5)))),
            0,
            0,
            &ids(),
        ) else {
            panic!()
        };
        assert_eq!(
            (c.kind, c.observed, c.error.as_deref()),
            (EventType::Fail, Some(5), Some("cas-mismatch"))
        );
    }
}
