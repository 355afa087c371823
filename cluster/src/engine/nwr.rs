//! The NWR engine: leaderless, Dynamo-style quorum replication with last-writer-wins.
//!
//! Algorithm: DeCandia et al., "Dynamo: Amazon's Highly Available Key-value Store" (SOSP
//! 2007), sections 4.2 (consistent-hashing placement, preference list of N nodes) and 4.5
//! (sloppy-free quorums: a write waits for W replica acks, a read for R replies); the
//! staleness this produces when W+R<=N is what Bailis et al., "Probabilistically Bounded
//! Staleness for Practical Partial Quorums" (PBS, VLDB 2012) predicts and what faultline's
//! `checkers::nwr` measures. Timestamps come from either the coordinator's wall clock
//! (`--clock wall`: skew reorders and loses writes, on purpose) or a hybrid logical clock
//! (`--clock hybrid`: Kulkarni et al., "Logical Physical Clocks and Consistent Snapshots
//! in Globally Distributed Databases", OPODIS 2014).
//!
//! This module is the protocol only (pure, no I/O, see `engine/mod.rs`); the driver,
//! storage, transport and HTTP layers are the shared ones. It never emits
//! [`Ready::committed`]: every node answers its own clients through [`Ready::replies`].
//!
//! # Roles
//!
//! Every node is both a *coordinator* (for client requests it receives) and a *replica*
//! (for the keys placed on it). `/status` reports role `leader`, `leader: null` and term 0
//! on every node: the role means "accepts client writes", which every NWR node does, and
//! there is no single leader to name. `commit_index` is the number of keys this node stores
//! as a replica.
//!
//! # Placement
//!
//! When N equals the cluster size every node replicates every key. Otherwise each node id
//! gets [`VNODES`] points on a 64-bit ring at `fnv1a("<id>#<i>")`; a key's replicas are the
//! first N distinct nodes met walking clockwise from `fnv1a(key)`. FNV-1a is fixed here (not
//! `std`'s hasher) so every node, every build and every test computes the same placement.
//!
//! # Requests
//!
//! - write: the coordinator stamps the value with a [`Ts`], sends it to all N replicas
//!   (itself included, locally, if it is one) and answers `Ok` after W replicas acknowledged;
//!   a replica acknowledges only after the version is durable ([`Ready::persisted_messages`];
//!   the coordinator counts its own copy at [`Engine::advance`]). A replica keeps a version
//!   only if its timestamp is greater than the stored one (LWW) but acknowledges either way.
//!   No W acks before the deadline: 504 ([`Reply::Unknown`]) — some replicas may hold it,
//!   and in a leaderless system "too few replicas reachable" is not knowable up front.
//! - read: sent to all N replicas (Dynamo and the PBS WARS model do the same); after R
//!   replies the value with the greatest timestamp is returned (a missing key counts as the
//!   oldest). Replies also leave only after the replica's storage is durable, so a read never
//!   returns a version a crash can take back. No R replies before the deadline: 503
//!   ([`Reply::Unavailable`]), a definite failure, since a read has no effect.
//! - read repair (`--read-repair`): the newest version is pushed to the replicas whose reply
//!   (among those counted) was older.
//! - `--read-writeback` (ABD: Attiya, Bar-Noy and Dolev, "Sharing Memory Robustly in
//!   Message-Passing Systems", JACM 1995, multi-writer form): a write first asks R replicas
//!   for their timestamps and stamps its version above the highest one it hears (so a write
//!   that starts after another finished orders after it, whatever the clocks say); a read,
//!   after its R replies, writes the newest version back and waits for W acks before
//!   answering (so a later read cannot see an older value), unless W of the replies already
//!   hold it. With W+R>N this makes the register linearizable; plain LWW quorums are not
//!   (a read may see a write that a later read misses, while the write is still spreading).
//!   The price: a second round trip on every write, and on reads that see a replica behind.
//! - CAS: [`Reply::Unsupported`] (501). LWW registers cannot compare-and-set.
//! - transactions ([`Op::Txn`]): each micro-op runs on its own quorums, one after the other,
//!   with no isolation and no atomicity — the point of comparison for the transaction
//!   checkers. `r` is a read; `w` a write; `append`, `add` and `expect` read first, then
//!   (`append`, `add`) write the new whole value with a fresh timestamp, so concurrent
//!   appends to one key overwrite each other (LWW) and a transaction's writes become visible
//!   one by one. Outcome: all micro-ops done → the results; a failure before any write was
//!   sent → definite (503 for a read quorum missed, 409 for an `expect` that did not hold or
//!   a type error); after a write was sent → unknown (504): it is partly applied.
//!
//! Timestamps are totally ordered by `(l, c, node)`: `node` is the coordinator that stamped
//! the write, so concurrent writes with equal clock readings tie-break deterministically by
//! writer id, and every replica picks the same winner.
//!
//! # Retries with the same (client_id, seq)
//!
//! The danger: a write of `v` times out after reaching a minority, another client writes
//! `v'`, and the retry of `v` gets a *new, later* timestamp; a reader could then observe
//! `v`, `v'`, `v` — one write seen twice around another. Choices made:
//!
//! 1. The coordinator remembers, per client, the last (seq, timestamp) it stamped; a retry
//!    through the same node re-sends the *same* version (same timestamp), which is
//!    idempotent at every replica. A retry with an older seq answers 504 without writing
//!    (as the Raft state machine does).
//! 2. A replica that already stores a version written by the same (client_id, seq) keeps it
//!    (its original timestamp) instead of taking the retry's.
//!
//! Residual risk, documented rather than solved: a retry through a *different* coordinator
//! after a partial first attempt can still create a second timestamp for the same value.
//! Preventing that needs a probe round before every tagged write (one extra round trip on
//! every write) or a per-client fence at all N replicas. faultline's harness never retries a
//! write (an unknown outcome ends the process, Jepsen-style), so it cannot trigger this.
//!
//! # Clocks
//!
//! `wall`: `l` = the wall-clock millisecond passed to the last [`Engine::tick`] or
//! [`Engine::observe_wall`] (the driver reads the clock when client requests arrive), `c` a
//! per-node counter that only grows (uniqueness when several writes share a millisecond).
//! Nothing corrects skew: a coordinator whose clock runs ahead makes its writes win over
//! later writes from others — the anomaly the harness must catch.
//!
//! `hybrid`: an HLC. Every message carries the sender's `(l, c)`; sends/stamps and receives
//! follow Kulkarni et al.'s rules, and every [`EngineConfig::heartbeat_ticks`] each node
//! sends its clock to its peers, so a write that starts after another was acknowledged (and
//! after one gossip interval, or after any message exchange) gets a greater timestamp even
//! if physical clocks disagree. Within one gossip interval and with no message between
//! them, two coordinators' writes are ordered by their physical clocks read when the
//! requests arrived, so on synchronised clocks a write that begins a millisecond after
//! another was acknowledged still gets the greater timestamp.
//!
//! # Durability
//!
//! Each key a replica stores is one [`Entry`] (index = a per-key slot, payload =
//! [`Payload::Engine`] holding a JSON [`Version`], `term` = the timestamp's `l`); a new
//! version rewrites the entry at the same index. The hard state holds a boot epoch, bumped
//! on every start, that makes request ids unique across restarts so late replies to a dead
//! incarnation's requests are ignored. After restart the clock starts no lower than the
//! greatest stored timestamp.

