//! `timeline.html`: every operation as a bar on its process's row over time (Jepsen's timeline),
//! drawn on a canvas from compact JSON embedded in the page.
//!
//! Jepsen emits one DOM element per operation, which browsers cannot lay out beyond a few
//! thousand ops. Here the data is a flat integer array (5 numbers per op) plus one short label
//! per op, and the page draws only what is visible: ops are sorted by start time, so the
//! visible window is found by binary search (`maxDur` bounds how far back a bar can start),
//! and only the rows in the scrolled viewport are painted. 100,000 ops stay interactive.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::html::{clip, esc, page, script_json, value_text};
use crate::run::{Op, Outcome, Run};
use crate::style;

/// A short label for an op: `w 3 ← 17`, `r 3 → 5`, `cas 3 [1,2]`.
pub fn op_label(run: &Run, op: &Op) -> String {
    let f = &run.fs[op.f];
    let key = op
        .key
        .as_deref()
        .map(|k| format!("[{k}] "))
        .unwrap_or_default();
    let val = match (&op.value, &op.result, op.outcome) {
        (Value::Null, r, Outcome::Ok) => value_text(r),
        (v, _, _) if !v.is_null() => value_text(v),
        (_, r, _) if !r.is_null() => value_text(r),
        _ => String::new(),
    };
    let mut s = format!("{f} {key}{}", clip(&val, 24));
    if op.outcome != Outcome::Ok {
        s.push(' ');
        s.push_str(op.outcome.name());
        if let Some(e) = &op.error {
            s.push_str(&format!(" ({})", clip(e, 24)));
        }
    }
    s
}

/// Renders `timeline.html`.
pub fn render(run: &Run, title: &str) -> String {
    // Lanes: a worker that got `info` continues under a fresh process id, so a run has many
    // short-lived processes. Like Jepsen's per-thread columns, pack processes whose lifetimes
    // do not overlap into one lane (greedy interval partitioning, optimal in lane count).
    let mut life: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for op in &run.ops {
        let end = op.complete.unwrap_or(run.end_time());
        let e = life.entry(op.process).or_insert((op.invoke, end));
        e.0 = e.0.min(op.invoke);
        e.1 = e.1.max(end);
    }
    let mut by_start: Vec<(u64, u64, u64)> = life.iter().map(|(p, (a, b))| (*a, *b, *p)).collect();
    by_start.sort_unstable();
    let mut lane_free: Vec<u64> = Vec::new();
    let mut lane_procs: Vec<Vec<u64>> = Vec::new();
    let mut row_of: BTreeMap<u64, usize> = BTreeMap::new();
    for (start, end, p) in by_start {
        let lane = match lane_free.iter().position(|&f| f < start) {
            Some(l) => l,
            None => {
                lane_free.push(0);
                lane_procs.push(Vec::new());
                lane_free.len() - 1
            }
        };
        lane_free[lane] = end;
        lane_procs[lane].push(p);
        row_of.insert(p, lane);
    }
    let procs: Vec<String> = lane_procs
        .iter()
        .map(|ps| match ps.as_slice() {
            [one] => format!("p{one}"),
            [first, .., last] => format!("p{first}…p{last}"),
            [] => String::new(),
        })
        .collect();
    let n_procs = life.len();
    let us = |ns: u64| (ns / 1000) as i64;
    let end = us(run.end_time());
    let mut flat: Vec<i64> = Vec::with_capacity(run.ops.len() * 6);
    let mut labels: Vec<String> = Vec::with_capacity(run.ops.len());
    for op in &run.ops {
        flat.push(row_of[&op.process] as i64);
        flat.push(us(op.invoke));
        flat.push(op.complete.map(us).unwrap_or(-1));
        flat.push(op.f as i64);
        flat.push(op.outcome as i64);
        flat.push(op.process as i64);
        labels.push(op_label(run, op));
    }
    let faults: Vec<Value> = run
        .faults
        .iter()
        .map(|w| {
            json!([
                w.kind,
                us(w.start),
                us(w.stop.unwrap_or(run.end_time())),
                clip(&value_text(&w.detail), 120)
            ])
        })
        .collect();
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    for w in &run.faults {
        kinds.insert(w.kind.clone(), style::hex(style::fault(&w.kind)));
    }
    let data = json!({
        "end": end,
        "procs": procs,
        "fs": run.fs,
        "ops": flat,
        "labels": labels,
        "faults": faults,
        "kinds": kinds,
        "colours": [style::hex(style::OK), style::hex(style::FAIL), style::hex(style::INFO)],
    });
    let legend: String = kinds
        .iter()
        .map(|(k, c)| {
            format!(
                "<span><span class=\"swatch\" style=\"background:{c};opacity:.45\"></span>{}</span>",
                esc(k)
            )
        })
        .collect();
    let body = format!(
        "<h1>Timeline — {title}</h1>\
         <p class=\"muted\">{n} operations by {p} processes, packed into {lanes} lanes (a process \
         that got an unknown result is replaced by a fresh one in the same lane). Scroll the wheel to zoom around the \
         cursor, drag to pan, hover a bar for details. Bars: invoke → completion; an unfinished \
         bar runs to the end of the test.</p>\
         <div id=\"tl-legend\" class=\"legend\">\
         <span><span class=\"swatch\" style=\"background:{ok}\"></span>ok</span>\
         <span><span class=\"swatch\" style=\"background:{fail}\"></span>fail</span>\
         <span><span class=\"swatch\" style=\"background:{info}\"></span>info</span>{legend}\
         <button id=\"tl-reset\">reset zoom</button> <span id=\"tl-range\" class=\"muted\"></span></div>\
         <div id=\"tl-scroll\"><div id=\"tl-spacer\"><canvas id=\"tl\"></canvas></div></div>\
         <div id=\"tl-tip\"></div>\
         <p><a href=\"index.html\">← run overview</a></p>\
         <style>{css}</style>\
         <script id=\"tl-data\" type=\"application/json\">{data}</script>\
         <script>{js}</script>",
        title = esc(title),
        n = run.ops.len(),
        p = n_procs,
        lanes = procs.len(),
        ok = style::hex(style::OK),
        fail = style::hex(style::FAIL),
        info = style::hex(style::INFO),
        legend = legend,
        css = TIMELINE_CSS,
        data = script_json(&data),
        js = TIMELINE_JS,
    );
    page(&format!("timeline — {title}"), &body)
}

