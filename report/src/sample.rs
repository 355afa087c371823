//! Sample run directories for tests, demos and the browser test: a small, deterministic kv run
//! with faults and the nodes' reported status, either passing or with stale reads served by a
//! deposed leader that a partition had cut off (on two keys).
//!
//! The history is what the harness writes (typed fault values, `cluster-status` events, the
//! node that served each op) and `results.json` is the checkers' own analysis of it, so
//! rendering a sample exercises exactly the path of a real run.

use std::io::Write as _;
use std::path::Path;

use checkers::analysis::{Analysis, AnalysisOptions};
use checkers::layout::RunDir;
use checkers::linearizable::CheckOptions;
use checkers::model::ModelKind;
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
        node: &str,
    ) {
        self.lines.push((
            t0,
            json!({"process": p, "type": "invoke", "f": f, "key": key, "value": inv}),
        ));
        self.lines.push((
            t1,
            json!({"process": p, "type": kind, "f": f, "key": key, "value": out, "node": node}),
        ));
    }

    fn nemesis(&mut self, t: u64, f: &str, value: Value) {
        self.lines.push((
            t,
            json!({"process": "nemesis", "type": "info", "f": f, "value": value}),
        ));
    }
}

const NODES: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

/// A `cluster-status` value: `leader` leads `term`; `silent` nodes did not answer; `stale`
/// still claims to lead an older term.
fn status(leader: &str, term: u64, silent: &[&str], stale: Option<(&str, u64)>) -> Value {
    let mut nodes = serde_json::Map::new();
    for n in NODES {
        let v = if silent.contains(&n) {
            Value::Null
        } else if stale.is_some_and(|(s, _)| s == n) {
            let t = stale.map_or(0, |(_, t)| t);
            json!({"role": "leader", "term": t, "leader": n})
        } else if n == leader {
            json!({"role": "leader", "term": term, "leader": n})
        } else {
            json!({"role": "follower", "term": term, "leader": leader})
        };
        nodes.insert(n.to_string(), v);
    }
    json!({ "nodes": nodes })
}

