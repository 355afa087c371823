//! One simulated run: the whole cluster, its clients and the nemesis in one thread, on
//! simulated time. Nothing here reads a real clock, spawns a thread or iterates a hash map,
//! so a [`Case`] always yields the same history, byte for byte.
//!
//! Every node is the real driver loop ([`cluster::driver::NodeCore`], the code the kvnode
//! binary runs) fed by a small shell: its inputs are queued like a socket buffer and handed
//! over in one batch per turn; while its last fsync is in progress it is busy, so inputs
//! that arrive meanwhile share the next turn (group commit, as on a real node). Its effects
//! carry the simulated time at which they happen: messages of a Ready go out at the start
//! of the turn, persisted messages and client replies only once the fsync completed. A
//! crash in the middle of an fsync therefore loses that write (or tears it) and everything
//! that would have followed it, exactly as SIGKILL during `fdatasync` would.
//!
//! Phases follow the harness's run loop (`harness/src/run.rs`): the nodes start and elect
//! a leader (not recorded); then for `time_limit_ms` the workers issue ops (rate limited,
//! staggered, `info` retires a process) while the nemesis applies its steps and a poller
//! records `cluster-status` changes every 200 ms; at the deadline every active fault is
//! stopped, the workers finish their last ops, the cluster is given up to 15 s to agree on
//! a leader again, and every node is read once per key.

use crate::client::{self, Answer, Completion};
use crate::clock::NodeClock;
use crate::config::{Case, Faults};
use crate::net::Network;
use crate::queue::{Nanos, Queue, MS};
use checkers::cluster_state::{ClusterStatus, NodeStatus, Role as StatusRole, CLUSTER_STATUS_F};
use checkers::history::{Event, EventType, Process};
use cluster::driver::{ClientOp, NodeCore, NodeIo, DRAIN_MAX};
use cluster::engine::Engine;
use cluster::msg::{Entry, NodeId, Reply};
use cluster::storage::{MemStorage, Recovered, Storage, StorageError};
use nemesis::{ClockOp, Fault, FaultKind, Schedule, ScheduleOptions, Step, StepAction};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;
use workloads::{Generator, Op};

/// How a node's engine is built from what its disk recovered.
pub type Build<'a, E> = &'a dyn Fn(&str, Recovered) -> Result<E, String>;

/// What the kvnode flags say about the node process around the engine.
#[derive(Debug, Clone, Copy)]
pub struct NodeParams {
    /// `--tick-ms` in ns.
    pub tick_ns: u64,
    /// `--request-timeout-ms` in ns: the HTTP layer's deadline (then 504).
    pub request_timeout_ns: u64,
    /// `--no-fsync`: syncs are skipped, so nothing is ever durable by itself.
    pub fsync: bool,
    /// A leaderless engine: there is no leader to wait for.
    pub leaderless: bool,
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The history, in the format of `history.jsonl` (times in simulated ns).
    pub history: Vec<Event>,
    /// Every fault step as applied in the main phase, targets resolved, times since the
    /// history started: replaying these steps reproduces the run.
    pub applied: Vec<Step>,
    /// Simulated time from the first node start to the last final read, ns.
    pub sim_ns: Nanos,
    /// Simulation events processed (a cost measure).
    pub events: u64,
    /// Things that went wrong beyond the history: a node that could not restart from its
    /// own disk, a run that would not end.
    pub errors: Vec<String>,
}

/// Most events one run may process before it is declared stuck.
const MAX_EVENTS: u64 = 200_000_000;
/// How long after the main phase the run may take (recovery, final reads) before it is
/// declared stuck: 15 s of recovery plus three 2-s attempts of a final read, with margin.
const MAX_TAIL: Nanos = 120_000 * MS;

type Token = u64;

/// A peer message in flight; the message itself waits in the world's slab (events stay
/// small, so the queue moves little memory).
#[derive(Debug, Clone, Copy)]
struct Flight {
    from: usize,
    /// The sender's incarnation: a message it would have sent after dying is lost.
    from_inc: u32,
    sent: Nanos,
    to: usize,
    /// The receiver's incarnation when sent: a restarted node never gets the old one's.
    to_inc: u32,
    slot: u32,
}

enum Ev {
    Tick {
        node: usize,
        inc: u32,
    },
    Wake {
        node: usize,
        inc: u32,
    },
    /// A peer message arrives.
    Deliver(Flight),
    HttpArrive {
        ex: Token,
    },
    HttpAnswer {
        ex: Token,
        /// Boxed: answers are rare next to ticks and messages, and keep events small.
        answer: Box<Answer>,
        node: usize,
        inc: u32,
        sent: Nanos,
    },
    ServerTimeout {
        ex: Token,
        node: usize,
        inc: u32,
    },
    ClientTimeout {
        ex: Token,
    },
    Worker {
        w: usize,
    },
    Nemesis {
        step: usize,
    },
    Strobe {
        node: usize,
        gen: u64,
        on: bool,
    },
    Restart {
        node: usize,
    },
    ReadyPoll,
    StatusPoll,
    Deadline,
    RecoveryPoll,
}

