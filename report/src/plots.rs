//! The three PNG plots of a run: `latency-raw.png`, `latency-quantiles.png`, `rate.png`.
//!
//! Drawn with plotters' bitmap backend and the DejaVu Sans font embedded in this crate (the
//! `ab_glyph` text path), so text renders on machines without fontconfig or system fonts.
//! Every plot has the same frame: time in seconds on x, a light grey shade wherever some fault
//! was active, the legend in its own panel at the right, and under the chart the cluster-state
//! strip on the same time axis: one lane per fault kind labelled with the nodes it hit (lanes
//! never overlap, so no colours blend), one row per node (up, paused, killed, cut off, clock
//! offset, leader), the periods without a quorum, and a red marker where each minimal
//! counterexample's culprit began.

use std::path::Path;
use std::sync::OnceLock;

use checkers::cluster_state::{Liveness, NodeSpan};
use checkers::history::{Operation, Outcome};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::series::DashedLineSeries;

use crate::run::Run;
use crate::style::{self, Rgb};
use crate::ReportError;

/// Width of every plot, px.
pub const WIDTH: u32 = 1200;
/// Where a plot put its time axis: first and last pixel column, and the time (s) at the last.
pub type Axis = (i32, i32, f64);

/// Height of the chart part of every plot, px (the strip adds to it).
pub const CHART_HEIGHT: u32 = 640;
/// Width of the legend panel at the right, px.
const LEGEND_W: u32 = 210;
/// The font family name registered with plotters.
const FONT: &str = "sans-serif";

static DEJAVU: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded font with plotters once per process.
pub(crate) fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU)
                .map_err(|_| "the embedded DejaVu Sans font could not be parsed".to_owned())
        })
        .clone()
}

fn rgb(c: Rgb) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

fn err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

const NS_PER_S: f64 = 1e9;

/// A marker shape; fixed per operation name, so reads look the same in every run.
#[derive(Clone, Copy)]
enum Shape {
    Circle,
    Triangle,
    Cross,
    Square,
}

impl Shape {
    fn of(f: &str) -> Shape {
        match f {
            "read" | "get" | "r" => Shape::Circle,
            "write" | "put" | "w" => Shape::Triangle,
            "cas" => Shape::Square,
            _ => Shape::Cross,
        }
    }
}

/// A swatch in the legend panel.
enum Swatch {
    Marker(Shape, Rgb),
    Area(Rgb, f64),
    /// A line: colour and dash pattern (0 solid, 1 dashed, 2 dotted).
    Line(Rgb, u8),
}

type DrawErr = DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>;

/// Draws a legend: titled sections of (swatch, label), top to bottom.
fn draw_legend(
    area: &DrawingArea<BitMapBackend, Shift>,
    sections: &[(&str, Vec<(Swatch, String)>)],
) -> Result<(), DrawErr> {
    let title = (FONT, 16).into_font().color(&BLACK);
    let label = (FONT, 14).into_font().color(&RGBColor(40, 40, 40));
    let mut y = 50;
    for (head, items) in sections {
        if items.is_empty() {
            continue;
        }
        area.draw(&Text::new(head.to_string(), (12, y), title.clone()))?;
        y += 24;
        for (swatch, text) in items {
            let (cx, cy) = (22, y + 8);
            match swatch {
                Swatch::Marker(shape, c) => draw_marker(area, *shape, (cx, cy), rgb(*c), 5)?,
                Swatch::Area(c, alpha) => area.draw(&Rectangle::new(
                    [(cx - 10, cy - 7), (cx + 10, cy + 7)],
                    rgb(*c).mix(*alpha).filled(),
                ))?,
                Swatch::Line(c, dash) => {
                    let segs: &[(i32, i32)] = match dash {
                        0 => &[(-12, 12)],
                        1 => &[(-12, -4), (1, 9)],
                        _ => &[(-12, -9), (-5, -2), (2, 5), (9, 12)],
                    };
                    for (a, b) in segs {
                        area.draw(&PathElement::new(
                            vec![(cx + a, cy), (cx + b, cy)],
                            rgb(*c).stroke_width(3),
                        ))?
                    }
                }
            }
            let mut t = text.clone();
            if t.chars().count() > 22 {
                t = t.chars().take(21).collect::<String>() + "…";
            }
            area.draw(&Text::new(t, (42, y), label.clone()))?;
            y += 22;
        }
        y += 14;
    }
    Ok(())
}

fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    shape: Shape,
    (x, y): (i32, i32),
    c: RGBColor,
    r: i32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    match shape {
        Shape::Circle => area.draw(&Circle::new((x, y), r, c.filled())),
        Shape::Triangle => area.draw(&TriangleMarker::new((x, y), r + 1, c.filled())),
        Shape::Cross => area.draw(&Cross::new((x, y), r, c.stroke_width(2))),
        Shape::Square => area.draw(&Rectangle::new(
            [(x - r, y - r), (x + r, y + r)],
            c.filled(),
        )),
    }
}

/// The legend of the strip and the shading: what every colour under the chart means.
fn strip_legend(run: &Run) -> Vec<(Swatch, String)> {
    let mut items = Vec::new();
    if run.observed.faults.iter().any(|f| f.failed.is_none()) {
        items.push((
            Swatch::Area(style::ANY_FAULT, 0.35),
            "a fault active".into(),
        ));
    }
    let mut kinds: Vec<&str> = Vec::new();
    for f in run.observed.faults.iter().filter(|f| f.failed.is_none()) {
        if !kinds.contains(&f.kind.as_str()) {
            kinds.push(&f.kind);
        }
    }
    for k in kinds {
        items.push((Swatch::Area(style::fault(k), 0.8), format!("{k} (lane)")));
    }
    let rows = &run.observed.cluster.rows;
    let any = |p: &dyn Fn(&NodeSpan) -> bool| rows.iter().any(|r| r.spans.iter().any(p));
    if any(&|s| s.liveness == Liveness::Killed) {
        items.push((Swatch::Area(KILLED, 0.9), "node killed".into()));
    }
    if any(&|s| s.liveness == Liveness::Paused) {
        items.push((Swatch::Area(PAUSED, 0.9), "node paused".into()));
    }
    if any(&|s| s.liveness == Liveness::Absent) {
        items.push((Swatch::Area(ABSENT, 0.9), "not a member".into()));
    }
    if any(&|s| !s.cut_off_from.is_empty()) {
        items.push((
            Swatch::Area(style::fault("partition"), 0.75),
            "node in a minority".into(),
        ));
        items.push((
            Swatch::Area(style::fault("partition"), 0.2),
            "node misses links".into(),
        ));
    }
    if any(&|s| s.clock_ms != 0) {
        items.push((
            Swatch::Area(style::fault("clock"), 0.9),
            "clock skewed".into(),
        ));
    }
    if !run.observed.cluster.leaders.is_empty() {
        items.push((Swatch::Area(LEADER, 1.0), "node leads".into()));
    }
    if !run.observed.cluster.without_quorum.is_empty() {
        items.push((Swatch::Area(NO_QUORUM, 0.8), "no quorum possible".into()));
    }
    if run
        .analysis
        .as_ref()
        .is_some_and(|a| !a.counterexamples.is_empty())
    {
        items.push((Swatch::Marker(Shape::Triangle, ANOMALY), "anomaly".into()));
    }
    items
}

const KILLED: Rgb = (0xc0, 0x39, 0x2b);
const PAUSED: Rgb = (0x2a, 0x9d, 0x8f);
/// A host that is no member (the `member` fault has not added it, or removed it).
const ABSENT: Rgb = (0xd9, 0xd9, 0xd9);
const LEADER: Rgb = (0x1d, 0x23, 0x30);
const NO_QUORUM: Rgb = (0xe1, 0x57, 0x59);
const ANOMALY: Rgb = (0xc0, 0x39, 0x2b);

/// Height of the cluster-state strip of a run, px.
fn strip_height(run: &Run) -> u32 {
    let lanes = fault_lanes(run).len() as u32;
    let nodes = run.observed.cluster.rows.len() as u32;
    let quorum = u32::from(!run.observed.cluster.without_quorum.is_empty());
    if lanes + nodes + quorum == 0 {
        return 0;
    }
    16 + (lanes + quorum) * 18 + nodes * node_row_h(run)
}

