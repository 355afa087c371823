//! `nwr-staleness.png`: measured staleness of a quorum run next to its PBS prediction.
//!
//! Left panel: the measured t-visibility curve `P(fresh | t)` from `checkers::nwr` (one point
//! per bucket of reads, by time since the last acknowledged write on the key) and the
//! WARS Monte-Carlo prediction `P(consistent | t)` from `checkers::quorum`, on one log-scale
//! time axis, as in Bailis et al., "Probabilistically Bounded Staleness for Practical Partial
//! Quorums" (VLDB 2012), Figures 5–7. Right panel: the k-staleness histogram (stale reads by
//! how many acknowledged versions they were behind). This module only draws; every number
//! comes from the analysis, nothing is re-checked. It uses the same embedded DejaVu Sans font
//! and colours as `plots`.
//!
//! [`section`] is the NWR part of a run's `index.html`: the configuration, the headline
//! figures next to the prediction, which anomaly made the run non-linearizable, and the plot.

use std::path::Path;

use checkers::nwr::NwrAnalysis;
use checkers::quorum::TVisibility;
use plotters::coord::Shift;
use plotters::prelude::*;

use checkers::layout;

use crate::html::esc;
use crate::run::Run;
use crate::ReportError;
use std::fmt::Write as _;

/// Width of the image, px (same as the other plots).
pub const WIDTH: u32 = 1200;
/// Height of the image, px.
pub const HEIGHT: u32 = 640;
/// The font family `plots` registers.
const FONT: &str = "sans-serif";

const MEASURED: RGBColor = RGBColor(0x4e, 0x79, 0xa7);
const PREDICTED: RGBColor = RGBColor(0xf2, 0x8e, 0x2b);
const STALE: RGBColor = RGBColor(0xe1, 0x57, 0x59);

use crate::plots::ensure_font;

fn err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Draws `nwr-staleness.png` at `out`.
///
/// `prediction` overrides the prediction stored in the analysis (`analysis.prediction`); with
/// neither, only the measurement is drawn and the legend says so.
pub fn render_nwr_staleness(
    analysis: &NwrAnalysis,
    prediction: Option<&TVisibility>,
    out: &Path,
) -> Result<(), ReportError> {
    ensure_font().map_err(|m| err(out, m))?;
    let prediction = prediction.or(analysis.prediction.as_ref().map(|p| &p.t_visibility));
    let root = BitMapBackend::new(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(out, e))?;
    let (top, body) = root.split_vertically(64);
    let title = format!(
        "Staleness: {} of {} reads stale ({:.2}%), max k = {}, 99% fresh from {}, {} lost write(s)",
        analysis.stale,
        analysis.reads,
        analysis.stale_fraction * 100.0,
        analysis.max_k,
        analysis
            .t99_fresh_ms
            .map_or("never".to_owned(), |t| format!("{} ms", tick(t))),
        analysis.lost_writes
    );
    top.draw(&Text::new(title, (16, 12), (FONT, 20).into_font()))
        .map_err(|e| err(out, e))?;
    let sub = match (&analysis.curve_distance, prediction) {
        (Some(d), Some(_)) => format!(
            "measured vs PBS prediction: max |difference| {:.3}, mean {:.3} over {} buckets",
            d.max_abs, d.mean_abs, d.buckets
        ),
        (_, Some(p)) => format!(
            "PBS prediction N={} W={} R={} ({} trials)",
            p.n, p.w, p.r, p.options.trials
        ),
        (_, None) => "no PBS prediction attached".to_owned(),
    };
    top.draw(&Text::new(
        sub,
        (16, 38),
        (FONT, 15).into_font().color(&RGBColor(70, 70, 70)),
    ))
    .map_err(|e| err(out, e))?;
    let (left, right) = body.split_horizontally(WIDTH * 64 / 100);
    visibility_panel(&left, analysis, prediction).map_err(|e| err(out, e))?;
    k_panel(&right, analysis).map_err(|e| err(out, e))?;
    root.present().map_err(|e| err(out, e))?;
    Ok(())
}

type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