use super::{Engine, EngineConfig, Outbound, Ready, Role, Status};
use crate::msg::{Command, Entry, MicroOp, NodeId, Op, Payload, Reply, ReqId, TxnAbort, Value};
use crate::storage::Recovered;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Virtual nodes per node id on the consistent-hashing ring.
pub const VNODES: usize = 16;

/// Most clients whose last (seq, timestamp) a coordinator remembers; past it the table is
/// cleared (a forgotten client's retry is then stamped afresh).
const DEDUP_CLIENTS: usize = 100_000;

/// Which clock stamps writes (`--clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// The coordinator's wall clock (UNSAFE under skew: last-writer-wins loses writes).
    Wall,
    /// A hybrid logical clock (Kulkarni et al.).
    Hybrid,
}

/// NWR-specific settings (`--n --w --r --read-repair --clock`).
#[derive(Debug, Clone)]
pub struct NwrConfig {
    /// Replicas per key.
    pub n: usize,
    /// Replica acks a write waits for.
    pub w: usize,
    /// Replica replies a read waits for.
    pub r: usize,
    /// Push the newest version to stale replicas that answered a read.
    pub read_repair: bool,
    /// ABD: writes query timestamps first, reads write back before answering.
    pub read_writeback: bool,
    /// Timestamp source.
    pub clock: ClockMode,
    /// Request deadline in ticks; past it writes answer unknown, reads fail.
    pub request_ticks: u64,
}