const TIMELINE_CSS: &str = r#"
.legend { display:flex; gap:16px; align-items:center; flex-wrap:wrap; margin:8px 0; }
#tl-scroll { overflow-y:auto; overflow-x:hidden; border:1px solid var(--line); background:#fff; position:relative; }
#tl { position:sticky; top:0; display:block; cursor:grab; }
#tl-tip { position:fixed; pointer-events:none; background:#1d2330; color:#fff; padding:6px 9px;
          border-radius:4px; font-size:13px; display:none; white-space:pre; z-index:10; }
"#;

/// The canvas renderer. Kept as plain ES2015 without dependencies.
const TIMELINE_JS: &str = r#"
(function(){
const D = JSON.parse(document.getElementById('tl-data').textContent);
const ops = D.ops, N = ops.length / 6, ROWS = D.procs.length;
const ROWH = ROWS > 400 ? 8 : 16, AXIS = 28;
let LEFT = 64;
let maxDur = 0;
const rowOps = Array.from({length: ROWS}, () => []);
for (let i = 0; i < N; i++) {
  const s = ops[6*i+1], e = ops[6*i+2] < 0 ? D.end : ops[6*i+2];
  if (e - s > maxDur) maxDur = e - s;
  rowOps[ops[6*i]].push(i);
}
const scroll = document.getElementById('tl-scroll'), spacer = document.getElementById('tl-spacer');
const cv = document.getElementById('tl'), ctx = cv.getContext('2d'), tip = document.getElementById('tl-tip');
ctx.font = '11px "DejaVu Sans", Arial, sans-serif';
for (const l of D.procs) LEFT = Math.max(LEFT, ctx.measureText(l).width + 14);
let t0 = 0, t1 = Math.max(D.end, 1), W = 0, H = 0;
function layout() {
  W = scroll.clientWidth; H = Math.min(AXIS + ROWS * ROWH + 4, Math.max(300, window.innerHeight * 0.75));
  scroll.style.height = H + 'px';
  spacer.style.height = (AXIS + ROWS * ROWH + 4) + 'px';
  const r = window.devicePixelRatio || 1;
  cv.width = W * r; cv.height = H * r; cv.style.width = W + 'px'; cv.style.height = H + 'px';
  ctx.setTransform(r, 0, 0, r, 0, 0);
  draw();
}
const xOf = t => LEFT + (t - t0) * (W - LEFT - 8) / (t1 - t0);
const tOf = x => t0 + (x - LEFT) * (t1 - t0) / (W - LEFT - 8);
function lowerBound(t) { let lo = 0, hi = N; while (lo < hi) { const m = (lo + hi) >> 1; if (ops[6*m+1] < t) lo = m + 1; else hi = m; } return lo; }
function niceStep(span, px) { const raw = span / Math.max(1, px / 110); const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p; return 10 * p; }
function fmt(us) { const s = us / 1e6; const span = (t1 - t0) / 1e6; return span < 0.01 ? s.toFixed(5) + ' s' : span < 1 ? s.toFixed(3) + ' s' : s.toFixed(span < 20 ? 2 : 1) + ' s'; }
function draw() {
  const top = scroll.scrollTop, r0 = Math.max(0, Math.floor(top / ROWH) - 1), r1 = Math.min(ROWS, Math.ceil((top + H) / ROWH) + 1);
  ctx.clearRect(0, 0, W, H);
  ctx.save(); ctx.beginPath(); ctx.rect(LEFT, AXIS, W - LEFT, H - AXIS); ctx.clip();
  for (const f of D.faults) {
    const a = Math.max(LEFT, xOf(f[1])), b = Math.min(W, xOf(f[2]));
    if (b < LEFT || a > W) continue;
    ctx.globalAlpha = 0.16; ctx.fillStyle = D.kinds[f[0]]; ctx.fillRect(a, AXIS, Math.max(1, b - a), H - AXIS);
  }
  ctx.globalAlpha = 1;
  for (let r = r0; r < r1; r++) { if (r % 2) { ctx.fillStyle = 'rgba(0,0,0,0.025)'; ctx.fillRect(LEFT, AXIS + r * ROWH - top, W, ROWH); } }
  let i = lowerBound(t0 - maxDur); let drawn = 0;
  ctx.font = '11px "DejaVu Sans", Arial, sans-serif'; ctx.textBaseline = 'middle';
  for (; i < N; i++) {
    const s = ops[6*i+1]; if (s > t1) break;
    const row = ops[6*i]; if (row < r0 || row >= r1) continue;
    const e = ops[6*i+2] < 0 ? D.end : ops[6*i+2]; if (e < t0) continue;
    const x0 = xOf(s), x1 = xOf(e), y = AXIS + row * ROWH - top + 1;
    const w = Math.max(1, x1 - x0);
    ctx.fillStyle = D.colours[ops[6*i+4]];
    ctx.globalAlpha = ops[6*i+2] < 0 ? 0.45 : 0.85;
    ctx.fillRect(x0, y, w, ROWH - 2);
    drawn++;
    if (w > 46 && ROWH >= 14) { ctx.globalAlpha = 1; ctx.fillStyle = '#fff';
      const txt = D.labels[i]; ctx.save(); ctx.beginPath(); ctx.rect(x0, y, w, ROWH - 2); ctx.clip();
      ctx.fillText(txt, Math.max(x0, LEFT) + 3, y + (ROWH - 2) / 2); ctx.restore(); }
  }
  ctx.globalAlpha = 1; ctx.restore();
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, AXIS); ctx.fillRect(0, AXIS, LEFT, H);
  ctx.fillStyle = '#333'; ctx.font = '11px "DejaVu Sans", Arial, sans-serif'; ctx.textBaseline = 'middle';
  const every = Math.ceil(13 / ROWH);
  for (let r = r0; r < r1; r++) { if (r % every) continue; const y = AXIS + r * ROWH - top + ROWH / 2; if (y >= AXIS + 4) ctx.fillText(D.procs[r], 6, y); }
  const step = niceStep(t1 - t0, W - LEFT);
  ctx.strokeStyle = '#ccc'; ctx.fillStyle = '#333'; ctx.textBaseline = 'alphabetic';
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) { const x = xOf(t);
    ctx.beginPath(); ctx.moveTo(x, AXIS - 6); ctx.lineTo(x, AXIS); ctx.stroke(); if (x < W - 40) ctx.fillText(fmt(t), x - 18, AXIS - 10); }
  ctx.strokeStyle = '#999'; ctx.beginPath(); ctx.moveTo(LEFT, AXIS); ctx.lineTo(W, AXIS); ctx.stroke();
  document.getElementById('tl-range').textContent = fmt(t0) + ' – ' + fmt(t1) + ' · ' + drawn + ' bars drawn';
  cv.dataset.drawn = drawn;
}
cv.addEventListener('wheel', ev => { ev.preventDefault(); const rect = cv.getBoundingClientRect();
  if (ev.shiftKey) { scroll.scrollTop += ev.deltaY; return; }
  const t = tOf(ev.clientX - rect.left), k = Math.exp(ev.deltaY * 0.0015);
  let n0 = t - (t - t0) * k, n1 = t + (t1 - t) * k; if (n1 - n0 < 10) return;
  t0 = Math.max(-0.02 * D.end, n0); t1 = Math.min(D.end * 1.02 + 1, n1); draw(); }, {passive: false});