struct Node<E: Engine> {
    id: NodeId,
    core: Option<NodeCore<E, MemStorage, Token>>,
    /// The disk while the node is down.
    disk: Option<MemStorage>,
    inc: u32,
    /// When each incarnation died (`Nanos::MAX` while it lives).
    died: Vec<Nanos>,
    started: Nanos,
    paused: bool,
    /// Until when the node is inside its last turn (its fsyncs).
    busy_until: Nanos,
    /// fsyncs of the last turn: (completion time, unsynced records it covers).
    sync_points: Vec<(Nanos, usize)>,
    msgs: VecDeque<(Rc<str>, E::Msg)>,
    reqs: VecDeque<(ClientOp, Token)>,
    wake_at: Option<Nanos>,
    tick_at: Option<Nanos>,
    clock: NodeClock,
    rng: ChaCha8Rng,
    /// HTTP requests this node accepted and has not answered.
    open: BTreeSet<Token>,
    /// Server deadlines that passed while the node was paused.
    deferred: Vec<Token>,
    killed: bool,
}

/// The effects of one turn, stamped with simulated time.
struct SimIo<'a, M> {
    ids: &'a [NodeId],
    now: Nanos,
    fsync: bool,
    disk: &'a crate::config::DiskModel,
    rng: &'a mut ChaCha8Rng,
    sync_points: &'a mut Vec<(Nanos, usize)>,
    sends: &'a mut Vec<(Nanos, usize, M)>,
    replies: &'a mut Vec<(Nanos, Token, Reply)>,
    open: &'a BTreeSet<Token>,
}

impl<M> NodeIo<M, MemStorage, Token> for SimIo<'_, M> {
    fn send(&mut self, to: &str, msg: M) {
        if let Some(j) = self.ids.iter().position(|x| x == to) {
            self.sends.push((self.now, j, msg));
        }
    }

    fn persist(
        &mut self,
        storage: &mut MemStorage,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        sync: bool,
    ) -> Result<(), StorageError> {
        storage.write(truncate_from, entries, hard_state);
        if sync && self.fsync {
            let (lo, hi) = (
                self.disk.min_fsync_us,
                self.disk.max_fsync_us.max(self.disk.min_fsync_us),
            );
            self.now += self.rng.gen_range(lo..=hi) * 1_000;
            self.sync_points.push((self.now, storage.unsynced()));
        }
        Ok(())
    }

    fn reply(&mut self, token: Token, reply: Reply) {
        self.replies.push((self.now, token, reply));
    }

    fn abandoned(&self, token: &Token) -> bool {
        !self.open.contains(token)
    }
}

/// Who waits for an op's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Worker(usize),
    FinalRead,
}

/// One op in flight (possibly over several HTTP exchanges, when redirected).
struct Call {
    owner: Owner,
    process: u64,
    seq: u64,
    op: Op,
    attempt: usize,
}

/// One HTTP request of a call.
struct Exchange {
    call: usize,
    node: usize,
    /// The client still waits for this exchange.
    waiting: bool,
}

struct Worker {
    process: u64,
    seq: u64,
    gen: Generator,
    next: Nanos,
    node: usize,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Main,
    Draining,
    Recovering,
    FinalReads,
    Over,
}

/// The simulation of one [`Case`].
pub struct World<'a, E: Engine> {
    case: &'a Case,
    params: NodeParams,
    build: Build<'a, E>,
    ids: Vec<NodeId>,
    /// The ids again, shared cheaply as message senders.
    senders: Vec<Rc<str>>,
    nodes: Vec<Node<E>>,
    net: Network,
    queue: Queue<Ev>,
    /// Messages in flight, by slot (`None` = free).
    slab: Vec<Option<E::Msg>>,
    free: Vec<u32>,
    now: Nanos,
    /// When the history's clock started (the end of the warm-up).
    t0: Nanos,
    phase: Phase,
    history: Vec<Event>,
    calls: Vec<Call>,
    exchanges: Vec<Exchange>,
    workers: Vec<Worker>,
    /// The freshest value any worker learned per key (cas targets it, as in the harness).
    latest: BTreeMap<Option<String>, i64>,
    next_process: u64,
    issued: u64,
    period: Option<Nanos>,
    steps: Vec<Step>,
    applied: Vec<Step>,
    active: BTreeMap<FaultKind, Fault>,
    fallback: usize,
    strobe_gen: u64,
    last_status: Option<Vec<Option<NodeStatus>>>,
    recovery_started: Nanos,
    final_pending: usize,
    env_rng: ChaCha8Rng,
    errors: Vec<String>,
    events: u64,
    sends: Vec<(Nanos, usize, E::Msg)>,
    replies: Vec<(Nanos, Token, Reply)>,
    batch_msgs: Vec<(Rc<str>, E::Msg)>,
    batch_reqs: Vec<(ClientOp, Token)>,
}

