//! Renders every artifact of a small passing run and of a failing one and checks their content:
//! the PNGs decode, have the expected size, are not blank and carry text (the embedded font
//! works without fontconfig); the pages hold the verdict and the offending operations.

use std::path::Path;

use report::sample::{write_sample_run, Sample};
use report::{render_run, ReportError, Verdict};

/// Decodes a PNG and returns (width, height, fraction of non-white pixels in a region).
fn ink(path: &Path, region: (u32, u32, u32, u32)) -> (u32, u32, f64) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()))
        .to_rgb8();
    let (x0, y0, x1, y1) = region;
    let mut dark = 0usize;
    let mut all = 0usize;
    for y in y0..y1.min(img.height()) {
        for x in x0..x1.min(img.width()) {
            let p = img.get_pixel(x, y);
            all += 1;
            if p.0.iter().any(|&c| c < 200) {
                dark += 1;
            }
        }
    }
    (img.width(), img.height(), dark as f64 / all.max(1) as f64)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn passing_run_renders_every_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_sample_run(dir, Sample::Passing).unwrap();
    let out = render_run(dir).unwrap();
    assert_eq!(out.verdict, Verdict::Valid);
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
        let (w, h, plot) = ink(&path, (100, 60, 980, 560));
        assert_eq!((w, h), (1200, 640), "{png} size");
        assert!(plot > 0.02, "{png}: plot area is nearly blank ({plot:.4})");
        // The legend panel holds text drawn with the embedded font (and swatches).
        let (_, _, legend) = ink(&path, (1000, 30, 1200, 300));
        assert!(
            legend > 0.005,
            "{png}: legend is empty ({legend:.4}), text did not render"
        );
        // The title is text as well.
        let (_, _, title) = ink(&path, (300, 0, 700, 35));
        assert!(title > 0.01, "{png}: title missing ({title:.4})");
    }
    let index = read(&dir.join("index.html"));
    assert!(index.contains("Verdict: VALID"));
    for needle in [
        "latency-raw.png",
        "latency-quantiles.png",
        "rate.png",
        "timeline.html",
        "partition",
        "sample-pass",
    ] {
        assert!(index.contains(needle), "index.html lacks {needle}");
    }
    assert!(
        !index.contains("http://") && !index.contains("https://"),
        "index.html must be self-contained"
    );
    let timeline = read(&dir.join("timeline.html"));
    assert!(timeline.contains("tl-data") && timeline.contains("\"ops\":["));
    assert!(
        !timeline.contains("<script src"),
        "timeline.html must not fetch scripts"
    );
}

#[test]
fn failing_run_shows_the_counterexample() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let anomaly = write_sample_run(dir, Sample::Failing).unwrap();
    let out = render_run(dir).unwrap();
    assert_eq!(out.verdict, Verdict::Invalid);
    let cx = read(&dir.join("linearizability.html"));
    assert!(cx.contains("NOT LINEARIZABLE"));
    // The stale read is highlighted, by its history index.
    let read_index = anomaly[2];
    assert!(
        cx.contains(&format!(
            "class=\"op unplaceable\" data-index=\"{read_index}\""
        )),
        "the unplaceable read {read_index} is not highlighted"
    );
    // The plain-language paragraph names the values and the overwriting write.
    let expl = cx
        .split("id=\"explanation\">")
        .nth(1)
        .unwrap()
        .split("</p>")
        .next()
        .unwrap();
    assert!(expl.contains("key 3"), "{expl}");
    assert!(expl.contains("returned 1"), "{expl}");
    assert!(expl.contains("overwritten by 2"), "{expl}");
    assert!(expl.contains("before the read began"), "{expl}");
    assert!(
        cx.contains("id=\"model-state\">2<"),
        "model state before the read"
    );
    // Linearization points of the prefix are drawn.
    assert!(cx.matches("<circle").count() >= 2);
    let index = read(&dir.join("index.html"));
    assert!(index.contains("Verdict: INVALID"));
    assert!(index.contains("href=\"linearizability.html\""));
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
    assert_eq!(out.verdict, Verdict::NotChecked);
    assert_eq!(out.summary.ops, 50);
    assert!(read(&tmp.path().join("index.html")).contains("NOT CHECKED"));
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
    let page = report::render_compare(&[a, b], tmp.path()).unwrap();
    assert!(page.contains("sample-pass") && page.contains("sample-fail"));
    assert!(
        page.contains("overwritten by 2"),
        "the anomaly is explained on the comparison page"
    );
}

