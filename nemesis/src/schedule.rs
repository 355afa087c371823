//! The seeded fault schedule: per fault kind, an endless cycle of wait, start, hold, stop.
//!
//! Each enabled kind runs its own cycle, offset randomly, so kinds overlap as independent
//! nemeses would: with `interval = 5 s` a kind waits 2.5–7.5 s, starts a fault, holds it for
//! 2.5–7.5 s and stops it, again and again. [`Schedule::next_step`] merges the cycles in time
//! order. The same seed, nodes and options give the same steps; only symbolic leader targets
//! are left to the injector (see [`crate::Fault::resolve`]).

use crate::partition::{DrawGrudge, PartitionShape};
use crate::{ClockOp, Fault, FaultKind, NodeId, Target};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepAction {
    /// Apply this fault.
    Start(Fault),
    /// Undo the fault of this kind that is active (heal, restart, resume, reset).
    Stop(FaultKind),
}

/// One scheduled action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// When, since the start of the test.
    pub at: Duration,
    /// What.
    pub action: StepAction,
}

/// Options of a schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleOptions {
    /// Fault kinds to cycle through.
    pub kinds: Vec<FaultKind>,
    /// Partition shapes to draw from.
    pub shapes: Vec<PartitionShape>,
    /// Mean wait and mean hold time.
    pub interval: Duration,
    /// Node ids.
    pub nodes: Vec<NodeId>,
    /// Seed.
    pub seed: u64,
}

#[derive(Debug, Clone)]
struct Cycle {
    kind: FaultKind,
    next_at: Duration,
    active: bool,
}

/// The merged, seeded stream of steps.
#[derive(Debug, Clone)]
pub struct Schedule {
    opts: ScheduleOptions,
    rng: ChaCha8Rng,
    cycles: Vec<Cycle>,
}

impl Schedule {
    /// A schedule for `opts`.
    pub fn new(opts: ScheduleOptions) -> Schedule {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x006e_656d_6573_6973);
        let mut cycles = Vec::new();
        for &kind in &opts.kinds {
            let next_at = jitter(&mut rng, opts.interval);
            cycles.push(Cycle {
                kind,
                next_at,
                active: false,
            });
        }
        Schedule { opts, rng, cycles }
    }

    /// Draws later faults among `nodes` (the current members, after a membership change).
    pub fn set_nodes(&mut self, nodes: Vec<NodeId>) {
        self.opts.nodes = nodes;
    }

    /// The next step in time order, or `None` when no kind is enabled.
    pub fn next_step(&mut self) -> Option<Step> {
        let i = (0..self.cycles.len()).min_by_key(|&i| self.cycles[i].next_at)?;
        let at = self.cycles[i].next_at;
        let kind = self.cycles[i].kind;
        let action = if self.cycles[i].active {
            StepAction::Stop(kind)
        } else {
            StepAction::Start(self.draw(kind))
        };
        let c = &mut self.cycles[i];
        c.active = !c.active;
        c.next_at = at + jitter(&mut self.rng, self.opts.interval);
        Some(Step { at, action })
    }

    fn target(&mut self, leader_share: f64) -> Target {
        if self.rng.gen_bool(leader_share) || self.opts.nodes.is_empty() {
            Target::Leader
        } else {
            Target::Nodes(vec![self
                .opts
                .nodes
                .choose(&mut self.rng)
                .expect("nodes")
                .clone()])
        }
    }

    /// Draws one concrete fault of `kind`.
    fn draw(&mut self, kind: FaultKind) -> Fault {
        match kind {
            FaultKind::Partition => {
                let shape = *self
                    .opts
                    .shapes
                    .choose(&mut self.rng)
                    .unwrap_or(&PartitionShape::One);
                let grudge = shape.grudge(&self.opts.nodes, &mut self.rng);
                Fault::Partition { shape, grudge }
            }
            FaultKind::Kill => Fault::Kill {
                target: self.target(0.4),
            },
            FaultKind::Pause => Fault::Pause {
                target: self.target(0.4),
            },
            FaultKind::Clock => {
                // Mostly backward jumps on the leader: what stretches a wall-clock lease.
                let target = self.target(0.7);
                let magnitude = self.rng.gen_range(1_000..=10_000);
                let delta_ms = if self.rng.gen_bool(0.75) {
                    -magnitude
                } else {
                    magnitude
                };
                let op = if self.rng.gen_bool(0.2) {
                    ClockOp::Strobe {
                        delta_ms,
                        period_ms: self.rng.gen_range(50..=500),
                    }
                } else {
                    ClockOp::Bump { delta_ms }
                };
                Fault::Clock { target, op }
            }
            FaultKind::Packet => Fault::Packet {
                target: self.target(0.3),
                delay_ms: self.rng.gen_range(20..=200),
                // Up to 20% loss: enough for visible retransmission stalls, not a partition.
                loss: f64::from(self.rng.gen_range(0..=20u32)) / 100.0,
            },
            // Removing the leader is the interesting case (a leader that steps down after
            // committing its own removal), so it gets a large share.
            FaultKind::Member => Fault::Member {
                grow: self.rng.gen_bool(0.5),
                target: self.target(0.4),
                added: Vec::new(),
                removed: Vec::new(),
            },
        }
    }
}

/// A duration uniform in [interval/2, 3*interval/2].
fn jitter(rng: &mut ChaCha8Rng, interval: Duration) -> Duration {
    let ms = interval.as_millis().max(2) as u64;
    Duration::from_millis(rng.gen_range(ms / 2..=ms * 3 / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seed: u64) -> ScheduleOptions {
        ScheduleOptions {
            kinds: FaultKind::ALL.to_vec(),
            shapes: PartitionShape::ALL.to_vec(),
            interval: Duration::from_secs(2),
            nodes: ["n1", "n2", "n3"].map(String::from).to_vec(),
            seed,
        }
    }

    #[test]
    fn seeded_ordered_and_paired() {
        let a: Vec<Step> = {
            let mut s = Schedule::new(opts(5));
            (0..50).map(|_| s.next_step().unwrap()).collect()
        };
        let b: Vec<Step> = {
            let mut s = Schedule::new(opts(5));
            (0..50).map(|_| s.next_step().unwrap()).collect()
        };
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        let mut active = std::collections::HashSet::new();
        for s in &a {
            match &s.action {
                StepAction::Start(f) => assert!(active.insert(f.kind()), "double start"),
                StepAction::Stop(k) => assert!(active.remove(k), "stop without start"),
            }
        }
    }

    #[test]
    fn draws_follow_the_members_it_is_told_about() {
        let mut o = opts(3);
        o.kinds = vec![FaultKind::Kill, FaultKind::Member];
        let mut s = Schedule::new(o);
        s.set_nodes(vec!["n7".into()]);
        let mut members = 0;
        for _ in 0..60 {
            if let StepAction::Start(f) = s.next_step().unwrap().action {
                if let Fault::Member { target, .. } | Fault::Kill { target } = &f {
                    assert!(
                        matches!(target, Target::Leader)
                            || *target == Target::Nodes(vec!["n7".into()]),
                        "{f:?}"
                    );
                }
                members += usize::from(f.kind() == FaultKind::Member);
            }
        }
        assert!(members > 5, "{members}");
    }

    #[test]
    fn no_kinds_no_steps() {
        let mut o = opts(1);
        o.kinds.clear();
        assert!(Schedule::new(o).next_step().is_none());
    }
}
