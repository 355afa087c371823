//! The replay file: a case as text a person can read and edit, and `faultline sim --replay`
//! runs exactly.
//!
//! ```text
//! # faultline sim replay file: `faultline sim --replay FILE` runs exactly this case.
//! seed: 17
//! engine: raft
//! kvnode-args: --read unsafe-local
//! nodes: 5
//! workload: register
//! cas-percent: 20
//! clients: 10
//! rate: 100
//! max-ops: 41
//! sim-time: 3.500 s
//! op-timeout: 2000 ms
//! environment: {"net":{...},"clocks":{...},"disk":{...},"restart":{...}}
//! t=1.200 s isolate n1
//! t=1.310 s clock n1 -2000 ms
//! t=2.900 s heal partition
//! t=3.000 s reset clocks
//! ```
//!
//! One line per step, `t=<seconds> s` since the history started (millisecond precision, as
//! the schedule generator draws), then the action. Starts: `isolate N` (one node cut off),
//! `partition A.. | B..` (two sides cut apart), `partition N drops A..; ...` (any other
//! grudge), with the shape it was drawn as in brackets when it is not the obvious one;
//! `kill N..`, `pause N..`, `clock N.. +D ms` (a bump), `clock N.. strobe +D ms every P ms`,
//! `packet N.. delay D ms loss L%`. Targets may be `leader` (resolved when the step runs).
//! Stops: `heal partition`, `restart N..`, `resume N..`, `reset clocks`, `heal packets` (the
//! node names after `restart` and `resume` are for the reader: a stop ends whatever fault of
//! its kind is active). `#` starts a comment.

use crate::config::{Environment, SimConfig};
use nemesis::partition::{complete_cut, isolate};
use nemesis::{ClockOp, Fault, FaultKind, Grudge, PartitionShape, Step, StepAction, Target};
use std::collections::BTreeMap;
use std::time::Duration;
use workloads::{Mix, Workload};

/// A replay file, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The test (its nemesis kinds and interval are unused: the steps are explicit).
    pub config: SimConfig,
    /// The seed of the workload, engines and environment.
    pub seed: u64,
    /// The fault steps.
    pub steps: Vec<Step>,
}

/// A replay file that cannot be read, naming the line.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn nodes_text(nodes: &[String]) -> String {
    nodes.join(" ")
}

fn target_text(t: &Target) -> String {
    match t {
        Target::Leader => "leader".into(),
        Target::Nodes(n) => nodes_text(n),
    }
}

fn ms_text(ms: i64) -> String {
    if ms >= 0 {
        format!("+{ms}")
    } else {
        ms.to_string()
    }
}

/// The two sides of a grudge that cuts every link between them (and nothing else), plus
/// nodes listed with nothing to drop (a bridge).
fn two_sides(g: &Grudge) -> Option<(Vec<String>, Vec<String>, Vec<String>)> {
    let (first, other) = g.iter().find(|(_, s)| !s.is_empty())?;
    let b: Vec<String> = other.iter().cloned().collect();
    let a: Vec<String> = g
        .iter()
        .filter(|(_, s)| **s == *other)
        .map(|(n, _)| n.clone())
        .collect();
    debug_assert!(a.contains(first));
    let quiet: Vec<String> = g
        .iter()
        .filter(|(_, s)| s.is_empty())
        .map(|(n, _)| n.clone())
        .collect();
    let mut rebuilt = complete_cut(&a, &b);
    for q in &quiet {
        rebuilt.entry(q.clone()).or_default();
    }
    (rebuilt == *g).then_some((a, b, quiet))
}

fn shape_note(shape: PartitionShape, natural: PartitionShape) -> String {
    if shape == natural {
        String::new()
    } else {
        format!(" ({})", shape.name())
    }
}