/// Writes `history.jsonl`, `test.json` and `results.json` of a sample run into `dir`.
/// Returns the history indices of the anomaly's invokes on key 3 for [`Sample::Failing`]
/// (write 1, write 2, the stale read), empty for [`Sample::Passing`].
/// The failing run also has a second failing key, 4 (a read of 10 after a cas 10→11).
pub fn write_sample_run(dir: &Path, sample: Sample) -> std::io::Result<Vec<u64>> {
    std::fs::create_dir_all(dir)?;
    let rd = RunDir::new(dir);
    let ms = 1_000_000u64;
    let mut w = Writer { lines: Vec::new() };
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    // Faults (ms); the background load is slower and fails during them.
    let halves = json!({"type": "partition", "shape": "halves",
        "grudge": {"n1": ["n3", "n4", "n5"], "n2": ["n3", "n4", "n5"],
                   "n3": ["n1", "n2"], "n4": ["n1", "n2"], "n5": ["n1", "n2"]}});
    let isolate = json!({"type": "partition", "shape": "leader",
        "grudge": {"n3": ["n1", "n2", "n4", "n5"], "n1": ["n3"], "n2": ["n3"], "n4": ["n3"], "n5": ["n3"]}});
    let kill = json!({"type": "kill", "target": {"nodes": ["n2"]}});
    let pause = json!({"type": "pause", "target": {"nodes": ["n4"]}});
    let faults = [
        ("partition", 2_000, 4_500, halves),
        ("partition", 4_900, 5_300, isolate),
        ("kill", 6_000, 7_000, kill),
        ("pause", 8_000, 8_800, pause),
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
        let in_fault = faults.iter().any(|(_, a, b, _)| t >= a * ms && t <= b * ms);
        let lat = (2 + rnd(12)) * ms + if in_fault { rnd(400) * ms } else { 0 };
        let k = rnd(2) as usize;
        let key = ["1", "2"][k];
        let kind = match (in_fault, rnd(20)) {
            (true, 0..=3) => "info",
            (true, 4..=7) | (false, 0) => "fail",
            _ => "ok",
        };
        let node = NODES[(p % 5) as usize];
        let cur = values[k];
        match rnd(3) {
            0 => {
                let out = if kind == "ok" {
                    json!(cur)
                } else {
                    Value::Null
                };
                w.op(p, "read", key, t, t + lat, Value::Null, out, kind, node)
            }
            1 => {
                let v = 1000 * (worker as i64 + 1) + (t / ms) as i64;
                if kind == "ok" {
                    values[k] = v;
                }
                w.op(p, "write", key, t, t + lat, json!(v), json!(v), kind, node)
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
                    node,
                )
            }
        }
        if kind == "info" {
            procs[worker] = next_proc;
            next_proc += 1;
        }
        next[worker] = t + lat + rnd(30) * ms;
    }
    // Key 3, while n3 (the old leader) is cut off: write 1 and write 2 through the new leader
    // n1, then (failing) a read served by n3 that returns 1 after 2 was acknowledged.
    w.op(
        100,
        "write",
        "3",
        5_000 * ms,
        5_010 * ms,
        json!(1),
        json!(1),
        "ok",
        "n1",
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
        "n1",
    );
    let stale = if sample == Sample::Failing { 1 } else { 2 };
    let reader = if sample == Sample::Failing {
        "n3"
    } else {
        "n1"
    };
    w.op(
        102,
        "read",
        "3",
        5_050 * ms,
        5_061 * ms,
        Value::Null,
        json!(stale),
        "ok",
        reader,
    );
    // Readers of 2 overlapping the stale read (they crowd the drawing), and on key 4 a cas
    // that moved 10 on to 11 before a read on n3 still returned 10.
    for i in 0..6u64 {
        let t0 = 5_034 + 4 * i;
        w.op(
            120 + i,
            "read",
            "3",
            t0 * ms,
            (t0 + 9 + i) * ms,
            Value::Null,
            json!(2),
            "ok",
            NODES[(i % 2) as usize],
        );
    }
    w.op(
        110,
        "write",
        "4",
        5_100 * ms,
        5_104 * ms,
        json!(10),
        json!(10),
        "ok",
        "n1",
    );
    w.op(
        111,
        "cas",
        "4",
        5_110 * ms,
        5_116 * ms,
        json!([10, 11]),
        json!([10, 11]),
        "ok",
        "n1",
    );
    let four = if sample == Sample::Failing { 10 } else { 11 };
    w.op(
        112,
        "read",
        "4",
        5_130 * ms,
        5_139 * ms,
        Value::Null,
        json!(four),
        "ok",
        reader,
    );
    for (kind, a, b, value) in &faults {
        w.nemesis(a * ms, &format!("{kind}-start"), value.clone());
        w.nemesis(b * ms, &format!("{kind}-stop"), value.clone());
    }
    // What the nodes reported, whenever it changed.
    for (t, s) in [
        (1, status("n3", 2, &[], None)),
        (4_950, status("n1", 3, &[], Some(("n3", 2)))),
        (5_400, status("n1", 3, &[], None)),
        (6_000, status("n1", 3, &["n2"], None)),
        (7_100, status("n1", 3, &[], None)),
        (8_000, status("n1", 3, &["n4"], None)),
        (8_900, status("n1", 3, &[], None)),
    ] {
        w.nemesis(t * ms + 1, "cluster-status", s);
    }
    w.lines.sort_by_key(|l| l.0);
    let mut out = std::io::BufWriter::new(std::fs::File::create(rd.history())?);
    let mut anomaly = Vec::new();
    for (i, (t, mut ev)) in w.lines.into_iter().enumerate() {
        ev["index"] = json!(i);
        ev["time"] = json!(t);
        let anomalous = [100, 101, 102].map(|p| json!(p)).contains(&ev["process"]);
        if ev["key"] == "3" && ev["type"] == "invoke" && anomalous {
            anomaly.push(i as u64);
        }
        writeln!(out, "{ev}")?;
    }
    out.flush()?;
    drop(out);
    let name = match sample {
        Sample::Passing => "sample-pass",
        Sample::Failing => "sample-fail",
    };
    std::fs::write(
        rd.test(),
        serde_json::to_vec_pretty(&json!({
            "name": name, "seed": 42, "nodes": NODES, "workload": "kv",
            "nemesis": ["partition", "kill", "pause"], "time_limit": 10, "concurrency": 5,
            "engine": "raft", "kvnode_args": if sample == Sample::Failing { "--read unsafe-local" } else { "" },
        }))
        .unwrap_or_default(),
    )?;
    let text = std::fs::read_to_string(rd.history())?;
    let history = checkers::history::parse_jsonl(&text)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let opts = AnalysisOptions {
        check: CheckOptions {
            model: Some(ModelKind::CasRegister),
            init: json!(0),
            ..CheckOptions::default()
        },
        ..AnalysisOptions::default()
    };
    let analysis = Analysis::new(&history, &opts);
    std::fs::write(
        rd.results(),
        serde_json::to_vec_pretty(&analysis).unwrap_or_default(),
    )?;
    Ok(match sample {
        Sample::Passing => Vec::new(),
        Sample::Failing => anomaly,
    })
}
