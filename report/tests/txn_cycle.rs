//! The transactions section of a run's report, held against the history: a list-append
//! history with a known read skew (G-single) and a known write skew (G2-item) is checked by
//! Elle, rendered, and every drawn cycle edge is verified from `history.jsonl` alone (the
//! justifying append / read exists in the two transactions it joins, and the history's reads
//! show the relation drawn), and every drawing is exactly the cycle `results.json` reports.

use std::collections::HashMap;
use std::path::Path;

use checkers::analysis::{Analysis, AnalysisOptions, Verdict};
use checkers::elle::{self, ConsistencyModel};
use checkers::history::parse_jsonl;
use checkers::txn_section::{TxnCheck, TxnSection};
use serde_json::{json, Value};

/// `(process, micro-ops as completed)`, run one after another in this order.
fn txns() -> Vec<(u64, Value)> {
    vec![
        // Read skew: T1 appends to x and y; T2 sees T1's x but not its y.
        (0, json!([["append", "x", 1], ["append", "y", 1]])),
        (1, json!([["r", "x", [1]], ["r", "y", null]])),
        (2, json!([["r", "y", [1]]])),
        // Write skew: each reads the key the other appends to, empty.
        (3, json!([["r", "a", null], ["append", "b", 1]])),
        (4, json!([["r", "b", null], ["append", "a", 1]])),
        (5, json!([["r", "a", [1]], ["r", "b", [1]]])),
    ]
}

/// Writes `history.jsonl`: each transaction invoked and completed ok, concurrently in pairs
/// (so real time orders little), with invokes carrying null reads.
fn write_history(dir: &Path) {
    let mut lines = Vec::new();
    let mut index = 0u64;
    let t = txns();
    for pair in t.chunks(2) {
        for (p, v) in pair {
            let invoke: Vec<Value> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    if m[0] == "r" {
                        json!(["r", m[1], null])
                    } else {
                        m.clone()
                    }
                })
                .collect();
            lines.push(
                json!({"index": index, "time": index * 1_000_000, "process": p,
                "type": "invoke", "f": "txn", "value": invoke}),
            );
            index += 1;
        }
        for (p, v) in pair {
            lines.push(
                json!({"index": index, "time": index * 1_000_000, "process": p,
                "type": "ok", "f": "txn", "value": v}),
            );
            index += 1;
        }
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("history.jsonl"), text).unwrap();
}

fn analyse(dir: &Path, model: ConsistencyModel) -> Analysis {
    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let h = parse_jsonl(&text).unwrap();
    let opts = AnalysisOptions {
        txn: Some(TxnCheck::Elle(elle::CheckOptions {
            model,
            ..elle::CheckOptions::default()
        })),
        ..AnalysisOptions::default()
    };
    Analysis::new(&h, &opts)
}

/// One transaction as the history shows it.
struct HTxn {
    process: u64,
    invoke_index: u64,
    complete_index: u64,
    mops: Vec<Value>,
}

/// Transactions by name (`T<completion index>`), read straight from `history.jsonl`.
fn history_txns(dir: &Path) -> HashMap<String, HTxn> {
    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let mut invoked: HashMap<u64, u64> = HashMap::new();
    let mut out = HashMap::new();
    for line in text.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let p = e["process"].as_u64().unwrap();
        let i = e["index"].as_u64().unwrap();
        match e["type"].as_str().unwrap() {
            "invoke" => {
                invoked.insert(p, i);
            }
            "ok" => {
                out.insert(
                    format!("T{i}"),
                    HTxn {
                        process: p,
                        invoke_index: invoked[&p],
                        complete_index: i,
                        mops: e["value"].as_array().unwrap().clone(),
                    },
                );
            }
            other => panic!("unexpected event type {other}"),
        }
    }
    out
}

/// A micro-op from the drawing's `data-*-mop` JSON (`{"f":"append","key":"x","value":1}`)
/// in the history's own shape (`["append","x",1]`).
fn as_history_mop(m: &Value) -> Value {
    let f = m["f"].as_str().unwrap();
    // A read whose result is unknown has no `value`; no committed read may look like that.
    json!([
        f,
        m["key"],
        m.get("value").cloned().unwrap_or(json!("unknown"))
    ])
}

fn list(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|l| l.iter().map(|x| x.as_i64().unwrap()).collect())
        .unwrap_or_default()
}