fn node_row_h(run: &Run) -> u32 {
    if run.observed.cluster.rows.len() > 12 {
        8
    } else {
        16
    }
}

/// Height of a plot of this run, px.
pub fn height(run: &Run) -> u32 {
    CHART_HEIGHT + strip_height(run)
}

/// Fault kinds in order of first appearance, each with its (non-failed) faults.
fn fault_lanes(run: &Run) -> Vec<(String, Vec<&checkers::cluster_state::FaultRecord>)> {
    let mut lanes: Vec<(String, Vec<_>)> = Vec::new();
    for f in run.observed.faults.iter().filter(|f| f.failed.is_none()) {
        match lanes.iter_mut().find(|(k, _)| *k == f.kind) {
            Some((_, v)) => v.push(f),
            None => lanes.push((f.kind.clone(), vec![f])),
        }
    }
    lanes
}

/// Draws the strip under the chart: `x` is the chart's pixel range on the time axis, `top`
/// the strip's first pixel row.
fn draw_strip(
    root: &DrawingArea<BitMapBackend, Shift>,
    run: &Run,
    x: (i32, i32),
    x_max_s: f64,
    top: i32,
) -> Result<(), DrawErr> {
    let px = |ns: u64| x.0 + ((ns as f64 / NS_PER_S) / x_max_s * (x.1 - x.0) as f64) as i32;
    let end = run.end_time();
    let label = (FONT, 12).into_font().color(&RGBColor(40, 40, 40));
    let small = (FONT, 11).into_font().color(&WHITE);
    let mut y = top + 8;
    for (kind, faults) in fault_lanes(run) {
        root.draw(&Text::new(kind.clone(), (8, y + 2), label.clone()))?;
        for f in faults {
            let (a, b) = (px(f.start), px(f.stop.unwrap_or(end)).max(px(f.start) + 2));
            root.draw(&Rectangle::new(
                [(a, y), (b, y + 15)],
                rgb(style::fault(&kind)).mix(0.8).filled(),
            ))?;
            // Name the nodes it hit, when the bar has room for it.
            let text = f.describe();
            let text = text.strip_prefix(&format!("{kind} ")).unwrap_or(&text);
            let room = ((b - a - 6) / 7).max(0) as usize;
            if room >= 2 {
                let t: String = if text.chars().count() > room {
                    text.chars().take(room - 1).collect::<String>() + "…"
                } else {
                    text.to_string()
                };
                root.draw(&Text::new(t, (a + 3, y + 2), small.clone()))?;
            }
        }
        y += 18;
    }
    let h = node_row_h(run) as i32;
    let leaders = &run.observed.cluster.leaders;
    for row in &run.observed.cluster.rows {
        if h >= 12 {
            root.draw(&Text::new(row.node.clone(), (8, y + 1), label.clone()))?;
        }
        root.draw(&Rectangle::new(
            [(x.0, y), (x.1, y + h - 2)],
            RGBColor(245, 246, 248).filled(),
        ))?;
        for s in &row.spans {
            let (a, b) = (px(s.start), px(s.end).max(px(s.start) + 1));
            // Cut off from a majority (the minority side) in full colour; on the majority
            // side, missing only some links, faintly.
            let majority = run.observed.cluster.nodes.len() / 2 + 1;
            let reach = run.observed.cluster.nodes.len() - s.cut_off_from.len();
            let fill = match s.liveness {
                Liveness::Killed => Some(rgb(KILLED).mix(0.9)),
                Liveness::Paused => Some(rgb(PAUSED).mix(0.9)),
                Liveness::Absent => Some(rgb(ABSENT).mix(0.9)),
                Liveness::Up if !s.cut_off_from.is_empty() && reach < majority => {
                    Some(rgb(style::fault("partition")).mix(0.75))
                }
                Liveness::Up if !s.cut_off_from.is_empty() => {
                    Some(rgb(style::fault("partition")).mix(0.2))
                }
                Liveness::Up => None,
            };
            if let Some(fill) = fill {
                root.draw(&Rectangle::new([(a, y), (b, y + h - 2)], fill.filled()))?;
            }
            if s.clock_ms != 0 {
                root.draw(&Rectangle::new(
                    [(a, y + h - 5), (b, y + h - 2)],
                    rgb(style::fault("clock")).filled(),
                ))?;
            }
        }
        // Leadership as reported, a dark bar along the top of the row.
        for l in leaders {
            if l.leaders.iter().any(|(n, _)| *n == row.node) {
                root.draw(&Rectangle::new(
                    [(px(l.start), y), (px(l.end).max(px(l.start) + 1), y + 3)],
                    rgb(LEADER).filled(),
                ))?;
            }
        }
        y += h;
    }
    if !run.observed.cluster.without_quorum.is_empty() {
        root.draw(&Text::new("no quorum", (8, y + 2), label.clone()))?;
        for s in &run.observed.cluster.without_quorum {
            root.draw(&Rectangle::new(
                [
                    (px(s.start), y + 2),
                    (px(s.end).max(px(s.start) + 2), y + 14),
                ],
                rgb(NO_QUORUM).mix(0.8).filled(),
            ))?;
        }
        y += 18;
    }
    // Where each key's culprit began: a marker on the axis and a line through the strip.
    if let Some(a) = &run.analysis {
        for k in &a.counterexamples {
            if let Some(c) = k.culprit() {
                let xx = px(c.call);
                root.draw(&PathElement::new(
                    vec![(xx, top + 4), (xx, y)],
                    rgb(ANOMALY).stroke_width(1),
                ))?;
                root.draw(&TriangleMarker::new(
                    (xx, top + 2),
                    6,
                    rgb(ANOMALY).filled(),
                ))?;
            }
        }
    }
    Ok(())
}