#[test]
fn check_html_from_a_checker_result() {
    let tmp = tempfile::tempdir().unwrap();
    write_sample_run(tmp.path(), Sample::Failing).unwrap();
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("results.json")).unwrap()).unwrap();
    // What `faultline check --html` passes: the checker's result alone, no run directory.
    let page = report::render_check_html(&results["linearizability"], "history.jsonl").unwrap();
    assert!(page.contains("NOT LINEARIZABLE") && page.contains("overwritten by 2"));
    assert!(
        report::render_check_html(&serde_json::json!({"verdict": "linearizable"}), "x").is_none()
    );
    // With the history's events, the partition's other ops are drawn as context.
    let text = std::fs::read_to_string(tmp.path().join("history.jsonl")).unwrap();
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let page =
        report::render_check_html_with_events(&results["linearizability"], events, "h").unwrap();
    assert!(
        page.contains("Showing 3 of 3 operations"),
        "all key-3 ops drawn"
    );
}

/// The real pipeline: the checker's `Analysis` of the sample history, stored as results.json,
/// drives the verdict and the counterexample page (no hand-written results).
#[test]
fn checker_analysis_drives_the_report() {
    use checkers::analysis::Analysis;
    use checkers::linearizable::CheckOptions;
    for (sample, verdict) in [
        (Sample::Passing, Verdict::Valid),
        (Sample::Failing, Verdict::Invalid),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let anomaly = write_sample_run(dir, sample).unwrap();
        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
        let events: Vec<checkers::history::Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let opts = CheckOptions {
            init: serde_json::json!(0),
            ..CheckOptions::default()
        };
        let analysis = Analysis::of_events(&events, &opts);
        std::fs::write(
            dir.join("results.json"),
            serde_json::to_vec(&analysis).unwrap(),
        )
        .unwrap();
        let out = render_run(dir).unwrap();
        assert_eq!(out.verdict, verdict, "{sample:?}: {}", analysis.verdict);
        let cx_page = dir.join("linearizability.html");
        assert_eq!(cx_page.exists(), sample == Sample::Failing);
        if sample == Sample::Failing {
            let cx = read(&cx_page);
            // Which op of key 3 the checker reports depends on its search order (the stale read,
            // or the write it contradicts); one of them is highlighted and explained.
            let highlighted = anomaly
                .iter()
                .any(|i| cx.contains(&format!("class=\"op unplaceable\" data-index=\"{i}\"")));
            assert!(highlighted, "an op of key 3 is highlighted");
            assert!(cx.contains("of key 3"), "explanation names the key");
        }
    }
}

/// A quorum run: the NWR staleness analysis stored in results.json is drawn as
/// nwr-staleness.png and shown on the index page.
#[test]
fn nwr_analysis_adds_the_staleness_plot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_sample_run(dir, Sample::Failing).unwrap();
    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let history = checkers::history::parse_jsonl(&text).unwrap();
    let nwr = checkers::nwr::analyze_history(&history, &Default::default()).unwrap();
    let mut results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    results["nwr"] = nwr.to_json();
    std::fs::write(dir.join("results.json"), results.to_string()).unwrap();
    let out = render_run(dir).unwrap();
    let png = dir.join("nwr-staleness.png");
    assert!(out.files.contains(&png), "{:?}", out.files);
    let (w, h, _) = ink(&png, (0, 0, 1200, 640));
    assert_eq!((w, h), (1200, 640));
    assert!(read(&dir.join("index.html")).contains("src=\"nwr-staleness.png\""));
}