let drag = null;
cv.addEventListener('mousedown', ev => { drag = {x: ev.clientX, a: t0, b: t1}; cv.style.cursor = 'grabbing'; });
window.addEventListener('mouseup', () => { drag = null; cv.style.cursor = 'grab'; });
window.addEventListener('mousemove', ev => {
  if (drag) { const dt = (ev.clientX - drag.x) * (drag.b - drag.a) / (W - LEFT - 8); t0 = drag.a - dt; t1 = drag.b - dt; draw(); return; }
  const rect = cv.getBoundingClientRect(), x = ev.clientX - rect.left, y = ev.clientY - rect.top;
  if (x < LEFT || y < AXIS || x > W || y > H) { tip.style.display = 'none'; return; }
  const row = Math.floor((y - AXIS + scroll.scrollTop) / ROWH); const list = rowOps[row]; if (!list) { tip.style.display = 'none'; return; }
  const t = tOf(x), slack = 3 * (t1 - t0) / (W - LEFT);
  let lo = 0, hi = list.length; while (lo < hi) { const m = (lo + hi) >> 1; if (ops[6*list[m]+1] <= t + slack) lo = m + 1; else hi = m; }
  for (let j = lo - 1; j >= 0 && j >= lo - 3; j--) { const i = list[j], s = ops[6*i+1], e = ops[6*i+2] < 0 ? D.end : ops[6*i+2];
    if (t >= s - slack && t <= e + slack) {
      tip.textContent = D.labels[i] + '\nprocess ' + ops[6*i+5] + '\ninvoke ' + (s / 1e6).toFixed(4) + ' s' +
        (ops[6*i+2] < 0 ? '\nnever completed' : '\ncomplete ' + (e / 1e6).toFixed(4) + ' s (' + ((e - s) / 1e3).toFixed(2) + ' ms)');
      tip.style.left = (ev.clientX + 14) + 'px'; tip.style.top = (ev.clientY + 14) + 'px'; tip.style.display = 'block'; return; } }
  tip.style.display = 'none';
});
scroll.addEventListener('scroll', draw);
document.getElementById('tl-reset').addEventListener('click', () => { t0 = 0; t1 = Math.max(D.end, 1); draw(); });
window.addEventListener('resize', layout);
layout();
})();
"#;