impl NwrConfig {
    /// N = W = R defaults to a cluster of `cluster_size` with majority quorums.
    pub fn majority(cluster_size: usize) -> Self {
        let q = cluster_size / 2 + 1;
        NwrConfig {
            n: cluster_size,
            w: q,
            r: q,
            read_repair: false,
            read_writeback: false,
            clock: ClockMode::Hybrid,
            request_ticks: 80,
        }
    }

    /// Checks N, W and R against the cluster size; the error names the offending flag.
    pub fn validate(&self, cluster_size: usize) -> Result<(), NwrError> {
        if self.n == 0 || self.n > cluster_size {
            return Err(NwrError::Config(format!(
                "--n {} is out of range: it must be between 1 and the cluster size {cluster_size}",
                self.n
            )));
        }
        for (flag, v) in [("--w", self.w), ("--r", self.r)] {
            if v == 0 || v > self.n {
                return Err(NwrError::Config(format!(
                    "{flag} {v} is out of range: it must be between 1 and --n {}",
                    self.n
                )));
            }
        }
        if self.request_ticks == 0 {
            return Err(NwrError::Config(
                "the request deadline must be at least one tick".into(),
            ));
        }
        Ok(())
    }
}

/// Errors constructing the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NwrError {
    /// Invalid N/W/R settings.
    #[error("{0}")]
    Config(String),
    /// Stored state could not be decoded.
    #[error("undecodable NWR state at log index {index}: {reason}")]
    Storage {
        /// Entry index (0 = hard state).
        index: u64,
        /// Why.
        reason: String,
    },
}

/// A write timestamp: clock reading `(l, c)` plus the coordinator that stamped it. Ordered
/// lexicographically, so it is a total order across the cluster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ts {
    /// Physical part (ms since the epoch; for HLC the max physical time seen).
    pub l: u64,
    /// Logical part.
    pub c: u64,
    /// Writer (coordinator) id: the deterministic tie-break.
    pub node: NodeId,
}

/// One stored value with its timestamp and the client request that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// LWW timestamp.
    pub ts: Ts,
    /// (client_id, seq) of the write, if the client gave them (retry de-duplication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<(String, u64)>,
}

/// NWR peer messages. `clock` is the sender's clock `(l, c)` (used in hybrid mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NwrMsg {
    /// Sender's clock reading at send time.
    pub clock: (u64, u64),
    /// What it says.
    pub body: Body,
}

/// The body of an [`NwrMsg`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    /// Coordinator -> replica: store this version if newer; ack after it is durable.
    /// `id` 0 means no ack is awaited (read repair).
    Write {
        /// Coordinator request id.
        id: u64,
        /// The version.
        version: Version,
    },
    /// Replica -> coordinator: the version (or a newer one) is durable here.
    WriteAck {
        /// Request id.
        id: u64,
    },
    /// Coordinator -> replica: send your version of `key`.
    Read {
        /// Request id.
        id: u64,
        /// Key.
        key: String,
    },
    /// Replica -> coordinator: the durable version (None: key never written here).
    ReadReply {
        /// Request id.
        id: u64,
        /// Stored version.
        version: Option<Version>,
    },
    /// Hybrid-clock gossip: carries nothing but the envelope's clock.
    Clock,
}

#[derive(Debug)]
struct PendingWrite {
    req: ReqId,
    acks: BTreeSet<NodeId>,
    deadline: u64,
    /// What the client gets once W replicas acknowledged: `Ok` for a write, the value for
    /// a read's write-back (`--read-writeback`).
    answer: Reply,
}

/// A write asking R replicas for their timestamps before stamping (`--read-writeback`).
#[derive(Debug)]
struct PendingQuery {
    req: ReqId,
    key: String,
    value: Value,
    writer: Option<(String, u64)>,
    replies: BTreeMap<NodeId, Option<Version>>,
    deadline: u64,
}

#[derive(Debug)]
struct PendingRead {
    req: ReqId,
    key: String,
    replies: BTreeMap<NodeId, Option<Version>>,
    deadline: u64,
}

/// Request ids at or above this are a transaction's micro-op requests, whose replies go to
/// the transaction rather than to a client (the driver's ids count up from 1).
const TXN_SUB: ReqId = 1 << 63;

