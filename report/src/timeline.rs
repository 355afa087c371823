//! `timeline.html`: every operation as a bar on its process's row over time (Jepsen's timeline),
//! drawn on a canvas from compact JSON embedded in the page, under the cluster-state strip.
//!
//! Jepsen emits one DOM element per operation, which browsers cannot lay out beyond a few
//! thousand ops. Here the data is a flat integer array (7 numbers per op) plus one short label
//! per op, and the page draws only what is visible: ops are sorted by start time, so the
//! visible window is found by binary search (`maxDur` bounds how far back a bar can start),
//! and only the rows in the scrolled viewport are painted. 100,000 ops stay interactive.
//!
//! Above the rows, pinned while scrolling and zooming with them: one lane per fault kind
//! (labelled with the nodes it hit), one row per node (killed, paused, cut off, clock skewed,
//! leading), the periods without a quorum, and a red marker per key that cannot be
//! linearized, at its culprit's invoke; clicking a marker opens that key's counterexample.
//!
//! An `info` op's bar is lighter and ends where its client gave up, with an arrow: it may take
//! effect at any time after its invoke; the tooltip says exactly that, as the counterexample
//! page does (an op that never returned runs to the end of the test).

use std::collections::BTreeMap;

use checkers::cluster_state::Liveness;
use checkers::history::{Operation, Outcome};
use checkers::layout;
use serde_json::{json, Value};

use crate::html::{clip, esc, page, script_json, value_text};
use crate::run::Run;
use crate::style;

/// A short label for an op: `write [3] 17`, `read [3] 5`, `cas [3] [1,2] info (timeout)`.
pub fn op_label(op: &Operation) -> String {
    let key = op
        .key
        .as_deref()
        .map(|k| format!("[{k}] "))
        .unwrap_or_default();
    let val = match (&op.input, &op.output) {
        (Value::Null, Some(r)) => value_text(r),
        (v, _) if !v.is_null() => value_text(v),
        (_, Some(r)) => value_text(r),
        _ => String::new(),
    };
    let mut s = format!("{} {key}{}", op.f, clip(&val, 24));
    if op.outcome() != Outcome::Ok {
        s.push(' ');
        s.push_str(op.outcome().name());
        if let Some(e) = &op.error {
            s.push_str(&format!(" ({})", clip(e, 24)));
        }
    }
    s
}

/// The anchor of a key's section on the counterexample page.
pub fn key_anchor(key: Option<&str>) -> String {
    match key {
        Some(k) => {
            let safe: String = k
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("key-{safe}")
        }
        None => "key-all".into(),
    }
}

