//! The three PNG plots of a run: `latency-raw.png`, `latency-quantiles.png`, `rate.png`.
//!
//! Drawn with plotters' bitmap backend and the DejaVu Sans font embedded in this crate (the
//! `ab_glyph` text path), so text renders on machines without fontconfig or system fonts.
//! Every plot has the same frame: time in seconds on x, the nemesis's fault windows shaded
//! one colour per kind, and the legend in its own panel at the right, never over the data.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::series::DashedLineSeries;

use crate::run::{FaultWindow, Outcome, Run};
use crate::style::{self, Rgb};
use crate::ReportError;

/// Width of every plot, px.
pub const WIDTH: u32 = 1200;
/// Height of every plot, px.
pub const HEIGHT: u32 = 640;
/// Width of the legend panel at the right, px.
const LEGEND_W: u32 = 210;
/// The font family name registered with plotters.
const FONT: &str = "sans-serif";

static DEJAVU: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded font with plotters once per process.
fn ensure_font() -> Result<(), String> {
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

/// A marker shape; the operation name picks one.
#[derive(Clone, Copy)]
enum Shape {
    Circle,
    Triangle,
    Cross,
    Square,
}

impl Shape {
    fn of(f: usize) -> Shape {
        [Shape::Circle, Shape::Triangle, Shape::Square, Shape::Cross][f % 4]
    }
}

/// A swatch in the legend panel.
enum Swatch {
    Marker(Shape, Rgb),
    Area(Rgb),
    /// A line: colour and dash pattern (0 solid, 1 dashed, 2 dotted).
    Line(Rgb, u8),
}

/// Draws a legend: titled sections of (swatch, label), top to bottom.
fn draw_legend(
    area: &DrawingArea<BitMapBackend, Shift>,
    sections: &[(&str, Vec<(Swatch, String)>)],
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>> {
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
                Swatch::Area(c) => area.draw(&Rectangle::new(
                    [(cx - 10, cy - 7), (cx + 10, cy + 7)],
                    rgb(*c).mix(0.35).filled(),
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

/// The distinct fault kinds of a run, in order of first appearance.
fn fault_kinds(faults: &[FaultWindow]) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for w in faults {
        if !kinds.contains(&w.kind) {
            kinds.push(w.kind.clone());
        }
    }
    kinds
}

fn fault_legend(run: &Run) -> Vec<(Swatch, String)> {
    fault_kinds(&run.faults)
        .into_iter()
        .map(|k| (Swatch::Area(style::fault(&k)), k))
        .collect()
}

/// Shaded rectangles for the fault windows over the y range `[lo, hi]`.
fn fault_rects(run: &Run, lo: f64, hi: f64) -> Vec<Rectangle<(f64, f64)>> {
    let end = run.end_time();
    run.faults
        .iter()
        .map(|w| {
            let a = w.start as f64 / NS_PER_S;
            let b = w.stop.unwrap_or(end).max(w.start) as f64 / NS_PER_S;
            Rectangle::new(
                [(a, lo), (b, hi)],
                rgb(style::fault(&w.kind)).mix(0.16).filled(),
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
    } else {
        format!("{v:.3}")
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

/// Splits the image into the chart and the legend panel, white background.
fn frame(path: &Path) -> Result<DrawingArea<BitMapBackend<'_>, Shift>, ReportError> {
    ensure_font().map_err(|m| err(path, m))?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    Ok(root)
}

/// `latency-raw.png`: every completed op as a point (time, latency on a log scale),
/// colour by outcome, marker by operation name.
pub fn latency_raw(run: &Run, path: &Path) -> Result<(), ReportError> {
    let root = frame(path)?;
    let (left, right) = root.split_horizontally(WIDTH - LEGEND_W);
    let e = |e| err(path, e);
    let lat_ms = |ns: u64| (ns as f64 / 1e6).max(0.001);
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for op in &run.ops {
        if let Some(l) = op.latency() {
            let l = lat_ms(l);
            lo = lo.min(l);
            hi = hi.max(l);
        }
    }
    if lo > hi {
        (lo, hi) = (0.1, 100.0);
    }
    // Start the log axis at a power of ten so the lower part always carries a label.
    let (lo, hi) = (10f64.powf((lo / 1.2).log10().floor()), hi * 1.5);
    let mut chart = ChartBuilder::on(&left)
        .caption("Latency of every operation", (FONT, 22))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(76)
        .build_cartesian_2d(0f64..x_max(run), (lo..hi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms, log scale)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(e)?;
    chart.draw_series(fault_rects(run, lo, hi)).map_err(e)?;
    for outcome in Outcome::ALL {
        let c = rgb(style::outcome(outcome));
        for f in 0..run.fs.len() {
            let pts = run.ops.iter().filter_map(|op| {
                (op.outcome == outcome && op.f == f)
                    .then(|| {
                        op.latency()
                            .map(|l| (op.invoke as f64 / NS_PER_S, lat_ms(l)))
                    })
                    .flatten()
            });
            let style = c.mix(0.75);
            match Shape::of(f) {
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
    let outcomes = Outcome::ALL
        .iter()
        .filter(|o| {
            run.ops
                .iter()
                .any(|op| op.outcome == **o && op.complete.is_some())
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
        .enumerate()
        .map(|(i, f)| (Swatch::Marker(Shape::of(i), (90, 90, 90)), f.clone()))
        .collect();
    draw_legend(
        &right,
        &[
            ("outcome", outcomes),
            ("operation", fs),
            ("faults", fault_legend(run)),
        ],
    )
    .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `latency-quantiles.png`: p50/p95/p99/max latency of ok operations per time bucket.
pub fn latency_quantiles(run: &Run, path: &Path) -> Result<(), ReportError> {
    let root = frame(path)?;
    let (left, right) = root.split_horizontally(WIDTH - LEGEND_W);
    let e = |e| err(path, e);
    let xmax = x_max(run);
    let w = bucket_width(xmax);
    let n = (xmax / w).ceil() as usize + 1;
    let mut buckets: Vec<Vec<u64>> = vec![Vec::new(); n];
    for op in &run.ops {
        if let (Outcome::Ok, Some(c), Some(l)) = (op.outcome, op.complete, op.latency()) {
            let b = ((c as f64 / NS_PER_S) / w) as usize;
            buckets[b.min(n - 1)].push(l);
        }
    }
    let qs: [(&str, f64, Rgb); 4] = [
        ("p50", 0.5, (0x4e, 0x79, 0xa7)),
        ("p95", 0.95, (0x59, 0xa1, 0x4f)),
        ("p99", 0.99, (0xf2, 0x8e, 0x2b)),
        ("max", 1.0, (0xc0, 0x39, 0x2b)),
    ];
    let mut series: Vec<Vec<(f64, f64)>> = vec![Vec::new(); qs.len()];
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for (b, lats) in buckets.iter_mut().enumerate() {
        if lats.is_empty() {
            continue;
        }
        lats.sort_unstable();
        let x = (b as f64 + 0.5) * w;
        for (i, (_, q, _)) in qs.iter().enumerate() {
            let v = (quantile(lats, *q) as f64 / 1e6).max(0.001);
            lo = lo.min(v);
            hi = hi.max(v);
            series[i].push((x, v));
        }
    }
    if lo > hi {
        (lo, hi) = (0.1, 100.0);
    }
    // Start the log axis at a power of ten so the lower part always carries a label.
    let (lo, hi) = (10f64.powf((lo / 1.2).log10().floor()), hi * 1.5);
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!("Latency quantiles of ok operations ({} s buckets)", tick(w)),
            (FONT, 22),
        )
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(76)
        .build_cartesian_2d(0f64..xmax, (lo..hi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms, log scale)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(e)?;
    chart.draw_series(fault_rects(run, lo, hi)).map_err(e)?;
    for (i, (_, _, c)) in qs.iter().enumerate() {
        let c = rgb(*c);
        // Break the line where buckets are empty (no ok op completed): a gap is information.
        let mut start = 0;
        for j in 1..=series[i].len() {
            let gap = j == series[i].len() || series[i][j].0 - series[i][j - 1].0 > 1.5 * w;
            if gap {
                chart
                    .draw_series(LineSeries::new(
                        series[i][start..j].iter().copied(),
                        c.stroke_width(2),
                    ))
                    .map_err(e)?;
                start = j;
            }
        }
        if series[i].len() <= 150 {
            chart
                .draw_series(series[i].iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(e)?;
        }
    }
    let items = qs
        .iter()
        .map(|(name, _, c)| (Swatch::Line(*c, 0), (*name).to_owned()))
        .collect();
    draw_legend(
        &right,
        &[("quantile", items), ("faults", fault_legend(run))],
    )
    .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// `rate.png`: completed operations per second, by operation name (colour) and outcome
/// (ok solid, fail dashed, info thin dashed).
pub fn rate(run: &Run, path: &Path) -> Result<(), ReportError> {
    let root = frame(path)?;
    let (left, right) = root.split_horizontally(WIDTH - LEGEND_W);
    let e = |e| err(path, e);
    let xmax = x_max(run);
    let w = bucket_width(xmax);
    let n = (xmax / w).ceil() as usize + 1;
    // counts[f][outcome][bucket]
    let mut counts = vec![vec![vec![0u32; n]; 3]; run.fs.len()];
    for op in &run.ops {
        if let Some(c) = op.complete {
            let b = ((c as f64 / NS_PER_S) / w) as usize;
            counts[op.f][op.outcome as usize][b.min(n - 1)] += 1;
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
    let mut chart = ChartBuilder::on(&left)
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
    for (f, per_f) in counts.iter().enumerate() {
        let c = rgb(style::f_colour(f));
        for o in Outcome::ALL {
            let per_o = &per_f[o as usize];
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
                Swatch::Line(style::f_colour(f), o as u8),
                format!("{} {}", run.fs[f], o.name()),
            ));
        }
    }
    draw_legend(
        &right,
        &[("operation", items), ("faults", fault_legend(run))],
    )
    .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}
