//! Deterministic Raft tests on the in-memory network (`engine/sim.rs`): no sockets, no
//! sleeps. Test names cite the section of the Raft paper (or thesis) they check.

use super::*;
use crate::engine::sim::Sim;
use crate::membership::{ChangeError, ConfChange, MemberAddr, NewMember};
use crate::msg::Value;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::rc::Rc;

const IDS3: [&str; 3] = ["n1", "n2", "n3"];
const IDS5: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

/// A cluster whose first configuration is `ids`; nodes added later with [`Sim::add_node`]
/// start with `--join` semantics (no configuration).
fn cluster(ids: &[&str], tweak: impl Fn(&mut EngineConfig) + 'static) -> Sim<Raft> {
    let all: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    Sim::new(
        ids,
        Box::new(move |id: &str, rec: Recovered| {
            let peers: Vec<&str> = all
                .iter()
                .map(|s| s.as_str())
                .filter(|p| *p != id)
                .collect();
            let mut cfg = EngineConfig::new(id, &peers);
            cfg.seed = 7;
            cfg.join = !all.iter().any(|a| a == id);
            tweak(&mut cfg);
            Raft::new(cfg, rec).expect("raft builds")
        }),
    )
}

fn put(key: &str, v: i64) -> Command {
    Command {
        op: Op::Put {
            key: key.into(),
            value: Value::Int(v),
        },
        client_id: None,
        seq: None,
    }
}

fn leaders(sim: &Sim<Raft>) -> Vec<(String, u64)> {
    sim.engines()
        .filter(|(_, r)| r.role() == Role::Leader)
        .map(|(id, r)| (id.clone(), r.term()))
        .collect()
}

fn elect(sim: &mut Sim<Raft>, id: &str) {
    let others: Vec<String> = sim.live().into_iter().filter(|k| k != id).collect();
    for o in others {
        sim.node(&o).forget_leader();
    }
    for _ in 0..3 {
        // A round can be lost when voters already voted in that term: try the next term.
        sim.node(id).campaign_now();
        sim.settle();
        if sim.node(id).role() == Role::Leader {
            break;
        }
    }
    assert_eq!(sim.node(id).role(), Role::Leader, "{id} should have won");
}

/// Asserts State Machine Safety: no two nodes applied different entries at one index.
fn applied_consistent(sim: &Sim<Raft>) -> bool {
    let mut seen: BTreeMap<u64, Entry> = BTreeMap::new();
    for out in sim.out.values() {
        for a in &out.applied {
            if let Some(prev) = seen.get(&a.entry.index) {
                if *prev != a.entry {
                    return false;
                }
            } else {
                seen.insert(a.entry.index, a.entry.clone());
            }
        }
    }
    true
}

fn reads_of(sim: &Sim<Raft>, id: &str) -> Vec<ReqId> {
    sim.out[id].reads.iter().map(|r| r.req).collect()
}

fn reply_of(sim: &Sim<Raft>, id: &str, req: ReqId) -> Option<Reply> {
    sim.out[id]
        .replies
        .iter()
        .find(|(r, _)| *r == req)
        .map(|(_, rep)| rep.clone())
}

/// The seeded fault schedule the randomized tests share: partitions, crashes (two at most)
/// and restarts, proposals at every live node, and Election Safety plus State Machine
/// Safety checked after every tick.
struct Chaos {
    pool: Vec<&'static str>,
    crashed: Vec<&'static str>,
    by_term: BTreeMap<u64, String>,
    next_req: ReqId,
    seed: u64,
}

impl Chaos {
    fn new(pool: &[&'static str], seed: u64) -> Chaos {
        Chaos {
            pool: pool.to_vec(),
            crashed: Vec::new(),
            by_term: BTreeMap::new(),
            next_req: 1,
            seed,
        }
    }

    /// A fresh request id.
    fn req(&mut self) -> ReqId {
        self.next_req += 1;
        self.next_req - 1
    }

    /// Applies the fault `roll` falls on, given the cumulative upper bounds of isolate,
    /// recover, crash and restart; false when `roll` is past them all.
    fn fault(
        &mut self,
        sim: &mut Sim<Raft>,
        rng: &mut ChaCha8Rng,
        roll: u32,
        bounds: [u32; 4],
    ) -> bool {
        use rand::Rng;
        let n = self.pool.len();
        if roll < bounds[0] {
            sim.isolate(self.pool[rng.gen_range(0..n)]);
        } else if roll < bounds[1] {
            sim.recover();
        } else if roll < bounds[2] {
            let id = self.pool[rng.gen_range(0..n)];
            if self.crashed.len() < 2 && !self.crashed.contains(&id) {
                sim.crash(id);
                self.crashed.push(id);
            }
        } else if roll < bounds[3] {
            if let Some(id) = self.crashed.pop() {
                sim.restart(id);
            }
        } else {
            return false;
        }
        true
    }

    /// Proposes at random live nodes, ticks once and checks both safety properties.
    fn propose_tick_check(&mut self, sim: &mut Sim<Raft>, rng: &mut ChaCha8Rng) {
        use rand::Rng;
        for id in self.pool.clone() {
            if sim.is_live(id) && rng.gen_bool(0.3) {
                let req = self.req();
                sim.node(id).propose(req, put("k", req as i64));
            }
        }
        sim.tick_all(1);
        let seed = self.seed;
        for (id, term) in leaders(sim) {
            let prev = self.by_term.entry(term).or_insert(id.clone());
            assert_eq!(*prev, id, "seed {seed}: two leaders in term {term}");
        }
        assert!(applied_consistent(sim), "seed {seed}: state machine safety");
    }

    /// Heals every fault, lets `ticks` pass and commits one last write through the single
    /// leader there must be, which it returns.
    fn heal(&mut self, sim: &mut Sim<Raft>, ticks: usize, settle_ticks: usize) -> String {
        let seed = self.seed;
        sim.recover();
        for id in self.crashed.drain(..) {
            sim.restart(id);
        }
        sim.tick_all(ticks);
        let l = leaders(sim);
        assert_eq!(l.len(), 1, "seed {seed}: one leader after healing: {l:?}");
        let leader = l[0].0.clone();
        let req = self.req();
        sim.node(&leader).propose(req, put("final", 1));
        sim.settle();
        sim.tick_all(settle_ticks);
        assert!(applied_consistent(sim), "seed {seed}");
        leader
    }
}

#[test]
fn paper_5_2_election_from_ticks_yields_one_leader_with_a_noop() {
    let mut sim = cluster(&IDS3, |_| {});
    sim.tick_all(40);
    let l = leaders(&sim);
    assert_eq!(l.len(), 1, "exactly one leader: {l:?}");
    let (leader, term) = l[0].clone();
    for (id, r) in sim.engines() {
        assert_eq!(r.term(), term, "{id} term");
        assert_eq!(r.status().leader.as_deref(), Some(leader.as_str()), "{id}");
        // The leader's first entry in its term is a no-op, replicated everywhere.
        assert_eq!(r.log().last().unwrap().payload, Payload::Noop);
        assert_eq!(r.log().last().unwrap().term, term);
        assert_eq!(r.commit_index(), r.log().len() as u64, "{id} committed");
    }
}

#[test]
fn seeded_election_replays_identically() {
    let run = || {
        let mut sim = cluster(&IDS5, |_| {});
        sim.tick_all(60);
        leaders(&sim)
    };
    assert_eq!(run(), run());
}

#[test]
fn paper_5_3_replication_applies_same_commands_everywhere() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    for i in 0..5 {
        sim.node("n1").propose(100 + i, put("k", i as i64));
    }
    sim.settle();
    sim.tick_all(3); // heartbeats carry the commit index to followers
    let leader_applied = &sim.out["n1"].applied;
    let reqs: Vec<_> = leader_applied.iter().filter_map(|a| a.req).collect();
    assert_eq!(reqs, vec![100, 101, 102, 103, 104]);
    for id in IDS3 {
        assert_eq!(sim.out[id].applied.len(), 6, "{id}: noop + 5 commands");
    }
    assert!(applied_consistent(&sim));
}

