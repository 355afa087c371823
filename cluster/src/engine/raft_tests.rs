//! Deterministic Raft tests on the in-memory network (`engine/sim.rs`): no sockets, no
//! sleeps. Test names cite the section of the Raft paper (or thesis) they check.

use super::*;
use crate::engine::sim::Sim;
use crate::msg::Value;

const IDS3: [&str; 3] = ["n1", "n2", "n3"];
const IDS5: [&str; 5] = ["n1", "n2", "n3", "n4", "n5"];

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
    // (b) n1 crashes; n5 wins term 2 with n3, n4 and appends a no-op nobody receives.
    sim.crash("n1");
    sim.filter = Some(Box::new(|from, _, m| {
        from == "n5" && matches!(m, RaftMsg::Append { .. })
    }));
    elect(&mut sim, "n5");
    // (c) n5 crashes; n1 restarts, wins term 3, replicates X (index 2) to a majority but
    // its own term-3 no-op (index 3) only to n3.
    sim.crash("n5");
    sim.restart("n1");
    sim.filter = Some(Box::new(|from, to, m| {
        from == "n1"
            && to != "n3"
            && matches!(m, RaftMsg::Append { entries, .. } if entries.iter().any(|e| e.index >= 3))
    }));
    elect(&mut sim, "n1");
    sim.tick_nodes(&["n1"], 6); // heartbeat-driven retransmission brings n2, n4 to index 2
    let n1_commit = sim.node("n1").commit_index();
    assert_eq!(
        n1_commit >= 2,
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
        let mut leaders_by_term: BTreeMap<u64, String> = BTreeMap::new();
        let mut next_req: ReqId = 1;
        let mut crashed: Vec<&str> = Vec::new();
        for _step in 0..300 {
            match rng.gen_range(0..100) {
                0..=4 => sim.isolate(IDS5[rng.gen_range(0..5)]),
                5..=9 => sim.recover(),
                10..=12 if crashed.len() < 2 => {
                    let id = IDS5[rng.gen_range(0..5)];
                    if !crashed.contains(&id) {
                        sim.crash(id);
                        crashed.push(id);
                    }
                }
                13..=16 => {
                    if let Some(id) = crashed.pop() {
                        sim.restart(id);
                    }
                }
                17..=20 => *loss.borrow_mut() = [0.0, 0.1, 0.3][rng.gen_range(0..3)],
                _ => {}
            }
            for id in IDS5 {
                if sim.is_live(id) && rng.gen_bool(0.3) {
                    sim.node(id).propose(next_req, put("k", next_req as i64));
                    next_req += 1;
                }
            }
            sim.tick_all(1);
            for (id, term) in leaders(&sim) {
                let prev = leaders_by_term.entry(term).or_insert(id.clone());
                assert_eq!(*prev, id, "seed {seed}: two leaders in term {term}");
            }
            assert!(
                applied_consistent(&sim),
                "seed {seed}: state machine safety"
            );
        }
        // Heal everything and let the cluster converge.
        *loss.borrow_mut() = 0.0;
        sim.recover();
        for id in crashed.drain(..) {
            sim.restart(id);
        }
        sim.tick_all(100);
        let l = leaders(&sim);
        assert_eq!(l.len(), 1, "seed {seed}: one leader after healing: {l:?}");
        let leader = l[0].0.clone();
        sim.node(&leader).propose(next_req, put("final", 1));
        sim.settle();
        sim.tick_all(5);
        assert!(applied_consistent(&sim), "seed {seed}");
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
