//! Measurement meets prediction: simulate a Dynamo-style N/W/R register under the WARS latency
//! model of Bailis et al., "Probabilistically Bounded Staleness for Practical Partial Quorums"
//! (VLDB 2012), write the history a client would see, and check that `checkers::nwr` measures
//! the t-visibility curve that `checkers::quorum::t_visibility` predicts from the same
//! latency distributions. Either side being wrong (the analyzer's t or freshness, or the
//! Monte-Carlo's commit/response order) shows up as distance between the curves.

use checkers::history::{Event, EventType, History, Process};
use checkers::nwr::{self, NwrOptions};
use checkers::quorum::{LatencyDist, PbsOptions, QuorumConfig, WarsLatencies};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

const NS_PER_MS: f64 = 1e6;

fn exp(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.gen::<f64>()).ln()
}

/// One writer issues `writes` writes 100 ms apart; after each commits, `reads_per_write`
/// fresh client processes read at commit + t, t log-uniform in [0.01, 20] ms. Every WARS leg
/// is exponential with mean 1 ms; the client↔coordinator hop is free, so the client sees
/// the ack exactly at commit, as PBS assumes.
fn simulate(n: usize, w: usize, r: usize, writes: u64, reads_per_write: u64, seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut evs: Vec<(f64, u8, Event)> = Vec::new();
    let ev = |p: u64, kind, f: &str, v: Value, t_ms: f64| Event {
        index: 0,
        time: (t_ms * NS_PER_MS) as u64,
        process: Process::Client(p),
        kind,
        f: f.into(),
        key: None,
        value: v,
        node: None,
        error: None,
    };
    let mut next_proc = 1;
    for i in 1..=writes {
        let start = i as f64 * 100.0;
        let arrive: Vec<f64> = (0..n).map(|_| start + exp(&mut rng, 1.0)).collect();
        let mut acks: Vec<f64> = arrive.iter().map(|a| a + exp(&mut rng, 1.0)).collect();
        acks.sort_by(f64::total_cmp);
        let commit = acks[w - 1];
        evs.push((start, 1, ev(0, EventType::Invoke, "write", json!(i), start)));
        evs.push((commit, 0, ev(0, EventType::Ok, "write", json!(i), commit)));
        for _ in 0..reads_per_write {
            let t = 10f64.powf(rng.gen_range(-2.0..(20f64).log10()));
            let s = commit + t;
            // Replica j answers at s + R_j with i if the write had arrived, else i - 1.
            let mut resp: Vec<(f64, u64)> = (0..n)
                .map(|j| {
                    let req = s + exp(&mut rng, 1.0);
                    let v = if arrive[j] <= req { i } else { i - 1 };
                    (req + exp(&mut rng, 1.0), v)
                })
                .collect();
            resp.sort_by(|a, b| a.0.total_cmp(&b.0));
            let got = resp[..r].iter().map(|x| x.1).max().unwrap();
            let done = resp[r - 1].0;
            let p = next_proc;
            next_proc += 1;
            let out = if got == 0 { Value::Null } else { json!(got) };
            evs.push((s, 1, ev(p, EventType::Invoke, "read", Value::Null, s)));
            evs.push((done, 0, ev(p, EventType::Ok, "read", out, done)));
        }
    }
    evs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let events = evs
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, mut e))| {
            e.index = i as u64;
            e
        })
        .collect();
    History::from_events(events)
}

fn distance_for(n: u32, w: u32, r: u32) -> (nwr::NwrAnalysis, f64) {
    let h = simulate(n as usize, w as usize, r as usize, 2_500, 8, 42);
    // To try `faultline quorum --history` on it: FAULTLINE_NWR_SIM_OUT=/tmp/sim cargo test ...
    if let Some(dir) = std::env::var_os("FAULTLINE_NWR_SIM_OUT") {
        let path = std::path::Path::new(&dir).join(format!("n{n}w{w}r{r}.jsonl"));
        let mut out = checkers::history::HistoryWriter::new(std::fs::File::create(path).unwrap());
        for e in &h.events {
            out.write(e).unwrap();
        }
    }
    let opts = NwrOptions {
        min_bucket_reads: 200,
        ..NwrOptions::default()
    };
    let a = nwr::analyze_history(&h, &opts).unwrap();
    let e = LatencyDist::Exponential {
        exponential_mean_ms: 1.0,
    };
    let lat = WarsLatencies {
        w: e.clone(),
        a: e.clone(),
        r: e.clone(),
        s: e,
    };
    let p = nwr::predict(
        QuorumConfig::new(n, w, r, 0).unwrap(),
        &lat,
        "exact WARS",
        PbsOptions {
            trials: 100_000,
            seed: 9,
        },
    )
    .unwrap();
    let a = a.with_prediction(p);
    let d = a.curve_distance.unwrap();
    assert!(d.buckets >= 5, "{d:?}");
    (a, d.max_abs)
}

#[test]
fn partial_quorum_measured_curve_matches_pbs() {
    let (a, max_abs) = distance_for(3, 1, 1);
    eprintln!("N=3 W=1 R=1: {}", a.summary);
    for b in &a.t_visibility {
        eprintln!(
            "  t≈{:.3} ms  reads {:>5}  P(fresh) {:.4}",
            b.t_mean_ms, b.reads, b.p_fresh
        );
    }
    // 20,000 reads; buckets of ≥ 200 reads have a sampling error of at most ~0.035 (2σ).
    assert!(
        max_abs < 0.05,
        "max |measured - predicted| = {max_abs}\n{}",
        a.summary
    );
    assert!(a.stale > 0 && a.max_k == 1);
    assert_eq!(a.lost_writes, 0);
}

#[test]
fn strict_quorum_is_always_fresh_and_matches_pbs() {
    let (a, max_abs) = distance_for(3, 2, 2);
    assert_eq!(a.stale, 0);
    assert_eq!(max_abs, 0.0);
}

#[test]
fn prediction_from_the_history_itself_matches() {
    // What a real run does: no access to the legs, only client-observed latencies.
    let h = simulate(3, 1, 1, 2_500, 8, 43);
    let ops = h.operations().unwrap();
    let a = nwr::analyze_run(
        &ops,
        Some(QuorumConfig::new(3, 1, 1, 0).unwrap()),
        &NwrOptions {
            min_bucket_reads: 200,
            ..NwrOptions::default()
        },
        PbsOptions {
            trials: 100_000,
            seed: 5,
        },
    );
    let d = a.curve_distance.expect("prediction attached");
    eprintln!("from history: {d:?}");
    assert!(d.max_abs < 0.03, "{}", a.summary);
    // The naive halving (no order-statistic inversion) is far more optimistic.
    let naive = WarsLatencies::from_operations(&ops).unwrap();
    let p = nwr::predict(
        QuorumConfig::new(3, 1, 1, 0).unwrap(),
        &naive,
        "naive",
        PbsOptions::default(),
    )
    .unwrap();
    let naive_d = nwr::analyze(&ops, &NwrOptions::default())
        .with_prediction(p)
        .curve_distance
        .unwrap();
    assert!(naive_d.max_abs > d.max_abs);
}