#[test]
fn paper_5_3_conflicting_uncommitted_suffix_is_truncated() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    sim.isolate("n1");
    sim.node("n1").propose(1, put("x", 1)); // never reaches a majority
    sim.settle();
    elect(&mut sim, "n2");
    sim.node("n2").propose(2, put("y", 2));
    sim.settle();
    sim.recover();
    sim.tick_all(5);
    assert_eq!(leaders(&sim), vec![("n2".to_string(), 2)]);
    let l1 = sim.node("n1").log().to_vec();
    let l2 = sim.node("n2").log().to_vec();
    assert_eq!(l1, l2, "log matching after truncation");
    assert!(!l1
        .iter()
        .any(|e| e.payload == Payload::Command(put("x", 1))));
    // The deposed leader's client learns the outcome is unknown, never "ok".
    assert_eq!(reply_of(&sim, "n1", 1), Some(Reply::Unknown));
    assert!(applied_consistent(&sim));
}

#[test]
fn followers_redirect_to_the_leader() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    sim.node("n2").propose(5, put("k", 1));
    sim.node("n3").read(6, "k".into());
    sim.settle();
    assert_eq!(
        reply_of(&sim, "n2", 5),
        Some(Reply::NotLeader(Some("n1".into())))
    );
    assert_eq!(
        reply_of(&sim, "n3", 6),
        Some(Reply::NotLeader(Some("n1".into())))
    );
}

/// Figure 8 of the Raft paper: S1 (term 3 here) replicates an entry of term 1 to a
/// majority and crashes; S5, whose last entry has term 2, can still win and overwrite it.
/// Returns whether State Machine Safety held and whether n1 applied X (made it visible).
fn figure8(unsafe_commit: bool) -> (bool, bool) {
    let mut sim = cluster(&IDS5, move |c| {
        c.max_batch = 1;
        c.unsafe_commit_previous_term = unsafe_commit;
    });
    // (a) n1 leads term 1 and gets X (term 1) onto n2 only.
    elect(&mut sim, "n1");
    sim.cut("n1", "n3");
    sim.cut("n1", "n4");
    sim.cut("n1", "n5");
    sim.node("n1").propose(1, put("x", 1));
    sim.settle();
    sim.recover();
    // X's index: 2 after the safe engine's no-op, 1 without it (the unsafe engine).
    let x_index = sim.node("n1").log().last().map_or(0, |e| e.index);
    // (b) n1 crashes; n5 wins term 2 with n3, n4 and appends a no-op (the safe engine) and
    // Y, which nobody receives.
    sim.crash("n1");
    sim.filter = Some(Box::new(|from, _, m| {
        from == "n5" && matches!(m, RaftMsg::Append { .. })
    }));
    elect(&mut sim, "n5");
    sim.node("n5").propose(2, put("y", 2));
    sim.settle();
    // (c) n5 crashes; n1 restarts, wins term 3, replicates X to a majority but its own
    // term-3 no-op (the safe engine's) only to n3.
    sim.crash("n5");
    sim.restart("n1");
    sim.filter = Some(Box::new(move |from, to, m| {
        from == "n1"
            && to != "n3"
            && matches!(m, RaftMsg::Append { entries, .. } if entries.iter().any(|e| e.index > x_index))
    }));
    elect(&mut sim, "n1");
    sim.tick_nodes(&["n1"], 6); // heartbeat-driven retransmission brings n2, n4 to X
    let n1_commit = sim.node("n1").commit_index();
    assert_eq!(
        n1_commit >= x_index,
        unsafe_commit,
        "only the unsafe rule commits X"
    );
    // (d) n1 crashes; n5 restarts and wins term 4 (its last term 2 beats everyone's 1).
    sim.crash("n1");
    sim.filter = None;
    sim.restart("n5");
    elect(&mut sim, "n5");
    sim.tick_nodes(&["n2", "n3", "n4", "n5"], 3);
    let x = Payload::Command(put("x", 1));
    let x_applied = sim.out["n1"].applied.iter().any(|a| a.entry.payload == x);
    (applied_consistent(&sim), x_applied)
}

