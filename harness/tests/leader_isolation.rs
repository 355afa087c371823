//! The nemesis's leader isolation on a real local cluster: with clock faults enabled, every
//! `leader` partition comes with a backward bump of the same node's clock in the same
//! nemesis step, recorded as its own `clock-start` before the `partition-start`, larger than
//! the partition's hold (what stretches a wall-clock lease past the next election); the node
//! cut off is the leader the cluster-status events show; and the last fault of a run lasts
//! until the main phase ends instead of being healed as soon as the schedule runs out.
//!
//! Clock faults on local processes go through libfaketime: without it the test skips with a
//! SKIPPED line (fails under FAULTLINE_REQUIRE_ALL=1).

mod common;
mod isolations;

use common::{results_dir, run_dir, run_test};

#[test]
#[cfg_attr(
    missing_faketime,
    ignore = "needs libfaketime: apt-get install -y faketime"
)]
fn leader_isolations_bump_the_isolated_leaders_clock_and_last_until_the_end() {
    if testkit::require(testkit::Need::Faketime).is_none() {
        return;
    }
    let dir = results_dir();
    let (time_limit, interval): (f64, f64) = (8.0, 1.5);
    let (code, out) = run_test(
        dir.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            &time_limit.to_string(),
            "--workload",
            "kv",
            "--nemesis",
            "partition,clock",
            "--partition-shapes",
            "leader",
            "--nemesis-interval",
            &interval.to_string(),
            "--seed",
            "3",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        code,
        0,
        "safe Raft must stay valid:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_dir(dir.path());
    let isolations = isolations::isolations(&run);
    let described = isolations::describe(&isolations);
    eprintln!("{described}");
    assert!(isolations.len() >= 2, "too few isolations: {described}");
    for i in &isolations {
        let healed = i.healed_s.expect("every partition is healed");
        let bump = i
            .bump_ms
            .unwrap_or_else(|| panic!("no clock bump paired: {described}"));
        let hold_ms = (healed - i.at_s) * 1000.0;
        assert!(
            -bump as f64 > hold_ms,
            "the bump must outlast the partition: {described}"
        );
        // Holds are drawn in [interval/2, 3*interval/2], cut by the end of the main phase
        // (slack: applying and undoing take a moment).
        let due = (interval / 2.0).min(time_limit - i.at_s);
        assert!(
            healed - i.at_s >= due - 0.25,
            "a partition healed early (due for {due:.2} s): {described}"
        );
    }
    let hits = isolations
        .iter()
        .filter(|i| i.leader_before.as_deref() == Some(i.isolated.as_str()))
        .count();
    assert!(
        hits * 2 > isolations.len(),
        "most isolations must cut off the leader: {described}"
    );
}