impl<'a, E: Engine> World<'a, E> {
    /// A cluster for `case`, not started.
    pub fn new(case: &'a Case, params: NodeParams, build: Build<'a, E>) -> World<'a, E> {
        let cfg = &case.config;
        let ids = cfg.node_ids();
        let seed = case.seed;
        let mut env_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x656e_7669_726f_6e00);
        let nodes = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Node {
                id: id.clone(),
                core: None,
                disk: Some(MemStorage::default()),
                inc: 0,
                died: vec![Nanos::MAX],
                started: 0,
                paused: false,
                busy_until: 0,
                sync_points: Vec::new(),
                msgs: VecDeque::new(),
                reqs: VecDeque::new(),
                wake_at: None,
                tick_at: None,
                clock: NodeClock::draw(&cfg.environment.clocks, &mut env_rng),
                rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6469_736b_0000_0000 ^ (i as u64 + 1)),
                open: BTreeSet::new(),
                deferred: Vec::new(),
                killed: false,
            })
            .collect();
        let conc = cfg.concurrency as u64;
        let workers = (0..cfg.concurrency)
            .map(|w| Worker {
                process: w as u64,
                seq: 0,
                gen: cfg.workload.generator_with(seed, w as u64, conc, cfg.mix),
                next: 0,
                node: w % cfg.nodes.max(1),
                done: false,
            })
            .collect();
        let period = (cfg.rate > 0.0).then(|| {
            Duration::from_secs_f64(cfg.concurrency as f64 / cfg.rate).as_nanos() as Nanos
        });
        let main = Duration::from_millis(cfg.time_limit_ms);
        let steps: Vec<Step> = match &case.faults {
            Faults::Generated => {
                let mut s = Schedule::new(ScheduleOptions {
                    kinds: cfg.nemesis.clone(),
                    shapes: cfg.partition_shapes.clone(),
                    interval: Duration::from_millis(cfg.nemesis_interval_ms),
                    nodes: ids.clone(),
                    seed,
                });
                std::iter::from_fn(|| s.next_step())
                    .take_while(|s| s.at < main)
                    .collect()
            }
            Faults::Script(steps) => steps.iter().filter(|s| s.at < main).cloned().collect(),
        };
        World {
            case,
            params,
            build,
            net: Network::new(cfg.environment.net.clone(), ids.len(), seed),
            senders: ids.iter().map(|s| Rc::from(s.as_str())).collect(),
            ids,
            slab: Vec::new(),
            free: Vec::new(),
            nodes,
            queue: Queue::default(),
            now: 0,
            t0: 0,
            phase: Phase::Starting,
            history: Vec::new(),
            calls: Vec::new(),
            exchanges: Vec::new(),
            workers,
            latest: BTreeMap::new(),
            next_process: conc,
            issued: 0,
            period,
            steps,
            applied: Vec::new(),
            active: BTreeMap::new(),
            fallback: seed as usize,
            strobe_gen: 0,
            last_status: None,
            recovery_started: 0,
            final_pending: 0,
            env_rng,
            errors: Vec::new(),
            events: 0,
            sends: Vec::new(),
            replies: Vec::new(),
            batch_msgs: Vec::new(),
            batch_reqs: Vec::new(),
        }
    }

    /// Runs the case to the end.
    pub fn run(mut self) -> Outcome {
        for i in 0..self.nodes.len() {
            // Processes start one after the other, a few ms apart.
            let at = self.env_rng.gen_range(0..=5 * MS);
            self.queue.push(at, Ev::Restart { node: i });
        }
        self.queue.push(100 * MS, Ev::ReadyPoll);
        while let Some((at, ev)) = self.queue.pop() {
            self.now = at;
            self.events += 1;
            self.handle(ev);
            if self.phase == Phase::Over {
                break;
            }
            let limit = self.t0 + self.case.config.time_limit_ms * MS + MAX_TAIL;
            if self.events > MAX_EVENTS || (self.phase != Phase::Starting && self.now > limit) {
                self.errors.push(format!(
                    "the simulation did not finish (simulated time {:.3} s, {} events)",
                    self.now as f64 / 1e9,
                    self.events
                ));
                break;
            }
            if self.phase == Phase::Starting && self.now > 60_000 * MS {
                self.errors
                    .push("the cluster did not start serving within 60 s".to_string());
                break;
            }
        }
        Outcome {
            history: self.history,
            applied: self.applied,
            sim_ns: self.now,
            events: self.events,
            errors: self.errors,
        }
    }

    fn handle(&mut self, ev: Ev) {
        const _: () = assert!(std::mem::size_of::<Ev>() <= 48, "keep events small");
        match ev {
            Ev::Tick { node, inc } => {
                let n = &mut self.nodes[node];
                if n.inc == inc && n.tick_at == Some(self.now) {
                    n.tick_at = None;
                    self.run_node(node);
                }
            }
            Ev::Wake { node, inc } => {
                let n = &mut self.nodes[node];
                if n.inc == inc && n.wake_at == Some(self.now) {
                    n.wake_at = None;
                    self.run_node(node);
                }
            }
            Ev::Deliver(f) => {
                let Flight {
                    from,
                    from_inc,
                    sent,
                    to,
                    to_inc,
                    slot,
                } = f;
                let msg = self.slab[slot as usize].take();
                self.free.push(slot);
                let Some(msg) = msg else { return };
                if self.nodes[from].died[from_inc as usize] < sent
                    || self.nodes[to].inc != to_inc
                    || self.nodes[to].core.is_none()
                    || self.net.is_cut(from, to)
                {
                    return;
                }
                let id = self.senders[from].clone();
                self.nodes[to].msgs.push_back((id, msg));
                self.run_node(to);
            }
            Ev::HttpArrive { ex } => self.http_arrive(ex),
            Ev::HttpAnswer {
                ex,
                answer,
                node,
                inc,
                sent,
            } => {
                // A node that died before it could answer closed the connection instead.
                let died = self.nodes[node].died[inc as usize] < sent;
                self.answer(ex, if died { Answer::Lost } else { *answer });
            }
            Ev::ServerTimeout { ex, node, inc } => {
                let n = &mut self.nodes[node];
                if n.inc != inc || !n.open.contains(&ex) {
                    return;
                }
                if n.paused {
                    n.deferred.push(ex);
                    return;
                }
                n.open.remove(&ex);
                self.respond(ex, node, Answer::ServerTimeout, self.now);
            }
            Ev::ClientTimeout { ex } => {
                if self.exchanges[ex as usize].waiting {
                    self.answer(ex, Answer::ClientTimeout);
                }
            }
            Ev::Worker { w } => self.worker_turn(w),
            Ev::Nemesis { step } => self.nemesis_step(step),
            Ev::Strobe { node, gen, on } => {
                let Some(Fault::Clock {
                    op:
                        ClockOp::Strobe {
                            delta_ms,
                            period_ms,
                        },
                    ..
                }) = self.active.get(&FaultKind::Clock)
                else {
                    return;
                };
                if gen != self.strobe_gen {
                    return;
                }
                let (delta_ms, period_ms) = (*delta_ms, *period_ms);
                self.nodes[node].clock.fault_ms = if on { delta_ms } else { 0 };
                self.queue.push(
                    self.now + period_ms.max(10) * MS,
                    Ev::Strobe { node, gen, on: !on },
                );
            }
            Ev::Restart { node } => self.start_node(node),
            Ev::ReadyPoll => self.ready_poll(),
            Ev::StatusPoll => self.status_poll(),
            Ev::Deadline => self.deadline(),
            Ev::RecoveryPoll => self.recovery_poll(),
        }
    }

    // ---------------------------------------------------------------------------------
    // Nodes

    fn start_node(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let Some(disk) = n.disk.take() else { return };
        let engine = match (self.build)(&n.id, disk.recovered()) {
            Ok(e) => e,
            Err(e) => {
                self.errors
                    .push(format!("{} cannot start from its own disk: {e}", n.id));
                n.disk = Some(disk);
                return;
            }
        };
        n.core = Some(NodeCore::new(engine, disk, self.params.tick_ns));
        n.started = self.now;
        n.busy_until = self.now;
        n.killed = false;
        self.schedule_tick(i);
    }

    fn crash(&mut self, i: usize) {
        let now = self.now;
        let torn = self.case.config.environment.disk.torn_write;
        let n = &mut self.nodes[i];
        let Some(core) = n.core.take() else { return };
        let mut disk = core.into_storage();
        let durable = n
            .sync_points
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|(_, k)| *k)
            .max()
            .unwrap_or(0);
        let rest = disk.unsynced() - durable.min(disk.unsynced());
        let extra = if rest > 0 && torn > 0.0 && n.rng.gen_bool(torn.min(1.0)) {
            n.rng.gen_range(0..=rest)
        } else {
            0
        };
        disk.crash(durable + extra);
        n.sync_points.clear();
        n.disk = Some(disk);
        n.died[n.inc as usize] = now;
        n.inc += 1;
        n.died.push(Nanos::MAX);
        n.paused = false;
        n.msgs.clear();
        n.reqs.clear();
        n.wake_at = None;
        n.tick_at = None;
        n.deferred.clear();
        n.killed = true;
        let open = std::mem::take(&mut n.open);
        for ex in open {
            self.respond(ex, i, Answer::Lost, now);
        }
    }

    fn schedule_tick(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if n.core.is_none() || n.paused {
            return;
        }
        let tick = self.params.tick_ns.max(1);
        let local = n.clock.local(self.now - n.started);
        let next = (local / tick + 1) * tick;
        let at = n.started + n.clock.true_for(next);
        if n.tick_at != Some(at) {
            n.tick_at = Some(at);
            self.queue.push(
                at,
                Ev::Tick {
                    node: i,
                    inc: n.inc,
                },
            );
        }
    }

    /// Puts a message in flight into the slab.
    fn park(&mut self, msg: E::Msg) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(msg);
                slot
            }
            None => {
                self.slab.push(Some(msg));
                (self.slab.len() - 1) as u32
            }
        }
    }

    fn schedule_wake(&mut self, i: usize, at: Nanos) {
        let n = &mut self.nodes[i];
        if n.wake_at.is_none_or(|w| w > at) {
            n.wake_at = Some(at);
            self.queue.push(
                at,
                Ev::Wake {
                    node: i,
                    inc: n.inc,
                },
            );
        }
    }

    /// One turn of node `i`'s driver loop, if it can run now.
    fn run_node(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.nodes[i];
        if n.core.is_none() || n.paused {
            return;
        }
        if now < n.busy_until {
            let at = n.busy_until;
            self.schedule_wake(i, at);
            return;
        }
        let Some(core) = n.core.as_mut() else { return };
        if let Some(&(_, k)) = n.sync_points.last() {
            core.storage_mut().sync_upto(k);
            n.sync_points.clear();
        }
        let take = n.msgs.len().min(DRAIN_MAX);
        self.batch_msgs.extend(n.msgs.drain(..take));
        let take = n.reqs.len().min(DRAIN_MAX);
        self.batch_reqs.extend(n.reqs.drain(..take));
        let mono = u128::from(n.clock.local(now - n.started));
        let clock = n.clock;
        let mut io = SimIo {
            ids: &self.ids,
            now,
            fsync: self.params.fsync,
            disk: &self.case.config.environment.disk,
            rng: &mut n.rng,
            sync_points: &mut n.sync_points,
            sends: &mut self.sends,
            replies: &mut self.replies,
            open: &n.open,
        };
        let r = core.iterate(
            mono,
            || clock.wall_ms(now),
            &mut self.batch_msgs,
            &mut self.batch_reqs,
            &mut io,
        );
        n.busy_until = io.now;
        if let Err(e) = r {
            self.errors.push(format!("{}: {e}", n.id));
        }
        let more = !n.msgs.is_empty() || !n.reqs.is_empty();
        let busy_until = n.busy_until;
        let inc = n.inc;
        let mut sends = std::mem::take(&mut self.sends);
        for (sent, j, msg) in sends.drain(..) {
            if self.nodes[j].core.is_none() {
                // Nothing listens there: the connection is refused, the message lost.
                continue;
            }
            let to_inc = self.nodes[j].inc;
            let arrivals = self.net.transmit(i, j, sent);
            if let Some((&last, rest)) = arrivals.split_last() {
                let flight = |slot| {
                    Ev::Deliver(Flight {
                        from: i,
                        from_inc: inc,
                        sent,
                        to: j,
                        to_inc,
                        slot,
                    })
                };
                for &at in rest {
                    let slot = self.park(msg.clone());
                    self.queue.push(at, flight(slot));
                }
                let slot = self.park(msg);
                self.queue.push(last, flight(slot));
            }
        }
        self.sends = sends;
        let mut replies = std::mem::take(&mut self.replies);
        for (sent, ex, reply) in replies.drain(..) {
            if self.nodes[i].open.remove(&ex) {
                self.respond(ex, i, Answer::Reply(reply), sent);
            }
        }
        self.replies = replies;
        if more {
            self.schedule_wake(i, busy_until.max(now));
        }
        self.schedule_tick(i);
    }
}