/// The cluster strip as compact JSON for the page scripts (timeline and index use it).
pub fn strip_json(run: &Run) -> Value {
    let us = |ns: u64| (ns / 1000) as i64;
    let end = run.end_time();
    let mut lanes: Vec<(String, Vec<Value>)> = Vec::new();
    for f in run.observed.faults.iter().filter(|f| f.failed.is_none()) {
        let bar = json!([
            us(f.start),
            us(f.stop.unwrap_or(end)),
            clip(&f.describe(), 60)
        ]);
        match lanes.iter_mut().find(|(k, _)| *k == f.kind) {
            Some((_, v)) => v.push(bar),
            None => lanes.push((f.kind.clone(), vec![bar])),
        }
    }
    let lanes: Vec<Value> = lanes
        .into_iter()
        .map(|(k, bars)| json!([k.clone(), style::hex(style::fault(&k)), bars]))
        .collect();
    let nodes: Vec<Value> = run
        .observed
        .cluster
        .rows
        .iter()
        .map(|r| {
            let spans: Vec<Value> = r
                .spans
                .iter()
                .map(|s| {
                    let n = run.observed.cluster.nodes.len();
                    let minority = n - s.cut_off_from.len() < n / 2 + 1;
                    let state = match s.liveness {
                        Liveness::Absent => 5,
                        Liveness::Killed => 2,
                        Liveness::Paused => 1,
                        Liveness::Up if !s.cut_off_from.is_empty() && minority => 3,
                        Liveness::Up if !s.cut_off_from.is_empty() => 4,
                        Liveness::Up => 0,
                    };
                    let leads = s
                        .status
                        .as_ref()
                        .is_some_and(|st| st.role == checkers::cluster_state::Role::Leader);
                    let mut words = vec![match s.liveness {
                        Liveness::Absent => "not a member".to_string(),
                        Liveness::Killed => "killed".to_string(),
                        Liveness::Paused => "paused".to_string(),
                        Liveness::Up => "up".to_string(),
                    }];
                    if !s.cut_off_from.is_empty() {
                        words.push(format!("cut off from {}", s.cut_off_from.join(" ")));
                    }
                    if s.clock_ms != 0 {
                        words.push(format!("clock {:+} ms", s.clock_ms));
                    }
                    if s.delay_ms != 0 {
                        words.push(format!("links +{} ms", s.delay_ms));
                    }
                    match (&s.status, s.answered) {
                        (Some(st), _) => words.push(format!(
                            "{} (term {}{})",
                            st.role.name(),
                            st.term,
                            st.leader
                                .as_deref()
                                .map(|l| format!(", leader {l}"))
                                .unwrap_or_default()
                        )),
                        (None, Some(false)) => words.push("did not answer".into()),
                        _ => {}
                    }
                    json!([
                        us(s.start),
                        us(s.end),
                        state,
                        leads,
                        s.clock_ms != 0,
                        words.join(", ")
                    ])
                })
                .collect();
            json!([r.node, spans])
        })
        .collect();
    let noq: Vec<Value> = run
        .observed
        .cluster
        .without_quorum
        .iter()
        .map(|s| json!([us(s.start), us(s.end)]))
        .collect();
    let marks: Vec<Value> = run
        .analysis
        .iter()
        .flat_map(|a| &a.counterexamples)
        .filter_map(|k| {
            let c = k.culprit()?;
            Some(json!([
                us(c.call),
                k.key.clone().unwrap_or_else(|| "(all)".into()),
                format!(
                    "{}#{}",
                    layout::COUNTEREXAMPLE,
                    key_anchor(k.key.as_deref())
                )
            ]))
        })
        .collect();
    json!({"lanes": lanes, "nodes": nodes, "noq": noq, "marks": marks})
}