#[test]
fn paper_5_4_2_figure8_only_current_term_entries_commit_by_counting() {
    let (safe, applied) = figure8(false);
    assert!(safe, "state machine safety must hold");
    assert!(!applied, "X was never committed");
}

#[test]
fn unsafe_commit_previous_term_loses_a_committed_write() {
    let (safe, applied) = figure8(true);
    assert!(applied, "X was committed and applied (visible to reads)");
    assert!(!safe, "and later overwritten: the Figure 8 anomaly");
}

#[test]
fn thesis_9_6_prevote_keeps_an_isolated_node_from_disrupting() {
    for prevote in [true, false] {
        let mut sim = cluster(&IDS3, move |c| c.prevote = prevote);
        elect(&mut sim, "n1");
        let term = sim.node("n1").term();
        sim.isolate("n3");
        sim.tick_nodes(&["n3"], 100);
        let n3_term = sim.node("n3").term();
        sim.recover();
        sim.tick_all(30);
        let l = leaders(&sim);
        assert_eq!(l.len(), 1);
        if prevote {
            assert_eq!(n3_term, term, "pre-vote never bumps the term");
            assert_eq!(l[0], ("n1".to_string(), term), "leader undisturbed");
        } else {
            assert!(n3_term > term, "plain candidates bump their term");
            assert!(l[0].1 > term, "and force a new election on return");
        }
    }
}

#[test]
fn thesis_6_4_read_index_waits_for_the_noop_and_a_heartbeat_quorum() {
    let mut sim = cluster(&IDS3, |_| {});
    // Win the election but keep the no-op from committing.
    sim.filter = Some(Box::new(|from, _, m| {
        from == "n1" && matches!(m, RaftMsg::Append { .. })
    }));
    elect(&mut sim, "n1");
    sim.node("n1").read(1, "k".into());
    sim.settle();
    assert!(
        reads_of(&sim, "n1").is_empty(),
        "no read before the no-op commits"
    );
    sim.filter = None;
    sim.tick_all(3);
    assert_eq!(reads_of(&sim, "n1"), vec![1]);
    let r = &sim.out["n1"].reads[0];
    assert!(r.index >= 1);
}

/// The naive implementation `--unsafe-commit-previous-term` models (raft.rs, module doc):
/// no no-op on election, and a read served at the commit index as it stands once a
/// heartbeat round confirms leadership, where the safe engine waits for its no-op.
#[test]
fn unsafe_commit_previous_term_reads_without_an_entry_of_its_term() {
    for unsafe_commit in [false, true] {
        let mut sim = cluster(&IDS3, move |c| {
            c.unsafe_commit_previous_term = unsafe_commit;
        });
        // Appends never leave n1: nothing of its term can commit, heartbeats still do.
        sim.filter = Some(Box::new(|from, _, m| {
            from == "n1" && matches!(m, RaftMsg::Append { .. })
        }));
        elect(&mut sim, "n1");
        let last = sim.node("n1").log().last().map(|e| e.term);
        assert_eq!(
            last == Some(sim.node("n1").term()),
            !unsafe_commit,
            "only the safe engine appends a no-op on election"
        );
        sim.node("n1").read(1, "k".into());
        sim.settle();
        sim.tick_all(3);
        assert_eq!(
            reads_of(&sim, "n1"),
            if unsafe_commit { vec![1] } else { vec![] },
            "the unsafe engine serves the read before anything of its term commits"
        );
    }
}

#[test]
fn thesis_6_4_read_index_batches_reads_into_one_round() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    sim.node("n1").propose(1, put("k", 1));
    sim.settle();
    sim.delivered.clear();
    for req in 10..20 {
        sim.node("n1").read(req, "k".into());
    }
    sim.settle();
    assert_eq!(reads_of(&sim, "n1"), (10..20).collect::<Vec<_>>());
    let heartbeats = sim
        .delivered
        .iter()
        .filter(|(_, _, m)| matches!(m, RaftMsg::Heartbeat { .. }))
        .count();
    assert_eq!(heartbeats, 2, "one round (2 peers) for 10 reads");
    let commit = sim.node("n1").commit_index();
    assert!(sim.out["n1"].reads.iter().all(|r| r.index == commit));
}

#[test]
fn thesis_6_4_partitioned_leader_serves_no_read_index_reads() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    sim.isolate("n1");
    sim.node("n1").read(7, "k".into());
    sim.settle();
    elect(&mut sim, "n2");
    sim.node("n2").propose(8, put("k", 2));
    sim.settle();
    assert!(
        reads_of(&sim, "n1").is_empty(),
        "stale leader must not answer"
    );
    sim.recover();
    sim.tick_all(5);
    assert!(reads_of(&sim, "n1").is_empty());
    assert!(matches!(reply_of(&sim, "n1", 7), Some(Reply::NotLeader(_))));
}

#[test]
fn unsafe_local_reads_are_served_by_a_deposed_leader() {
    let mut sim = cluster(&IDS3, |c| c.read_mode = ReadMode::UnsafeLocal);
    elect(&mut sim, "n1");
    sim.isolate("n1");
    elect(&mut sim, "n2");
    sim.node("n1").read(7, "k".into());
    sim.settle();
    assert_eq!(reads_of(&sim, "n1"), vec![7], "stale read served");
}

#[test]
fn lease_reads_skip_the_round_while_valid_and_expire_in_time() {
    let mut sim = cluster(&IDS3, |c| c.read_mode = ReadMode::Lease);
    elect(&mut sim, "n1");
    sim.tick_all(2); // one heartbeat round acknowledged: lease established
    sim.delivered.clear();
    sim.node("n1").read(1, "k".into());
    sim.settle();
    assert_eq!(reads_of(&sim, "n1"), vec![1]);
    assert!(sim.delivered.is_empty(), "served locally under the lease");
    // Isolated, the lease runs out before the followers could elect anyone
    // (lease = election_ticks - margin = 8 ticks, followers wait >= 10).
    sim.isolate("n1");
    sim.tick_nodes(&["n1"], 9);
    assert_eq!(sim.node("n1").role(), Role::Leader, "not yet stepped down");
    sim.node("n1").read(2, "k".into());
    sim.settle();
    assert_eq!(
        reads_of(&sim, "n1"),
        vec![1],
        "expired lease: no local read"
    );
}