/// The text of one step's action.
pub fn action_text(action: &StepAction, active: &BTreeMap<FaultKind, Fault>) -> String {
    match action {
        StepAction::Start(f) => start_text(f),
        StepAction::Stop(kind) => {
            let nodes = active
                .get(kind)
                .map(|f| nodes_text(f.nodes()))
                .unwrap_or_default();
            let tail = |verb: &str| {
                if nodes.is_empty() {
                    verb.to_string()
                } else {
                    format!("{verb} {nodes}")
                }
            };
            match kind {
                FaultKind::Partition => "heal partition".into(),
                FaultKind::Kill => tail("restart"),
                FaultKind::Pause => tail("resume"),
                FaultKind::Clock => "reset clocks".into(),
                FaultKind::Packet => "heal packets".into(),
                FaultKind::Member => "membership change done".into(),
            }
        }
    }
}

fn start_text(f: &Fault) -> String {
    match f {
        Fault::Partition { shape, grudge } if grudge.is_empty() => {
            // Unresolved (the leader is isolated when the step runs).
            format!(
                "isolate leader{}",
                shape_note(*shape, PartitionShape::IsolateLeader)
            )
        }
        Fault::Partition { shape, grudge } => match two_sides(grudge) {
            Some((a, _, quiet)) if a.len() == 1 && quiet.is_empty() => {
                format!(
                    "isolate {}{}",
                    a[0],
                    shape_note(*shape, PartitionShape::One)
                )
            }
            Some((_, b, quiet)) if b.len() == 1 && quiet.is_empty() => {
                format!(
                    "isolate {}{}",
                    b[0],
                    shape_note(*shape, PartitionShape::One)
                )
            }
            Some((a, b, quiet)) if quiet.is_empty() => format!(
                "partition {} | {}{}",
                nodes_text(&a),
                nodes_text(&b),
                shape_note(*shape, PartitionShape::Halves)
            ),
            Some((a, b, quiet)) => format!(
                "partition {} | {} (bridge {}){}",
                nodes_text(&a),
                nodes_text(&b),
                nodes_text(&quiet),
                shape_note(*shape, PartitionShape::Bridge)
            ),
            None => {
                let parts: Vec<String> = grudge
                    .iter()
                    .map(|(n, s)| {
                        let s: Vec<String> = s.iter().cloned().collect();
                        format!("{n} drops {}", nodes_text(&s))
                    })
                    .collect();
                format!("partition ({}): {}", shape.name(), parts.join("; "))
            }
        },
        Fault::Kill { target } => format!("kill {}", target_text(target)),
        Fault::Pause { target } => format!("pause {}", target_text(target)),
        Fault::Clock {
            target,
            op: ClockOp::Bump { delta_ms },
        } => format!("clock {} {} ms", target_text(target), ms_text(*delta_ms)),
        Fault::Clock {
            target,
            op: ClockOp::Strobe {
                delta_ms,
                period_ms,
            },
        } => format!(
            "clock {} strobe {} ms every {period_ms} ms",
            target_text(target),
            ms_text(*delta_ms)
        ),
        Fault::Packet {
            target,
            delay_ms,
            loss,
        } => format!(
            "packet {} delay {delay_ms} ms loss {}%",
            target_text(target),
            trim_float(loss * 100.0)
        ),
        Fault::Member { .. } => f.describe(),
    }
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The steps as readable lines, `t=1.200 s isolate n1`.
pub fn steps_text(steps: &[Step]) -> Vec<String> {
    let mut active = BTreeMap::new();
    steps
        .iter()
        .map(|s| {
            let line = format!(
                "t={}.{:03} s {}",
                s.at.as_secs(),
                s.at.subsec_millis(),
                action_text(&s.action, &active)
            );
            match &s.action {
                StepAction::Start(f) => {
                    active.insert(f.kind(), f.clone());
                }
                StepAction::Stop(k) => {
                    active.remove(k);
                }
            }
            line
        })
        .collect()
}

impl Script {
    /// The replay file's text; `comments` go first, each prefixed with `# `.
    pub fn render(&self, comments: &[String]) -> String {
        let c = &self.config;
        let mut out = String::from(
            "# faultline sim replay file: `faultline sim --replay FILE` runs exactly this case.\n",
        );
        for line in comments {
            out.push_str(&format!("# {line}\n"));
        }
        let env = serde_json::to_string(&c.environment).unwrap_or_default();
        let max_ops = c.max_ops.map_or("none".to_string(), |m| m.to_string());
        for (k, v) in [
            ("seed", self.seed.to_string()),
            ("engine", c.engine.clone()),
            ("kvnode-args", c.kvnode_args.join(" ")),
            ("nodes", c.nodes.to_string()),
            ("workload", c.workload.to_string()),
            ("cas-percent", c.mix.cas_percent.to_string()),
            ("clients", c.concurrency.to_string()),
            ("rate", trim_float(c.rate)),
            ("max-ops", max_ops),
            (
                "sim-time",
                format!("{}.{:03} s", c.time_limit_ms / 1000, c.time_limit_ms % 1000),
            ),
            ("op-timeout", format!("{} ms", c.op_timeout_ms)),
            ("environment", env),
        ] {
            out.push_str(&format!("{k}: {v}\n"));
        }
        for line in steps_text(&self.steps) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// Parses a replay file.
    pub fn parse(text: &str) -> Result<Script, ScriptError> {
        let mut config = SimConfig::new("raft");
        config.nemesis.clear();
        let mut seed = None;
        let mut seen = BTreeMap::new();
        let mut steps = Vec::new();
        let mut active: BTreeMap<FaultKind, usize> = BTreeMap::new();
        let mut last_at = Duration::ZERO;
        // `isolate N` steps, completed once the cluster's nodes are known.
        let mut isolations: Vec<(usize, String)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| ScriptError { line, message };
            let text = raw.split('#').next().unwrap_or_default().trim();
            if text.is_empty() {
                continue;
            }
            if let Some(rest) = text.strip_prefix("t=") {
                let (at, action, isolated) = parse_step(rest).map_err(err)?;
                if let Some(n) = isolated {
                    isolations.push((steps.len(), n));
                }
                if at < last_at {
                    return Err(err(format!(
                        "steps must be in time order (t={} s comes after t={} s)",
                        at.as_secs_f64(),
                        last_at.as_secs_f64()
                    )));
                }
                last_at = at;
                match &action {
                    StepAction::Start(f) => {
                        if let Some(prev) = active.insert(f.kind(), line) {
                            return Err(err(format!(
                                "a {} fault starts while the one from line {prev} is still active (stop it first)",
                                f.kind().name()
                            )));
                        }
                    }
                    StepAction::Stop(k) => {
                        if active.remove(k).is_none() {
                            return Err(err(format!("no {} fault is active to stop", k.name())));
                        }
                    }
                }
                steps.push(Step { at, action });
                continue;
            }
            let Some((key, value)) = text.split_once(':') else {
                return Err(err(format!(
                    "expected `key: value` or a step `t=<seconds> s <action>`, got {text:?}"
                )));
            };
            let (key, value) = (key.trim(), value.trim());
            if let Some(prev) = seen.insert(key.to_string(), line) {
                return Err(err(format!("{key} is set twice (also on line {prev})")));
            }
            let num = |what: &str| -> Result<u64, ScriptError> {
                value
                    .parse::<u64>()
                    .map_err(|_| err(format!("{what}: expected a whole number, got {value:?}")))
            };
            match key {
                "seed" => seed = Some(num("seed")?),
                "engine" => config.engine = value.to_string(),
                "kvnode-args" => {
                    config.kvnode_args = value.split_whitespace().map(String::from).collect()
                }
                "nodes" => config.nodes = num("nodes")? as usize,
                "workload" => {
                    config.workload = value.parse::<Workload>().map_err(|e| err(e.to_string()))?
                }
                "cas-percent" => {
                    let p = num("cas-percent")?;
                    config.mix = u32::try_from(p)
                        .ok()
                        .and_then(Mix::with_cas_percent)
                        .ok_or_else(|| err(format!("cas-percent {p} must be 0..=50")))?;
                }
                "clients" => config.concurrency = num("clients")? as usize,
                "rate" => {
                    config.rate = value
                        .parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && *r >= 0.0)
                        .ok_or_else(|| err(format!("rate: expected ops/s >= 0, got {value:?}")))?
                }
                "max-ops" => {
                    config.max_ops = if value == "none" {
                        None
                    } else {
                        Some(num("max-ops")?)
                    }
                }
                "sim-time" => {
                    config.time_limit_ms = parse_duration_ms(value).map_err(err)?;
                }
                "op-timeout" => {
                    config.op_timeout_ms = parse_duration_ms(value).map_err(err)?;
                }
                "environment" => {
                    config.environment = serde_json::from_str::<Environment>(value)
                        .map_err(|e| err(format!("environment: {e}")))?
                }
                other => return Err(err(format!("unknown setting {other:?}"))),
            }
        }
        let seed = seed.ok_or(ScriptError {
            line: text.lines().count().max(1),
            message: "no `seed:` line".into(),
        })?;
        let nodes = config.node_ids();
        for (i, n) in isolations {
            if let StepAction::Start(Fault::Partition { grudge, .. }) = &mut steps[i].action {
                *grudge = isolate(&nodes, &n);
            }
        }
        Ok(Script {
            config,
            seed,
            steps,
        })
    }
}

