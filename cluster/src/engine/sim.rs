//! A deterministic in-memory network for white-box engine tests (raft-rs's
//! `harness/src/network.rs` shape): nodes are engines, messages sit in one FIFO queue, links
//! can be cut per direction, nodes isolated, crashed (their slot emptied, storage kept) and
//! restarted, and individual messages dropped by a predicate. No sockets, no sleeps, no
//! threads.
//!
//! Tests feed engines directly (`sim.node("n1").propose(..)`, hand-made elections) and
//! inspect what they hand out; every Ready is acted on by the real driver loop
//! ([`NodeCore::process`], the code kvnode runs), whose observation hooks record the
//! applied entries, servable reads and direct replies in [`Outputs`]. The product-grade
//! simulator with clients, faults and checkers is the `sim` crate.

use super::{Apply, Engine, ReadReady};
use crate::driver::{NodeCore, NodeIo};
use crate::msg::{Entry, NodeId, Reply, ReqId};
use crate::snapshot::Snapshot;
use crate::state_machine::KvStateMachine;
use crate::storage::{MemStorage, Recovered, Storage, StorageError};
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Builds (or rebuilds after a crash) the engine of a node from its storage.
pub type Factory<E> = Box<dyn Fn(&str, Recovered) -> E>;
/// Decides whether a message in flight is dropped: `(from, to, msg) -> drop?`.
pub type Filter<M> = Box<dyn Fn(&str, &str, &M) -> bool>;

/// What one node produced for clients.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    /// Applied entries in order.
    pub applied: Vec<Apply>,
    /// Reads that became servable.
    pub reads: Vec<ReadReady>,
    /// Direct replies.
    pub replies: Vec<(ReqId, Reply)>,
    /// Snapshots taken (`false`) or loaded (`true`), by index.
    pub snapshots: Vec<(u64, bool)>,
}

/// Records what a node hands out and queues what it sends.
struct TestIo<'a, M> {
    id: &'a str,
    queue: &'a mut VecDeque<(NodeId, NodeId, M)>,
    out: &'a mut Outputs,
}

impl<M> NodeIo<M, MemStorage, ()> for TestIo<'_, M> {
    fn send(&mut self, to: &str, msg: M) {
        self.queue
            .push_back((self.id.to_string(), to.to_string(), msg));
    }

    fn persist(
        &mut self,
        storage: &mut MemStorage,
        truncate_from: Option<u64>,
        entries: &[Entry],
        hard_state: Option<&[u8]>,
        sync: bool,
    ) -> Result<(), StorageError> {
        storage.persist(truncate_from, entries, hard_state, sync)
    }

    fn reply(&mut self, _token: (), _reply: Reply) {}

    fn on_apply(&mut self, apply: &Apply) {
        self.out.applied.push(apply.clone());
    }

    fn on_read(&mut self, read: &ReadReady) {
        self.out.reads.push(read.clone());
    }

    fn on_reply(&mut self, req: ReqId, reply: &Reply) {
        self.out.replies.push((req, reply.clone()));
    }

    fn on_snapshot(&mut self, snapshot: &Snapshot, installed: bool) {
        self.out.snapshots.push((snapshot.index, installed));
    }
}

/// The simulated cluster.
pub struct Sim<E: Engine> {
    /// Live nodes (a crashed node has no entry).
    nodes: BTreeMap<NodeId, NodeCore<E, MemStorage, ()>>,
    /// Storage of crashed nodes (a process crash keeps everything written).
    down: BTreeMap<NodeId, MemStorage>,
    /// Per-node outputs.
    pub out: BTreeMap<NodeId, Outputs>,
    /// Messages delivered so far (all nodes), for counting in tests.
    pub delivered: Vec<(NodeId, NodeId, E::Msg)>,
    queue: VecDeque<(NodeId, NodeId, E::Msg)>,
    cut: HashSet<(NodeId, NodeId)>,
    /// Extra drop rule.
    pub filter: Option<Filter<E::Msg>>,
    factory: Factory<E>,
    ids: Vec<NodeId>,
    /// Wall clock (ms) passed to `tick`; tests move it to model clock skew.
    pub wall_ms: u64,
}

impl<E: Engine> Sim<E> {
    /// A cluster of `ids`, each built by `factory` from empty storage.
    pub fn new(ids: &[&str], factory: Factory<E>) -> Self {
        let mut s = Sim {
            nodes: BTreeMap::new(),
            down: BTreeMap::new(),
            out: BTreeMap::new(),
            delivered: Vec::new(),
            queue: VecDeque::new(),
            cut: HashSet::new(),
            filter: None,
            factory,
            ids: ids.iter().map(|s| s.to_string()).collect(),
            wall_ms: 0,
        };
        for id in ids {
            s.out.insert(id.to_string(), Outputs::default());
            s.down.insert(id.to_string(), MemStorage::default());
            s.restart(id);
        }
        s
    }

