//! Minimising a failing case: fewer faults, shorter fault windows, a shorter run, fewer
//! ops and fewer clients, for as long as it still fails.
//!
//! The faults are first pinned down: the generated schedule is replaced by the steps as
//! they were applied (leaders resolved), which replays the run exactly. Then each pass
//! tries, in order, removing faults (halves of them, then quarters, down to single faults,
//! as in delta debugging), ending the main phase earlier, capping the number of ops, using
//! fewer clients, and ending each fault window earlier; a candidate is kept when the run
//! still fails. Candidates of one step are run in parallel and the first failing one (in
//! candidate order) is taken, so shrinking is deterministic. Passes repeat until nothing
//! shrinks or the budget is spent.
//!
//! Every change is a new run from scratch, not an edit of a recorded history: what the
//! shrunk case shows is what the system does under the smaller case.

use crate::config::{Case, Faults};
use crate::{Judged, Simulator};
use nemesis::{Step, StepAction};
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// How big a case is, for "before / after".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Faults started.
    pub faults: usize,
    /// Client workers.
    pub clients: usize,
    /// Client ops invoked (final reads included).
    pub ops: usize,
    /// Main phase, ms.
    pub time_ms: u64,
}

impl Size {
    /// The size of a case and its run.
    pub fn of(case: &Case, judged: &Judged) -> Size {
        let faults = match &case.faults {
            Faults::Script(s) => s
                .iter()
                .filter(|s| matches!(s.action, StepAction::Start(_)))
                .count(),
            Faults::Generated => judged
                .outcome
                .applied
                .iter()
                .filter(|s| matches!(s.action, StepAction::Start(_)))
                .count(),
        };
        let ops = judged
            .outcome
            .history
            .iter()
            .filter(|e| {
                e.kind == checkers::history::EventType::Invoke
                    && e.process != checkers::history::Process::Nemesis
            })
            .count();
        Size {
            faults,
            clients: case.config.concurrency,
            ops,
            time_ms: case.config.time_limit_ms,
        }
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} fault{}, {} client{}, {} ops, {:.3} s",
            self.faults,
            if self.faults == 1 { "" } else { "s" },
            self.clients,
            if self.clients == 1 { "" } else { "s" },
            self.ops,
            self.time_ms as f64 / 1000.0
        )
    }
}

/// Limits of one shrink.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Most candidate runs.
    pub max_runs: usize,
    /// Most wall time.
    pub max_time: Duration,
    /// Checker budget per run.
    pub check_timeout: Duration,
}

/// The result of shrinking.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest failing case found (its faults are always a script).
    pub case: Case,
    /// Its run and verdict.
    pub judged: Judged,
    /// The size before shrinking.
    pub before: Size,
    /// The size after.
    pub after: Size,
    /// Candidate runs made.
    pub runs: usize,
    /// False when the applied steps did not reproduce the failure (then nothing was shrunk).
    pub reproduced: bool,
}

struct Shrinker<'a> {
    sim: &'a Simulator,
    budget: Budget,
    start: Instant,
    runs: usize,
}

impl Shrinker<'_> {
    fn exhausted(&self) -> bool {
        self.runs >= self.budget.max_runs || self.start.elapsed() >= self.budget.max_time
    }

    /// The first candidate (in order) that still fails.
    fn first_failing(&mut self, candidates: Vec<Case>) -> Option<(Case, Judged)> {
        let room = self.budget.max_runs.saturating_sub(self.runs);
        let candidates: Vec<Case> = candidates.into_iter().take(room).collect();
        if candidates.is_empty() || self.exhausted() {
            return None;
        }
        self.runs += candidates.len();
        let timeout = self.budget.check_timeout;
        let sim = self.sim;
        let results: Vec<Option<Judged>> = candidates
            .par_iter()
            .map(|c| Some(sim.judge(c, timeout)).filter(Judged::failed))
            .collect();
        candidates
            .into_iter()
            .zip(results)
            .find_map(|(c, j)| j.map(|j| (c, j)))
    }
}

