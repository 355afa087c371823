//! `faultline quorum --n 5 --w 2 --r 2 [--failed F] [--latencies FILE | --history FILE] [--json]`:
//! what an N/W/R configuration promises, before running anything. Prints whether read and
//! write quorums intersect, the fault tolerance of reads and writes, PBS k-staleness and a
//! PBS t-visibility table (Bailis et al., "Probabilistically Bounded Staleness for Practical
//! Partial Quorums", VLDB 2012). All arithmetic lives in `checkers::quorum`; this file only
//! handles flags, files and the table.
//!
//! Latencies (`--latencies FILE`) are JSON with one entry per WARS leg, each either an array
//! of samples in milliseconds or a distribution:
//!
//! ```json
//! {"w": [0.41, 0.52, 3.1], "a": {"exponential_mean_ms": 0.5}, "r": [0.3, 0.4], "s": {"constant_ms": 0.4}}
//! ```
//!
//! `w` = coordinator→replica write, `a` = ack back, `r` = read request, `s` = read response.
//! `--history FILE` instead derives them from a run's `history.jsonl` (half of each ok write's
//! per-replica round trip for `w` and `a`, of each ok read's for `r` and `s`, after undoing the
//! W-th/R-th-fastest order statistic; see `WarsLatencies::from_operations_for`). Without either, every leg is exponential with mean 1 ms.
//! With `--history`, the run's measured staleness (`checkers::nwr`) is printed next to the
//! prediction, with the distance between the curves and one example of each anomaly found.
//! Exit codes: 0 printed, 3 bad flags or input.