#[test]
fn thesis_4_2_3_followers_in_lease_ignore_vote_requests() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    sim.tick_all(2);
    sim.node("n3").campaign_now();
    sim.settle();
    assert_eq!(sim.node("n2").term(), 1, "n2 ignored the higher-term vote");
    assert_ne!(sim.node("n3").role(), Role::Leader);
}

#[test]
fn check_quorum_deposes_an_isolated_leader() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    sim.node("n1").propose(3, put("k", 1));
    sim.isolate("n1");
    sim.settle();
    sim.tick_nodes(&["n1"], 25);
    assert_eq!(sim.node("n1").role(), Role::Follower);
    assert_eq!(reply_of(&sim, "n1", 3), Some(Reply::Unknown));
}

#[test]
fn restart_recovers_log_and_term_from_storage() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    sim.node("n1").propose(1, put("k", 1));
    sim.settle();
    sim.tick_all(3);
    let before = sim.node("n2").log().to_vec();
    let term = sim.node("n2").term();
    sim.crash("n2");
    sim.restart("n2");
    assert_eq!(sim.node("n2").log(), &before[..]);
    assert_eq!(sim.node("n2").term(), term);
    // The commit index is persisted lazily; the leader's heartbeats restore it.
    sim.tick_all(3);
    assert_eq!(sim.node("n2").commit_index(), before.len() as u64);
}

#[test]
fn single_node_commits_alone() {
    let mut sim = cluster(&["n1"], |_| {});
    sim.tick_all(25);
    assert_eq!(sim.node("n1").role(), Role::Leader);
    sim.node("n1").propose(1, put("k", 1));
    sim.node("n1").read(2, "k".into());
    sim.settle();
    assert!(sim.out["n1"].applied.iter().any(|a| a.req == Some(1)));
    assert_eq!(reads_of(&sim, "n1"), vec![2]);
}

#[test]
fn log_reads_go_through_the_log() {
    let mut sim = cluster(&IDS3, |c| c.read_mode = ReadMode::Log);
    elect(&mut sim, "n1");
    sim.node("n1").read(4, "k".into());
    sim.settle();
    let a = sim.out["n1"].applied.iter().find(|a| a.req == Some(4));
    assert!(matches!(
        a.map(|a| &a.entry.payload),
        Some(Payload::Command(Command {
            op: Op::Get { .. },
            ..
        }))
    ));
}

/// A frozen (or rewound) wall clock keeps a wall-clock lease alive on a deposed leader; the
/// monotonic-tick lease expires on schedule whatever the wall clock does.
fn stale_lease_read(mode: ReadMode) -> bool {
    let mut sim = cluster(&IDS3, move |c| c.read_mode = mode);
    sim.wall_ms = 1_000_000;
    elect(&mut sim, "n1");
    sim.node("n1").propose(1, put("k", 1));
    sim.settle();
    sim.tick_all(2); // lease established at wall time 1_000_000
    sim.isolate("n1");
    elect(&mut sim, "n2");
    sim.node("n2").propose(2, put("k", 2));
    sim.settle();
    // n1's clock is frozen by libfaketime while 30 ticks (3 election timeouts) pass.
    sim.tick_nodes(&["n1"], 30);
    sim.node("n1").read(3, "k".into());
    sim.settle();
    reads_of(&sim, "n1").contains(&3)
}

#[test]
fn unsafe_lease_wallclock_serves_stale_reads_when_the_clock_stops() {
    assert!(stale_lease_read(ReadMode::UnsafeLeaseWallclock));
    assert!(!stale_lease_read(ReadMode::Lease));
    assert!(!stale_lease_read(ReadMode::ReadIndex));
}

#[test]
fn a_restarted_node_honours_a_lease_it_may_have_acknowledged() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    sim.crash("n2");
    sim.restart("n2");
    sim.node("n3").forget_leader();
    sim.node("n3").campaign_now();
    sim.settle();
    assert_eq!(
        sim.node("n2").term(),
        1,
        "fresh n2 ignored the vote request"
    );
}