fn steps_of(case: &Case) -> &[Step] {
    match &case.faults {
        Faults::Script(s) => s,
        Faults::Generated => &[],
    }
}

/// Pairs each fault start with the index of its stop (if any) in `steps`.
fn fault_spans(steps: &[Step]) -> Vec<(usize, Option<usize>)> {
    let mut spans = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        if let StepAction::Start(f) = &s.action {
            let stop = steps[i + 1..]
                .iter()
                .position(|t| matches!(&t.action, StepAction::Stop(k) if *k == f.kind()))
                .map(|p| i + 1 + p);
            spans.push((i, stop));
        }
    }
    spans
}

fn with_steps(case: &Case, steps: Vec<Step>) -> Case {
    Case {
        faults: Faults::Script(steps),
        ..case.clone()
    }
}

/// Candidates with a block of `chunk` faults removed, for every block.
fn without_faults(case: &Case, chunk: usize) -> Vec<Case> {
    let steps = steps_of(case);
    let spans = fault_spans(steps);
    spans
        .chunks(chunk)
        .map(|block| {
            let drop: std::collections::BTreeSet<usize> = block
                .iter()
                .flat_map(|(s, e)| std::iter::once(*s).chain(*e))
                .collect();
            let kept = steps
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, s)| s.clone())
                .collect();
            with_steps(case, kept)
        })
        .collect()
}

/// Candidates with one fault window halved (a fault without a stop gets one halfway to the
/// end of the main phase).
fn shorter_windows(case: &Case) -> Vec<Case> {
    let steps = steps_of(case);
    let end = Duration::from_millis(case.config.time_limit_ms);
    let mut out = Vec::new();
    for (s, e) in fault_spans(steps) {
        let from = steps[s].at;
        let to = e.map_or(end, |e| steps[e].at);
        let window = to.saturating_sub(from);
        if window < Duration::from_millis(2) {
            continue;
        }
        let new_stop = from + Duration::from_millis((window.as_millis() / 2) as u64);
        let kind = match &steps[s].action {
            StepAction::Start(f) => f.kind(),
            StepAction::Stop(k) => *k,
        };
        let mut kept: Vec<Step> = steps
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != e)
            .map(|(_, st)| st.clone())
            .collect();
        kept.push(Step {
            at: new_stop,
            action: StepAction::Stop(kind),
        });
        kept.sort_by_key(|st| st.at);
        // A stop must follow its start: both at one time keep their order by kind.
        if fault_spans(&kept).len() == fault_spans(steps).len() && valid(&kept) {
            out.push(with_steps(case, kept));
        }
    }
    out
}

/// Candidates with every step moved earlier by all, half or a quarter of the time before
/// the first one, and the main phase shortened by as much.
fn earlier(case: &Case) -> Vec<Case> {
    let steps = steps_of(case);
    let Some(first) = steps.first().map(|s| s.at) else {
        return Vec::new();
    };
    let first_ms = first.as_millis() as u64;
    [first_ms, first_ms / 2, first_ms / 4]
        .into_iter()
        .filter(|d| *d >= 10 && *d < case.config.time_limit_ms)
        .map(|d| {
            let shift = Duration::from_millis(d);
            let moved = steps
                .iter()
                .map(|s| Step {
                    at: s.at - shift,
                    action: s.action.clone(),
                })
                .collect();
            let mut c = with_steps(case, moved);
            c.config.time_limit_ms -= d;
            c
        })
        .collect()
}

/// The case with a main phase of `ms`, without the steps that would come after it.
fn shorter_run(case: &Case, ms: u64) -> Case {
    let end = Duration::from_millis(ms);
    let steps = steps_of(case)
        .iter()
        .filter(|s| s.at < end)
        .cloned()
        .collect();
    let mut c = with_steps(case, steps);
    c.config.time_limit_ms = ms;
    c
}