use checkers::quorum::{self, PbsOptions, QuorumConfig, TVisibility, WarsLatencies};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `faultline quorum`.
#[derive(clap::Args)]
pub struct Args {
    /// Replicas per key (N).
    #[arg(long, value_parser = crate::numeric::count::<u32>(1, 1000))]
    pub n: u32,
    /// Acknowledgements a write waits for (W).
    #[arg(long, value_parser = crate::numeric::count::<u32>(1, 1000))]
    pub w: u32,
    /// Replies a read waits for (R).
    #[arg(long, value_parser = crate::numeric::count::<u32>(1, 1000))]
    pub r: u32,
    /// Replicas currently down (affects availability only).
    #[arg(long, default_value_t = 0, value_parser = crate::numeric::count::<u32>(0, 1000))]
    pub failed: u32,
    /// WARS latencies as JSON, ms: {"w":[0.4,0.6],"a":[..],"r":[..],"s":[..]}; a leg may instead be
    /// {"exponential_mean_ms":1.5} or {"constant_ms":2}. Default: every leg exponential, mean 1 ms.
    #[arg(long, conflicts_with = "history")]
    pub latencies: Option<PathBuf>,
    /// Derive WARS latencies from a run's history.jsonl instead.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Monte-Carlo trials for t-visibility.
    #[arg(long, default_value_t = 100_000, value_parser = crate::numeric::count::<usize>(1, 100_000_000))]
    pub trials: usize,
    /// Monte-Carlo seed.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Exit code for bad flags or input.
const BAD_INPUT: u8 = 3;

fn bad_input(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("faultline quorum: {msg}");
    ExitCode::from(BAD_INPUT)
}

/// Everything printed, as JSON with `--json`.
#[derive(Serialize)]
struct Report {
    static_analysis: quorum::StaticAnalysis,
    k_staleness: Vec<KRow>,
    latency_source: String,
    t_visibility: Vec<quorum::TPoint>,
    t_consistent_99_ms: Option<f64>,
    t_consistent_999_ms: Option<f64>,
    monte_carlo: TVisibility,
    /// With `--history`: what the run measured, compared with the prediction above.
    #[serde(skip_serializing_if = "Option::is_none")]
    measured: Option<checkers::nwr::NwrAnalysis>,
}

#[derive(Serialize)]
struct KRow {
    k: u32,
    p_miss: f64,
    p_within_k: f64,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match QuorumConfig::new(args.n, args.w, args.r, args.failed) {
        Ok(c) => c,
        Err(e) => return Ok(bad_input(e)),
    };
    if args.trials == 0 {
        return Ok(bad_input("--trials must be at least 1"));
    }
    let (lat, source, ops) = match load_latencies(&args) {
        Ok(x) => x,
        Err(msg) => return Ok(bad_input(msg)),
    };
    let opts = PbsOptions {
        trials: args.trials,
        seed: args.seed,
    };
    let tv = match quorum::t_visibility(config, &lat, opts) {
        Ok(tv) => tv,
        Err(e) => return Ok(bad_input(e)),
    };
    let report = Report {
        static_analysis: quorum::analyze(config),
        k_staleness: (1..=5)
            .map(|k| KRow {
                k,
                p_miss: quorum::p_miss(config.n, config.w, config.r, k),
                p_within_k: quorum::p_within_k(config.n, config.w, config.r, k),
            })
            .collect(),
        latency_source: source,
        t_visibility: t_grid(&tv)
            .into_iter()
            .map(|t| quorum::TPoint {
                t_ms: t,
                p_consistent: tv.p_consistent(t),
            })
            .collect(),
        t_consistent_99_ms: tv.t_for(0.99),
        t_consistent_999_ms: tv.t_for(0.999),
        measured: ops.map(|ops| {
            checkers::nwr::analyze(&ops, &checkers::nwr::NwrOptions::default()).with_prediction(
                checkers::nwr::NwrPrediction {
                    static_analysis: quorum::analyze(config),
                    p_miss_k: (1..=5)
                        .map(|k| quorum::p_miss(config.n, config.w, config.r, k))
                        .collect(),
                    t99_ms: tv.t_for(0.99),
                    t_visibility: tv.clone(),
                    latency_source: "history".into(),
                },
            )
        }),
        monte_carlo: tv,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render(&report)
    };
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // A closed pipe (`| head`) is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// The latencies, where they came from, and the history's operations when `--history` was given.
type Loaded = (
    WarsLatencies,
    String,
    Option<Vec<checkers::history::Operation>>,
);

fn load_latencies(args: &Args) -> Result<Loaded, String> {
    if let Some(path) = &args.latencies {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let lat =
            WarsLatencies::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok((lat, format!("from {}", path.display()), None));
    }
    if let Some(path) = &args.history {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let ops = checkers::history::parse_jsonl(&text)
            .and_then(|h| h.operations())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let config =
            QuorumConfig::new(args.n, args.w, args.r, args.failed).map_err(|e| e.to_string())?;
        let lat = WarsLatencies::from_operations_for(&ops, config).ok_or_else(|| {
            format!(
                "{}: needs at least one ok write and one ok read to estimate latencies",
                path.display()
            )
        })?;
        return Ok((
            lat,
            format!(
                "from the ok ops of {} (per-replica round trips by order-statistic inversion, halved per leg)",
                path.display()
            ),
            Some(ops),
        ));
    }
    Ok((
        WarsLatencies::default(),
        "default: every WARS leg exponential, mean 1 ms".into(),
        None,
    ))
}

/// `t = 0` and a 1-2-5 grid up to the first point past where the curve reaches 99.9% (at
/// least 1 ms), at most 16 rows.
fn t_grid(tv: &TVisibility) -> Vec<f64> {
    let end = tv
        .t_for(0.999)
        .or_else(|| tv.points.last().map(|p| p.t_ms))
        .unwrap_or(0.0)
        .max(1.0);
    let mut grid = vec![0.0];
    let mut decade = 0.01;
    'outer: loop {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            grid.push(t);
            if t >= end || grid.len() >= 40 {
                break 'outer;
            }
        }
        decade *= 10.0;
    }
    // Keep the last 15 grid points after 0: the fine start matters less than reaching the tail.
    if grid.len() > 16 {
        let tail = grid.split_off(grid.len() - 15);
        grid.truncate(1);
        grid.extend(tail);
    }
    grid
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn render(rep: &Report) -> String {
    use std::fmt::Write;
    let a = &rep.static_analysis;
    let QuorumConfig { n, w, r, failed } = a.config;
    let mut s = String::new();
    let _ = writeln!(s, "Quorum N={n} W={w} R={r}, {failed} failed\n");
    let _ = writeln!(s, "  {:<48} {}", "read/write quorums intersect (W+R>N)", {
        format!(
            "{} ({}+{} {} {})",
            yes(a.strict),
            w,
            r,
            if a.strict { ">" } else { "<=" },
            n
        )
    });
    let _ = writeln!(
        s,
        "  {:<48} {}",
        "write quorums intersect (2W>N)",
        yes(a.write_quorums_intersect)
    );
    let _ = writeln!(
        s,
        "  {:<48} {} (tolerates {} down)",
        format!("writes available with {failed} down (W<=N-F)"),
        yes(a.write_available),
        a.write_fault_tolerance
    );
    let _ = writeln!(
        s,
        "  {:<48} {} (tolerates {} down)",
        format!("reads available with {failed} down (R<=N-F)"),
        yes(a.read_available),
        a.read_fault_tolerance
    );
    let _ = writeln!(
        s,
        "  {:<48} {}",
        "failures both tolerate", a.tolerated_failures
    );
    let (num, den) = quorum::p_miss_fraction(n, w, r);
    let _ = writeln!(
        s,
        "\nk-staleness (PBS): P(miss) = (C(N-W,R)/C(N,R))^k, C({},{})/C({},{}) = {}/{}",
        n - w,
        r,
        n,
        r,
        num,
        den
    );
    let _ = writeln!(
        s,
        "  {:>3}  {:>10}  {:>22}",
        "k", "P(miss)", "P(within k versions)"
    );
    for row in &rep.k_staleness {
        let _ = writeln!(
            s,
            "  {:>3}  {:>10.6}  {:>22.6}",
            row.k, row.p_miss, row.p_within_k
        );
    }
    let mc = &rep.monte_carlo;
    let _ = writeln!(
        s,
        "\nt-visibility (PBS WARS Monte-Carlo, {} trials, seed {}; latencies {})",
        mc.options.trials, mc.options.seed, rep.latency_source
    );
    let _ = writeln!(s, "  {:>10}  {:>14}", "t (ms)", "P(consistent)");
    for p in &rep.t_visibility {
        let _ = writeln!(s, "  {:>10}  {:>14.5}", fmt_t(p.t_ms), p.p_consistent);
    }
    let at = |t: Option<f64>| t.map_or("never".to_owned(), |t| format!("{} ms", fmt_t(t)));
    let _ = writeln!(
        s,
        "  P(consistent) >= 0.99 from t = {}, >= 0.999 from t = {}",
        at(rep.t_consistent_99_ms),
        at(rep.t_consistent_999_ms)
    );
    if let Some(m) = &rep.measured {
        let _ = writeln!(s, "\nmeasured in the history (checkers::nwr)");
        let _ = writeln!(
            s,
            "  {:<48} {} of {} ({:.2}%)",
            "stale reads",
            m.stale,
            m.reads,
            m.stale_fraction * 100.0
        );
        let _ = writeln!(s, "  {:<48} {}", "max k (versions behind)", m.max_k);
        let _ = writeln!(
            s,
            "  {:<48} {} (predicted {})",
            "P(fresh) >= 0.99 from t",
            at(m.t99_fresh_ms),
            at(rep.t_consistent_99_ms)
        );
        if let Some(d) = &m.curve_distance {
            let _ = writeln!(
                s,
                "  {:<48} max {:.3}, mean {:.3} over {} buckets",
                "|measured - predicted| P(fresh | t)", d.max_abs, d.mean_abs, d.buckets
            );
        }
        let _ = writeln!(
            s,
            "  {:<48} {} of {} ({} keys undecided)",
            "lost writes", m.lost_writes, m.acknowledged_writes, m.keys_without_final_reads
        );
        let _ = writeln!(
            s,
            "  {:<48} {} / {} / {}",
            "new-old inversions / monotonic / read-your-writes",
            m.new_old_inversions,
            m.monotonic_read_violations,
            m.read_your_writes_violations
        );
        let _ = writeln!(
            s,
            "  {:>10}  {:>8}  {:>10}  {:>10}",
            "t (ms)", "reads", "measured", "predicted"
        );
        for b in &m.t_visibility {
            let _ = writeln!(
                s,
                "  {:>10}  {:>8}  {:>10.4}  {:>10.4}",
                fmt_t(b.t_mean_ms),
                b.reads,
                b.p_fresh,
                rep.monte_carlo.p_consistent(b.t_mean_ms)
            );
        }
        for a in m.worst_examples() {
            let _ = writeln!(s, "  {}: {}", a.kind.name(), a.description);
        }
    }
    s
}

fn fmt_t(t: f64) -> String {
    if t == 0.0 {
        "0".into()
    } else if t >= 10.0 {
        format!("{t:.0}")
    } else {
        let s = format!("{t:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_starts_at_zero_and_ends_past_the_tail() {
        let tv = quorum::t_visibility(
            QuorumConfig::new(3, 1, 1, 0).unwrap(),
            &WarsLatencies::default(),
            PbsOptions {
                trials: 5_000,
                seed: 1,
            },
        )
        .unwrap();
        let g = t_grid(&tv);
        assert_eq!(g[0], 0.0);
        assert!(g.len() <= 16);
        assert!(*g.last().unwrap() >= tv.t_for(0.999).unwrap());
        assert!(g.windows(2).all(|w| w[0] < w[1]));
    }
}
