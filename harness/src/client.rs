//! Clients: how a worker turns a workload [`Op`] into a call on the system under test.
//!
//! [`Client`] is the seam for DB adapters (kvnode here, etcd in [`etcd`]). An implementation must
//! classify every outcome the way the checker needs it: `Ok` (took effect), `Fail` (did
//! definitely not take effect: cas mismatch, not-leader, unavailable, connection refused
//! before the request was sent) or `Info` (unknown: timeout, connection lost after sending,
//! 504). Getting `Fail` wrong hides anomalies or invents them, so when in doubt: `Info`.
//! The transactional workloads' ops go through kvnode's `POST /txn` (see [`KvClient`]'s
//! `invoke`: a transfer is a read transaction then a guarded write transaction; set and
//! counter ops are one-micro-op transactions on one key).
//! [`NoopClient`] answers instantly in-process; it measures the harness's own overhead.

pub mod etcd;

use serde_json::{json, Value};
use std::future::Future;
use std::time::Duration;
use workloads::{bank, Op};

/// How an op ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Took effect; `value` is the completion value (the read result, or the invoke value).
    Ok {
        /// Completion value.
        value: Value,
        /// Node that served it.
        node: String,
    },
    /// Definitely did not take effect.
    Fail {
        /// Why.
        error: String,
        /// Node that answered, if any.
        node: Option<String>,
    },
    /// A cas that definitely did not take effect because the register held `current`.
    Mismatch {
        /// The value the node reported instead of the cas's `from`.
        current: Value,
        /// Node that answered.
        node: String,
    },
    /// Unknown: may take effect at any later time.
    Info {
        /// Why.
        error: String,
        /// Node that was asked.
        node: Option<String>,
    },
}

/// A client of the system under test. `node` is the index of the node the worker is bound to.
pub trait Client: Send + Sync + 'static {
    /// Invokes `op` as `process` (its `seq`-th op), starting at node `node`.
    fn invoke(
        &self,
        process: u64,
        seq: u64,
        node: usize,
        op: &Op,
    ) -> impl Future<Output = Outcome> + Send;
}

/// Answers every op instantly: reads return the last written value of any key, nothing is
/// checked. Only for measuring harness overhead.
#[derive(Debug, Default)]
pub struct NoopClient;

impl Client for NoopClient {
    async fn invoke(&self, _process: u64, _seq: u64, _node: usize, op: &Op) -> Outcome {
        let value = match op {
            Op::Read { .. } => Value::Null,
            other => other.invoke_value(),
        };
        Outcome::Ok {
            value,
            node: "noop".into(),
        }
    }
}

/// The kvnode HTTP client.
#[derive(Debug, Clone)]
pub struct KvClient {
    http: reqwest::Client,
    /// Node ids, index-aligned with `urls`.
    ids: Vec<String>,
    /// Base URLs, `http://127.0.0.1:PORT`.
    urls: Vec<String>,
}

/// Redirects (421 with a leader) followed within one op.
const MAX_REDIRECTS: usize = 2;

/// Key used for the single-register workload.
pub const REGISTER_KEY: &str = "r";
/// Key holding the set workload's list of elements.
pub const SET_KEY: &str = "set";
/// Key holding the counter workload's integer.
pub const COUNTER_KEY: &str = "counter";

