//! A deterministic in-memory network for engine tests (raft-rs's `harness/src/network.rs`
//! shape): nodes are engines, messages sit in one FIFO queue, links can be cut per
//! direction, nodes isolated, crashed (their slot emptied, storage kept) and restarted, and
//! individual messages dropped by a predicate. No sockets, no sleeps, no threads.
//!
//! Any [`Engine`] works, so the Multi-Paxos and NWR engines can reuse it. The driver steps
//! follow `engine/mod.rs` exactly: ready, persist (to [`MemStorage`]), send, advance, record
//! what was applied / read / replied.

use super::{Apply, Engine, ReadReady};
use crate::msg::{NodeId, Reply, ReqId};
use crate::storage::{MemStorage, Recovered, Storage};
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
}

/// The simulated cluster.
pub struct Sim<E: Engine> {
    /// Live engines (a crashed node has no entry).
    pub nodes: BTreeMap<NodeId, E>,
    /// Durable state per node (survives crashes).
    pub storage: BTreeMap<NodeId, MemStorage>,
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
            storage: BTreeMap::new(),
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
            s.storage.insert(id.to_string(), MemStorage::default());
            s.out.insert(id.to_string(), Outputs::default());
            let e = (s.factory)(id, Recovered::default());
            s.nodes.insert(id.to_string(), e);
        }
        s
    }

    /// The engine of `id` (panics if crashed).
    pub fn node(&mut self, id: &str) -> &mut E {
        self.nodes.get_mut(id).expect("node is alive")
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
        self.nodes.remove(id);
        self.queue.retain(|(_, to, _)| to != id);
    }

    /// Restarts `id` from its storage.
    pub fn restart(&mut self, id: &str) {
        let rec = self.storage[id].recovered();
        let e = (self.factory)(id, rec);
        self.nodes.insert(id.to_string(), e);
    }

    /// Handles every pending Ready of `id`.
    pub fn process(&mut self, id: &str) {
        let Some(e) = self.nodes.get_mut(id) else {
            return;
        };
        while e.has_ready() {
            let rd = e.ready();
            for m in rd.messages {
                self.queue.push_back((id.to_string(), m.to, m.msg));
            }
            self.storage
                .get_mut(id)
                .expect("storage")
                .persist(
                    rd.truncate_from,
                    &rd.entries,
                    rd.hard_state.as_deref(),
                    rd.sync,
                )
                .expect("mem storage never fails");
            for m in rd.persisted_messages {
                self.queue.push_back((id.to_string(), m.to, m.msg));
            }
            e.advance();
            let out = self.out.get_mut(id).expect("outputs");
            out.applied.extend(rd.committed);
            out.reads.extend(rd.reads);
            out.replies.extend(rd.replies);
        }
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
            if let Some(e) = self.nodes.get_mut(&to) {
                self.delivered.push((from.clone(), to.clone(), msg.clone()));
                e.step(&from, msg);
            }
        }
        panic!("simulation did not settle");
    }

    /// Ticks the given nodes `n` times, settling after each tick.
    pub fn tick_nodes(&mut self, ids: &[&str], n: usize) {
        for _ in 0..n {
            for id in ids {
                if let Some(e) = self.nodes.get_mut(*id) {
                    e.tick(self.wall_ms);
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