/// Randomized fault schedule (seeded, so any failure replays): partitions, crashes with
/// restarts from storage, message loss, proposals everywhere. Checks Election Safety (one
/// leader per term), State Machine Safety (no index applied with two different entries),
/// and that every command acknowledged to a client survives in the final log.
#[test]
fn randomized_faults_preserve_safety() {
    use rand::{Rng, SeedableRng};
    use std::cell::RefCell;
    use std::rc::Rc;
    for seed in 0..40u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let prevote = seed % 2 == 0;
        let mut sim = cluster(&IDS5, move |c| {
            c.seed = seed;
            c.prevote = prevote;
            c.max_batch = 4;
        });
        let drop_rng = Rc::new(RefCell::new(ChaCha8Rng::seed_from_u64(seed + 1000)));
        let loss = Rc::new(RefCell::new(0.0f64));
        {
            let (d, l) = (drop_rng.clone(), loss.clone());
            sim.filter = Some(Box::new(move |_, _, _| {
                let p = *l.borrow();
                p > 0.0 && d.borrow_mut().gen_bool(p)
            }));
        }
        let mut chaos = Chaos::new(&IDS5, seed);
        for _step in 0..300 {
            let roll = rng.gen_range(0..100);
            if !chaos.fault(&mut sim, &mut rng, roll, [5, 10, 13, 17]) && roll < 21 {
                *loss.borrow_mut() = [0.0, 0.1, 0.3][rng.gen_range(0..3)];
            }
            chaos.propose_tick_check(&mut sim, &mut rng);
        }
        // Heal everything and let the cluster converge.
        *loss.borrow_mut() = 0.0;
        let leader = chaos.heal(&mut sim, 100, 5);
        let final_log: Vec<Entry> = sim.node(&leader).log().to_vec();
        for (id, out) in &sim.out {
            for a in out.applied.iter().filter(|a| a.req.is_some()) {
                let i = a.entry.index as usize - 1;
                assert_eq!(
                    final_log.get(i),
                    Some(&a.entry),
                    "seed {seed}: entry acknowledged by {id} lost"
                );
            }
        }
        let logs: Vec<&[Entry]> = sim.engines().map(|(_, n)| n.log()).collect();
        assert!(
            logs.windows(2).all(|w| w[0] == w[1]),
            "seed {seed}: logs converge"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Snapshots, log compaction, membership changes (thesis chapters 4 and 5).

fn member(id: &str) -> NewMember {
    NewMember {
        id: id.into(),
        addr: MemberAddr {
            peer_addr: format!("{id}.test:1"),
            ..MemberAddr::default()
        },
    }
}

fn ids(v: &[&str]) -> BTreeSet<NodeId> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Proposes `n` writes at `leader`, one at a time, each settled.
fn write_n(sim: &mut Sim<Raft>, leader: &str, from: i64, n: i64) {
    for i in from..from + n {
        sim.node(leader)
            .propose(i as ReqId, put(&format!("k{}", i % 7), i));
        sim.settle();
    }
}

/// The state machine of `id` as JSON (maps compare regardless of hash order).
fn sm_json(sim: &Sim<Raft>, id: &str) -> serde_json::Value {
    serde_json::from_slice(&sim.state_machine(id).encode()).unwrap()
}

/// Asks `leader` for a membership change as admin request `req`, settling after.
fn change(sim: &mut Sim<Raft>, leader: &str, req: ReqId, c: ConfChange) -> Result<(), ChangeError> {
    let r = sim.node(leader).change_membership(req, c);
    sim.settle();
    r
}

#[test]
fn thesis_5_1_snapshot_compacts_the_log_and_a_restart_resumes_from_it() {
    let mut sim = cluster(&IDS3, |c| c.snapshot_entries = 10);
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 25);
    sim.tick_all(3);
    for id in IDS3 {
        let r = sim.node(id);
        assert!(
            r.snapshot_index() >= 20,
            "{id} compacted: {}",
            r.snapshot_index()
        );
        assert!(
            r.log().len() < 10,
            "{id} keeps only the tail: {}",
            r.log().len()
        );
        let stored = &sim.storage_mut(id).state;
        assert!(
            stored.snapshot.is_some() && stored.entries.keys().all(|i| *i > 20),
            "{id}: durable snapshot and a compacted stored log"
        );
    }
    let before = sm_json(&sim, "n2");
    let applied = sim.applied_index("n2");
    sim.crash("n2");
    sim.restart("n2");
    sim.process("n2");
    assert!(sim.applied_index("n2") >= sim.node("n2").snapshot_index());
    // (A follower persists the commit index lazily: it re-learns the last few from the
    // leader's next heartbeat.)
    sim.tick_all(3);
    assert_eq!(
        sm_json(&sim, "n2"),
        before,
        "snapshot + tail replay the same state"
    );
    assert_eq!(sim.applied_index("n2"), applied);
    assert!(sim.out["n2"]
        .snapshots
        .iter()
        .any(|(_, installed)| *installed));
    // The restarted node keeps replicating normally above its snapshot.
    write_n(&mut sim, "n1", 100, 3);
    sim.tick_all(3);
    assert_eq!(sm_json(&sim, "n2"), sm_json(&sim, "n1"));
    assert!(applied_consistent(&sim));
}

#[test]
fn thesis_5_3_a_follower_behind_the_log_gets_the_snapshot_in_chunks_despite_losses() {
    let mut sim = cluster(&IDS3, |c| {
        c.snapshot_entries = 10;
        c.snapshot_chunk = 40;
    });
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 3);
    sim.crash("n3");
    write_n(&mut sim, "n1", 10, 40);
    assert!(sim.node("n1").snapshot_index() > 5);
    // Every third chunk is lost: the leader resends from the offset the follower asks for.
    let n = Rc::new(Cell::new(0u32));
    let n2 = n.clone();
    sim.filter = Some(Box::new(move |_, _, m| {
        if matches!(m, RaftMsg::Snapshot { .. }) {
            n2.set(n2.get() + 1);
            return n2.get().is_multiple_of(3);
        }
        false
    }));
    sim.restart("n3");
    sim.tick_all(60);
    assert!(n.get() > 5, "several chunks were sent: {}", n.get());
    assert_eq!(sm_json(&sim, "n3"), sm_json(&sim, "n1"));
    let installed_at = sim.node("n3").snapshot_index();
    assert!(sim.out["n3"].snapshots.contains(&(installed_at, true)));
    // Installed durably: a restart of the follower comes back to the same state.
    sim.crash("n3");
    sim.restart("n3");
    sim.process("n3");
    assert_eq!(sm_json(&sim, "n3"), sm_json(&sim, "n1"));
    assert!(applied_consistent(&sim));
}

#[test]
fn thesis_5_3_a_snapshot_replaces_a_conflicting_log_entirely() {
    let mut sim = cluster(&IDS3, |c| c.snapshot_entries = 10);
    elect(&mut sim, "n3");
    write_n(&mut sim, "n3", 1, 2);
    // n3 leads alone for a while: entries of its term nobody else gets.
    sim.isolate("n3");
    for i in 0..5 {
        sim.node("n3").propose(50 + i, put("lost", i as i64));
    }
    sim.settle();
    let stale_term = sim.node("n3").term();
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 100, 30);
    assert!(sim.node("n1").snapshot_index() > sim.node("n3").log().len() as u64);
    sim.recover();
    sim.tick_all(30);
    assert_eq!(sm_json(&sim, "n3"), sm_json(&sim, "n1"));
    let r = sim.node("n3");
    assert!(
        r.log().iter().all(|e| e.term != stale_term),
        "stale entries gone"
    );
    let stored = &sim.storage_mut("n3").state;
    assert!(
        stored.entries.values().all(|e| e.term != stale_term),
        "and gone from storage too"
    );
    assert!(applied_consistent(&sim));
}