/// Renders `timeline.html`.
pub fn render(run: &Run, title: &str) -> String {
    let ops = &run.observed.ops;
    // Lanes: a worker that got `info` continues under a fresh process id, so a run has many
    // short-lived processes. Like Jepsen's per-thread columns, pack processes whose lifetimes
    // do not overlap into one lane (greedy interval partitioning, optimal in lane count).
    let pid = |op: &Operation| match op.process {
        checkers::history::Process::Client(p) => p,
        checkers::history::Process::Nemesis => u64::MAX,
    };
    let mut life: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for op in ops {
        // An info op occupies its lane until its client gave up (it may still take effect
        // later; the bar's arrow and tooltip say so), so lanes pack as the workers did.
        let end = op.end.unwrap_or(run.end_time());
        let e = life.entry(pid(op)).or_insert((op.call, end));
        e.0 = e.0.min(op.call);
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
    let mut nodes: Vec<String> = run.observed.cluster.nodes.clone();
    let mut flat: Vec<i64> = Vec::with_capacity(ops.len() * 7);
    let mut labels: Vec<String> = Vec::with_capacity(ops.len());
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].call, ops[i].invoke_index));
    for &i in &order {
        let op = &ops[i];
        flat.push(row_of[&pid(op)] as i64);
        flat.push(us(op.call));
        flat.push(op.end.map(us).unwrap_or(-1));
        flat.push(run.f_index(&op.f) as i64);
        flat.push(match op.outcome() {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
        });
        flat.push(pid(op) as i64);
        flat.push(match &op.node {
            Some(n) => match nodes.iter().position(|m| m == n) {
                Some(i) => i as i64,
                None => {
                    nodes.push(n.clone());
                    nodes.len() as i64 - 1
                }
            },
            None => -1,
        });
        labels.push(op_label(op));
    }
    let data = json!({
        "end": end,
        "procs": procs,
        "fs": run.fs,
        "ops": flat,
        "labels": labels,
        "nodes": nodes,
        "strip": strip_json(run),
        "colours": [style::hex(style::OK), style::hex(style::FAIL), style::hex(style::INFO)],
    });
    let body = format!(
        "<h1>Timeline — {title}</h1>\
         <p class=\"muted\">{n} operations by {p} processes, packed into {lanes} lanes (a process \
         that got an unknown result is replaced by a fresh one in the same lane). Scroll the wheel to zoom around the \
         cursor, drag to pan, hover a bar for details. Bars: invoke → completion; an operation \
         whose outcome is unknown (info) is drawn lighter up to where its client gave up, with an \
         arrow: it may still take effect at any later time. Above the rows: the fault \
         lanes, the nodes, and a red marker per key that cannot be linearized (click it).</p>\
         <div id=\"tl-legend\" class=\"legend\">\
         <span><span class=\"swatch\" style=\"background:{ok}\"></span>ok</span>\
         <span><span class=\"swatch\" style=\"background:{fail}\"></span>fail</span>\
         <span><span class=\"swatch\" style=\"background:{info}\"></span>info (unknown)</span>\
         <span><span class=\"swatch\" style=\"background:#c0392b\"></span>node killed</span>\
         <span><span class=\"swatch\" style=\"background:#2a9d8f\"></span>node paused</span>\
         <span><span class=\"swatch\" style=\"background:#8e6bbf;opacity:.75\"></span>node in a minority</span>\
         <span><span class=\"swatch\" style=\"background:#8e6bbf;opacity:.2\"></span>node misses links</span>\
         <span><span class=\"swatch\" style=\"background:#1d2330\"></span>node leads</span>\
         <span><span class=\"swatch\" style=\"background:#e15759\"></span>no quorum</span>\
         <button id=\"tl-reset\">reset zoom</button> <span id=\"tl-range\" class=\"muted\"></span></div>\
         <div id=\"tl-scroll\"><div id=\"tl-spacer\"><canvas id=\"tl\"></canvas></div></div>\
         <div id=\"tl-tip\"></div>\
         <p><a href=\"{index}\">← run overview</a></p>\
         <style>{css}</style>\
         <script id=\"tl-data\" type=\"application/json\">{data}</script>\
         <script>{js}</script>",
        title = esc(title),
        n = ops.len(),
        p = n_procs,
        lanes = procs.len(),
        ok = style::hex(style::OK),
        fail = style::hex(style::FAIL),
        info = style::hex(style::INFO),
        index = layout::INDEX,
        css = TIMELINE_CSS,
        data = script_json(&data),
        js = TIMELINE_JS,
    );
    page(&format!("timeline — {title}"), &body)
}

const TIMELINE_CSS: &str = r#"
#tl-scroll { overflow-y:auto; overflow-x:hidden; border:1px solid var(--line); background:#fff; position:relative; }
#tl { position:sticky; top:0; display:block; cursor:grab; }
#tl-tip { position:fixed; pointer-events:none; background:#1d2330; color:#fff; padding:6px 9px;
          border-radius:4px; font-size:13px; display:none; white-space:pre; z-index:10; }
"#;