/// `3.5 s`, `3500 ms`, `30s`, `30` (seconds) -> milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (t[..i].trim(), t[i..].trim()),
        None => (t, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 1.5 s, 500ms)"))?;
    let ms = match unit {
        "s" => v * 1000.0,
        "ms" => v,
        "m" | "min" => v * 60_000.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, ms or min)")),
    };
    if !(ms.is_finite() && (0.0..=7.0 * 86_400_000.0).contains(&ms)) {
        return Err(format!("{s:?} is not a duration between 0 and 7 days"));
    }
    Ok(ms.round() as u64)
}

fn parse_nodes(words: &[&str]) -> Result<Target, String> {
    match words {
        [] => Err("names no node".into()),
        ["leader"] => Ok(Target::Leader),
        ws => {
            for w in ws {
                if w.is_empty()
                    || !w
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(format!("{w:?} is not a node id"));
                }
            }
            Ok(Target::Nodes(ws.iter().map(|w| w.to_string()).collect()))
        }
    }
}

fn parse_ms(w: &str) -> Result<i64, String> {
    w.trim_start_matches('+')
        .parse::<i64>()
        .ok()
        .filter(|v| v.abs() <= 86_400_000 * 365)
        .ok_or_else(|| format!("{w:?} is not a number of milliseconds"))
}

