//! Browser test: headless Chromium loads `faultline serve`'s listing, a failing run's
//! index.html and its counterexample page; screenshots must decode and show content, the
//! plots must have loaded (naturalWidth > 0, recorded in the DOM by the page's own script) and
//! the counterexample must be present, laid out so that no label overlaps another, none is
//! cut at the edge, the failing op's label is inside the viewport and every failing key has a
//! link (bounding boxes measured by the page's script, read back through `--dump-dom`).
//!
//! Needs the Debian package `chromium` (or `FAULTLINE_CHROMIUM=/path`). Without it the test shows as
//! ignored with the reason, unless `FAULTLINE_REQUIRE_ALL=1`, when it fails.

mod report_support;

use std::path::Path;

use report_support::{dump_dom, run_chromium, sample_results, Server};

fn screenshot(bin: &Path, profile: &Path, out: &Path, url: &str) -> report::inspect::Ink {
    let o = run_chromium(
        bin,
        profile,
        &[
            format!("--screenshot={}", out.display()),
            "--window-size=1280,2000".into(),
        ],
        url,
    );
    assert!(
        out.is_file(),
        "no screenshot of {url}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    report::inspect::ink(out, (0, 0, 1280, 2000)).unwrap()
}

#[test]
#[cfg_attr(
    missing_chromium,
    ignore = "needs chromium: apt-get install -y chromium"
)]
fn chromium_sees_plots_listing_and_counterexample() {
    let Some(bin) = testkit::require(testkit::Need::Chromium) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let (pass, fail) = sample_results(&results);
    report::render_run(&pass).unwrap();
    report::render_run(&fail).unwrap();
    let server = Server::start(&results);
    let profile = tmp.path().join("chromium-profile");
    let run_url = format!("{}sample-fail/20260102T000000Z/", server.url);

    // The listing: both runs, verdict colours, and a screenshot that is not blank.
    let dom = dump_dom(&bin, &profile, &server.url);
    assert!(
        dom.contains("sample-pass/20260101T000000Z/index.html"),
        "{dom}"
    );
    assert!(dom.contains("dot invalid") && dom.contains("dot valid"));
    let shot = screenshot(&bin, &profile, &tmp.path().join("listing.png"), &server.url);
    keep(tmp.path());
    assert_eq!((shot.width, shot.height), (1280, 2000));
    // The listing is short: measure its top, where the title and the table are.
    let shot = report::inspect::ink(&tmp.path().join("listing.png"), (0, 0, 1280, 260)).unwrap();
    assert!(
        shot.fraction > 0.01,
        "listing screenshot is blank ({:.4})",
        shot.fraction
    );

    // The failing run's page: every plot loaded, verdict and counterexample link present.
    let dom = dump_dom(&bin, &profile, &format!("{run_url}index.html"));
    let loaded = dom
        .split("data-plots-loaded=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no plot-load marker in the DOM:\n{dom}"));
    let (ok, all) = loaded.split_once('/').unwrap();
    assert_eq!(ok, all, "plots loaded: {loaded}");
    assert!(all.parse::<u32>().unwrap() >= 3, "plots loaded: {loaded}");
    assert!(dom.contains("Verdict: INVALID"));
    assert!(dom.contains("href=\"linearizability.html\""));
    let shot = screenshot(
        &bin,
        &profile,
        &tmp.path().join("run.png"),
        &format!("{run_url}index.html"),
    );
    // Plot area of the first plot: below the banner, cards and results table.
    let plot = report::inspect::ink(&tmp.path().join("run.png"), (40, 500, 1240, 2000)).unwrap();
    assert!(
        shot.fraction > 0.03 && plot.fraction > 0.02,
        "run page looks blank: {shot:?} {plot:?}"
    );
    assert!(
        shot.red > 0.002,
        "the red INVALID banner is visible: {shot:?}"
    );

    // The counterexample page: the stale read is drawn, highlighted, labelled inside the
    // viewport, and no two labels overlap (the page measures its labels after load and writes
    // the result into the DOM).
    let dom = dump_dom(&bin, &profile, &format!("{run_url}linearizability.html"));
    assert!(dom.contains("NOT LINEARIZABLE"));
    assert!(
        dom.contains("data-measured=\"yes\""),
        "the measuring script ran"
    );
    assert!(
        dom.contains("class=\"op culprit\""),
        "the op that cannot be placed is in the DOM"
    );
    assert!(dom.contains("yet it returned 1"));
    check_layout(&dom);
    let shot = screenshot(
        &bin,
        &profile,
        &tmp.path().join("cx.png"),
        &format!("{run_url}linearizability.html"),
    );
    assert!(
        shot.red > 0.002,
        "highlighted op / banner visible: {shot:?}"
    );

    // The timeline canvas drew bars (the page records how many).
    let dom = dump_dom(&bin, &profile, &format!("{run_url}timeline.html"));
    let drawn: u32 = dom
        .split("data-drawn=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(drawn > 100, "timeline drew {drawn} bars");
    keep(tmp.path());
}

/// The value of attribute `name` on every element of `dom` that has it.
fn attrs<'a>(dom: &'a str, name: &str) -> Vec<&'a str> {
    dom.split(&format!(" {name}=\""))
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect()
}

/// Every drawing of a counterexample page: labels measured, none overlapping, none outside the
/// drawing; the culprit's label inside the 1280-px viewport; every failing key linked.
fn check_layout(dom: &str) {
    let labels = attrs(dom, "data-labels");
    assert!(!labels.is_empty(), "no drawing was measured:\n{dom}");
    assert!(labels.iter().all(|n| n.parse::<u32>().unwrap() > 0));
    for o in attrs(dom, "data-overlaps") {
        assert_eq!(o, "0", "labels overlap in a drawing");
    }
    for o in attrs(dom, "data-outside") {
        assert_eq!(o, "0", "a label leaves its drawing (clipped)");
    }
    let culprit = attrs(dom, "data-culprit-in-view");
    assert!(
        !culprit.is_empty() && culprit.iter().all(|v| *v == "yes"),
        "{culprit:?}"
    );
    for b in attrs(dom, "data-culprit-box") {
        let v: Vec<f64> = b.split(',').map(|x| x.parse().unwrap()).collect();
        assert!(
            v[0] >= 0.0 && v[2] <= 1280.0 && v[2] > v[0],
            "culprit label at {b}"
        );
    }
    let sections = attrs(dom, "class").iter().filter(|c| **c == "key").count();
    let links = dom.matches("class=\"key-link\"").count();
    assert!(sections > 0, "no key section");
    assert_eq!(links, sections, "every failing key has a link");
    for id in attrs(dom, "id").iter().filter(|i| i.starts_with("key-")) {
        assert!(dom.contains(&format!("href=\"#{id}\"")), "no link to {id}");
    }
}

/// Copies the screenshots to `$REPORT_BROWSER_KEEP` when set, to look at them.
fn keep(tmp: &Path) {
    if let Ok(keep) = std::env::var("REPORT_BROWSER_KEEP") {
        for f in ["listing.png", "run.png", "cx.png"] {
            let _ = std::fs::copy(tmp.join(f), Path::new(&keep).join(f));
        }
    }
}