fn visibility_panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    a: &NwrAnalysis,
    prediction: Option<&TVisibility>,
) -> DrawResult {
    // x range over measured bucket means and the informative part of the prediction.
    let mut lo = f64::MAX;
    let mut hi = f64::MIN;
    for b in &a.t_visibility {
        let t = b.t_mean_ms.max(1e-3);
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if let Some(p) = prediction {
        for pt in p.points.iter().filter(|pt| pt.t_ms > 0.0) {
            lo = lo.min(pt.t_ms);
        }
        if let Some(t) = p.t_for(0.999).or(p.points.last().map(|pt| pt.t_ms)) {
            hi = hi.max(t);
        }
    }
    if lo > hi {
        (lo, hi) = (0.1, 1000.0);
    }
    let lo = 10f64.powf((lo.max(1e-3)).log10().floor());
    let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    let mut chart = ChartBuilder::on(area)
        .caption("t-visibility: P(fresh read | t)", (FONT, 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..1.02f64)?;
    chart
        .configure_mesh()
        .x_desc("t: ms since the last acknowledged write (log scale)")
        .y_desc("P(fresh)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()?;
    if let Some(p) = prediction {
        let steps = 240;
        let pts: Vec<(f64, f64)> = (0..=steps)
            .map(|i| {
                let t = lo * (hi / lo).powf(i as f64 / steps as f64);
                (t, p.p_consistent(t))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(pts, PREDICTED.stroke_width(3)))?
            .label(format!("PBS prediction (N={} W={} R={})", p.n, p.w, p.r))
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], PREDICTED.stroke_width(3))
            });
    }
    let min_reads = a.options.min_bucket_reads.max(1);
    let measured: Vec<(f64, f64, u64, f64, f64)> = a
        .t_visibility
        .iter()
        .map(|b| (b.t_mean_ms.max(lo), b.p_fresh, b.reads, b.ci_lo, b.ci_hi))
        .collect();
    if !measured.is_empty() {
        // The line joins only buckets with enough reads to trust; a thin bucket is a hollow
        // marker with its 95 % interval, so a few reads cannot draw a zigzag.
        chart
            .draw_series(LineSeries::new(
                measured
                    .iter()
                    .filter(|m| m.2 >= min_reads)
                    .map(|m| (m.0, m.1)),
                MEASURED.stroke_width(2),
            ))?
            .label(format!(
                "measured (hollow: under {min_reads} reads, with 95 % interval)"
            ))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, MEASURED.filled()));
        chart.draw_series(measured.iter().filter(|m| m.2 < min_reads).map(|m| {
            PathElement::new(
                vec![(m.0, m.3), (m.0, m.4)],
                MEASURED.mix(0.6).stroke_width(2),
            )
        }))?;
        chart.draw_series(measured.iter().map(|m| {
            let style = if m.2 >= min_reads {
                MEASURED.filled()
            } else {
                MEASURED.stroke_width(2)
            };
            Circle::new((m.0, m.1), 5, style)
        }))?;
    } else {
        area.draw(&Text::new(
            "no read followed an acknowledged write",
            (90, 120),
            (FONT, 16).into_font(),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .draw()?;
    Ok(())
}

fn k_panel(area: &DrawingArea<BitMapBackend, Shift>, a: &NwrAnalysis) -> DrawResult {
    let max_k = a.k_histogram.iter().map(|c| c.k).max().unwrap_or(1).max(1);
    let max_n = a
        .k_histogram
        .iter()
        .map(|c| c.reads)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(area)
        .caption("k-staleness: stale reads by versions behind", (FONT, 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..(max_k as f64 + 0.5), 0f64..(max_n as f64 * 1.12))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("k (acknowledged versions behind)")
        .y_desc("stale reads")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_labels((max_k as usize).min(12))
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-9 && *v >= 1.0 {
                format!("{}", v.round() as u64)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| tick(*v))
        .draw()?;
    if a.k_histogram.is_empty() {
        area.draw(&Text::new(
            "no stale reads",
            (120, 120),
            (FONT, 16).into_font(),
        ))?;
        return Ok(());
    }
    chart.draw_series(a.k_histogram.iter().map(|c| {
        let x = c.k as f64;
        Rectangle::new(
            [(x - 0.38, 0.0), (x + 0.38, c.reads as f64)],
            STALE.filled(),
        )
    }))?;
    // Counts above the bars when there are few enough to read.
    if a.k_histogram.len() <= 12 {
        chart.draw_series(a.k_histogram.iter().map(|c| {
            Text::new(
                c.reads.to_string(),
                (c.k as f64 - 0.2, c.reads as f64 + max_n as f64 * 0.04),
                (FONT, 13).into_font(),
            )
        }))?;
    }
    Ok(())
}

/// Appends the NWR section of `index.html` when the analysis has one.
///
/// Every figure comes from the typed `nwr` section of the analysis (its measurement, the run's
/// N/W/R and the anomaly the checkers tied to the verdict); the image is linked when
/// `nwr-staleness.png` exists.
pub(crate) fn section(b: &mut String, run: &Run) {
    let Some(nwr) = run.analysis.as_ref().and_then(|a| a.nwr.as_ref()) else {
        return;
    };
    let a = &nwr.analysis;
    b.push_str("<h2 id=\"nwr\">NWR quorums and staleness</h2>");
    if let Some(e) = &nwr.explanation {
        let _ = write!(
            b,
            "<p id=\"nwr-anomaly\" class=\"why\"><b>Which anomaly:</b> {}</p>",
            esc(e)
        );
    }
    let stat = a.prediction.as_ref().map(|p| p.static_analysis.config);
    let (n, w, r) = match (&nwr.config, stat) {
        (Some(c), _) => (u64::from(c.n), u64::from(c.w), u64::from(c.r)),
        (None, Some(c)) => (u64::from(c.n), u64::from(c.w), u64::from(c.r)),
        _ => (0, 0, 0),
    };
    let t = |t: Option<f64>| t.map_or("never".to_owned(), |t| format!("{t:.2} ms"));
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(c) = &nwr.config {
        rows.push((
            "configuration",
            format!(
                "N={n} W={w} R={r}, {} clock, read repair {}",
                c.clock,
                if c.read_repair { "on" } else { "off" }
            ),
        ));
    }
    if n > 0 {
        rows.push((
            "read and write quorums intersect",
            if w + r > n {
                format!("yes (W+R = {} > N = {n})", w + r)
            } else {
                format!("no (W+R = {} ≤ N = {n}): a partial quorum", w + r)
            },
        ));
    }
    rows.push((
        "stale reads (measured)",
        format!(
            "{} of {} ({:.2} %)",
            a.stale,
            a.reads,
            a.stale_fraction * 100.0
        ),
    ));
    // PBS's figure, stated the same way as the measurement beside it: the chance a read is
    // stale (misses the newest acknowledged write), not its complement.
    if let Some(p) = &a.prediction {
        if let Some(m) = p.p_miss_k.first() {
            rows.push((
                "stale reads (PBS prediction for a read right after a write)",
                format!(
                    "{:.1} % (P(miss) for k = 1, with no time to propagate)",
                    m * 100.0
                ),
            ));
        }
    }
    rows.push(("max k (versions behind)", a.max_k.to_string()));
    let predicted = a.prediction.as_ref().and_then(|p| p.t99_ms);
    rows.push((
        "t for 99 % fresh: measured / PBS predicted",
        format!("{} / {}", t(a.t99_fresh_ms), t(predicted)),
    ));
    if let Some(d) = &a.curve_distance {
        rows.push((
            "measured vs predicted P(fresh | t)",
            format!(
                "max |difference| {:.3}, mean {:.3} over {} buckets",
                d.max_abs, d.mean_abs, d.buckets
            ),
        ));
    }
    rows.push((
        "lost writes",
        format!(
            "{} of {} acknowledged{}",
            a.lost_writes,
            a.acknowledged_writes,
            if a.keys_without_final_reads > 0 {
                format!(
                    " ({} keys without a final read)",
                    a.keys_without_final_reads
                )
            } else {
                String::new()
            }
        ),
    ));
    rows.push(("new-old inversions", a.new_old_inversions.to_string()));
    rows.push((
        "monotonic-read violations",
        a.monotonic_read_violations.to_string(),
    ));
    rows.push((
        "read-your-writes violations",
        a.read_your_writes_violations.to_string(),
    ));
    rows.push(("unexplained reads", a.unexplained_reads.to_string()));
    b.push_str("<table id=\"nwr-figures\"><tr><th>figure</th><th>value</th></tr>");
    for (k, v) in rows {
        let _ = write!(b, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(&v));
    }
    b.push_str("</table>");
    let faulty = run
        .analysis
        .as_ref()
        .is_some_and(|x| x.faults.iter().any(|f| f.failed.is_none()));
    if a.prediction.is_some() && faulty {
        b.push_str(
            "<p class=\"muted\" id=\"nwr-gap\">Why the measurement can be far from PBS here: PBS \
             assumes every replica is reachable and only message latency delays a write; during a \
             partition, kill or pause the write cannot reach the cut-off replicas at all until \
             the fault heals, so reads that ask them stay stale for the whole fault, which no \
             latency distribution predicts. The prediction describes the run's fault-free \
             periods.</p>",
        );
    }
    let worst = a.worst_examples();
    if !worst.is_empty() {
        b.push_str("<p>First example of each anomaly found:</p><ul id=\"nwr-examples\">");
        for e in worst {
            let _ = write!(
                b,
                "<li><b>{}</b>: {}</li>",
                esc(e.kind.name()),
                esc(&e.description)
            );
        }
        b.push_str("</ul>");
    }
    if run.dir.join(layout::NWR_STALENESS).exists() {
        let _ = write!(
            b,
            "<a href=\"{f}\"><img class=\"plot\" src=\"{f}\" \
             alt=\"NWR staleness: measured P(fresh | t) against the PBS prediction, k histogram\" \
             width=\"1200\" height=\"640\"></a>",
            f = layout::NWR_STALENESS
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::history::{Event, EventType, History, Process};
    use checkers::nwr::{self, NwrOptions};
    use checkers::quorum::{PbsOptions, QuorumConfig, WarsLatencies};

    fn history() -> History {
        // Writes every 10 ms; reads 1..=9 ms after each ack, stale when under 3 ms.
        let mut evs = Vec::new();
        let mut push = |p: u64, kind, f: &str, v: serde_json::Value, t: u64| {
            evs.push(Event {
                index: evs.len() as u64,
                time: t,
                process: Process::Client(p),
                kind,
                f: f.into(),
                key: None,
                value: v,
                node: None,
                error: None,
            })
        };
        let ms = 1_000_000u64;
        for i in 0..200u64 {
            let t0 = i * 10 * ms;
            push(0, EventType::Invoke, "write", (i + 1).into(), t0);
            push(0, EventType::Ok, "write", (i + 1).into(), t0 + ms / 2);
            let lag = 1 + i % 9;
            let v = if lag < 3 && i > 0 { i } else { i + 1 };
            push(
                1,
                EventType::Invoke,
                "read",
                serde_json::Value::Null,
                t0 + ms / 2 + lag * ms / 2,
            );
            push(
                1,
                EventType::Ok,
                "read",
                v.into(),
                t0 + ms / 2 + lag * ms / 2 + 1000,
            );
        }
        History::from_events(evs)
    }

    #[test]
    fn draws_measurement_and_prediction() {
        let a = nwr::analyze_history(&history(), &NwrOptions::default()).unwrap();
        assert!(a.stale > 0);
        let ops = history().operations().unwrap();
        let lat = WarsLatencies::from_operations(&ops).unwrap();
        let p = nwr::predict(
            QuorumConfig::new(3, 1, 1, 0).unwrap(),
            &lat,
            "history",
            PbsOptions {
                trials: 5_000,
                seed: 2,
            },
        )
        .unwrap();
        let a = a.with_prediction(p);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nwr-staleness.png");
        render_nwr_staleness(&a, None, &out).unwrap();
        // To look at the plot: FAULTLINE_KEEP_PLOT=/tmp/x.png cargo test -p report nwr
        if let Some(keep) = std::env::var_os("FAULTLINE_KEEP_PLOT") {
            std::fs::copy(&out, keep).unwrap();
        }
        let img = image::open(&out).unwrap();
        assert_eq!((img.width(), img.height()), (WIDTH, HEIGHT));
        // Without prediction and without reads it still draws.
        let empty = nwr::analyze(&[], &NwrOptions::default());
        render_nwr_staleness(&empty, None, &out).unwrap();
    }
}