/// Light grey rectangles over `[lo, hi]` wherever some fault was active (one colour: kinds
/// are told apart in the strip's lanes).
fn fault_rects(run: &Run, lo: f64, hi: f64) -> Vec<Rectangle<(f64, f64)>> {
    let end = run.end_time();
    let mut spans: Vec<(u64, u64)> = run
        .observed
        .faults
        .iter()
        .filter(|f| f.failed.is_none())
        .map(|f| (f.start, f.stop.unwrap_or(end).max(f.start)))
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
        .into_iter()
        .map(|(a, b)| {
            Rectangle::new(
                [(a as f64 / NS_PER_S, lo), (b as f64 / NS_PER_S, hi)],
                rgb(style::ANY_FAULT).mix(0.18).filled(),
            )
        })
        .collect()
}

/// Formats an axis value without float noise (`0.001`, `2.5`, `1000`).
fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let s = if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else if a >= 0.01 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A bucket width (seconds) giving at most ~60 buckets over the run (smooth enough to read).
pub fn bucket_width(end_s: f64) -> f64 {
    let target = end_s / 60.0;
    for w in [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0,
        60.0, 120.0, 300.0, 600.0,
    ] {
        if w >= target {
            return w;
        }
    }
    1800.0
}

fn x_max(run: &Run) -> f64 {
    (run.end_time() as f64 / NS_PER_S).max(0.001) * 1.01
}

/// The image, white, with the chart area (left of the legend, above the strip) and the legend.
struct Frame<'a> {
    root: DrawingArea<BitMapBackend<'a>, Shift>,
    chart: DrawingArea<BitMapBackend<'a>, Shift>,
    legend: DrawingArea<BitMapBackend<'a>, Shift>,
}

fn frame<'a>(path: &'a Path, run: &Run) -> Result<Frame<'a>, ReportError> {
    ensure_font().map_err(|m| err(path, m))?;
    let root = BitMapBackend::new(path, (WIDTH, height(run))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let (left, legend) = root.split_horizontally(WIDTH - LEGEND_W);
    let (chart, _strip) = left.split_vertically(CHART_HEIGHT);
    Ok(Frame {
        root,
        chart,
        legend,
    })
}

/// The log-scale y range for latencies `lo..hi` (ms), starting at a power of ten.
fn log_range(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo > hi { (0.1, 100.0) } else { (lo, hi) };
    let lo = 10f64.powf((lo / 1.2).max(1e-4).log10().floor());
    (lo, (hi * 1.5).max(lo * 10.0))
}