#[test]
fn thesis_4_2_1_a_learner_catches_up_by_snapshot_and_counts_only_once_promoted() {
    let mut sim = cluster(&IDS3, |c| {
        c.snapshot_entries = 20;
        c.snapshot_chunk = 64;
    });
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 60);
    assert!(sim.node("n1").snapshot_index() >= 40);
    sim.add_node("n4");
    // A joining node has no configuration: it never campaigns on its own.
    sim.tick_nodes(&["n4"], 100);
    assert_eq!(sim.node("n4").term(), 0);
    assert_eq!(
        change(&mut sim, "n1", 900, ConfChange::AddLearner(member("n4"))),
        Ok(())
    );
    sim.tick_all(20);
    assert_eq!(reply_of(&sim, "n1", 900), Some(Reply::Ok));
    let conf = sim.node("n1").config().clone();
    assert_eq!(conf.learners, ids(&["n4"]));
    assert_eq!(conf.addrs["n4"].peer_addr, "n4.test:1");
    assert_eq!(
        sim.node("n4").config(),
        &conf,
        "the learner knows the configuration"
    );
    assert!(
        sim.out["n4"]
            .snapshots
            .iter()
            .any(|(_, installed)| *installed),
        "caught up by snapshot"
    );
    assert_eq!(sm_json(&sim, "n4"), sm_json(&sim, "n1"));
    // A learner does not count: with n2 and n3 down, n1 + n4 commit nothing.
    sim.crash("n2");
    sim.crash("n3");
    let commit = sim.node("n1").commit_index();
    sim.node("n1").propose(1000, put("x", 1));
    sim.tick_nodes(&["n1", "n4"], 5);
    assert_eq!(
        sim.node("n1").commit_index(),
        commit,
        "a learner is no quorum"
    );
    sim.restart("n2");
    sim.restart("n3");
    sim.tick_all(10);
    let l = leaders(&sim);
    assert_eq!(l.len(), 1, "{l:?}");
    let leader = l[0].0.clone();
    assert_ne!(leader, "n4", "a learner never leads");
    assert_eq!(
        change(&mut sim, &leader, 901, ConfChange::Promote("n4".into())),
        Ok(())
    );
    sim.tick_all(3);
    assert_eq!(reply_of(&sim, &leader, 901), Some(Reply::Ok));
    assert_eq!(
        sim.node("n4").config().voters,
        ids(&["n1", "n2", "n3", "n4"])
    );
    // Four voters: two down leave no majority; with only one down the other three commit.
    let others: Vec<&str> = ["n1", "n2", "n3"]
        .into_iter()
        .filter(|n| *n != leader)
        .collect();
    sim.crash(others[0]);
    write_n(&mut sim, &leader, 2000, 1);
    let commit = sim.node(&leader).commit_index();
    sim.crash(others[1]);
    sim.node(&leader).propose(3000, put("y", 1));
    sim.tick_nodes(&[&leader, "n4"], 5);
    assert_eq!(
        sim.node(&leader).commit_index(),
        commit,
        "the promoted voter counts"
    );
    assert!(applied_consistent(&sim));
}

#[test]
fn thesis_4_1_one_change_at_a_time_and_none_before_the_leaders_own_entry_commits() {
    let mut sim = cluster(&IDS3, |_| {});
    sim.add_node("n4");
    sim.add_node("n5");
    // A leader whose no-op is not committed yet refuses (Ongaro's 2015 fix).
    sim.filter = Some(Box::new(|_, to, m| {
        to == "n1" && matches!(m, RaftMsg::AppendResp { .. })
    }));
    elect(&mut sim, "n1");
    assert_eq!(
        sim.node("n1")
            .change_membership(1, ConfChange::AddLearner(member("n4"))),
        Err(ChangeError::LeaderNotReady)
    );
    sim.filter = None;
    sim.tick_all(3);
    // Hold the change uncommitted: nobody acknowledges.
    sim.filter = Some(Box::new(|_, to, m| {
        to == "n1" && matches!(m, RaftMsg::AppendResp { .. })
    }));
    assert_eq!(
        change(&mut sim, "n1", 2, ConfChange::AddLearner(member("n4"))),
        Ok(())
    );
    let index = sim.node("n1").config().index;
    assert_eq!(
        sim.node("n1")
            .change_membership(3, ConfChange::AddLearner(member("n5"))),
        Err(ChangeError::InProgress { index })
    );
    assert_eq!(
        sim.node("n2")
            .change_membership(4, ConfChange::AddLearner(member("n5"))),
        Err(ChangeError::NotLeader(Some("n1".into())))
    );
    sim.filter = None;
    sim.tick_all(3);
    assert_eq!(reply_of(&sim, "n1", 2), Some(Reply::Ok));
    assert_eq!(
        change(&mut sim, "n1", 5, ConfChange::AddLearner(member("n5"))),
        Ok(())
    );
    // Content refusals.
    sim.tick_all(3);
    assert_eq!(
        sim.node("n1")
            .change_membership(6, ConfChange::AddLearner(member("n5"))),
        Err(ChangeError::AlreadyMember("n5".into()))
    );
    assert_eq!(
        sim.node("n1")
            .change_membership(7, ConfChange::Remove(vec!["n2".into(), "n3".into()])),
        Err(ChangeError::MultiServer(2))
    );
    assert_eq!(
        sim.node("n1")
            .change_membership(8, ConfChange::AddVoters(vec![member("n9")])),
        Err(ChangeError::MultiServer(1))
    );
}

