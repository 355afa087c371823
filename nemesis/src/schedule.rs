//! The seeded fault schedule: per fault kind, an endless cycle of wait, start, hold, stop.
//!
//! Each enabled kind runs its own cycle, offset randomly, so kinds overlap as independent
//! nemeses would: with `interval = 5 s` a kind waits 2.5–7.5 s, starts a fault, holds it for
//! 2.5–7.5 s and stops it, again and again. [`Schedule::next_step`] merges the cycles in time
//! order. The same seed, nodes and options give the same steps; only symbolic leader targets
//! are left to the injector (see [`crate::Fault::resolve`]).
//!
//! One pairing is deliberate rather than left to chance: when both partitions and clock
//! faults are enabled and the partition cycle isolates the leader, the clock cycle is taken
//! over for the same instant — a backward bump of the leader's clock, as large as the
//! partition's hold plus 1-5 s, scheduled *before* the partition and stopped with it. A lease
//! measured on the wall clock is only stretched past the majority's next election if the
//! clock moves while the lease is still valid (within an election timeout of the last
//! heartbeat); two independent cycles almost never line up that closely, least of all on
//! slow hosts where every fault takes a second to apply. Both steps carry the same `at` and
//! name the leader symbolically: the injector resolves the leader once per instant, so they
//! hit the same node (see `harness::run::run_nemesis`).

use crate::partition::{DrawGrudge, PartitionShape};
use crate::{ClockOp, Fault, FaultKind, NodeId, Target};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
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
    /// Steps due at the same instant as the one just returned (a leader isolation's clock
    /// bump is returned first, its partition next).
    pending: VecDeque<Step>,
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
        Schedule {
            opts,
            rng,
            cycles,
            pending: VecDeque::new(),
        }
    }

    /// Draws later faults among `nodes` (the current members, after a membership change).
    pub fn set_nodes(&mut self, nodes: Vec<NodeId>) {
        self.opts.nodes = nodes;
    }

    /// The next step in time order, or `None` when no kind is enabled.
    pub fn next_step(&mut self) -> Option<Step> {
        if let Some(step) = self.pending.pop_front() {
            return Some(step);
        }
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
        let hold = c.next_at - at;
        if let StepAction::Start(Fault::Partition {
            shape: PartitionShape::IsolateLeader,
            ..
        }) = &action
        {
            if let Some(bump) = self.clock_with_leader_isolation(at, hold) {
                self.pending.push_back(Step { at, action });
                return Some(bump);
            }
        }
        Some(Step { at, action })
    }

    /// Takes the clock cycle over for a leader isolation starting at `at` and held for
    /// `hold` (see the module documentation): stops a clock fault still active (queued), and
    /// returns the backward bump of the leader's clock, stopped when the partition heals.
    /// `None` when clock faults are not enabled.
    fn clock_with_leader_isolation(&mut self, at: Duration, hold: Duration) -> Option<Step> {
        let c = self
            .cycles
            .iter()
            .position(|c| c.kind == FaultKind::Clock)?;
        let stretch = hold.as_millis() as i64 + self.rng.gen_range(1_000..=5_000);
        let bump = Step {
            at,
            action: StepAction::Start(Fault::Clock {
                target: Target::Leader,
                op: ClockOp::Bump { delta_ms: -stretch },
            }),
        };
        let cycle = &mut self.cycles[c];
        let first = if cycle.active {
            self.pending.push_back(bump);
            Step {
                at,
                action: StepAction::Stop(FaultKind::Clock),
            }
        } else {
            bump
        };
        cycle.active = true;
        cycle.next_at = at + hold;
        Some(first)
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

    /// The pairing that makes wall-clock leases testable: every leader isolation comes with
    /// a backward bump of the leader's clock at the same instant, before the partition,
    /// larger than the partition's hold, and reset when the partition heals.
    #[test]
    fn leader_isolation_bumps_the_leaders_clock_back_first() {
        let mut o = opts(7);
        o.kinds = vec![FaultKind::Partition, FaultKind::Clock];
        o.shapes = vec![PartitionShape::IsolateLeader];
        let steps: Vec<Step> = {
            let mut s = Schedule::new(o);
            (0..80).map(|_| s.next_step().unwrap()).collect()
        };
        let mut isolations = 0;
        for (i, step) in steps.iter().enumerate() {
            let StepAction::Start(Fault::Partition { .. }) = step.action else {
                continue;
            };
            isolations += 1;
            let before = &steps[i - 1];
            let StepAction::Start(Fault::Clock {
                target: Target::Leader,
                op: ClockOp::Bump { delta_ms },
            }) = before.action
            else {
                panic!("isolation without a bump first: {before:?}, {step:?}");
            };
            assert_eq!(before.at, step.at);
            // The last isolation of the window may heal after it.
            let Some(heal) = steps[i..]
                .iter()
                .find(|s| s.action == StepAction::Stop(FaultKind::Partition))
            else {
                continue;
            };
            let reset = steps[i..]
                .iter()
                .find(|s| s.action == StepAction::Stop(FaultKind::Clock))
                .expect("reset");
            assert_eq!(
                heal.at, reset.at,
                "the clock is reset when the partition heals"
            );
            let hold = (heal.at - step.at).as_millis() as i64;
            assert!(
                -delta_ms > hold && -delta_ms <= hold + 5_000,
                "bump {delta_ms} ms for a hold of {hold} ms"
            );
        }
        assert!(isolations > 5, "{isolations}");
    }

    #[test]
    fn other_shapes_and_no_clock_leave_the_cycles_independent() {
        for (kinds, shapes) in [
            (
                vec![FaultKind::Partition, FaultKind::Clock],
                vec![PartitionShape::One],
            ),
            (
                vec![FaultKind::Partition],
                vec![PartitionShape::IsolateLeader],
            ),
        ] {
            let mut o = opts(8);
            o.kinds = kinds;
            o.shapes = shapes;
            let mut s = Schedule::new(o);
            let steps: Vec<Step> = (0..60).map(|_| s.next_step().unwrap()).collect();
            for w in steps.windows(2) {
                if let StepAction::Start(Fault::Partition { .. }) = w[1].action {
                    assert!(
                        !matches!(w[0].action, StepAction::Start(Fault::Clock { .. }))
                            || w[0].at != w[1].at,
                        "{w:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_kinds_no_steps() {
        let mut o = opts(1);
        o.kinds.clear();
        assert!(Schedule::new(o).next_step().is_none());
    }
}