    /// The engine of `id` (panics if crashed).
    pub fn node(&mut self, id: &str) -> &mut E {
        self.nodes.get_mut(id).expect("node is alive").engine_mut()
    }

    /// Adds node `id` with empty storage and starts it (a node joining the cluster; the
    /// factory decides how it is configured).
    pub fn add_node(&mut self, id: &str) {
        if self.ids.iter().any(|i| i == id) {
            return;
        }
        self.ids.push(id.to_string());
        self.out.insert(id.to_string(), Outputs::default());
        self.down.insert(id.to_string(), MemStorage::default());
        self.restart(id);
    }

    /// The key-value state machine of live node `id`.
    pub fn state_machine(&self, id: &str) -> &KvStateMachine {
        self.nodes.get(id).expect("node is alive").state_machine()
    }

    /// The applied index of live node `id`.
    pub fn applied_index(&self, id: &str) -> u64 {
        self.nodes.get(id).expect("node is alive").applied_index()
    }

    /// The live engines, by id.
    pub fn engines(&self) -> impl Iterator<Item = (&NodeId, &E)> {
        self.nodes.iter().map(|(id, c)| (id, c.engine()))
    }

    /// Ids of the live nodes.
    pub fn live(&self) -> Vec<NodeId> {
        self.nodes.keys().cloned().collect()
    }

    /// True when `id` is running.
    pub fn is_live(&self, id: &str) -> bool {
        self.nodes.contains_key(id)
    }

    /// The storage of `id`, live or crashed.
    pub fn storage_mut(&mut self, id: &str) -> &mut MemStorage {
        match self.nodes.get_mut(id) {
            Some(c) => c.storage_mut(),
            None => self.down.get_mut(id).expect("known node"),
        }
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&mut self, a: &str, b: &str) {
        self.cut.insert((a.into(), b.into()));
        self.cut.insert((b.into(), a.into()));
    }

    /// Cuts every link of `a`.
    pub fn isolate(&mut self, a: &str) {
        for b in self.ids.clone() {
            if b != a {
                self.cut(a, &b);
            }
        }
    }

    /// Heals every cut (the filter stays).
    pub fn recover(&mut self) {
        self.cut.clear();
    }

    /// Crashes `id`: volatile state and in-flight messages to it are lost.
    pub fn crash(&mut self, id: &str) {
        if let Some(core) = self.nodes.remove(id) {
            self.down.insert(id.to_string(), core.into_storage());
        }
        self.queue.retain(|(_, to, _)| to != id);
    }

    /// Restarts `id` from its storage.
    pub fn restart(&mut self, id: &str) {
        let Some(storage) = self.down.remove(id) else {
            return;
        };
        let e = (self.factory)(id, storage.recovered());
        self.nodes
            .insert(id.to_string(), NodeCore::new(e, storage, 1));
    }

    /// Handles every pending Ready of `id` with the driver loop.
    pub fn process(&mut self, id: &str) {
        let Some(core) = self.nodes.get_mut(id) else {
            return;
        };
        let mut io = TestIo {
            id,
            queue: &mut self.queue,
            out: self.out.get_mut(id).expect("outputs"),
        };
        core.process(&mut io).expect("mem storage never fails");
    }

    /// Processes all nodes and delivers messages until the network is quiet.
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            for id in self.ids.clone() {
                self.process(&id);
            }
            let Some((from, to, msg)) = self.queue.pop_front() else {
                return;
            };
            if self.cut.contains(&(from.clone(), to.clone())) {
                continue;
            }
            if let Some(f) = &self.filter {
                if f(&from, &to, &msg) {
                    continue;
                }
            }
            if let Some(c) = self.nodes.get_mut(&to) {
                self.delivered.push((from.clone(), to.clone(), msg.clone()));
                c.engine_mut().step(&from, msg);
            }
        }
        panic!("simulation did not settle");
    }

    /// Ticks the given nodes `n` times, settling after each tick.
    pub fn tick_nodes(&mut self, ids: &[&str], n: usize) {
        for _ in 0..n {
            for id in ids {
                if let Some(c) = self.nodes.get_mut(*id) {
                    c.engine_mut().tick(self.wall_ms);
                }
            }
            self.settle();
        }
    }

    /// Ticks every live node `n` times, settling after each tick.
    pub fn tick_all(&mut self, n: usize) {
        let ids = self.ids.clone();
        let ids: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
        self.tick_nodes(&ids, n);
    }
}