/// Splits off a trailing `(shape)`.
fn shape_suffix(rest: &str, default: PartitionShape) -> Result<(&str, PartitionShape), String> {
    let rest = rest.trim();
    if let Some(open) = rest.rfind('(') {
        if rest.ends_with(')') && !rest[open..].contains("bridge ") {
            let name = &rest[open + 1..rest.len() - 1];
            let shape = name.parse::<PartitionShape>().map_err(|e| e.to_string())?;
            return Ok((rest[..open].trim(), shape));
        }
    }
    Ok((rest, default))
}

/// One step; the third field names the node of an `isolate N` step, whose grudge needs the
/// cluster's other nodes.
fn parse_step(rest: &str) -> Result<(Duration, StepAction, Option<String>), String> {
    let (num, action) = rest
        .split_once(" s ")
        .ok_or_else(|| format!("expected `t=<seconds> s <action>`, got \"t={rest}\""))?;
    let secs: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v < 7.0 * 86_400.0)
        .ok_or_else(|| format!("{num:?} is not a time in seconds"))?;
    let at = Duration::from_millis((secs * 1000.0).round() as u64);
    let words: Vec<&str> = action.split_whitespace().collect();
    let stop = |k| Ok((at, StepAction::Stop(k), None));
    let start = |f| Ok((at, StepAction::Start(f), None));
    match words.as_slice() {
        ["heal", "partition"] => stop(FaultKind::Partition),
        ["restart", ..] => stop(FaultKind::Kill),
        ["resume", ..] => stop(FaultKind::Pause),
        ["reset", "clocks"] => stop(FaultKind::Clock),
        ["heal", "packets"] => stop(FaultKind::Packet),
        ["kill", nodes @ ..] => start(Fault::Kill {
            target: parse_nodes(nodes)?,
        }),
        ["pause", nodes @ ..] => start(Fault::Pause {
            target: parse_nodes(nodes)?,
        }),
        ["isolate", ..] => {
            let (body, shape) = shape_suffix(&action["isolate".len()..], PartitionShape::One)?;
            let target = parse_nodes(&body.split_whitespace().collect::<Vec<_>>())?;
            match target {
                Target::Leader => start(Fault::Partition {
                    shape: PartitionShape::IsolateLeader,
                    grudge: Grudge::new(),
                }),
                Target::Nodes(n) if n.len() == 1 => Ok((
                    at,
                    StepAction::Start(Fault::Partition {
                        shape,
                        grudge: Grudge::new(),
                    }),
                    Some(n[0].clone()),
                )),
                Target::Nodes(_) => Err("isolate names one node".into()),
            }
        }
        ["partition", ..] => parse_partition(action["partition".len()..].trim())
            .map(|f| (at, StepAction::Start(f), None)),
        ["clock", ..] => {
            let strobe = words.iter().position(|w| *w == "strobe");
            match strobe {
                Some(i) => match &words[i + 1..] {
                    [d, "ms", "every", p, "ms"] => start(Fault::Clock {
                        target: parse_nodes(&words[1..i])?,
                        op: ClockOp::Strobe {
                            delta_ms: parse_ms(d)?,
                            period_ms: parse_ms(p)?.max(0) as u64,
                        },
                    }),
                    _ => Err("expected `clock N.. strobe +D ms every P ms`".into()),
                },
                None => match words.as_slice() {
                    ["clock", nodes @ .., d, "ms"] => start(Fault::Clock {
                        target: parse_nodes(nodes)?,
                        op: ClockOp::Bump {
                            delta_ms: parse_ms(d)?,
                        },
                    }),
                    _ => Err("expected `clock N.. +D ms`".into()),
                },
            }
        }
        ["packet", ..] => match words.iter().position(|w| *w == "delay") {
            Some(i) => match &words[i + 1..] {
                [d, "ms", "loss", l] => {
                    let loss = l
                        .trim_end_matches('%')
                        .parse::<f64>()
                        .ok()
                        .filter(|v| (0.0..=100.0).contains(v))
                        .ok_or_else(|| format!("{l:?} is not a loss between 0% and 100%"))?;
                    start(Fault::Packet {
                        target: parse_nodes(&words[1..i])?,
                        delay_ms: parse_ms(d)?.max(0) as u64,
                        loss: loss / 100.0,
                    })
                }
                _ => Err("expected `packet N.. delay D ms loss L%`".into()),
            },
            None => Err("expected `packet N.. delay D ms loss L%`".into()),
        },
        _ => Err(format!("unknown action {action:?}")),
    }
}