/// One HTTP call of the kvnode client: a key-value op, or a `POST /txn` of micro-ops in the
/// history's JSON shape.
#[derive(Debug, Clone, Copy)]
enum Call<'a> {
    Kv(&'a Op),
    Txn(&'a Value),
}

impl KvClient {
    /// A client for nodes `ids` at `urls`, each op bounded by `timeout`.
    pub fn new(ids: Vec<String>, urls: Vec<String>, timeout: Duration) -> anyhow::Result<KvClient> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_millis(500))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(KvClient { http, ids, urls })
    }

    async fn once(
        &self,
        node: usize,
        process: u64,
        seq: u64,
        call: Call<'_>,
    ) -> Result<(u16, Value), Outcome> {
        let base = &self.urls[node];
        let cid = format!("p{process}");
        let (req, read) = match call {
            // No client id: one workload op may send several transactions, and a redirect
            // (421) is the only retry, of a request that was not proposed.
            Call::Txn(mops) => (
                self.http
                    .post(format!("{base}/txn"))
                    .json(&json!({ "txn": mops })),
                false,
            ),
            Call::Kv(op) => {
                let key = op.key().unwrap_or(REGISTER_KEY);
                let req = match op {
                    Op::Write { value, .. } => self
                        .http
                        .put(format!("{base}/kv/{key}"))
                        .json(&json!({"value": value, "client_id": cid, "seq": seq})),
                    Op::Cas { from, to, .. } => self
                        .http
                        .post(format!("{base}/kv/{key}/cas"))
                        .json(&json!({"from": from, "to": to, "client_id": cid, "seq": seq})),
                    _ => self.http.get(format!("{base}/kv/{key}")),
                };
                (req, matches!(op, Op::Read { .. }))
            }
        };
        let node_id = Some(self.ids[node].clone());
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.json::<Value>().await {
                    Ok(v) => Ok((status, v)),
                    Err(e) if status == 200 && read => Err(Outcome::Fail {
                        error: format!("bad response: {e}"),
                        node: node_id,
                    }),
                    Err(e) => Err(Outcome::Info {
                        error: format!("bad response ({status}): {e}"),
                        node: node_id,
                    }),
                }
            }
            // Refused before anything was sent: definitely not applied.
            Err(e) if e.is_connect() => Err(Outcome::Fail {
                error: "connection refused".into(),
                node: node_id,
            }),
            Err(e) if e.is_timeout() => Err(Outcome::Info {
                error: "timeout".into(),
                node: node_id,
            }),
            Err(e) => Err(Outcome::Info {
                error: format!("connection lost: {e}"),
                node: node_id,
            }),
        }
    }

    /// Sends `call` starting at `node`, following redirects, and classifies the answer. A
    /// committed transaction's value is its micro-ops with the reads filled in; an aborted one
    /// (409) definitely did nothing.
    async fn call(&self, process: u64, seq: u64, node: usize, call: Call<'_>) -> Outcome {
        let mut node = node % self.urls.len().max(1);
        for _ in 0..=MAX_REDIRECTS {
            let (status, body) = match self.once(node, process, seq, call).await {
                Ok(r) => r,
                Err(o) => return o,
            };
            let id = self.ids[node].clone();
            let err = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match (status, call) {
                (200, Call::Txn(_)) => {
                    let value = body.get("txn").cloned().unwrap_or(Value::Null);
                    return Outcome::Ok { value, node: id };
                }
                (200, Call::Kv(op)) => {
                    let value = match op {
                        Op::Read { .. } => body.get("value").cloned().unwrap_or(Value::Null),
                        other => other.invoke_value(),
                    };
                    return Outcome::Ok { value, node: id };
                }
                (409, Call::Txn(_)) => {
                    let reason = body.get("reason").and_then(Value::as_str).unwrap_or("");
                    return Outcome::Fail {
                        error: format!("{err} ({reason})"),
                        node: Some(id),
                    };
                }
                (409, Call::Kv(_)) => {
                    return Outcome::Mismatch {
                        current: body.get("current").cloned().unwrap_or(Value::Null),
                        node: id,
                    }
                }
                (421, _) => {
                    let leader = body.get("leader").and_then(Value::as_str);
                    match leader.and_then(|l| self.ids.iter().position(|i| i == l)) {
                        Some(next) if next != node => node = next,
                        _ => {
                            return Outcome::Fail {
                                error: "not-leader".into(),
                                node: Some(id),
                            }
                        }
                    }
                }
                (503 | 400 | 501, _) => {
                    return Outcome::Fail {
                        error: if err.is_empty() {
                            format!("http {status}")
                        } else {
                            err
                        },
                        node: Some(id),
                    }
                }
                (504, _) => {
                    return Outcome::Info {
                        error: "timeout".into(),
                        node: Some(id),
                    }
                }
                _ => {
                    return Outcome::Info {
                        error: format!("http {status} {err}"),
                        node: Some(id),
                    }
                }
            }
        }
        Outcome::Fail {
            error: "not-leader (too many redirects)".into(),
            node: None,
        }
    }

    /// A read-only transaction of `keys`; the values read, in order.
    async fn read_keys(
        &self,
        process: u64,
        seq: u64,
        node: usize,
        keys: &[&str],
    ) -> Result<(Vec<Value>, String), Outcome> {
        let mops: Value = keys.iter().map(|k| json!(["r", k, null])).collect();
        match self.call(process, seq, node, Call::Txn(&mops)).await {
            Outcome::Ok { value, node } => {
                let read = |m: &Value| m.get(2).cloned().unwrap_or(Value::Null);
                let values: Vec<Value> = value
                    .as_array()
                    .map(|a| a.iter().map(read).collect())
                    .unwrap_or_default();
                if values.len() != keys.len() {
                    // Answered 200 but unreadable: the read did nothing, so it failed.
                    return Err(Outcome::Fail {
                        error: format!("bad transaction answer: {value}"),
                        node: Some(node),
                    });
                }
                Ok((values, node))
            }
            // A read changes nothing: whatever happened to it, it did not happen.
            Outcome::Info { error, node } | Outcome::Fail { error, node } => {
                Err(Outcome::Fail { error, node })
            }
            Outcome::Mismatch { node, .. } => Err(Outcome::Fail {
                error: "unexpected cas answer".into(),
                node: Some(node),
            }),
        }
    }

    /// A bank transfer as two transactions: read both balances, then write both new ones
    /// guarded by `expect`s of exactly what was read, so the write applies to that snapshot or
    /// not at all (an account never written holds [`bank::INITIAL_BALANCE`]). A source that
    /// cannot cover the amount fails the transfer with nothing written.
    async fn transfer(
        &self,
        process: u64,
        seq: u64,
        node: usize,
        (from, to, amount): (&str, &str, i64),
    ) -> Outcome {
        let (read, node_id) = match self.read_keys(process, seq, node, &[from, to]).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        let balance = |v: &Value| v.as_i64().unwrap_or(bank::INITIAL_BALANCE);
        let (bf, bt) = (balance(&read[0]), balance(&read[1]));
        if bf < amount {
            return Outcome::Fail {
                error: format!("insufficient funds: {from} holds {bf}"),
                node: Some(node_id),
            };
        }
        let write = json!([
            ["expect", from, read[0]],
            ["expect", to, read[1]],
            ["w", from, bf - amount],
            ["w", to, bt + amount],
        ]);
        self.call(process, seq, node, Call::Txn(&write)).await
    }
}