#[test]
fn thesis_4_2_2_a_removed_leader_leads_without_counting_itself_then_steps_down() {
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 3);
    // With n2 down, the new configuration {n2, n3} has no majority without n1's own vote,
    // which no longer counts: the change stays uncommitted and n1 keeps leading.
    sim.crash("n2");
    assert_eq!(
        change(&mut sim, "n1", 900, ConfChange::Remove(vec!["n1".into()])),
        Ok(())
    );
    sim.tick_nodes(&["n1", "n3"], 5);
    assert_eq!(sim.node("n1").role(), Role::Leader);
    assert!(sim.node("n1").commit_index() < sim.node("n1").config().index);
    assert_eq!(reply_of(&sim, "n1", 900), None);
    sim.restart("n2");
    sim.tick_all(3);
    assert_eq!(reply_of(&sim, "n1", 900), Some(Reply::Ok));
    assert_eq!(
        sim.node("n1").role(),
        Role::Follower,
        "stepped down once committed"
    );
    assert_eq!(sim.node("n1").config().voters, ids(&["n2", "n3"]));
    let n1_term = sim.node("n1").term();
    let votes_before = sim
        .delivered
        .iter()
        .filter(|(f, _, m)| f == "n1" && matches!(m, RaftMsg::Vote { .. }))
        .count();
    sim.tick_all(200);
    let l = leaders(&sim);
    assert_eq!(l.len(), 1);
    assert_ne!(l[0].0, "n1");
    let votes_after = sim
        .delivered
        .iter()
        .filter(|(f, _, m)| f == "n1" && matches!(m, RaftMsg::Vote { .. }))
        .count();
    assert_eq!(votes_before, votes_after, "a removed node never campaigns");
    assert!(sim.node("n1").term() >= n1_term);
    let leader = l[0].0.clone();
    write_n(&mut sim, &leader, 10, 2);
    assert_eq!(
        sim.node(&leader).commit_index(),
        sim.node(&leader).log().len() as u64,
        "the two remaining voters commit"
    );
    assert!(applied_consistent(&sim));
}

#[test]
fn thesis_4_1_a_change_interrupted_by_a_leader_crash_completes_or_vanishes_safely() {
    // (a) The removal of n3 reaches n2 but the leader crashes before learning it committed.
    let mut sim = cluster(&IDS3, |_| {});
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 3);
    sim.filter = Some(Box::new(|from, to, m| {
        to == "n3" || (from == "n2" && to == "n1" && matches!(m, RaftMsg::AppendResp { .. }))
    }));
    assert_eq!(
        change(&mut sim, "n1", 900, ConfChange::Remove(vec!["n3".into()])),
        Ok(())
    );
    assert_eq!(
        sim.node("n2").config().voters,
        ids(&["n1", "n2"]),
        "in effect on append"
    );
    assert_eq!(sim.node("n3").config().voters, ids(&IDS3));
    sim.crash("n1");
    sim.filter = None;
    // n2 needs n1 (its configuration is {n1, n2}); n3 cannot win against n2's longer log.
    sim.tick_all(150);
    assert!(leaders(&sim).is_empty(), "{:?}", leaders(&sim));
    sim.restart("n1");
    sim.tick_all(150);
    let l = leaders(&sim);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_ne!(l[0].0, "n3");
    let leader = l[0].0.clone();
    assert!(sim.node(&leader).commit_index() >= sim.node(&leader).config().index);
    // The removed node was told (the new leader chased it until it held the change).
    assert_eq!(sim.node("n3").config().voters, ids(&["n1", "n2"]));
    assert_eq!(
        change(
            &mut sim,
            &leader,
            901,
            ConfChange::Remove(vec!["n3".into()])
        ),
        Err(ChangeError::NotMember("n3".into()))
    );
    assert!(applied_consistent(&sim));

    // (b) The change reaches nobody: it is truncated away, the configuration reverts.
    let mut sim = cluster(&IDS3, |_| {});
    sim.add_node("n4");
    elect(&mut sim, "n1");
    sim.isolate("n1");
    assert_eq!(
        change(&mut sim, "n1", 900, ConfChange::AddLearner(member("n4"))),
        Ok(())
    );
    assert!(sim.node("n1").config().learners.contains("n4"));
    sim.crash("n1");
    sim.recover();
    elect(&mut sim, "n2");
    write_n(&mut sim, "n2", 1, 2);
    sim.restart("n1");
    assert!(
        sim.node("n1").config().learners.contains("n4"),
        "restored from its log"
    );
    sim.tick_all(10);
    let n2_conf = sim.node("n2").config().clone();
    assert_eq!(sim.node("n1").config(), &n2_conf);
    assert!(
        sim.node("n1").config().learners.is_empty(),
        "truncated, reverted"
    );
    assert!(applied_consistent(&sim));
}

#[test]
fn thesis_4_1_a_partition_during_a_promotion_leaves_one_leader_per_term_and_one_config() {
    let mut sim = cluster(&IDS3, |_| {});
    sim.add_node("n4");
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 3);
    assert_eq!(
        change(&mut sim, "n1", 900, ConfChange::AddLearner(member("n4"))),
        Ok(())
    );
    sim.tick_all(5);
    // n1 is cut off right as it appends the promotion: in effect on n1 only (4 voters).
    sim.isolate("n1");
    assert_eq!(
        change(&mut sim, "n1", 901, ConfChange::Promote("n4".into())),
        Ok(())
    );
    assert_eq!(sim.node("n1").config().voters.len(), 4);
    let mut by_term: BTreeMap<u64, String> = BTreeMap::new();
    for _ in 0..200 {
        sim.tick_all(1);
        for (id, t) in leaders(&sim) {
            assert_eq!(
                by_term.entry(t).or_insert(id.clone()),
                &id,
                "two leaders in term {t}"
            );
        }
    }
    assert_ne!(
        sim.node("n1").role(),
        Role::Leader,
        "check-quorum deposed n1"
    );
    let l = leaders(&sim);
    assert_eq!(l.len(), 1);
    let leader = l[0].0.clone();
    write_n(&mut sim, &leader, 10, 3);
    sim.recover();
    sim.tick_all(150);
    assert_eq!(reply_of(&sim, "n1", 901), Some(Reply::Unknown));
    for id in ["n1", "n2", "n3", "n4"] {
        assert_eq!(
            sim.node(id).config().voters,
            ids(&IDS3),
            "{id}: promotion truncated away"
        );
        assert_eq!(sim.node(id).config().learners, ids(&["n4"]));
    }
    let l = leaders(&sim);
    assert_eq!(l.len(), 1, "{l:?}");
    let leader = l[0].0.clone();
    assert_eq!(
        change(&mut sim, &leader, 902, ConfChange::Promote("n4".into())),
        Ok(())
    );
    sim.tick_all(3);
    assert_eq!(reply_of(&sim, &leader, 902), Some(Reply::Ok));
    assert!(applied_consistent(&sim));
}