fn parse_partition(body: &str) -> Result<Fault, String> {
    if let Some(rest) = body.strip_prefix('(') {
        // `(shape): a drops b c; ...`
        let (name, grudges) = rest
            .split_once("):")
            .ok_or("expected `partition (shape): N drops A B; ...`")?;
        let shape = name
            .trim()
            .parse::<PartitionShape>()
            .map_err(|e| e.to_string())?;
        let mut grudge = Grudge::new();
        for part in grudges.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let words: Vec<&str> = part.split_whitespace().collect();
            let [node, "drops", rest @ ..] = words.as_slice() else {
                return Err(format!("expected `N drops A B`, got {part:?}"));
            };
            let Target::Nodes(rest) = parse_nodes(rest)? else {
                return Err("a grudge names nodes, not the leader".into());
            };
            grudge.entry(node.to_string()).or_default().extend(rest);
        }
        return Ok(Fault::Partition { shape, grudge });
    }
    let (body, bridge) = match body.find("(bridge ") {
        Some(i) => {
            let end = body[i..].find(')').ok_or("unclosed `(bridge`")? + i;
            let bridge: Vec<String> = body[i + 8..end]
                .split_whitespace()
                .map(String::from)
                .collect();
            let rest = format!("{} {}", &body[..i], &body[end + 1..]);
            (rest, bridge)
        }
        None => (body.to_string(), Vec::new()),
    };
    let natural = if bridge.is_empty() {
        PartitionShape::Halves
    } else {
        PartitionShape::Bridge
    };
    let (body, shape) = shape_suffix(&body, natural)?;
    let (a, b) = body
        .split_once('|')
        .ok_or("expected `partition A.. | B..`")?;
    let side = |s: &str| match parse_nodes(&s.split_whitespace().collect::<Vec<_>>())? {
        Target::Nodes(n) => Ok(n),
        Target::Leader => Err("a partition side names nodes, not the leader".to_string()),
    };
    let mut grudge = complete_cut(&side(a)?, &side(b)?);
    for q in bridge {
        grudge.entry(q).or_default();
    }
    Ok(Fault::Partition { shape, grudge })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nemesis::{Schedule, ScheduleOptions};

    #[test]
    fn generated_schedules_round_trip() {
        let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        for seed in 0..30 {
            let mut s = Schedule::new(ScheduleOptions {
                kinds: FaultKind::ALL.to_vec(),
                shapes: PartitionShape::ALL.to_vec(),
                interval: Duration::from_secs(2),
                nodes: nodes.clone(),
                seed,
            });
            let mut steps: Vec<Step> = (0..40).filter_map(|_| s.next_step()).collect();
            // What the simulator records: leaders resolved.
            for st in &mut steps {
                if let StepAction::Start(f) = &st.action {
                    st.action = StepAction::Start(f.resolve(&nodes, Some("n3"), "n1"));
                }
            }
            let mut config = SimConfig::new("raft");
            config.nemesis.clear();
            let script = Script {
                config,
                seed,
                steps,
            };
            let text = script.render(&["a comment".into()]);
            let back = Script::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, script, "{text}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let e = Script::parse("seed: 1\nt=1.000 s kill n1\nt=2.000 s kill n2\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = Script::parse("seed: 1\nt=0.5 s explode n1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("explode"), "{e}");
        let e = Script::parse("seed: 1\nt=2.000 s kill n1\nt=1.000 s restart n1\n").unwrap_err();
        assert!(e.message.contains("time order"), "{e}");
        assert!(Script::parse("nodes: 3\n")
            .unwrap_err()
            .message
            .contains("seed"));
        let e = Script::parse("seed: x\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(Script::parse("seed: 1\nt=1 s heal partition\n").is_err());
    }

    #[test]
    fn readable_steps() {
        let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let steps = vec![
            Step {
                at: Duration::from_millis(1200),
                action: StepAction::Start(Fault::Partition {
                    shape: PartitionShape::One,
                    grudge: isolate(&nodes, "n1"),
                }),
            },
            Step {
                at: Duration::from_millis(1310),
                action: StepAction::Start(Fault::Clock {
                    target: Target::Nodes(vec!["n1".into()]),
                    op: ClockOp::Bump { delta_ms: 2000 },
                }),
            },
            Step {
                at: Duration::from_millis(4000),
                action: StepAction::Stop(FaultKind::Partition),
            },
        ];
        assert_eq!(
            steps_text(&steps),
            vec![
                "t=1.200 s isolate n1",
                "t=1.310 s clock n1 +2000 ms",
                "t=4.000 s heal partition"
            ]
        );
    }
}