/// A transaction running its micro-ops one at a time ([`Op::Txn`]).
#[derive(Debug)]
struct PendingTxn {
    req: ReqId,
    ops: Vec<MicroOp>,
    /// The micro-op in progress.
    at: usize,
    /// Whether the micro-op in progress is in its write step (else its read step).
    writing: bool,
    results: Vec<Option<Value>>,
    /// Whether a write of an earlier micro-op was acknowledged: from then on a failure
    /// leaves the transaction partly applied.
    wrote: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct HardState {
    epoch: u64,
}

/// The NWR engine; see the module documentation.
#[derive(Debug)]
pub struct Nwr {
    id: NodeId,
    peers: Vec<NodeId>,
    cfg: NwrConfig,
    heartbeat_ticks: u64,
    /// Sorted ring of (hash, node) points; empty when N = cluster size.
    ring: Vec<(u64, NodeId)>,
    /// All node ids, sorted (the replica set when N = cluster size).
    all: Vec<NodeId>,
    /// Replica state: key -> (entry index, version).
    store: HashMap<String, (u64, Version)>,
    next_index: u64,
    /// Clock state `(l, c)` (HLC, or wall ms + uniqueness counter).
    l: u64,
    c: u64,
    /// Last wall-clock reading from `tick`.
    wall: u64,
    ticks: u64,
    epoch: u64,
    next_id: u64,
    writes: HashMap<u64, PendingWrite>,
    reads: HashMap<u64, PendingRead>,
    queries: HashMap<u64, PendingQuery>,
    /// client_id -> (seq, timestamp stamped for it).
    dedup: HashMap<String, (u64, Ts)>,
    /// Transactions by the request id of their micro-op in flight.
    txns: HashMap<ReqId, PendingTxn>,
    next_sub: ReqId,
    /// Outputs collected for the next Ready.
    rd: Ready<NwrMsg>,
    /// This node's own replica replies, delivered at `advance` (after persistence).
    self_replies: Vec<Body>,
    /// Self replies handed out with the current Ready, awaiting `advance`.
    in_flight_self: Vec<Body>,
}

/// FNV-1a, 64 bit: the fixed hash behind placement.
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The replicas of `key` among `nodes` for replication factor `n` (see the module doc).
pub fn placement(nodes: &[NodeId], n: usize, key: &str) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = nodes.to_vec();
    all.sort();
    all.dedup();
    if n >= all.len() {
        return all;
    }
    let ring = build_ring(&all);
    walk_ring(&ring, n, key)
}

fn build_ring(all: &[NodeId]) -> Vec<(u64, NodeId)> {
    let mut ring: Vec<(u64, NodeId)> = all
        .iter()
        .flat_map(|id| (0..VNODES).map(move |i| (fnv1a(&format!("{id}#{i}")), id.clone())))
        .collect();
    ring.sort();
    ring
}

fn walk_ring(ring: &[(u64, NodeId)], n: usize, key: &str) -> Vec<NodeId> {
    let h = fnv1a(key);
    let start = ring.partition_point(|(p, _)| *p < h);
    let mut out: Vec<NodeId> = Vec::with_capacity(n);
    for i in 0..ring.len() {
        let node = &ring[(start + i) % ring.len()].1;
        if !out.contains(node) {
            out.push(node.clone());
            if out.len() == n {
                break;
            }
        }
    }
    out
}

impl Nwr {
    /// Builds the engine from its configuration and whatever storage recovered.
    pub fn new(cfg: EngineConfig, nwr: NwrConfig, recovered: Recovered) -> Result<Nwr, NwrError> {
        let mut all: Vec<NodeId> = cfg.peers.clone();
        all.push(cfg.id.clone());
        all.sort();
        all.dedup();
        nwr.validate(all.len())?;
        let hs: HardState = match &recovered.hard_state {
            Some(b) => serde_json::from_slice(b).map_err(|e| NwrError::Storage {
                index: 0,
                reason: e.to_string(),
            })?,
            None => HardState::default(),
        };
        let mut store = HashMap::new();
        let mut next_index = 1;
        let (mut l, mut c) = (0, 0);
        for (idx, e) in &recovered.entries {
            let Payload::Engine(bytes) = &e.payload else {
                return Err(NwrError::Storage {
                    index: *idx,
                    reason: "not an NWR version entry".into(),
                });
            };
            let v: Version = serde_json::from_slice(bytes).map_err(|e| NwrError::Storage {
                index: *idx,
                reason: e.to_string(),
            })?;
            if (v.ts.l, v.ts.c) > (l, c) {
                (l, c) = (v.ts.l, v.ts.c);
            }
            next_index = next_index.max(idx + 1);
            store.insert(v.key.clone(), (*idx, v));
        }
        let ring = if nwr.n < all.len() {
            build_ring(&all)
        } else {
            Vec::new()
        };
        let epoch = hs.epoch + 1;
        let rd = Ready {
            hard_state: Some(serde_json::to_vec(&HardState { epoch }).expect("serializes")),
            sync: true,
            ..Ready::default()
        };
        Ok(Nwr {
            id: cfg.id,
            peers: cfg.peers,
            cfg: nwr,
            heartbeat_ticks: cfg.heartbeat_ticks.max(1),
            ring,
            all,
            store,
            next_index,
            l,
            c,
            wall: 0,
            ticks: 0,
            epoch,
            next_id: 0,
            writes: HashMap::new(),
            reads: HashMap::new(),
            queries: HashMap::new(),
            dedup: HashMap::new(),
            txns: HashMap::new(),
            next_sub: TXN_SUB,
            rd,
            self_replies: Vec::new(),
            in_flight_self: Vec::new(),
        })
    }

