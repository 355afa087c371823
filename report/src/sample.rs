//! Sample run directories for tests, demos and the browser test: a small, deterministic
//! register/kv run with fault windows, either passing or with a stale read the checker caught.
//!
//! The failing run's `results.json` carries a counterexample in the checker's serialized shape
//! (`prefix`/`unplaceable` lists of `{op, description, order}`), so rendering it exercises the
//! same path as a real run.

use std::io::Write as _;
use std::path::Path;

use serde_json::{json, Value};

/// Which sample to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Every check passed.
    Passing,
    /// A stale read on key 3: read returned 1 after 2 was acknowledged.
    Failing,
}

struct Writer {
    lines: Vec<(u64, Value)>,
}

impl Writer {
    #[allow(clippy::too_many_arguments)] // one argument per history field keeps call sites readable
    fn op(
        &mut self,
        p: u64,
        f: &str,
        key: &str,
        t0: u64,
        t1: u64,
        inv: Value,
        out: Value,
        kind: &str,
    ) {
        self.lines.push((
            t0,
            json!({"process": p, "type": "invoke", "f": f, "key": key, "value": inv}),
        ));
        self.lines.push((t1, json!({"process": p, "type": kind, "f": f, "key": key, "value": out, "node": format!("n{}", p % 5 + 1)})));
    }
}

