//! Renders every artifact of a small passing run and of a failing one and checks their content:
//! the PNGs decode, have the expected size, are not blank and carry text (the embedded font
//! works without fontconfig); the pages hold the verdict, the sentence that says why (checked
//! claim by claim against the history), every failing key and the offending operations.

use std::path::Path;

use checkers::analysis::{Analysis, AnalysisOptions, NwrConfig, Verdict};
use checkers::history::parse_jsonl;
use report::sample::{write_sample_run, Sample};
use report::{render_run, ReportError};

fn ink(path: &Path, region: (u32, u32, u32, u32)) -> report::inspect::Ink {
    report::inspect::ink(path, region).unwrap_or_else(|e| panic!("{e}"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn analysis(dir: &Path) -> Analysis {
    Analysis::from_json(&read(&dir.join("results.json"))).unwrap()
}

#[test]
fn passing_run_renders_every_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_sample_run(dir, Sample::Passing).unwrap();
    let out = render_run(dir).unwrap();
    assert_eq!(out.verdict, Some(Verdict::Valid));
    for f in [
        "latency-raw.png",
        "latency-quantiles.png",
        "rate.png",
        "timeline.html",
        "index.html",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    assert!(
        !dir.join("linearizability.html").exists(),
        "no counterexample for a valid run"
    );
    for png in ["latency-raw.png", "latency-quantiles.png", "rate.png"] {
        let path = dir.join(png);
        // The plot area holds data, not just axes.
        let plot = ink(&path, (100, 60, 980, 560));
        assert_eq!(plot.width, 1200, "{png} width");
        assert!(
            plot.height > 640,
            "{png}: the cluster strip adds rows under the chart"
        );
        assert!(
            plot.fraction > 0.02,
            "{png}: plot area is nearly blank ({plot:?})"
        );
        // The legend panel holds text drawn with the embedded font (and swatches).
        let legend = ink(&path, (1000, 30, 1200, 300));
        assert!(
            legend.fraction > 0.005,
            "{png}: legend is empty ({legend:?})"
        );
        // The title is text as well.
        let title = ink(&path, (300, 0, 700, 35));
        assert!(title.fraction > 0.01, "{png}: title missing ({title:?})");
        // The strip under the chart: fault lanes and five node rows.
        let strip = ink(&path, (100, 650, 980, plot.height));
        assert!(
            strip.fraction > 0.05,
            "{png}: cluster strip is blank ({strip:?})"
        );
    }
    let index = read(&dir.join("index.html"));
    assert!(index.contains("Verdict: VALID"));
    assert!(index.contains("Linearizable: all 4 keys"), "{index}");
    assert!(
        index.contains("failed definitely") && index.contains("expected, not an anomaly"),
        "a valid run with fails says they are expected"
    );
    for needle in [
        "latency-raw.png",
        "latency-quantiles.png",
        "rate.png",
        "timeline.html",
        "partition n3 n4 n5 | n1 n2",
        "kill n2",
        "sample-pass",
        "All 4 keys are linearizable.",
    ] {
        assert!(index.contains(needle), "index.html lacks {needle}");
    }
    assert!(
        !index.contains("http://") && !index.contains("https://"),
        "index.html must be self-contained"
    );
    assert!(
        !index.contains("\"linearizability\":"),
        "results.json is linked, not embedded"
    );
    let timeline = read(&dir.join("timeline.html"));
    assert!(timeline.contains("tl-data") && timeline.contains("\"ops\":["));
    assert!(timeline.contains("\"strip\":") && timeline.contains("\"n3\""));
    assert!(
        !timeline.contains("<script src"),
        "timeline.html must not fetch scripts"
    );
}

#[test]
fn failing_run_explains_the_stale_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let anomaly = write_sample_run(dir, Sample::Failing).unwrap();
    let out = render_run(dir).unwrap();
    assert_eq!(out.verdict, Some(Verdict::Invalid));
    let a = analysis(dir);
    assert_eq!(a.counterexamples.len(), 2, "keys 3 and 4");
    let four = &a.counterexamples[1];
    assert!(
        four.sentence
            .text
            .starts_with("read → 10 by p112 via n3 began 14 ms after cas 10→11 by p111 via n1 was acknowledged, yet it returned 10: that cas had replaced it"),
        "{}",
        four.sentence.text
    );
    let k = &a.counterexamples[0];
    assert_eq!(k.key.as_deref(), Some("3"));
    assert_eq!(k.ops.len(), 3, "write 1, write 2, the read");
    // The culprit is the read, not a write.
    let culprit = k.culprit().unwrap();
    assert_eq!(culprit.invoke_index, anomaly[2]);
    let text = &k.sentence.text;
    for needle in [
        "read → 1 by p102 via n3 began 18 ms after write 2 by p101 via n1 was acknowledged, yet it returned 1",
        "the only write of 1, write 1 by p100 via n1, was acknowledged 10 ms before the overwrite began",
        "partition n1 n2 n4 n5 | n3 had been active since 4.900 s",
        "n3 could not reach n1, n2, n4, n5",
        "n1 claimed to lead (term 3) and n3 claimed to lead (term 2)",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
    // Every claim of the sentence holds in the history.
    let history = parse_jsonl(&read(&dir.join("history.jsonl"))).unwrap();
    checkers::explain::verify_sentence(&k.sentence, &history.events).unwrap();

    let cx = read(&dir.join("linearizability.html"));
    assert!(cx.contains("NOT LINEARIZABLE"));
    assert!(
        cx.contains(&format!(
            "class=\"op culprit\" data-index=\"{}\"",
            anomaly[2]
        )),
        "the read is the op that cannot be placed"
    );
    for key in ["3", "4"] {
        assert!(
            cx.contains(&format!("href=\"#key-{key}\"")),
            "failing key {key} is linked"
        );
        assert!(cx.contains(&format!("id=\"key-{key}\"")));
    }
    // The state after each op of the order is drawn under it.
    assert!(
        cx.contains("→ 1<") && cx.contains("→ 2<"),
        "state after each step"
    );
    let index = read(&dir.join("index.html"));
    assert!(index.contains("Verdict: INVALID"));
    assert!(index.contains("href=\"linearizability.html#key-3\""));
    assert!(index.contains("href=\"linearizability.html#key-4\""));
    assert!(
        index.contains(&html_escape(text)),
        "the banner paragraph is the sentence"
    );
    assert!(
        index.contains("class=\"mark\""),
        "anomaly markers over the plots"
    );
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn malformed_history_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("history.jsonl"),
        "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{not json\n",
    )
    .unwrap();
    match render_run(tmp.path()) {
        Err(ReportError::History { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected a history error on line 2, got {other:?}"),
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        render_run(empty.path()),
        Err(ReportError::NoHistory(_))
    ));
}

/// A harness killed mid-write leaves a last line without its end: the harness checks such a
/// history, and the report draws it too (it used to refuse it).
#[test]
fn truncated_last_line_is_drawn_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "{\"index\":0,\"time\":1000,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
                {\"index\":1,\"time\":2000,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n\
                {\"index\":2,\"time\":3000,\"proc";
    std::fs::write(tmp.path().join("history.jsonl"), text).unwrap();
    let out = render_run(tmp.path()).unwrap();
    assert_eq!(out.verdict, None);
    let index = read(&tmp.path().join("index.html"));
    assert!(index.contains("last line (3) was cut off"), "{index}");
}

#[test]
fn history_without_results_or_faults_still_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..50u64 {
        let p = i % 3;
        lines += &format!("{{\"index\":{},\"time\":{},\"process\":{p},\"type\":\"invoke\",\"f\":\"write\",\"value\":{i}}}\n", 2 * i, i * 1_000_000);
        lines += &format!("{{\"index\":{},\"time\":{},\"process\":{p},\"type\":\"ok\",\"f\":\"write\",\"value\":{i}}}\n", 2 * i + 1, i * 1_000_000 + 500_000);
    }
    std::fs::write(tmp.path().join("history.jsonl"), lines).unwrap();
    let out = render_run(tmp.path()).unwrap();
    assert_eq!(out.verdict, None);
    let index = read(&tmp.path().join("index.html"));
    assert!(index.contains("NOT CHECKED"));
    assert!(index.contains("faultline analyze"));
}

/// A results.json written before the typed sections still renders, with a note to upgrade it.
#[test]
fn old_results_json_renders_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    write_sample_run(tmp.path(), Sample::Passing).unwrap();
    let old = serde_json::json!({
        "verdict": "valid",
        "stats": {"total": {"invoked": 2, "ok": 2, "fail": 0, "info": 0}, "by_f": {}},
        "latency": {"count": 2, "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0, "max_ms": 1.0},
        "availability": {"during_faults": {"ok": 0, "total": 0, "ratio": null},
                         "outside_faults": {"ok": 2, "total": 2, "ratio": 1.0}},
        "faults": [{"kind": "partition", "start": 5, "stop": 9, "value": {"n1": ["n2"]}}],
        "duration_ns": 100,
        "linearizability": {"verdict": "linearizable", "model": "cas-register", "partitioned": true,
            "ops": 2, "elapsed_ms": 1.0, "partitions": [], "explanation": "linearizable: fine"},
    });
    std::fs::write(tmp.path().join("results.json"), old.to_string()).unwrap();
    let out = render_run(tmp.path()).unwrap();
    assert_eq!(out.verdict, Some(Verdict::Valid));
    let index = read(&tmp.path().join("index.html"));
    assert!(index.contains("written by an older faultline"));
    assert!(
        index.contains("linearizable: fine"),
        "its old explanation is the summary"
    );
}

#[test]
fn listing_and_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("sample-pass/20260101T000000Z");
    let b = tmp.path().join("sample-fail/20260102T000000Z");
    write_sample_run(&a, Sample::Passing).unwrap();
    write_sample_run(&b, Sample::Failing).unwrap();
    render_run(&a).unwrap();
    let runs = report::find_runs(tmp.path());
    assert_eq!(runs, vec![b.clone(), a.clone()], "newest first");
    let listing = report::render_listing(tmp.path());
    assert!(listing.contains("sample-pass/20260101T000000Z/index.html"));
    assert!(listing.contains("sample-fail/20260102T000000Z/index.html"));
    assert!(listing.contains("dot valid") && listing.contains("dot invalid"));
    let page = report::render_compare(&[a, b.clone()], tmp.path()).unwrap();
    assert!(page.contains("sample-pass") && page.contains("sample-fail"));
    // The same sentence as on the run's own page.
    let why = analysis(&b).summary;
    assert!(
        page.contains(&html_escape(&why)),
        "compare tells the run's own story"
    );
    assert!(page.contains("yet it returned 1"));
}

/// What `faultline check --html` renders: the page from a typed analysis of an imported
/// history, without a run directory.
#[test]
fn check_page_from_an_analysis() {
    let tmp = tempfile::tempdir().unwrap();
    write_sample_run(tmp.path(), Sample::Failing).unwrap();
    let history = parse_jsonl(&read(&tmp.path().join("history.jsonl"))).unwrap();
    let opts = AnalysisOptions {
        check: checkers::linearizable::CheckOptions {
            init: serde_json::json!(0),
            ..Default::default()
        },
        ..Default::default()
    };
    let (a, observed) = Analysis::with_observed(&history, &opts);
    let page = report::render_check_page(&a, &observed.unwrap(), "history.jsonl");
    assert!(page.contains("NOT LINEARIZABLE") && page.contains("yet it returned 1"));
    assert!(
        !page.contains("run overview"),
        "a standalone page links nowhere"
    );
    let good = parse_jsonl(
        "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
         {\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n",
    )
    .unwrap();
    let (a, o) = Analysis::with_observed(&good, &AnalysisOptions::default());
    let page = report::render_check_page(&a, &o.unwrap(), "ok");
    assert!(page.contains("LINEARIZABLE") && page.contains("Linearizable: the one key"));
}

/// A quorum run: the NWR section of the analysis is drawn as nwr-staleness.png and shown on
/// the index page, with PBS's figure stated the same way as the measurement.
#[test]
fn nwr_analysis_adds_the_staleness_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_sample_run(dir, Sample::Failing).unwrap();
    let history = parse_jsonl(&read(&dir.join("history.jsonl"))).unwrap();
    let opts = AnalysisOptions {
        check: checkers::linearizable::CheckOptions {
            init: serde_json::json!(0),
            ..Default::default()
        },
        nwr: Some(NwrConfig {
            n: 5,
            w: 1,
            r: 1,
            clock: "hybrid".into(),
            read_repair: false,
            read_writeback: false,
            intersecting: false,
        }),
        ..Default::default()
    };
    let a = Analysis::new(&history, &opts);
    std::fs::write(dir.join("results.json"), serde_json::to_vec(&a).unwrap()).unwrap();
    let out = render_run(dir).unwrap();
    let png = dir.join("nwr-staleness.png");
    assert!(out.files.contains(&png), "{:?}", out.files);
    let i = ink(&png, (0, 0, 1200, 640));
    assert_eq!((i.width, i.height), (1200, 640));
    let index = read(&dir.join("index.html"));
    assert!(index.contains("src=\"nwr-staleness.png\""));
    assert!(index.contains("N=5 W=1 R=1"));
    assert!(index.contains("stale reads (PBS prediction"));
    assert!(!index.contains("P(fresh at t=0)"));
    assert!(
        index.contains("id=\"nwr-gap\""),
        "the gap under faults is explained"
    );
    assert!(index.contains("id=\"nwr-anomaly\""));
}