    /// The replicas of `key` in this cluster.
    pub fn replicas(&self, key: &str) -> Vec<NodeId> {
        if self.ring.is_empty() {
            self.all.clone()
        } else {
            walk_ring(&self.ring, self.cfg.n, key)
        }
    }

    /// The version of `key` this node stores as a replica (tests, debugging).
    pub fn stored(&self, key: &str) -> Option<&Version> {
        self.store.get(key).map(|(_, v)| v)
    }

    /// The current clock reading `(l, c)`.
    pub fn clock(&self) -> (u64, u64) {
        (self.l, self.c)
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        (self.epoch << 32) | (self.next_id & 0xffff_ffff)
    }

    /// A local or send event: advances the clock and returns a fresh timestamp.
    fn stamp(&mut self) -> Ts {
        match self.cfg.clock {
            ClockMode::Wall => {
                self.l = self.wall;
                self.c += 1;
            }
            ClockMode::Hybrid => {
                let l = self.l.max(self.wall);
                if l == self.l {
                    self.c += 1;
                } else {
                    self.l = l;
                    self.c = 0;
                }
            }
        }
        Ts {
            l: self.l,
            c: self.c,
            node: self.id.clone(),
        }
    }

    /// HLC receive rule (hybrid mode only).
    fn observe(&mut self, (lm, cm): (u64, u64)) {
        if self.cfg.clock != ClockMode::Hybrid {
            return;
        }
        let l = self.l.max(lm).max(self.wall);
        self.c = if l == self.l && l == lm {
            self.c.max(cm) + 1
        } else if l == self.l {
            self.c + 1
        } else if l == lm {
            cm + 1
        } else {
            0
        };
        self.l = l;
    }

    fn send(&mut self, to: &str, body: Body, after_persist: bool) {
        let msg = NwrMsg {
            clock: (self.l, self.c),
            body,
        };
        let out = Outbound {
            to: to.to_string(),
            msg,
        };
        if after_persist {
            self.rd.persisted_messages.push(out);
        } else {
            self.rd.messages.push(out);
        }
    }

    /// Replica side of a write: keep `v` if it is newer (LWW). Returns whether it was stored.
    fn store_version(&mut self, v: Version) -> bool {
        if let Some((_, cur)) = self.store.get(&v.key) {
            let same_request =
                cur.writer.is_some() && cur.writer == v.writer && cur.value == v.value;
            if same_request || cur.ts >= v.ts {
                return false;
            }
        }
        if self.cfg.clock == ClockMode::Hybrid {
            self.observe((v.ts.l, v.ts.c));
        }
        let index = match self.store.get(&v.key) {
            Some((i, _)) => *i,
            None => {
                let i = self.next_index;
                self.next_index += 1;
                i
            }
        };
        self.rd.entries.push(Entry {
            index,
            term: v.ts.l,
            payload: Payload::Engine(serde_json::to_vec(&v).expect("serializes")),
        });
        self.rd.sync = true;
        self.store.insert(v.key.clone(), (index, v));
        true
    }

    fn start_write(
        &mut self,
        req: ReqId,
        key: String,
        value: Value,
        writer: Option<(String, u64)>,
    ) {
        let retry = writer
            .as_ref()
            .and_then(|(client, seq)| self.dedup.get(client).map(|(s, _)| s == seq))
            .unwrap_or(false);
        if self.cfg.read_writeback && !retry {
            // ABD phase 1: learn the highest timestamp a read quorum holds.
            let id = self.new_id();
            self.ask_replicas(id, &key);
            self.queries.insert(
                id,
                PendingQuery {
                    req,
                    key,
                    value,
                    writer,
                    replies: BTreeMap::new(),
                    deadline: self.ticks + self.cfg.request_ticks,
                },
            );
            return;
        }
        self.stamp_and_write(req, key, value, writer);
    }