// -------------------------------------------------------------------------------------
// Clients: HTTP exchanges, workers, the history

impl<E: Engine> World<'_, E> {
    /// Appends an event at the current time (its index and time are set here).
    fn record(&mut self, mut ev: Event) {
        ev.index = self.history.len() as u64;
        ev.time = self.now - self.t0;
        self.history.push(ev);
    }

    /// Starts an op: records its invoke and sends its first request.
    fn invoke(&mut self, owner: Owner, process: u64, seq: u64, node: usize, op: Op) {
        self.record(event(
            Process::Client(process),
            EventType::Invoke,
            &op,
            op.invoke_value(),
        ));
        self.calls.push(Call {
            owner,
            process,
            seq,
            op,
            attempt: 0,
        });
        self.send_request(self.calls.len() - 1, node);
    }

    fn send_request(&mut self, call: usize, node: usize) {
        let ex = self.exchanges.len() as Token;
        self.exchanges.push(Exchange {
            call,
            node,
            waiting: true,
        });
        let d = self.net.client_delay();
        self.queue.push(self.now + d, Ev::HttpArrive { ex });
        self.queue.push(
            self.now + self.case.config.op_timeout_ms * MS,
            Ev::ClientTimeout { ex },
        );
    }

    fn http_arrive(&mut self, ex: Token) {
        let Exchange {
            call,
            node,
            waiting,
        } = self.exchanges[ex as usize];
        if !waiting {
            return;
        }
        let n = &mut self.nodes[node];
        if n.core.is_none() {
            self.respond(ex, node, Answer::Refused, self.now);
            return;
        }
        let c = &self.calls[call];
        let Some(req) = client::request(&c.op, c.process, c.seq) else {
            self.respond(ex, node, Answer::Refused, self.now);
            return;
        };
        let n = &mut self.nodes[node];
        n.open.insert(ex);
        n.reqs.push_back((req, ex));
        let inc = n.inc;
        self.queue.push(
            self.now + self.params.request_timeout_ns,
            Ev::ServerTimeout { ex, node, inc },
        );
        self.run_node(node);
    }

    /// Node `node` answers exchange `ex` at time `sent`; the answer reaches the client one
    /// client delay later.
    fn respond(&mut self, ex: Token, node: usize, answer: Answer, sent: Nanos) {
        let inc = self.nodes[node].inc;
        let d = self.net.client_delay();
        self.queue.push(
            sent + d,
            Ev::HttpAnswer {
                ex,
                answer: Box::new(answer),
                node,
                inc,
                sent,
            },
        );
    }

    /// The client receives `answer` for exchange `ex`.
    fn answer(&mut self, ex: Token, answer: Answer) {
        let e = &mut self.exchanges[ex as usize];
        if !e.waiting {
            return;
        }
        e.waiting = false;
        let (call, node) = (e.call, e.node);
        let c = &mut self.calls[call];
        match client::classify(&c.op, answer, node, c.attempt, &self.ids) {
            client::Step::Redirect(next) => {
                c.attempt += 1;
                self.send_request(call, next);
            }
            client::Step::Done(done) => self.complete(call, done),
        }
    }

    fn complete(&mut self, call: usize, done: Completion) {
        let c = &self.calls[call];
        let (owner, process, op) = (c.owner, c.process, c.op.clone());
        let retire = done.kind == EventType::Info;
        let mut ev = event(Process::Client(process), done.kind, &op, done.value);
        ev.node = done.node;
        ev.error = done.error;
        self.record(ev);
        match owner {
            Owner::FinalRead => {
                self.final_pending -= 1;
                if self.final_pending == 0 {
                    self.phase = Phase::Over;
                }
            }
            Owner::Worker(w) => {
                if let Some(v) = done.observed {
                    self.latest.insert(op.key().map(str::to_string), v);
                }
                if retire {
                    self.workers[w].process = self.next_process;
                    self.next_process += 1;
                    self.workers[w].seq = 0;
                }
                self.worker_loop(w);
            }
        }
    }

    fn deadline_at(&self) -> Nanos {
        self.t0 + self.case.config.time_limit_ms * MS
    }

    /// The top of a worker's loop (`run_workers`): stop at the deadline, else wait for the
    /// next slot (rate limited) or go on at once.
    fn worker_loop(&mut self, w: usize) {
        let deadline = self.deadline_at();
        if self.now >= deadline {
            self.worker_done(w);
            return;
        }
        match self.period {
            Some(_) => {
                let at = self.workers[w].next.min(deadline).max(self.now);
                self.queue.push(at, Ev::Worker { w });
            }
            None => self.issue(w),
        }
    }

    /// A worker's slot came: issue its next op (or stop at the deadline).
    fn worker_turn(&mut self, w: usize) {
        if self.now >= self.deadline_at() {
            self.worker_done(w);
            return;
        }
        if let Some(p) = self.period {
            let wk = &mut self.workers[w];
            wk.next += p;
            // Don't burst to catch up after a long op.
            if wk.next < self.now {
                wk.next = self.now;
            }
        }
        self.issue(w);
    }

    fn issue(&mut self, w: usize) {
        if let Some(m) = self.case.config.max_ops {
            self.issued += 1;
            if self.issued > m {
                self.worker_done(w);
                return;
            }
        }
        let wk = &mut self.workers[w];
        let mut op = wk.gen.next_op();
        if let Op::Cas { key, from, .. } = &mut op {
            if let Some(v) = self.latest.get(key) {
                *from = *v;
            }
        }
        wk.seq += 1;
        let (process, seq, node) = (wk.process, wk.seq, wk.node);
        self.invoke(Owner::Worker(w), process, seq, node, op);
    }

    fn worker_done(&mut self, w: usize) {
        if !self.workers[w].done {
            self.workers[w].done = true;
            self.maybe_recover();
        }
    }
}