/// Labels for a log axis: 1, 2 and 5 per decade when there are few decades, else powers of
/// ten. plotters' own log ticks leave decades below 1 ms unlabelled.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (hi / lo).log10();
    let steps: &[f64] = if decades <= 4.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut out: Vec<f64> = Vec::new();
    // Exact powers of ten (repeated multiplication drifts: 0.01 * 10 is 0.09999…).
    let first = lo.log10().round() as i32;
    let last = hi.log10().ceil() as i32;
    for e in first..=last {
        for m in steps {
            let v = m * 10f64.powi(e);
            if v >= lo * 0.9999 && v <= hi && !out.iter().any(|o| tick(*o) == tick(v)) {
                out.push(v);
            }
        }
    }
    out
}

/// Draws a latency chart's mesh with our own log ticks; returns the chart.
fn latency_chart<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    caption: String,
    xmax: f64,
    (lo, hi): (f64, f64),
) -> Result<
    ChartContext<
        'a,
        BitMapBackend<'b>,
        Cartesian2d<
            plotters::coord::types::RangedCoordf64,
            plotters::coord::combinators::LogCoord<f64>,
        >,
    >,
    DrawErr,
> {
    let ticks = log_ticks(lo, hi);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 22))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(76)
        .build_cartesian_2d(0f64..xmax, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms, log scale)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .disable_y_mesh()
        .y_labels(0)
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_label_formatter(&|v| tick(*v))
        .draw()?;
    for &t in &ticks {
        chart.draw_series(LineSeries::new(
            [(0.0, t), (xmax, t)],
            RGBColor(225, 225, 225).stroke_width(1),
        ))?;
    }
    let font = (FONT, 14).into_font().color(&BLACK);
    for &t in &ticks {
        let (_, y) = chart.backend_coord(&(0.0, t));
        let (x0, _) = chart.plotting_area().get_pixel_range();
        let text = tick(t);
        let w = text.chars().count() as i32 * 8;
        area.draw(&Text::new(
            text,
            (
                x0.start - w - 8 - area.get_base_pixel().0,
                y - 8 - area.get_base_pixel().1,
            ),
            font.clone(),
        ))?;
    }
    Ok(chart)
}