    /// Stamps the version (or reuses a retry's timestamp) and sends it to every replica.
    fn stamp_and_write(
        &mut self,
        req: ReqId,
        key: String,
        value: Value,
        writer: Option<(String, u64)>,
    ) {
        let ts = match &writer {
            Some((client, seq)) => match self.dedup.get(client) {
                Some((s, ts)) if s == seq => ts.clone(),
                Some((s, _)) if s > seq => {
                    self.rd.replies.push((req, Reply::Unknown));
                    return;
                }
                _ => {
                    let ts = self.stamp();
                    if self.dedup.len() >= DEDUP_CLIENTS {
                        self.dedup.clear();
                    }
                    self.dedup.insert(client.clone(), (*seq, ts.clone()));
                    ts
                }
            },
            None => self.stamp(),
        };
        let version = Version {
            key,
            value,
            ts,
            writer,
        };
        self.replicate(req, version, Reply::Ok);
    }

    /// Sends `version` to every replica; `answer` goes to the client after W acks.
    fn replicate(&mut self, req: ReqId, version: Version, answer: Reply) {
        let id = self.new_id();
        let replicas = self.replicas(&version.key);
        for r in &replicas {
            if *r == self.id {
                self.store_version(version.clone());
                self.self_replies.push(Body::WriteAck { id });
            } else {
                let body = Body::Write {
                    id,
                    version: version.clone(),
                };
                self.send(r, body, false);
            }
        }
        self.writes.insert(
            id,
            PendingWrite {
                req,
                acks: BTreeSet::new(),
                deadline: self.ticks + self.cfg.request_ticks,
                answer,
            },
        );
    }

    fn start_read(&mut self, req: ReqId, key: String) {
        let id = self.new_id();
        self.ask_replicas(id, &key);
        self.reads.insert(
            id,
            PendingRead {
                req,
                key,
                replies: BTreeMap::new(),
                deadline: self.ticks + self.cfg.request_ticks,
            },
        );
    }

    /// Asks every replica of `key` for its version under request `id`.
    fn ask_replicas(&mut self, id: u64, key: &str) {
        for r in self.replicas(key) {
            if r == self.id {
                let version = self.stored(key).cloned();
                self.self_replies.push(Body::ReadReply { id, version });
            } else {
                let body = Body::Read {
                    id,
                    key: key.to_string(),
                };
                self.send(&r, body, false);
            }
        }
    }

    /// ABD phase 2 of a write: stamp above every timestamp the read quorum reported.
    fn finish_query(&mut self, q: PendingQuery) {
        if let Some(top) = q.replies.values().flatten().map(|v| v.ts.clone()).max() {
            // Move this node's clock past the highest timestamp, whatever the clock mode:
            // the next stamp is then strictly greater.
            if (top.l, top.c) >= (self.l, self.c) {
                self.l = top.l;
                self.c = top.c;
            }
            if self.cfg.clock == ClockMode::Wall {
                // Wall stamps take `l` from the wall clock; keep it from going back below
                // what the quorum has seen.
                self.wall = self.wall.max(top.l);
            }
        }
        self.stamp_and_write(q.req, q.key, q.value, q.writer);
    }

    /// Coordinator side: a replica's reply arrived (from a peer or from this node itself).
    fn on_reply(&mut self, from: &str, body: Body) {
        match body {
            Body::WriteAck { id } => {
                let done = match self.writes.get_mut(&id) {
                    Some(w) => {
                        w.acks.insert(from.to_string());
                        w.acks.len() >= self.cfg.w
                    }
                    None => false,
                };
                if done {
                    let w = self.writes.remove(&id).expect("present");
                    self.rd.replies.push((w.req, w.answer));
                }
            }
            Body::ReadReply { id, version } if self.queries.contains_key(&id) => {
                let q = self.queries.get_mut(&id).expect("present");
                q.replies.insert(from.to_string(), version);
                if q.replies.len() >= self.cfg.r {
                    let q = self.queries.remove(&id).expect("present");
                    self.finish_query(q);
                }
            }
            Body::ReadReply { id, version } => {
                let done = match self.reads.get_mut(&id) {
                    Some(r) => {
                        r.replies.insert(from.to_string(), version);
                        r.replies.len() >= self.cfg.r
                    }
                    None => false,
                };
                if done {
                    let r = self.reads.remove(&id).expect("present");
                    self.finish_read(r);
                }
            }
            _ => {}
        }
    }