/// Every stop follows a start of its kind, and no kind starts twice.
fn valid(steps: &[Step]) -> bool {
    let mut active = std::collections::BTreeSet::new();
    steps.iter().all(|s| match &s.action {
        StepAction::Start(f) => active.insert(f.kind()),
        StepAction::Stop(k) => active.remove(k),
    })
}

/// Shrinks a failing case of `sim`. `first` is its failing run.
pub fn shrink(sim: &Simulator, failing: &Case, first: &Judged, budget: Budget) -> Shrunk {
    let before = Size::of(failing, first);
    let mut sh = Shrinker {
        sim,
        budget,
        start: Instant::now(),
        runs: 0,
    };
    let pinned = Case {
        faults: Faults::Script(first.outcome.applied.clone()),
        ..failing.clone()
    };
    let Some((mut case, mut judged)) = sh.first_failing(vec![pinned]) else {
        return Shrunk {
            case: failing.clone(),
            judged: first.clone(),
            before,
            after: before,
            runs: sh.runs,
            reproduced: false,
        };
    };
    loop {
        let size = Size::of(&case, &judged);
        // Fewer faults: halves first, then smaller blocks.
        let mut chunk = fault_spans(steps_of(&case)).len().max(1);
        while chunk >= 1 && !sh.exhausted() {
            match sh.first_failing(without_faults(&case, chunk)) {
                Some((c, j)) => (case, judged) = (c, j),
                None if chunk == 1 => break,
                None => chunk = chunk.div_ceil(2).min(chunk - 1).max(1),
            }
            let spans = fault_spans(steps_of(&case)).len();
            if spans == 0 {
                break;
            }
            chunk = chunk.min(spans);
        }
        // Everything earlier: the faults shifted towards the start, the run shortened by as
        // much (the bug often needs the faults, not the minutes before them).
        while !sh.exhausted() {
            match sh.first_failing(earlier(&case)) {
                Some((c, j)) => (case, judged) = (c, j),
                None => break,
            }
        }
        // A shorter main phase: just after the last event that matters, by halving.
        let mut lo = 1u64;
        while !sh.exhausted() {
            let hi = case.config.time_limit_ms;
            if hi <= lo + 10 {
                break;
            }
            let mid = lo + (hi - lo) / 2;
            match sh.first_failing(vec![shorter_run(&case, mid)]) {
                Some((c, j)) => (case, judged) = (c, j),
                None => lo = mid,
            }
        }
        // Fewer ops.
        let mut lo = 1u64;
        let ops = Size::of(&case, &judged).ops as u64;
        let mut hi = case.config.max_ops.unwrap_or(ops).min(ops);
        while lo < hi && !sh.exhausted() {
            let mid = lo + (hi - lo) / 2;
            let mut c = case.clone();
            c.config.max_ops = Some(mid);
            match sh.first_failing(vec![c]) {
                Some((c, j)) => {
                    (case, judged) = (c, j);
                    hi = mid;
                }
                None => lo = mid + 1,
            }
        }
        // Fewer clients: the fewest that still fail.
        let clients: Vec<Case> = (1..case.config.concurrency)
            .map(|n| {
                let mut c = case.clone();
                c.config.concurrency = n;
                c
            })
            .collect();
        if let Some((c, j)) = sh.first_failing(clients) {
            (case, judged) = (c, j);
        }
        // Shorter fault windows.
        while !sh.exhausted() {
            match sh.first_failing(shorter_windows(&case)) {
                Some((c, j)) => (case, judged) = (c, j),
                None => break,
            }
        }
        if Size::of(&case, &judged) == size || sh.exhausted() {
            break;
        }
    }
    Shrunk {
        after: Size::of(&case, &judged),
        case,
        judged,
        before,
        runs: sh.runs,
        reproduced: true,
    }
}