impl Client for KvClient {
    async fn invoke(&self, process: u64, seq: u64, node: usize, op: &Op) -> Outcome {
        let ok_with = |outcome: Outcome, value: &dyn Fn(Value) -> Value| match outcome {
            Outcome::Ok { value: v, node } => Outcome::Ok {
                value: value(v),
                node,
            },
            other => other,
        };
        match op {
            Op::Read { .. } | Op::Write { .. } | Op::Cas { .. } => {
                self.call(process, seq, node, Call::Kv(op)).await
            }
            Op::Txn { .. } => {
                let mops = op.invoke_value();
                self.call(process, seq, node, Call::Txn(&mops)).await
            }
            Op::Transfer { from, to, amount } => {
                let o = self.transfer(process, seq, node, (from, to, *amount)).await;
                ok_with(o, &|_| op.invoke_value())
            }
            Op::ReadBalances { accounts } => {
                let keys: Vec<&str> = accounts.iter().map(String::as_str).collect();
                match self.read_keys(process, seq, node, &keys).await {
                    Ok((values, node)) => {
                        let balances: serde_json::Map<String, Value> = accounts
                            .iter()
                            .zip(values)
                            .map(|(a, v)| {
                                (
                                    a.clone(),
                                    v.as_i64().map_or(json!(bank::INITIAL_BALANCE), |_| v),
                                )
                            })
                            .collect();
                        Outcome::Ok {
                            value: Value::Object(balances),
                            node,
                        }
                    }
                    Err(o) => o,
                }
            }
            Op::SetAdd { value } => {
                let mops = json!([["append", SET_KEY, value]]);
                let o = self.call(process, seq, node, Call::Txn(&mops)).await;
                ok_with(o, &|_| json!(value))
            }
            Op::CounterAdd { delta } => {
                let mops = json!([["add", COUNTER_KEY, delta]]);
                let o = self.call(process, seq, node, Call::Txn(&mops)).await;
                ok_with(o, &|_| json!(delta))
            }
            // A missing set is empty, a missing counter zero.
            Op::SetRead => match self.read_keys(process, seq, node, &[SET_KEY]).await {
                Ok((v, node)) => Outcome::Ok {
                    value: if v[0].is_null() {
                        json!([])
                    } else {
                        v[0].clone()
                    },
                    node,
                },
                Err(o) => o,
            },
            Op::CounterRead => match self.read_keys(process, seq, node, &[COUNTER_KEY]).await {
                Ok((v, node)) => Outcome::Ok {
                    value: if v[0].is_null() {
                        json!(0)
                    } else {
                        v[0].clone()
                    },
                    node,
                },
                Err(o) => o,
            },
        }
    }
}