    fn finish_read(&mut self, r: PendingRead) {
        let newest = r
            .replies
            .values()
            .flatten()
            .max_by(|a, b| a.ts.cmp(&b.ts))
            .cloned();
        if self.cfg.read_writeback {
            if let Some(v) = &newest {
                let holders = r
                    .replies
                    .values()
                    .flatten()
                    .filter(|x| x.ts == v.ts)
                    .count();
                if holders < self.cfg.w {
                    // ABD phase 2 of a read: make sure a write quorum holds what we return.
                    let answer = Reply::Value(Some(v.value.clone()));
                    self.replicate(r.req, v.clone(), answer);
                    return;
                }
            }
        }
        self.rd.replies.push((
            r.req,
            Reply::Value(newest.as_ref().map(|v| v.value.clone())),
        ));
        let Some(newest) = newest else {
            return;
        };
        if !self.cfg.read_repair {
            return;
        }
        for (node, v) in &r.replies {
            let stale = v.as_ref().is_none_or(|v| v.ts < newest.ts);
            if !stale {
                continue;
            }
            if *node == self.id {
                self.store_version(newest.clone());
            } else {
                let body = Body::Write {
                    id: 0,
                    version: newest.clone(),
                };
                self.send(node, body, false);
            }
        }
        debug_assert_eq!(newest.key, r.key);
    }
}

impl Nwr {
    fn start_txn(&mut self, req: ReqId, ops: Vec<MicroOp>) {
        let t = PendingTxn {
            req,
            results: vec![None; ops.len()],
            ops,
            at: 0,
            writing: false,
            wrote: false,
        };
        self.run_micro_op(t);
    }

    /// Starts the micro-op at `t.at` (or answers the client when none is left).
    fn run_micro_op(&mut self, mut t: PendingTxn) {
        let Some(m) = t.ops.get(t.at).cloned() else {
            self.rd.replies.push((t.req, Reply::Txn(t.results)));
            return;
        };
        let sub = self.next_sub;
        self.next_sub += 1;
        match m {
            MicroOp::Write { key, value } => {
                t.writing = true;
                self.start_write(sub, key, value, None);
            }
            other => {
                t.writing = false;
                self.start_read(sub, other.key().to_string());
            }
        }
        self.txns.insert(sub, t);
    }

    /// Ends `t` after a failed micro-op: definite if nothing was written yet, else unknown.
    fn fail_txn(&mut self, t: PendingTxn, definite: Reply) {
        let reply = if t.wrote { Reply::Unknown } else { definite };
        self.rd.replies.push((t.req, reply));
    }

    /// One micro-op request of `t` answered.
    fn txn_step(&mut self, mut t: PendingTxn, reply: Reply) {
        let at = t.at;
        let key = t.ops[at].key().to_string();
        let abort = |reason, message| {
            Reply::TxnAborted(TxnAbort {
                reason,
                op: Some(at),
                message,
            })
        };
        if t.writing {
            match reply {
                Reply::Ok => {
                    t.wrote = true;
                    t.at += 1;
                    self.run_micro_op(t);
                }
                // A write quorum missed: some replicas may hold this write.
                Reply::Unknown => self.fail_txn(t, Reply::Unknown),
                // Definitely not sent (`--read-writeback`'s timestamp query failed).
                other => self.fail_txn(t, other),
            }
            return;
        }
        let cur = match reply {
            Reply::Value(v) => v,
            other => return self.fail_txn(t, other),
        };
        if let MicroOp::Read { .. } = &t.ops[at] {
            t.results[at] = cur.clone();
        }
        let write = match t.ops[at].next_value(cur.as_ref()) {
            Ok(w) => w,
            Err((reason, message)) => return self.fail_txn(t, abort(reason, message)),
        };
        match write {
            Some(value) => {
                let sub = self.next_sub;
                self.next_sub += 1;
                t.writing = true;
                self.start_write(sub, key, value, None);
                self.txns.insert(sub, t);
            }
            None => {
                t.at += 1;
                self.run_micro_op(t);
            }
        }
    }

    /// Hands the replies to transactions' micro-op requests to their transactions (which may
    /// start further requests, answered later, or finish and answer their clients).
    fn pump_txns(&mut self) {
        while self.rd.replies.iter().any(|(r, _)| *r >= TXN_SUB) {
            let (subs, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.rd.replies)
                .into_iter()
                .partition(|(r, _)| *r >= TXN_SUB);
            self.rd.replies = rest;
            for (sub, reply) in subs {
                if let Some(t) = self.txns.remove(&sub) {
                    self.txn_step(t, reply);
                }
            }
        }
    }
}