/// The canvas renderer. Kept as plain ES2015 without dependencies.
const TIMELINE_JS: &str = r#"
(function(){
const D = JSON.parse(document.getElementById('tl-data').textContent);
const K = 7, ops = D.ops, N = ops.length / K, ROWS = D.procs.length, S = D.strip;
const ROWH = ROWS > 400 ? 8 : 16, AXIS = 28, LANEH = 14, NODEH = S.nodes.length > 12 ? 7 : 12;
const STRIP = S.lanes.length * LANEH + S.nodes.length * NODEH + (S.noq.length ? LANEH : 0) + (S.lanes.length + S.nodes.length ? 6 : 0);
const TOP = AXIS + STRIP;
let LEFT = 64;
let maxDur = 0;
const rowOps = Array.from({length: ROWS}, () => []);
const endOf = i => ops[K*i+2] < 0 ? D.end : ops[K*i+2];
for (let i = 0; i < N; i++) {
  const s = ops[K*i+1], e = endOf(i);
  if (e - s > maxDur) maxDur = e - s;
  rowOps[ops[K*i]].push(i);
}
const scroll = document.getElementById('tl-scroll'), spacer = document.getElementById('tl-spacer');
const cv = document.getElementById('tl'), ctx = cv.getContext('2d'), tip = document.getElementById('tl-tip');
ctx.font = '11px "DejaVu Sans", Arial, sans-serif';
for (const l of D.procs) LEFT = Math.max(LEFT, ctx.measureText(l).width + 14);
for (const l of S.lanes) LEFT = Math.max(LEFT, ctx.measureText(l[0]).width + 14);
let t0 = 0, t1 = Math.max(D.end, 1), W = 0, H = 0;
function layout() {
  W = scroll.clientWidth; H = Math.min(TOP + ROWS * ROWH + 4, Math.max(300 + STRIP, window.innerHeight * 0.75));
  scroll.style.height = H + 'px';
  spacer.style.height = (TOP + ROWS * ROWH + 4) + 'px';
  const r = window.devicePixelRatio || 1;
  cv.width = W * r; cv.height = H * r; cv.style.width = W + 'px'; cv.style.height = H + 'px';
  ctx.setTransform(r, 0, 0, r, 0, 0);
  draw();
}
const xOf = t => LEFT + (t - t0) * (W - LEFT - 8) / (t1 - t0);
const tOf = x => t0 + (x - LEFT) * (t1 - t0) / (W - LEFT - 8);
function lowerBound(t) { let lo = 0, hi = N; while (lo < hi) { const m = (lo + hi) >> 1; if (ops[K*m+1] < t) lo = m + 1; else hi = m; } return lo; }
function niceStep(span, px) { const raw = span / Math.max(1, px / 110); const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p; return 10 * p; }
function fmt(us) { const s = us / 1e6; const span = (t1 - t0) / 1e6; return span < 0.01 ? s.toFixed(5) + ' s' : span < 1 ? s.toFixed(3) + ' s' : s.toFixed(span < 20 ? 2 : 1) + ' s'; }
function secs(us) { return (us / 1e6).toFixed(3) + ' s'; }
function bar(a, b, y, h, colour, alpha) { const x0 = Math.max(LEFT, xOf(a)), x1 = Math.min(W, xOf(b)); if (x1 < LEFT || x0 > W) return;
  ctx.globalAlpha = alpha; ctx.fillStyle = colour; ctx.fillRect(x0, y, Math.max(1, x1 - x0), h); ctx.globalAlpha = 1; }
function drawStrip() {
  let y = AXIS + 2;
  ctx.font = '10px "DejaVu Sans", Arial, sans-serif'; ctx.textBaseline = 'middle';
  for (const l of S.lanes) {
    ctx.fillStyle = '#333'; ctx.fillText(l[0], 6, y + LANEH / 2);
    for (const b of l[2]) { bar(b[0], b[1], y + 1, LANEH - 2, l[1], 0.8);
      const x0 = Math.max(LEFT, xOf(b[0])), x1 = Math.min(W, xOf(b[1]));
      if (x1 - x0 > 40) { ctx.save(); ctx.beginPath(); ctx.rect(x0, y, x1 - x0, LANEH); ctx.clip(); ctx.fillStyle = '#fff'; ctx.fillText(b[2], x0 + 3, y + LANEH / 2); ctx.restore(); } }
    y += LANEH;
  }
  for (const n of S.nodes) {
    if (NODEH >= 12) { ctx.fillStyle = '#333'; ctx.fillText(n[0], 6, y + NODEH / 2); }
    ctx.fillStyle = '#f4f5f7'; ctx.fillRect(LEFT, y, W - LEFT, NODEH - 1);
    for (const s of n[1]) {
      const c = [null, '#2a9d8f', '#c0392b', '#8e6bbf', '#8e6bbf', '#d9d9d9'][s[2]];
      if (c) bar(s[0], s[1], y, NODEH - 1, c, s[2] === 3 ? 0.75 : s[2] === 4 ? 0.2 : 0.9);
      if (s[3]) bar(s[0], s[1], y, 3, '#1d2330', 1);
      if (s[4]) bar(s[0], s[1], y + NODEH - 4, 3, '#e9b40b', 1);
    }
    y += NODEH;
  }
  if (S.noq.length) { ctx.fillStyle = '#333'; ctx.fillText('no quorum', 6, y + LANEH / 2);
    for (const s of S.noq) bar(s[0], s[1], y + 2, LANEH - 4, '#e15759', 0.8); y += LANEH; }
  for (const m of S.marks) { const x = xOf(m[0]); if (x < LEFT || x > W) continue;
    ctx.fillStyle = '#c0392b'; ctx.beginPath(); ctx.moveTo(x - 6, AXIS - 12); ctx.lineTo(x + 6, AXIS - 12); ctx.lineTo(x, AXIS - 1); ctx.fill();
    ctx.strokeStyle = 'rgba(192,57,43,0.5)'; ctx.beginPath(); ctx.moveTo(x, AXIS); ctx.lineTo(x, H); ctx.stroke(); }
}
function draw() {
  const top = scroll.scrollTop, r0 = Math.max(0, Math.floor(top / ROWH) - 1), r1 = Math.min(ROWS, Math.ceil((top + H) / ROWH) + 1);
  ctx.clearRect(0, 0, W, H);
  ctx.save(); ctx.beginPath(); ctx.rect(LEFT, TOP, W - LEFT, H - TOP); ctx.clip();
  for (const l of S.lanes) for (const b of l[2]) bar(b[0], b[1], TOP, H - TOP, '#9a9a9a', 0.12);
  for (let r = r0; r < r1; r++) { if (r % 2) { ctx.fillStyle = 'rgba(0,0,0,0.025)'; ctx.fillRect(LEFT, TOP + r * ROWH - top, W, ROWH); } }
  let i = lowerBound(t0 - maxDur); let drawn = 0;
  ctx.font = '11px "DejaVu Sans", Arial, sans-serif'; ctx.textBaseline = 'middle';
  for (; i < N; i++) {
    const s = ops[K*i+1]; if (s > t1) break;
    const row = ops[K*i]; if (row < r0 || row >= r1) continue;
    const e = endOf(i); if (e < t0) continue;
    const x0 = xOf(s), x1 = xOf(e), y = TOP + row * ROWH - top + 1;
    const w = Math.max(1, x1 - x0), info = ops[K*i+4] === 2;
    ctx.fillStyle = D.colours[ops[K*i+4]];
    ctx.globalAlpha = info ? 0.4 : 0.85;
    ctx.fillRect(x0, y, w, ROWH - 2);
    if (info && ops[K*i+2] >= 0) { ctx.globalAlpha = 0.8; const xe = xOf(ops[K*i+2]);
      ctx.beginPath(); ctx.moveTo(xe, y); ctx.lineTo(xe + 6, y + (ROWH - 2) / 2); ctx.lineTo(xe, y + ROWH - 2); ctx.fill(); }
    drawn++;
    if (w > 46 && ROWH >= 14) { ctx.globalAlpha = 1; ctx.fillStyle = '#fff';
      const txt = D.labels[i]; ctx.save(); ctx.beginPath(); ctx.rect(x0, y, w, ROWH - 2); ctx.clip();
      ctx.fillText(txt, Math.max(x0, LEFT) + 3, y + (ROWH - 2) / 2); ctx.restore(); }
  }
  ctx.globalAlpha = 1; ctx.restore();
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, TOP); ctx.fillRect(0, TOP, LEFT, H);
  drawStrip();
  ctx.fillStyle = '#333'; ctx.font = '11px "DejaVu Sans", Arial, sans-serif'; ctx.textBaseline = 'middle';
  const every = Math.ceil(13 / ROWH);
  for (let r = r0; r < r1; r++) { if (r % every) continue; const y = TOP + r * ROWH - top + ROWH / 2; if (y >= TOP + 4) ctx.fillText(D.procs[r], 6, y); }
  const step = niceStep(t1 - t0, W - LEFT);
  ctx.strokeStyle = '#ccc'; ctx.fillStyle = '#333'; ctx.textBaseline = 'alphabetic';
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) { const x = xOf(t);
    ctx.beginPath(); ctx.moveTo(x, AXIS - 6); ctx.lineTo(x, AXIS); ctx.stroke(); if (x < W - 40) ctx.fillText(fmt(t), x - 18, AXIS - 14); }
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
cv.addEventListener('mousedown', ev => { drag = {x: ev.clientX, a: t0, b: t1, moved: false}; cv.style.cursor = 'grabbing'; });
window.addEventListener('mouseup', ev => {
  if (drag && !drag.moved) { const rect = cv.getBoundingClientRect(), x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    if (y < AXIS + 2) for (const m of S.marks) if (Math.abs(xOf(m[0]) - x) < 8) { window.location.href = m[2]; } }
  drag = null; cv.style.cursor = 'grab'; });
function show(ev, text) { tip.textContent = text; tip.style.left = (ev.clientX + 14) + 'px'; tip.style.top = (ev.clientY + 14) + 'px'; tip.style.display = 'block'; }
window.addEventListener('mousemove', ev => {
  if (drag) { if (Math.abs(ev.clientX - drag.x) > 3) drag.moved = true; const dt = (ev.clientX - drag.x) * (drag.b - drag.a) / (W - LEFT - 8); t0 = drag.a - dt; t1 = drag.b - dt; draw(); return; }
  const rect = cv.getBoundingClientRect(), x = ev.clientX - rect.left, y = ev.clientY - rect.top;
  if (x < LEFT || x > W || y > H || y < 0) { tip.style.display = 'none'; return; }
  const t = tOf(x), slack = 3 * (t1 - t0) / (W - LEFT);
  if (y < AXIS + 2) { for (const m of S.marks) if (Math.abs(xOf(m[0]) - x) < 8) { show(ev, 'key ' + m[1] + ' cannot be linearized: its culprit began at ' + secs(m[0]) + '\nclick for the counterexample'); return; } tip.style.display = 'none'; return; }
  if (y < TOP) { let yy = AXIS + 2;
    for (const l of S.lanes) { if (y < yy + LANEH) { for (const b of l[2]) if (t >= b[0] - slack && t <= b[1] + slack) { show(ev, b[2] + '\n' + secs(b[0]) + ' – ' + secs(b[1])); return; } tip.style.display = 'none'; return; } yy += LANEH; }
    for (const n of S.nodes) { if (y < yy + NODEH) { for (const s of n[1]) if (t >= s[0] && t <= s[1]) { show(ev, n[0] + ': ' + s[5] + '\n' + secs(s[0]) + ' – ' + secs(s[1])); return; } tip.style.display = 'none'; return; } yy += NODEH; }
    tip.style.display = 'none'; return; }
  const row = Math.floor((y - TOP + scroll.scrollTop) / ROWH); const list = rowOps[row]; if (!list) { tip.style.display = 'none'; return; }
  let lo = 0, hi = list.length; while (lo < hi) { const m = (lo + hi) >> 1; if (ops[K*list[m]+1] <= t + slack) lo = m + 1; else hi = m; }
  for (let j = lo - 1; j >= 0 && j >= lo - 3; j--) { const i = list[j], s = ops[K*i+1], e = endOf(i);
    if (t >= s - slack && t <= e + slack) {
      const o = ops[K*i+4], c = ops[K*i+2], node = ops[K*i+6] >= 0 ? ' via ' + D.nodes[ops[K*i+6]] : '';
      let when;
      if (o === 2) when = c < 0 ? '\nnever returned: outcome unknown, may take effect at any later time' :
        '\nclient gave up at ' + secs(c) + ': outcome unknown, may take effect at any later time';
      else when = '\n' + (o === 0 ? 'completed ok' : 'failed (did not take effect)') + ' at ' + secs(c) + ' (' + ((c - s) / 1e3).toFixed(2) + ' ms)';
      show(ev, D.labels[i] + '\nprocess ' + ops[K*i+5] + node + '\ninvoked at ' + secs(s) + when); return; } }
  tip.style.display = 'none';
});
scroll.addEventListener('scroll', draw);
document.getElementById('tl-reset').addEventListener('click', () => { t0 = 0; t1 = Math.max(D.end, 1); draw(); });
window.addEventListener('resize', layout);
layout();
})();
"#;