/// `latency-raw.png`: every completed op as a point (time, latency on a log scale),
/// colour by outcome, marker by operation name.
/// Returns the time axis: first and last pixel column, and the time (s) at the last.
pub fn latency_raw(run: &Run, path: &Path) -> Result<Axis, ReportError> {
    let f = frame(path, run)?;
    let e = |e| err(path, e);
    let lat_ms = |op: &Operation| {
        op.end
            .map(|end| (end.saturating_sub(op.call) as f64 / 1e6).max(0.001))
    };
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for l in run.observed.ops.iter().filter_map(lat_ms) {
        lo = lo.min(l);
        hi = hi.max(l);
    }
    let (lo, hi) = log_range(lo, hi);
    let xmax = x_max(run);
    let mut chart = latency_chart(
        &f.chart,
        "Latency of every operation".into(),
        xmax,
        (lo, hi),
    )
    .map_err(e)?;
    chart.draw_series(fault_rects(run, lo, hi)).map_err(e)?;
    for outcome in style::OUTCOMES {
        let c = rgb(style::outcome(outcome));
        for fname in &run.fs {
            let pts = run.observed.ops.iter().filter_map(|op| {
                (op.outcome() == outcome && op.f == *fname)
                    .then(|| lat_ms(op).map(|l| (op.call as f64 / NS_PER_S, l)))
                    .flatten()
            });
            let style = c.mix(0.75);
            match Shape::of(fname) {
                Shape::Circle => chart
                    .draw_series(pts.map(|p| Circle::new(p, 2, style.filled())))
                    .map(|_| ()),
                Shape::Triangle => chart
                    .draw_series(pts.map(|p| TriangleMarker::new(p, 3, style.filled())))
                    .map(|_| ()),
                Shape::Cross => chart
                    .draw_series(pts.map(|p| Cross::new(p, 2, style.stroke_width(1))))
                    .map(|_| ()),
                Shape::Square => chart
                    .draw_series(pts.map(|p| {
                        EmptyElement::at(p) + Rectangle::new([(-2, -2), (2, 2)], style.filled())
                    }))
                    .map(|_| ()),
            }
            .map_err(e)?;
        }
    }
    let outcomes = style::OUTCOMES
        .iter()
        .filter(|o| {
            run.observed
                .ops
                .iter()
                .any(|op| op.outcome() == **o && op.end.is_some())
        })
        .map(|o| {
            (
                Swatch::Marker(Shape::Circle, style::outcome(*o)),
                o.name().to_owned(),
            )
        })
        .collect();
    let fs = run
        .fs
        .iter()
        .map(|f| (Swatch::Marker(Shape::of(f), (90, 90, 90)), f.clone()))
        .collect();
    let x = chart.plotting_area().get_pixel_range().0;
    draw_strip(&f.root, run, (x.start, x.end), xmax, CHART_HEIGHT as i32).map_err(e)?;
    draw_legend(
        &f.legend,
        &[
            ("outcome", outcomes),
            ("operation", fs),
            ("cluster", strip_legend(run)),
        ],
    )
    .map_err(e)?;
    f.root.present().map_err(e)?;
    Ok((x.start, x.end, xmax))
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `latency-quantiles.png`: p50/p95/p99/max latency of ok operations per time bucket. Max is
/// drawn first, thin and dashed, so where a thin bucket makes p99 equal max the p99 line lies
/// on top and stays visible.
pub fn latency_quantiles(run: &Run, path: &Path) -> Result<Axis, ReportError> {
    let f = frame(path, run)?;
    let e = |e| err(path, e);
    let xmax = x_max(run);
    let w = bucket_width(xmax);
    let n = (xmax / w).ceil() as usize + 1;
    let mut buckets: Vec<Vec<u64>> = vec![Vec::new(); n];
    for op in &run.observed.ops {
        if let Some(r) = op.ret {
            let b = ((r as f64 / NS_PER_S) / w) as usize;
            buckets[b.min(n - 1)].push(r.saturating_sub(op.call));
        }
    }
    // Drawn in this order: max underneath.
    let qs: [(&str, f64, Rgb, u8); 4] = [
        ("max", 1.0, (0xc0, 0x39, 0x2b), 1),
        ("p99", 0.99, (0xf2, 0x8e, 0x2b), 0),
        ("p95", 0.95, (0x59, 0xa1, 0x4f), 0),
        ("p50", 0.5, (0x4e, 0x79, 0xa7), 0),
    ];
    let mut series: Vec<Vec<(f64, f64)>> = vec![Vec::new(); qs.len()];
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (b, lats) in buckets.iter_mut().enumerate() {
        if lats.is_empty() {
            continue;
        }
        lats.sort_unstable();
        let x = (b as f64 + 0.5) * w;
        for (i, (_, q, _, _)) in qs.iter().enumerate() {
            let v = (quantile(lats, *q) as f64 / 1e6).max(0.001);
            lo = lo.min(v);
            hi = hi.max(v);
            series[i].push((x, v));
        }
    }
    let (lo, hi) = log_range(lo, hi);
    let caption = format!("Latency quantiles of ok operations ({} s buckets)", tick(w));
    let mut chart = latency_chart(&f.chart, caption, xmax, (lo, hi)).map_err(e)?;
    chart.draw_series(fault_rects(run, lo, hi)).map_err(e)?;
    for (i, (_, _, c, dash)) in qs.iter().enumerate() {
        let c = rgb(*c);
        // Break the line where buckets are empty (no ok op completed): a gap is information.
        let mut start = 0;
        for j in 1..=series[i].len() {
            let gap = j == series[i].len() || series[i][j].0 - series[i][j - 1].0 > 1.5 * w;
            if gap {
                let pts = series[i][start..j].iter().copied();
                if *dash == 1 {
                    chart
                        .draw_series(DashedLineSeries::new(pts, 6, 4, c.stroke_width(2)))
                        .map_err(e)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                        .map_err(e)?;
                }
                start = j;
            }
        }
        if series[i].len() <= 150 && *dash == 0 {
            chart
                .draw_series(series[i].iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(e)?;
        }
    }
    let items = qs
        .iter()
        .rev()
        .map(|(name, _, c, dash)| (Swatch::Line(*c, *dash), (*name).to_owned()))
        .collect();
    let x = chart.plotting_area().get_pixel_range().0;
    draw_strip(&f.root, run, (x.start, x.end), xmax, CHART_HEIGHT as i32).map_err(e)?;
    draw_legend(
        &f.legend,
        &[("quantile", items), ("cluster", strip_legend(run))],
    )
    .map_err(e)?;
    f.root.present().map_err(e)?;
    Ok((x.start, x.end, xmax))
}

/// `rate.png`: completed operations per second, by operation name (colour) and outcome
/// (ok solid, fail dashed, info dotted).
pub fn rate(run: &Run, path: &Path) -> Result<Axis, ReportError> {
    let f = frame(path, run)?;
    let e = |e| err(path, e);
    let xmax = x_max(run);
    let w = bucket_width(xmax);
    let n = (xmax / w).ceil() as usize + 1;
    // counts[f][outcome][bucket]
    let mut counts = vec![vec![vec![0u32; n]; 3]; run.fs.len()];
    let slot = |o: Outcome| style::OUTCOMES.iter().position(|x| *x == o).unwrap_or(0);
    for op in &run.observed.ops {
        if let Some(c) = op.end {
            let b = ((c as f64 / NS_PER_S) / w) as usize;
            counts[run.f_index(&op.f)][slot(op.outcome())][b.min(n - 1)] += 1;
        }
    }
    let mut hi = 1.0f64;
    for per_f in &counts {
        for per_o in per_f {
            for &c in per_o {
                hi = hi.max(c as f64 / w);
            }
        }
    }
    let hi = hi * 1.12;
    let mut chart = ChartBuilder::on(&f.chart)
        .caption(
            format!(
                "Throughput by operation and outcome ({} s buckets)",
                tick(w)
            ),
            (FONT, 22),
        )
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(76)
        .build_cartesian_2d(0f64..xmax, 0f64..hi)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("completed operations / s")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(e)?;
    chart.draw_series(fault_rects(run, 0.0, hi)).map_err(e)?;
    let mut items = Vec::new();
    for (fi, per_f) in counts.iter().enumerate() {
        let colour = style::f_colour(&run.fs[fi], fi);
        let c = rgb(colour);
        for (oi, o) in style::OUTCOMES.iter().enumerate() {
            let per_o = &per_f[oi];
            if per_o.iter().all(|&c| c == 0) {
                continue;
            }
            let pts: Vec<(f64, f64)> = per_o
                .iter()
                .enumerate()
                .map(|(b, &k)| ((b as f64 + 0.5) * w, k as f64 / w))
                .collect();
            match o {
                Outcome::Ok => chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                    .map(|_| ()),
                Outcome::Fail => chart
                    .draw_series(DashedLineSeries::new(pts, 8, 5, c.stroke_width(2)))
                    .map(|_| ()),
                Outcome::Info => chart
                    .draw_series(DashedLineSeries::new(pts, 2, 4, c.stroke_width(2)))
                    .map(|_| ()),
            }
            .map_err(e)?;
            items.push((
                Swatch::Line(colour, oi as u8),
                format!("{} {}", run.fs[fi], o.name()),
            ));
        }
    }
    let x = chart.plotting_area().get_pixel_range().0;
    draw_strip(&f.root, run, (x.start, x.end), xmax, CHART_HEIGHT as i32).map_err(e)?;
    draw_legend(
        &f.legend,
        &[("operation", items), ("cluster", strip_legend(run))],
    )
    .map_err(e)?;
    f.root.present().map_err(e)?;
    Ok((x.start, x.end, xmax))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_label_decades_below_one_ms() {
        let (lo, hi) = log_range(0.05, 40.0);
        assert_eq!(lo, 0.01);
        let t = log_ticks(lo, hi);
        assert!(
            t.contains(&0.01) && t.contains(&0.1) && t.contains(&1.0),
            "{t:?}"
        );
        let labels: Vec<String> = t.iter().map(|v| tick(*v)).collect();
        assert!(labels.contains(&"0.05".to_string()), "{labels:?}");
        assert!(labels.iter().all(|l| l != "0"), "{labels:?}");
    }
}