impl Engine for Nwr {
    type Msg = NwrMsg;

    fn name(&self) -> &'static str {
        "nwr"
    }

    fn tick(&mut self, wall_ms: u64) {
        self.ticks += 1;
        self.wall = wall_ms;
        let now = self.ticks;
        // Sorted: replies leave in request order, not in the hash map's (per-process
        // random) order, so a seed replays exactly.
        let mut expired: Vec<u64> = self
            .writes
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in expired {
            let w = self.writes.remove(&id).expect("present");
            let reply = match w.answer {
                // Some replicas may hold the write: its outcome is unknown.
                Reply::Ok => Reply::Unknown,
                // A read's write-back spreads a value that was already written: the read
                // itself had no effect, so it definitely failed.
                _ => Reply::Unavailable(format!(
                    "read write-back quorum not reached: {} of W={} replicas acknowledged in time",
                    w.acks.len(),
                    self.cfg.w
                )),
            };
            self.rd.replies.push((w.req, reply));
        }
        let mut expired: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in expired {
            let r = self.reads.remove(&id).expect("present");
            let msg = format!(
                "read quorum not reached: {} of R={} replicas answered in time",
                r.replies.len(),
                self.cfg.r
            );
            self.rd.replies.push((r.req, Reply::Unavailable(msg)));
        }
        let mut expired: Vec<u64> = self
            .queries
            .iter()
            .filter(|(_, q)| q.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in expired {
            // Nothing was sent to replicas yet: the write definitely did not happen.
            let q = self.queries.remove(&id).expect("present");
            let msg = format!(
                "timestamp query quorum not reached: {} of R={} replicas answered in time",
                q.replies.len(),
                self.cfg.r
            );
            self.rd.replies.push((q.req, Reply::Unavailable(msg)));
        }
        if self.cfg.clock == ClockMode::Hybrid && self.ticks.is_multiple_of(self.heartbeat_ticks) {
            // Gossip the clock so nodes that exchanged no request still move together.
            let l = self.l.max(self.wall);
            if l > self.l {
                self.l = l;
                self.c = 0;
            }
            for p in self.peers.clone() {
                self.send(&p, Body::Clock, false);
            }
        }
        self.pump_txns();
    }

    fn observe_wall(&mut self, wall_ms: u64) {
        self.wall = wall_ms;
    }

    fn step(&mut self, from: &str, msg: NwrMsg) {
        self.observe(msg.clock);
        match msg.body {
            Body::Write { id, version } => {
                self.store_version(version);
                if id != 0 {
                    self.send(from, Body::WriteAck { id }, true);
                }
            }
            Body::Read { id, key } => {
                let version = self.stored(&key).cloned();
                self.send(from, Body::ReadReply { id, version }, true);
            }
            body @ (Body::WriteAck { .. } | Body::ReadReply { .. }) => self.on_reply(from, body),
            Body::Clock => {}
        }
        self.pump_txns();
    }

    fn propose(&mut self, req: ReqId, cmd: Command) {
        let writer = match (cmd.client_id, cmd.seq) {
            (Some(c), Some(s)) => Some((c, s)),
            _ => None,
        };
        match cmd.op {
            Op::Put { key, value } => self.start_write(req, key, value, writer),
            Op::Get { key } => self.start_read(req, key),
            Op::Txn { ops } => self.start_txn(req, ops),
            Op::Cas { .. } | Op::Prepare { .. } | Op::Decide { .. } | Op::Resolve { .. } => {
                self.rd.replies.push((req, Reply::Unsupported))
            }
        }
        self.pump_txns();
    }

    fn read(&mut self, req: ReqId, key: String) {
        self.start_read(req, key);
    }

    fn has_ready(&self) -> bool {
        !self.rd.is_empty() || !self.self_replies.is_empty()
    }

    fn ready(&mut self) -> Ready<NwrMsg> {
        self.in_flight_self = std::mem::take(&mut self.self_replies);
        std::mem::take(&mut self.rd)
    }

    fn advance(&mut self) {
        let id = self.id.clone();
        for body in std::mem::take(&mut self.in_flight_self) {
            self.on_reply(&id, body);
        }
        self.pump_txns();
    }

    fn status(&self) -> Status {
        Status {
            role: Role::Leader,
            term: 0,
            leader: None,
            commit_index: self.store.len() as u64,
        }
    }
}

#[cfg(test)]
#[path = "nwr_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "nwr_txn_tests.rs"]
mod txn_tests;