/// The unsafe variant's anomaly with a fixed seed: voters {n1,n2,n3} change to
/// {n1,...,n5} in one entry that only n1, n4 and n5 hold. {n1,n4,n5} is a majority of the
/// new configuration and {n2,n3} of the old one: two leaders in one term, both committing.
#[test]
fn unsafe_multi_server_change_elects_two_leaders_in_one_term() {
    let run = |unsafe_multi: bool| {
        let mut sim = cluster(&IDS3, move |c| c.unsafe_multi_server_change = unsafe_multi);
        sim.add_node("n4");
        sim.add_node("n5");
        elect(&mut sim, "n1");
        write_n(&mut sim, "n1", 1, 3);
        for other in ["n2", "n3"] {
            sim.cut("n1", other);
        }
        let r = change(
            &mut sim,
            "n1",
            900,
            ConfChange::AddVoters(vec![member("n4"), member("n5")]),
        );
        if r.is_err() {
            return (r, Vec::new(), sim);
        }
        sim.tick_nodes(&["n1", "n4", "n5"], 5);
        // The old majority elects a leader; the new one re-elects n1 in that same term.
        for n in ["n2", "n3", "n4", "n5"] {
            sim.node(n).forget_leader();
        }
        sim.node("n2").campaign_now();
        sim.settle();
        let t = sim.node("n2").term();
        while sim.node("n1").term() + 1 < t {
            sim.node("n1").campaign_now();
            sim.settle();
            sim.node("n4").forget_leader();
            sim.node("n5").forget_leader();
        }
        sim.node("n1").campaign_now();
        sim.settle();
        // Both commit a write at the same index.
        sim.node("n1").propose(1001, put("split", 1));
        sim.node("n2").propose(1002, put("split", 2));
        sim.settle();
        (r, leaders(&sim), sim)
    };
    let (r, l, sim) = run(true);
    assert_eq!(r, Ok(()));
    assert_eq!(l.len(), 2, "{l:?}");
    assert_eq!(l[0].1, l[1].1, "same term: {l:?}");
    assert!(
        !applied_consistent(&sim),
        "and they apply different entries at one index"
    );
    let (r, l, _) = run(false);
    assert_eq!(r, Err(ChangeError::MultiServer(2)), "{l:?}");
}

/// Randomized faults as above plus snapshots every few entries and random membership
/// changes (grow to 5, shrink to 3, replace, remove the leader), all through the engine's
/// own admin checks: Election Safety, State Machine Safety and convergence must hold.
#[test]
fn randomized_faults_with_membership_changes_and_snapshots_preserve_safety() {
    use rand::{Rng, SeedableRng};
    let pool = ["n1", "n2", "n3", "n4", "n5", "n6"];
    let mut installs = 0;
    for seed in 0..25u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut sim = cluster(&IDS3, move |c| {
            c.seed = seed;
            c.prevote = seed % 2 == 0;
            c.max_batch = 4;
            c.snapshot_entries = 6;
            c.snapshot_chunk = 50;
        });
        for n in &pool[3..] {
            sim.add_node(n);
        }
        let mut chaos = Chaos::new(&pool, seed);
        let mut changes = 0;
        for _step in 0..400 {
            let roll = rng.gen_range(0..100);
            if !chaos.fault(&mut sim, &mut rng, roll, [4, 9, 11, 15]) && roll < 25 {
                if let Some((leader, _)) = leaders(&sim).first().cloned() {
                    let conf = sim.node(&leader).config().clone();
                    let outside: Vec<&str> =
                        pool.iter().copied().filter(|n| !conf.contains(n)).collect();
                    let c = match rng.gen_range(0..4) {
                        0 if !outside.is_empty() => {
                            ConfChange::AddLearner(member(outside[rng.gen_range(0..outside.len())]))
                        }
                        1 if !conf.learners.is_empty() => {
                            let l: Vec<&NodeId> = conf.learners.iter().collect();
                            ConfChange::Promote(l[rng.gen_range(0..l.len())].clone())
                        }
                        2 if conf.voters.len() > 3 => {
                            let v: Vec<&NodeId> = conf.voters.iter().collect();
                            ConfChange::Remove(vec![v[rng.gen_range(0..v.len())].clone()])
                        }
                        3 if !conf.learners.is_empty() => {
                            let l: Vec<&NodeId> = conf.learners.iter().collect();
                            ConfChange::Remove(vec![l[rng.gen_range(0..l.len())].clone()])
                        }
                        _ => ConfChange::Remove(vec![]),
                    };
                    let req = chaos.req();
                    if sim.node(&leader).change_membership(req, c).is_ok() {
                        changes += 1;
                    }
                }
            }
            chaos.propose_tick_check(&mut sim, &mut rng);
        }
        assert!(changes > 3, "seed {seed}: only {changes} changes happened");
        let leader = chaos.heal(&mut sim, 150, 10);
        let conf = sim.node(&leader).config().clone();
        for m in conf.members() {
            assert_eq!(
                sim.node(&m).config(),
                &conf,
                "seed {seed}: {m} has the configuration"
            );
            assert_eq!(
                sm_json(&sim, &m),
                sm_json(&sim, &leader),
                "seed {seed}: {m} converged"
            );
        }
        installs += sim
            .out
            .values()
            .flat_map(|o| &o.snapshots)
            .filter(|(_, installed)| *installed)
            .count();
    }
    assert!(installs > 25, "snapshots were installed: {installs}");
}