/// Writes `history.jsonl`, `test.json` and `results.json` of a sample run into `dir`.
/// Returns the history indices of the anomaly's ops for [`Sample::Failing`] (write 1,
/// write 2, the stale read), empty for [`Sample::Passing`].
pub fn write_sample_run(dir: &Path, sample: Sample) -> std::io::Result<Vec<u64>> {
    std::fs::create_dir_all(dir)?;
    let ms = 1_000_000u64;
    let mut w = Writer { lines: Vec::new() };
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    // Background load: 5 workers over 10 s on keys 1 and 2; slower and failing during faults.
    let faults = [
        ("partition", 2_000, 4_500),
        ("kill", 6_000, 7_000),
        ("pause", 8_000, 8_800),
    ];
    // Ops are generated in global invoke order and take effect at their invoke (when ok), so
    // the background history is linearizable by construction (init 0 on every key).
    let mut next_proc = 5;
    let mut values = [0i64; 2];
    let mut procs: Vec<u64> = (0..5).collect();
    let mut next: Vec<u64> = (0..5).map(|_| rnd(20) * ms).collect();
    loop {
        let (worker, &t) = next
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| **t)
            .unwrap_or((0, &0));
        if t >= 10_000 * ms {
            break;
        }
        let p = procs[worker];
        let in_fault = faults.iter().any(|(_, a, b)| t >= a * ms && t <= b * ms);
        let lat = (2 + rnd(12)) * ms + if in_fault { rnd(400) * ms } else { 0 };
        let k = rnd(2) as usize;
        let key = ["1", "2"][k];
        let kind = match (in_fault, rnd(20)) {
            (true, 0..=3) => "info",
            (true, 4..=7) | (false, 0) => "fail",
            _ => "ok",
        };
        let cur = values[k];
        match rnd(3) {
            0 => {
                let out = if kind == "ok" {
                    json!(cur)
                } else {
                    Value::Null
                };
                w.op(p, "read", key, t, t + lat, Value::Null, out, kind)
            }
            1 => {
                let v = 1000 * (worker as i64 + 1) + (t / ms) as i64;
                if kind == "ok" {
                    values[k] = v;
                }
                w.op(p, "write", key, t, t + lat, json!(v), json!(v), kind)
            }
            _ => {
                let (a, b) = (cur, cur + 1);
                if kind == "ok" {
                    values[k] = b;
                }
                w.op(
                    p,
                    "cas",
                    key,
                    t,
                    t + lat,
                    json!([a, b]),
                    json!([a, b]),
                    kind,
                )
            }
        }
        if kind == "info" {
            procs[worker] = next_proc;
            next_proc += 1;
        }
        next[worker] = t + lat + rnd(30) * ms;
    }
    // Key 3: write 1, write 2, then (failing) a read that returns 1 after 2 was acknowledged.
    w.op(
        100,
        "write",
        "3",
        5_000 * ms,
        5_010 * ms,
        json!(1),
        json!(1),
        "ok",
    );
    w.op(
        101,
        "write",
        "3",
        5_020 * ms,
        5_032 * ms,
        json!(2),
        json!(2),
        "ok",
    );
    let stale = if sample == Sample::Failing { 1 } else { 2 };
    w.op(
        102,
        "read",
        "3",
        5_050 * ms,
        5_061 * ms,
        Value::Null,
        json!(stale),
        "ok",
    );
    for (kind, a, b) in faults {
        let detail = match kind {
            "partition" => json!({"n1": ["n3", "n4", "n5"], "n2": ["n3", "n4", "n5"]}),
            _ => json!(["n2"]),
        };
        w.lines.push((a * ms, json!({"process": "nemesis", "type": "info", "f": format!("{kind}-start"), "value": detail})));
        w.lines.push((b * ms, json!({"process": "nemesis", "type": "info", "f": format!("{kind}-stop"), "value": null})));
    }
    w.lines.sort_by_key(|l| l.0);
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("history.jsonl"))?);
    let mut anomaly = Vec::new();
    let mut key3: Vec<Value> = Vec::new();
    for (i, (t, mut ev)) in w.lines.into_iter().enumerate() {
        ev["index"] = json!(i);
        ev["time"] = json!(t);
        if ev["key"] == "3" && ev["type"] == "invoke" {
            anomaly.push(i as u64);
        }
        if ev["key"] == "3" {
            key3.push(ev.clone());
        }
        writeln!(out, "{ev}")?;
    }
    out.flush()?;
    let name = match sample {
        Sample::Passing => "sample-pass",
        Sample::Failing => "sample-fail",
    };
    std::fs::write(
        dir.join("test.json"),
        serde_json::to_vec_pretty(&json!({
            "name": name, "seed": 42, "nodes": ["n1", "n2", "n3", "n4", "n5"], "workload": "kv",
            "nemesis": ["partition", "kill", "pause"], "time_limit_s": 10, "concurrency": 5,
            "engine": "raft", "kvnode_args": if sample == Sample::Failing { "--read unsafe-local" } else { "" },
        }))
        .unwrap_or_default(),
    )?;
    let op = |inv: &Value, done: &Value, order: Option<usize>| {
        json!({
            "op": {"id": 0, "process": inv["process"], "f": inv["f"], "key": "3",
                   "input": inv["value"], "output": done["value"], "call": inv["time"], "ret": done["time"],
                   "invoke_index": inv["index"], "complete_index": done["index"]},
            "description": format!("{}({})", inv["f"].as_str().unwrap_or(""), done["value"]),
            "order": order,
        })
    };
    let results = match sample {
        Sample::Passing => json!({
            "valid": true,
            "linearizability": {"verdict": "linearizable", "model": "cas-register", "partitioned": true, "ops": 1000,
                                "partitions": [], "explanation": "every key is linearizable"},
        }),
        Sample::Failing => json!({
            "valid": false,
            "linearizability": {
                "verdict": "illegal", "model": "cas-register", "partitioned": true, "ops": 1000,
                "explanation": "key 3 is not linearizable",
                "partitions": [{
                    "key": "3", "verdict": "illegal", "ops": 3, "dropped_indeterminate": 0, "elapsed_ms": 0.1,
                    "counterexample": {
                        "prefix": [op(&key3[0], &key3[1], Some(0)), op(&key3[2], &key3[3], Some(1))],
                        "unplaceable": [op(&key3[4], &key3[5], None)],
                        "state": 2,
                        "explanation": "read() -> 1 cannot follow write(2)",
                    },
                }],
            },
        }),
    };
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_vec_pretty(&results).unwrap_or_default(),
    )?;
    Ok(match sample {
        Sample::Passing => Vec::new(),
        Sample::Failing => anomaly,
    })
}
