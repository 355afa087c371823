//! Deterministic Multi-Paxos tests on the in-memory network (`engine/sim.rs`): no sockets,
//! no sleeps. Names cite what they check: Lamport's "Paxos Made Simple" (P2c: a chosen
//! value is never changed), holes, re-proposal by a new leader, and the StartWorking
//! barrier against ghost reappearance (module doc of `multipaxos.rs`).

use super::*;
use crate::engine::sim::Sim;
use crate::msg::Value;
use crate::state_machine::KvStateMachine;

const IDS3: [&str; 3] = ["n1", "n2", "n3"];

fn cluster(unsafe_no_sw: bool, tweak: impl Fn(&mut EngineConfig) + 'static) -> Sim<MultiPaxos> {
    let all: Vec<String> = IDS3.iter().map(|s| s.to_string()).collect();
    Sim::new(
        &IDS3,
        Box::new(move |id: &str, rec: Recovered| {
            let peers: Vec<&str> = all
                .iter()
                .map(|s| s.as_str())
                .filter(|p| *p != id)
                .collect();
            let mut cfg = EngineConfig::new(id, &peers);
            cfg.seed = 11;
            cfg.read_mode = ReadMode::Log;
            tweak(&mut cfg);
            MultiPaxos::new(cfg, rec, unsafe_no_sw).expect("multipaxos builds")
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

fn leaders(sim: &Sim<MultiPaxos>) -> Vec<String> {
    sim.engines()
        .filter(|(_, n)| n.role() == Role::Leader)
        .map(|(id, _)| id.clone())
        .collect()
}

fn elect(sim: &mut Sim<MultiPaxos>, id: &str) {
    let others: Vec<String> = sim.live().into_iter().filter(|k| k != id).collect();
    for o in others {
        sim.node(&o).forget_leader();
    }
    for _ in 0..4 {
        // A round is refused when an acceptor promised a higher ballot: the refusal teaches
        // the proposer the round to beat.
        sim.node(id).campaign_now();
        sim.settle();
        if sim.node(id).role() == Role::Leader {
            break;
        }
    }
    assert_eq!(sim.node(id).role(), Role::Leader, "{id} should lead");
}

/// The key-value state `id` reached by applying everything it applied (in instance order;
/// a restarted node re-applies from 1, identically).
fn state(sim: &Sim<MultiPaxos>, id: &str) -> KvStateMachine {
    let mut by_index: BTreeMap<u64, Entry> = BTreeMap::new();
    for a in &sim.out[id].applied {
        by_index.insert(a.entry.index, a.entry.clone());
    }
    let mut sm = KvStateMachine::default();
    for (expect, (i, e)) in (1..).zip(by_index) {
        assert_eq!(i, expect, "{id} applied out of order or with a gap");
        if let Payload::Command(c) = &e.payload {
            sm.apply(c);
        }
    }
    sm
}

/// No two nodes applied different entries at one instance.
fn applied_consistent(sim: &Sim<MultiPaxos>) {
    let mut seen: BTreeMap<u64, (String, Entry)> = BTreeMap::new();
    for (id, out) in &sim.out {
        for a in &out.applied {
            match seen.get(&a.entry.index) {
                Some((other, e)) => assert_eq!(
                    *e, a.entry,
                    "{id} and {other} applied different entries at {}",
                    a.entry.index
                ),
                None => {
                    seen.insert(a.entry.index, (id.clone(), a.entry.clone()));
                }
            }
        }
    }
}

fn is_accept(m: &PaxosMsg) -> bool {
    matches!(m, PaxosMsg::Accept { .. })
}

#[test]
fn leader_election_and_accept_only_steady_state() {
    let mut sim = cluster(false, |_| {});
    sim.tick_all(60);
    let l = leaders(&sim);
    assert_eq!(l.len(), 1, "exactly one leader: {l:?}");
    let leader = l[0].clone();
    let prepares_before = sim
        .delivered
        .iter()
        .filter(|(_, _, m)| matches!(m, PaxosMsg::Prepare { .. }))
        .count();
    for v in 0..20 {
        sim.node(&leader).propose(v as u64, put("x", v));
    }
    sim.settle();
    sim.tick_all(3);
    let prepares_after = sim
        .delivered
        .iter()
        .filter(|(_, _, m)| matches!(m, PaxosMsg::Prepare { .. }))
        .count();
    assert_eq!(
        prepares_before, prepares_after,
        "steady state is Accept-only"
    );
    for id in IDS3 {
        assert_eq!(state(&sim, id).get("x"), Some(Value::Int(19)), "{id}");
    }
    applied_consistent(&sim);
    // Every client of the leader was answered through apply.
    let answered = sim.out[&leader]
        .applied
        .iter()
        .filter(|a| a.req.is_some())
        .count();
    assert_eq!(answered, 20);
}

#[test]
fn duelling_proposers_converge_once_one_backs_off() {
    let mut sim = cluster(false, |_| {});
    elect(&mut sim, "n1");
    // n2 now duels: each side's Prepare invalidates the other's Accepts. A proposer whose
    // ballot is refused must back off (randomized timeout) instead of re-preparing at once.
    let mut req = 0;
    for _ in 0..3 {
        for id in ["n1", "n2"] {
            for o in IDS3 {
                sim.node(o).forget_leader();
            }
            if sim.node(id).role() != Role::Leader {
                sim.node(id).campaign_now();
            }
            req += 1;
            sim.node(id).propose(req, put("d", req as i64));
        }
        sim.settle();
    }
    // Refused proposers are followers again, waiting out a randomized timeout.
    assert!(leaders(&sim).len() <= 1, "{:?}", leaders(&sim));
    sim.tick_all(100);
    let l = leaders(&sim);
    assert_eq!(l.len(), 1, "converged on one leader: {l:?}");
    let leader = l[0].clone();
    sim.node(&leader).propose(1000, put("d", 1000));
    sim.settle();
    sim.tick_all(5);
    for id in IDS3 {
        assert_eq!(state(&sim, id).get("d"), Some(Value::Int(1000)), "{id}");
    }
    applied_consistent(&sim);
}

#[test]
fn chosen_value_is_never_changed_by_a_later_ballot() {
    // P2c: once a majority accepted v at ballot b, every higher ballot proposes v.
    let mut sim = cluster(false, |_| {});
    elect(&mut sim, "n1");
    sim.tick_all(2);
    let before = sim.node("n1").chosen_upto();
    // v reaches n2 only, and n1 never learns it was chosen (acks dropped).
    sim.filter = Some(Box::new(|from, to, m| {
        (from == "n1" && to == "n3" && is_accept(m))
            || (to == "n1" && matches!(m, PaxosMsg::Accepted { .. }))
    }));
    sim.node("n1").propose(1, put("k", 42));
    sim.settle();
    let inst = before + 1;
    assert_eq!(sim.node("n1").chosen_value(inst), None, "n1 does not know");
    sim.filter = None;
    sim.crash("n1");
    // n3 never saw v; its quorum {n2, n3} must still adopt it.
    elect(&mut sim, "n3");
    sim.tick_all(3);
    let v = sim.node("n3").chosen_value(inst).cloned().expect("chosen");
    assert_eq!(v.kind, Kind::Command(put("k", 42)));
    // And again with the other quorum, after n1 restarts and n3 crashes.
    sim.restart("n1");
    sim.crash("n3");
    elect(&mut sim, "n1");
    sim.tick_all(3);
    assert_eq!(sim.node("n1").chosen_value(inst), Some(&v));
    assert_eq!(state(&sim, "n1").get("k"), Some(Value::Int(42)));
    applied_consistent(&sim);
}

#[test]
fn holes_are_filled_and_apply_waits_for_them() {
    let mut sim = cluster(false, |_| {});
    elect(&mut sim, "n1");
    sim.tick_all(2);
    let base = sim.node("n1").chosen_upto();
    // The first of two commands never leaves n1: instance base+1 is a hole, base+2 chosen.
    sim.filter = Some(Box::new(move |from, _, m| {
        from == "n1"
            && matches!(m, PaxosMsg::Accept { entries, .. } if entries.iter().any(|(i, _)| *i == base + 1))
    }));
    sim.node("n1").propose(1, put("h", 1));
    sim.settle();
    sim.node("n1").propose(2, put("h", 2));
    sim.settle();
    sim.filter = None;
    for id in ["n2", "n3"] {
        assert!(sim.node(id).accepted(base + 1).is_none(), "{id} has a hole");
        assert!(sim.node(id).accepted(base + 2).is_some(), "{id}");
        assert_eq!(
            sim.node(id).chosen_upto(),
            base,
            "{id} cannot apply past the hole"
        );
    }
    assert!(
        sim.node("n1").chosen_value(base + 2).is_some(),
        "chosen out of order"
    );
    assert_eq!(sim.node("n1").chosen_upto(), base);
    // The leader dies; the new one fills the hole with a no-op and applies base+2.
    sim.crash("n1");
    elect(&mut sim, "n2");
    sim.tick_all(3);
    for id in ["n2", "n3"] {
        let v = sim.node(id).chosen_value(base + 1).expect("hole filled");
        assert_eq!(v.kind, Kind::Noop, "{id}");
        assert_eq!(state(&sim, id).get("h"), Some(Value::Int(2)), "{id}");
    }
    // A restarted node catches up on everything it missed.
    sim.restart("n1");
    sim.tick_all(10);
    assert_eq!(state(&sim, "n1").get("h"), Some(Value::Int(2)));
    applied_consistent(&sim);
}

#[test]
fn new_leader_re_proposes_the_highest_ballot_accepted_value() {
    let mut sim = cluster(false, |_| {});
    // Instance 1: n2 accepted v1 at ballot (1, n1), n3 accepted v2 at its own ballot
    // (2, n3); none chosen. n2's quorum is {n2, n3} (n1 is down): it must adopt v2, the
    // value of the highest ballot, over its own v1.
    let v = |x: i64, origin: u64| PValue {
        origin,
        kind: Kind::Command(put("r", x)),
    };
    let (b1, b2) = (ballot(1, 1), ballot(2, 3));
    let hs = |p: u64| {
        serde_json::to_vec(&HardState {
            promised: p,
            chosen_upto: 0,
        })
        .unwrap()
    };
    {
        let s = &mut sim.storage_mut("n1").state;
        s.entries.insert(1, encode_slot(1, b1, &v(1, b1)));
        s.hard_state = Some(hs(b1));
        let s = &mut sim.storage_mut("n2").state;
        s.entries.insert(1, encode_slot(1, b1, &v(1, b1)));
        s.hard_state = Some(hs(b1));
        let s = &mut sim.storage_mut("n3").state;
        s.entries.insert(1, encode_slot(1, b2, &v(2, b2)));
        s.hard_state = Some(hs(b2));
    }
    for id in IDS3 {
        sim.crash(id);
    }
    for id in ["n2", "n3"] {
        sim.restart(id);
    }
    elect(&mut sim, "n2");
    sim.tick_all(3);
    assert_eq!(
        sim.node("n2").chosen_value(1).map(|v| &v.kind),
        Some(&Kind::Command(put("r", 2)))
    );
    sim.restart("n1");
    sim.tick_all(10);
    for id in IDS3 {
        assert_eq!(state(&sim, id).get("r"), Some(Value::Int(2)), "{id}");
    }
    applied_consistent(&sim);
}

/// The issue's scenario: A (n1) writes 1..10, 6..10 reach only A; B (n2) takes over at 5,
/// writes x := 20 and reads it back; A leads again and must re-propose its old entries.
fn ghost_scenario(unsafe_no_sw: bool) -> (Sim<MultiPaxos>, Vec<(ReqId, Reply)>) {
    let mut sim = cluster(unsafe_no_sw, |_| {});
    elect(&mut sim, "n1");
    sim.settle();
    let base = sim.node("n1").chosen_upto();
    for v in 1..=5 {
        sim.node("n1").propose(v, put("x", v as i64));
    }
    sim.settle();
    sim.tick_all(3);
    assert_eq!(state(&sim, "n2").get("x"), Some(Value::Int(5)));
    // 6..10 are accepted by n1 alone.
    sim.filter = Some(Box::new(|from, _, m| from == "n1" && is_accept(m)));
    for v in 6..=10 {
        sim.node("n1").propose(v, put("x", v as i64));
    }
    sim.settle();
    sim.filter = None;
    assert!(sim.node("n1").accepted(base + 10).is_some());
    sim.isolate("n1");
    elect(&mut sim, "n2");
    sim.node("n2").propose(100, put("x", 20));
    sim.settle();
    sim.node("n2").read(101, "x".into());
    sim.settle();
    sim.tick_all(1);
    let b_reads: Vec<Reply> = sim.out["n2"]
        .applied
        .iter()
        .filter(|a| a.req == Some(101))
        .map(|a| match &a.entry.payload {
            Payload::Command(c) => KvStateMachine::default().apply(c),
            _ => Reply::Unknown,
        })
        .collect();
    assert_eq!(b_reads.len(), 1, "B served the read through the log");
    assert_eq!(state(&sim, "n2").get("x"), Some(Value::Int(20)));
    // B goes away; A comes back and leads with quorum {A, C}.
    sim.crash("n2");
    sim.recover();
    elect(&mut sim, "n1");
    sim.tick_all(5);
    let replies = sim.out["n1"].replies.clone();
    (sim, replies)
}

#[test]
fn ghost_reappearance_is_prevented_by_start_working() {
    let (sim, replies) = ghost_scenario(false);
    for id in ["n1", "n3"] {
        assert_eq!(
            state(&sim, id).get("x"),
            Some(Value::Int(20)),
            "{id}: A's unacknowledged 6..10 must not reappear after B's StartWorking"
        );
    }
    // A's clients of 6..10 were told "unknown", never "ok".
    for req in 6..=10 {
        assert!(replies.contains(&(req, Reply::Unknown)), "req {req}");
    }
    applied_consistent(&sim);
}

#[test]
fn ghost_reappearance_happens_without_start_working() {
    let (sim, _) = ghost_scenario(true);
    for id in ["n1", "n3"] {
        assert_eq!(
            state(&sim, id).get("x"),
            Some(Value::Int(10)),
            "{id}: with --unsafe-no-start-working A's old 7..10 reappear over x=20"
        );
    }
    applied_consistent(&sim);
}

#[test]
fn restart_recovers_acceptor_state_and_applies_again() {
    let mut sim = cluster(false, |_| {});
    elect(&mut sim, "n1");
    for v in 1..=5 {
        sim.node("n1").propose(v, put("p", v as i64));
    }
    sim.settle();
    sim.tick_all(2);
    let promised = sim.node("n2").promised();
    for id in IDS3 {
        sim.crash(id);
    }
    for id in IDS3 {
        sim.restart(id);
    }
    assert_eq!(sim.node("n2").promised(), promised);
    sim.tick_all(80);
    assert_eq!(leaders(&sim).len(), 1);
    for id in IDS3 {
        assert_eq!(state(&sim, id).get("p"), Some(Value::Int(5)), "{id}");
    }
    applied_consistent(&sim);
}

#[test]
fn lease_reads_are_local_once_start_working_is_applied() {
    let mut sim = cluster(false, |c| c.read_mode = ReadMode::Lease);
    elect(&mut sim, "n1");
    sim.node("n1").propose(1, put("l", 7));
    sim.settle();
    sim.tick_all(3);
    sim.node("n1").read(2, "l".into());
    sim.settle();
    let out = &sim.out["n1"];
    assert!(
        out.reads.iter().any(|r| r.req == 2),
        "served from the lease"
    );
    // A follower redirects.
    sim.node("n2").read(3, "l".into());
    sim.settle();
    assert!(sim.out["n2"]
        .replies
        .contains(&(3, Reply::NotLeader(Some("n1".into())))));
}

#[test]
fn minority_leader_steps_down_and_answers_unknown() {
    let mut sim = cluster(false, |_| {});
    elect(&mut sim, "n1");
    sim.isolate("n1");
    sim.node("n1").propose(9, put("m", 1));
    sim.settle();
    sim.tick_nodes(&["n1"], 40);
    assert_ne!(sim.node("n1").role(), Role::Leader);
    assert!(sim.out["n1"].replies.contains(&(9, Reply::Unknown)));
}

// ---------------------------------------------------------------------------------------
// Checkpoints and state transfer.

/// The state machine of `id` as JSON (maps compare regardless of hash order).
fn sm_json(sim: &Sim<MultiPaxos>, id: &str) -> serde_json::Value {
    serde_json::from_slice(&sim.state_machine(id).encode()).unwrap()
}

fn write_n(sim: &mut Sim<MultiPaxos>, leader: &str, from: i64, n: i64) {
    for i in from..from + n {
        sim.node(leader)
            .propose(i as ReqId, put(&format!("k{}", i % 5), i));
        sim.settle();
    }
}

#[test]
fn checkpoint_discards_chosen_instances_and_a_restart_resumes_from_it() {
    let mut sim = cluster(false, |c| c.snapshot_entries = 10);
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 25);
    sim.tick_all(3);
    for id in IDS3 {
        let cp = sim.node(id).checkpoint();
        assert!(cp >= 20, "{id} checkpointed: {cp}");
        assert!(
            sim.node(id).accepted(cp).is_none(),
            "{id} discarded slot {cp}"
        );
        let stored = &sim.storage_mut(id).state;
        assert!(stored.snapshot.is_some() && stored.entries.keys().all(|i| *i > cp));
    }
    let before = sm_json(&sim, "n2");
    sim.crash("n2");
    sim.restart("n2");
    sim.tick_all(3);
    assert_eq!(sm_json(&sim, "n2"), before);
    // The StartWorking barrier survives the checkpoint: the restarted node keeps applying
    // new writes of the current leader (none skipped as ghosts).
    write_n(&mut sim, "n1", 100, 3);
    sim.tick_all(3);
    assert_eq!(sm_json(&sim, "n2"), sm_json(&sim, "n1"));
    applied_consistent(&sim);
}

#[test]
fn a_follower_behind_the_checkpoint_catches_up_by_state_transfer() {
    let mut sim = cluster(false, |c| {
        c.snapshot_entries = 10;
        c.snapshot_chunk = 50;
    });
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 3);
    sim.crash("n3");
    write_n(&mut sim, "n1", 10, 40);
    assert!(sim.node("n1").checkpoint() > 10);
    sim.restart("n3");
    sim.tick_all(40);
    assert!(
        sim.out["n3"]
            .snapshots
            .iter()
            .any(|(_, installed)| *installed),
        "state transferred"
    );
    assert_eq!(sm_json(&sim, "n3"), sm_json(&sim, "n1"));
    assert!(sim.node("n3").chosen_upto() >= sim.node("n1").checkpoint());
    applied_consistent(&sim);
}

/// A candidate whose chosen prefix ends below an acceptor's checkpoint must not lead: its
/// Prepare quorum can no longer show it the discarded chosen values, and it would fill them
/// with no-ops. It gives up the round, gets the acceptor's state, and leads afterwards.
#[test]
fn a_candidate_behind_an_acceptors_checkpoint_gets_its_state_before_leading() {
    let mut sim = cluster(false, |c| c.snapshot_entries = 10);
    elect(&mut sim, "n1");
    write_n(&mut sim, "n1", 1, 3);
    sim.crash("n3");
    write_n(&mut sim, "n1", 10, 30);
    let cp = sim.node("n2").checkpoint();
    assert!(cp > 10);
    // n1 goes away; n3 comes back far behind and campaigns before anyone catches it up.
    sim.crash("n1");
    sim.restart("n3");
    sim.node("n2").forget_leader();
    sim.node("n3").forget_leader();
    sim.node("n3").campaign_now();
    sim.settle();
    assert_ne!(sim.node("n3").role(), Role::Leader, "gave up the round");
    assert!(sim.node("n3").chosen_upto() >= cp, "got n2's state instead");
    elect(&mut sim, "n3");
    write_n(&mut sim, "n3", 100, 2);
    sim.tick_all(3);
    assert_eq!(sm_json(&sim, "n3"), sm_json(&sim, "n2"));
    assert_eq!(
        sim.state_machine("n3").get("k0"),
        Some(Value::Int(100)),
        "the new leader's write applies on top of the transferred state"
    );
    applied_consistent(&sim);
}