// -------------------------------------------------------------------------------------
// Phases and the nemesis

impl<E: Engine> World<'_, E> {
    /// What node `i` would say to a status request: nothing when down or paused.
    fn status_of(&self, i: usize) -> Option<NodeStatus> {
        let n = &self.nodes[i];
        if n.paused {
            return None;
        }
        let s = n.core.as_ref()?.status();
        Some(NodeStatus {
            role: StatusRole::from_word(s.role.as_str()),
            term: s.term,
            leader: s.leader,
        })
    }

    /// The node claiming leadership with the highest term (the harness's `leader()`).
    fn leader(&self) -> Option<NodeId> {
        (0..self.nodes.len())
            .filter_map(|i| {
                let s = self.status_of(i)?;
                (s.role == StatusRole::Leader).then_some((s.term, i))
            })
            .max_by_key(|(t, _)| *t)
            .map(|(_, i)| self.ids[i].clone())
    }

    /// True when every node answers and names the same leader.
    fn agreed_leader(&self) -> bool {
        let named: BTreeSet<Option<String>> = (0..self.nodes.len())
            .map(|i| self.status_of(i).and_then(|s| s.leader))
            .collect();
        named.len() == 1 && named.iter().next().is_some_and(|l| l.is_some())
    }

    fn all_answer(&self) -> bool {
        (0..self.nodes.len()).all(|i| self.status_of(i).is_some())
    }

    /// Warm-up: wait until every node answers, then (unless leaderless) until they agree
    /// on a leader, at most 10 s, like `run_phases`; then the main phase starts.
    fn ready_poll(&mut self) {
        let ready = self.all_answer() && (self.params.leaderless || self.agreed_leader());
        if !ready && self.now < 10_000 * MS {
            self.queue.push(self.now + 100 * MS, Ev::ReadyPoll);
            return;
        }
        self.t0 = self.now;
        self.phase = Phase::Main;
        let conc = self.workers.len() as u64;
        for w in 0..self.workers.len() {
            let offset = self.period.map_or(0, |p| {
                Duration::from_nanos(p)
                    .mul_f64(w as f64 / conc as f64)
                    .as_nanos() as Nanos
            });
            self.workers[w].next = self.t0 + offset;
            self.worker_loop(w);
        }
        for (i, s) in self.steps.iter().enumerate() {
            self.queue
                .push(self.t0 + s.at.as_nanos() as Nanos, Ev::Nemesis { step: i });
        }
        self.queue.push(self.t0, Ev::StatusPoll);
        self.queue.push(self.deadline_at(), Ev::Deadline);
    }

    fn status_poll(&mut self) {
        if self.phase != Phase::Main || self.now >= self.deadline_at() {
            return;
        }
        let st: Vec<Option<NodeStatus>> =
            (0..self.nodes.len()).map(|i| self.status_of(i)).collect();
        if self.last_status.as_ref() != Some(&st) {
            let status = ClusterStatus {
                nodes: self.ids.iter().cloned().zip(st.iter().cloned()).collect(),
            };
            self.record_nemesis(
                CLUSTER_STATUS_F.into(),
                serde_json::to_value(&status).unwrap_or_default(),
            );
            self.last_status = Some(st);
        }
        self.queue.push(self.now + 200 * MS, Ev::StatusPoll);
    }

    fn record_nemesis(&mut self, f: String, value: serde_json::Value) {
        self.record(Event {
            index: 0,
            time: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f,
            key: None,
            value,
            node: None,
            error: None,
        });
    }

    fn nemesis_step(&mut self, i: usize) {
        if self.phase != Phase::Main {
            return;
        }
        let step = self.steps[i].clone();
        match step.action {
            StepAction::Start(fault) => {
                self.fallback = self.fallback.wrapping_add(1);
                let kind = fault.kind();
                if let Some(old) = self.active.remove(&kind) {
                    // A script may start a kind that is active: stop the old one first.
                    self.undo(&old);
                    let v = serde_json::to_value(&old).unwrap_or_default();
                    self.record_nemesis(kind.stop_f(), v);
                }
                let leader = self.leader();
                let fallback = self.ids[self.fallback % self.ids.len()].clone();
                let resolved = fault.resolve(&self.ids, leader.as_deref(), &fallback);
                self.apply(&resolved);
                let v = serde_json::to_value(&resolved).unwrap_or_default();
                self.record_nemesis(kind.start_f(), v);
                self.applied.push(Step {
                    at: step.at,
                    action: StepAction::Start(resolved.clone()),
                });
                self.active.insert(kind, resolved);
            }
            StepAction::Stop(kind) => {
                if let Some(f) = self.active.remove(&kind) {
                    self.undo(&f);
                    let v = serde_json::to_value(&f).unwrap_or_default();
                    self.record_nemesis(kind.stop_f(), v);
                    self.applied.push(step);
                }
            }
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.ids.iter().position(|x| x == id)
    }

    fn targets(&self, f: &Fault) -> Vec<usize> {
        f.nodes().iter().filter_map(|n| self.index(n)).collect()
    }

    fn apply(&mut self, f: &Fault) {
        let targets = self.targets(f);
        match f {
            Fault::Partition { grudge, .. } => self.net.set_grudge(&self.ids, grudge),
            Fault::Kill { .. } => {
                for i in targets {
                    self.crash(i);
                }
            }
            Fault::Pause { .. } => {
                for i in targets {
                    if self.nodes[i].core.is_some() {
                        self.nodes[i].paused = true;
                    }
                }
            }
            Fault::Clock { op, .. } => match *op {
                ClockOp::Bump { delta_ms } => {
                    for i in targets {
                        self.nodes[i].clock.fault_ms = delta_ms;
                    }
                }
                ClockOp::Strobe { .. } => {
                    self.strobe_gen += 1;
                    for i in targets {
                        let gen = self.strobe_gen;
                        self.queue.push(
                            self.now,
                            Ev::Strobe {
                                node: i,
                                gen,
                                on: true,
                            },
                        );
                    }
                }
            },
            Fault::Packet { delay_ms, loss, .. } => self.net.set_packet(&targets, *delay_ms, *loss),
            // Refused when the simulation is configured (`faultline sim --nemesis member`):
            // the simulated cluster has a fixed membership.
            Fault::Member { .. } => {}
        }
    }

    fn undo(&mut self, f: &Fault) {
        match f.kind() {
            FaultKind::Partition => self.net.heal(),
            FaultKind::Kill => {
                for i in self.targets(f) {
                    self.schedule_restart(i);
                }
            }
            FaultKind::Pause => {
                for i in self.targets(f) {
                    self.resume(i);
                }
            }
            FaultKind::Clock => {
                self.strobe_gen += 1;
                for n in &mut self.nodes {
                    n.clock.fault_ms = 0;
                }
            }
            FaultKind::Packet => self.net.clear_packet(),
            FaultKind::Member => {}
        }
    }

    fn schedule_restart(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if n.core.is_some() || !n.killed {
            return;
        }
        n.killed = false;
        let r = &self.case.config.environment.restart;
        let ms = n.rng.gen_range(r.min_ms..=r.max_ms.max(r.min_ms));
        self.queue.push(self.now + ms * MS, Ev::Restart { node: i });
    }

    fn resume(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        if !n.paused {
            return;
        }
        n.paused = false;
        let inc = n.inc;
        for ex in std::mem::take(&mut n.deferred) {
            self.queue
                .push(self.now, Ev::ServerTimeout { ex, node: i, inc });
        }
        self.run_node(i);
    }

    /// The end of the main phase: every active fault is stopped (and recorded), then
    /// everything is healed; workers finish the op they are in.
    fn deadline(&mut self) {
        self.phase = Phase::Draining;
        for (kind, f) in std::mem::take(&mut self.active) {
            self.undo(&f);
            let v = serde_json::to_value(&f).unwrap_or_default();
            self.record_nemesis(kind.stop_f(), v);
        }
        self.net.heal();
        self.net.clear_packet();
        self.strobe_gen += 1;
        for i in 0..self.nodes.len() {
            self.nodes[i].clock.fault_ms = 0;
            self.resume(i);
            self.schedule_restart(i);
        }
        self.maybe_recover();
    }

    fn maybe_recover(&mut self) {
        if self.phase == Phase::Draining && self.workers.iter().all(|w| w.done) {
            self.phase = Phase::Recovering;
            self.recovery_started = self.now;
            self.recovery_poll();
        }
    }

    /// Waits (polling every 100 ms, at most 15 s) until the cluster serves again, then
    /// reads every key on every node.
    fn recovery_poll(&mut self) {
        if self.phase != Phase::Recovering {
            return;
        }
        let ok = if self.params.leaderless {
            self.all_answer()
        } else {
            self.agreed_leader()
        };
        if !ok && self.now < self.recovery_started + 15_000 * MS {
            self.queue.push(self.now + 100 * MS, Ev::RecoveryPoll);
            return;
        }
        self.phase = Phase::FinalReads;
        // Register and kv only (Simulator::new): their final reads do not depend on the count.
        let reads = self.case.config.workload.final_ops(0);
        for node in 0..self.nodes.len() {
            for op in &reads {
                self.final_pending += 1;
                let process = self.next_process;
                self.next_process += 1;
                self.invoke(Owner::FinalRead, process, 1, node, op.clone());
            }
        }
        if self.final_pending == 0 {
            self.phase = Phase::Over;
        }
    }
}

/// A client event of `op` (index and time are set by [`World::record`]).
fn event(process: Process, kind: EventType, op: &Op, value: serde_json::Value) -> Event {
    Event {
        index: 0,
        time: 0,
        process,
        kind,
        f: op.f().into(),
        key: op.key().map(String::from),
        value,
        node: None,
        error: None,
    }
}