/// Every ok read of `key` in the history.
fn reads_of(h: &HashMap<String, HTxn>, key: &str) -> Vec<Vec<i64>> {
    h.values()
        .flat_map(|t| t.mops.iter())
        .filter(|m| m[0] == "r" && m[1] == key)
        .map(|m| list(&m[2]))
        .collect()
}

/// Some read of `key` shows `before` immediately followed by `v`.
fn shown_after(h: &HashMap<String, HTxn>, key: &str, before: &[i64], v: i64) -> bool {
    reads_of(h, key)
        .iter()
        .any(|r| r.len() > before.len() && r.starts_with(before) && r[before.len()] == v)
}

/// A drawn edge's attributes.
#[derive(Debug, PartialEq)]
struct Drawn {
    from: String,
    to: String,
    rel: String,
    key: String,
    from_mop: Option<Value>,
    to_mop: Option<Value>,
}

fn attr(tag: &str, name: &str) -> String {
    let start = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + name.len()
        + 3;
    let end = start + tag[start..].find('"').unwrap();
    unescape(&tag[start..end])
}

/// HTML text back to plain text (the five escapes the report uses).
fn unescape(s: &str) -> String {
    // `&amp;` last, so that an escaped escape stays text.
    [
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&#39;", "'"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(s.to_string(), |t, (from, to)| t.replace(from, to))
}

/// The drawings of a page: per `<svg class="cycle">`, its class and its edges in order.
fn drawings(html: &str) -> Vec<(String, Vec<Drawn>, Vec<String>)> {
    html.split("<svg class=\"cycle\"")
        .skip(1)
        .map(|svg| {
            let svg = &svg[..svg.find("</svg>").expect("closed svg")];
            let class = attr(&svg[..svg.find('>').unwrap()], "data-class");
            let edges = svg
                .split("<g class=\"edge\"")
                .skip(1)
                .map(|g| {
                    let tag = &g[..g.find('>').unwrap()];
                    let mop = |n: &str| {
                        let s = attr(tag, n);
                        (!s.is_empty()).then(|| serde_json::from_str(&s).unwrap())
                    };
                    Drawn {
                        from: attr(tag, "data-from"),
                        to: attr(tag, "data-to"),
                        rel: attr(tag, "data-rel"),
                        key: attr(tag, "data-key"),
                        from_mop: mop("data-from-mop"),
                        to_mop: mop("data-to-mop"),
                    }
                })
                .collect();
            let nodes = svg
                .split("<g class=\"node\"")
                .skip(1)
                .map(|g| attr(&g[..g.find('>').unwrap()], "data-txn"))
                .collect();
            (class, edges, nodes)
        })
        .collect()
}

/// Checks one drawn edge against the history alone.
fn verify_edge(h: &HashMap<String, HTxn>, e: &Drawn) {
    let (a, b) = (&h[&e.from], &h[&e.to]);
    match e.rel.as_str() {
        "process" => assert!(a.process == b.process && a.complete_index < b.invoke_index),
        "realtime" => assert!(a.complete_index < b.invoke_index, "{e:?}"),
        rel => {
            let fm = as_history_mop(e.from_mop.as_ref().expect("data edge has evidence"));
            let tm = as_history_mop(e.to_mop.as_ref().expect("data edge has evidence"));
            assert!(a.mops.contains(&fm), "{} has no {fm}: {e:?}", e.from);
            assert!(b.mops.contains(&tm), "{} has no {tm}: {e:?}", e.to);
            assert_eq!(fm[1], json!(e.key));
            assert_eq!(tm[1], json!(e.key));
            match rel {
                "ww" => {
                    assert!(fm[0] == "append" && tm[0] == "append", "{e:?}");
                    let (p, v) = (fm[2].as_i64().unwrap(), tm[2].as_i64().unwrap());
                    assert!(
                        reads_of(h, &e.key)
                            .iter()
                            .any(|r| r.windows(2).any(|w| w == [p, v])),
                        "no read of {} shows {p} right before {v}",
                        e.key
                    );
                }
                "wr" => {
                    assert!(fm[0] == "append" && tm[0] == "r", "{e:?}");
                    assert_eq!(list(&tm[2]).last().copied(), fm[2].as_i64(), "{e:?}");
                }
                "rw" => {
                    assert!(fm[0] == "r" && tm[0] == "append", "{e:?}");
                    let (seen, v) = (list(&fm[2]), tm[2].as_i64().unwrap());
                    assert!(!seen.contains(&v), "{e:?}");
                    assert!(
                        shown_after(h, &e.key, &seen, v),
                        "no read of {} shows {v} right after {seen:?}",
                        e.key
                    );
                }
                other => panic!("unknown relation {other}"),
            }
        }
    }
}

#[test]
fn every_drawn_cycle_edge_is_in_the_history_and_is_the_cycle_found() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_history(dir);
    let a = analyse(dir, ConsistencyModel::Serializable);
    assert_eq!(a.verdict, Verdict::Invalid, "{}", a.summary);
    std::fs::write(dir.join("results.json"), serde_json::to_string(&a).unwrap()).unwrap();
    report::render_run(dir).unwrap();
    // What the report drew from: results.json as stored.
    let a =
        Analysis::from_json(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        html.contains("id=\"transactions\""),
        "no transactions section"
    );
    let Some(TxnSection::Elle(r)) = &a.transactions else {
        panic!("an Elle section")
    };
    assert!(
        r.explanation.contains("serializable"),
        "the sentence names the model: {}",
        r.explanation
    );
    // Every cycle example results.json keeps is drawn (two per class at most), in order.
    let found: Vec<&elle::Anomaly> = r
        .anomalies
        .values()
        .flat_map(|l| l.iter().take(2))
        .filter(|x| !x.steps.is_empty())
        .collect();
    let drawn = drawings(&html);
    assert_eq!(drawn.len(), found.len(), "one drawing per cycle");
    let classes: Vec<&str> = drawn.iter().map(|d| d.0.as_str()).collect();
    assert!(
        classes.contains(&"G-single") && classes.contains(&"G2-item"),
        "{classes:?}"
    );
    let h = history_txns(dir);
    for ((class, edges, nodes), anomaly) in drawn.iter().zip(found) {
        assert_eq!(class, anomaly.class.name());
        // The drawing is the checker's cycle: same transactions, same steps, same order.
        let names: Vec<&str> = anomaly.txns.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(nodes, &names);
        for t in &anomaly.txns {
            let mops: Vec<Value> = t
                .mops
                .iter()
                .map(|m| as_history_mop(&serde_json::to_value(m).unwrap()))
                .collect();
            assert_eq!(mops, h[&t.name].mops, "{}'s micro-ops as drawn", t.name);
        }
        assert_eq!(edges.len(), anomaly.steps.len());
        for (e, s) in edges.iter().zip(&anomaly.steps) {
            assert_eq!(
                (&e.from, &e.to, e.rel.as_str()),
                (&s.from, &s.to, s.relation.name())
            );
        }
        // ... it closes on itself ...
        for (i, e) in edges.iter().enumerate() {
            assert_eq!(e.to, edges[(i + 1) % edges.len()].from, "{edges:?}");
        }
        // ... its class is what its edges make it ...
        let rw = edges.iter().filter(|e| e.rel == "rw").count();
        match class.as_str() {
            "G-single" => assert_eq!(rw, 1),
            "G2-item" => assert!(rw >= 2),
            other => panic!("unexpected class {other}"),
        }
        // ... and every edge holds in the history.
        for e in edges {
            verify_edge(&h, e);
        }
        // The explanation sits beside the drawing.
        assert!(unescape(&html).contains(&anomaly.explanation));
    }
}

#[test]
fn one_history_under_two_models_gets_the_verdicts_elle_defines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_history(dir);
    // Read skew (G-single) is prohibited by snapshot isolation, write skew (G2-item) only by
    // serializability; read committed allows both.
    let verdict = |m| analyse(dir, m);
    let ser = verdict(ConsistencyModel::Serializable);
    let si = verdict(ConsistencyModel::SnapshotIsolation);
    let rc = verdict(ConsistencyModel::ReadCommitted);
    let violations = |a: &Analysis| match &a.transactions {
        Some(TxnSection::Elle(r)) => r.violations.iter().map(|c| c.name()).collect::<Vec<_>>(),
        _ => panic!("an Elle section"),
    };
    assert_eq!(ser.verdict, Verdict::Invalid);
    assert_eq!(violations(&ser), ["G-single", "G2-item"]);
    assert_eq!(si.verdict, Verdict::Invalid);
    assert_eq!(violations(&si), ["G-single"]);
    assert_eq!(rc.verdict, Verdict::Valid, "{}", rc.summary);
    for (a, name) in [
        (&ser, "serializable"),
        (&si, "snapshot-isolation"),
        (&rc, "read-committed"),
    ] {
        assert!(a.summary.contains(name), "{}", a.summary);
    }
}
