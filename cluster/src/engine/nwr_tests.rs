//! Deterministic tests of the NWR engine on the in-memory network (`engine/sim.rs`): quorum
//! counting (Dynamo §4.5), the W+R>N intersection property over seeded drop patterns, the
//! stale read W+R<=N allows (what PBS quantifies), LWW losing a write under clock skew and
//! the hybrid logical clock (Kulkarni et al.) preventing it, read repair, placement,
//! restart from storage and configuration errors.

use super::*;
use crate::engine::sim::Sim;
use crate::msg::{Command, Op, Reply, Value};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::rc::Rc;

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

pub(super) fn sim(n: usize, nwr: NwrConfig) -> Sim<Nwr> {
    let all = ids(n);
    let names: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    let all2 = all.clone();
    Sim::new(
        &names,
        Box::new(move |id, rec| {
            let peers: Vec<&str> = all2
                .iter()
                .filter(|p| *p != id)
                .map(|s| s.as_str())
                .collect();
            Nwr::new(EngineConfig::new(id, &peers), nwr.clone(), rec).expect("valid config")
        }),
    )
}

pub(super) fn cfg(n: usize, w: usize, r: usize, clock: ClockMode) -> NwrConfig {
    NwrConfig {
        n,
        w,
        r,
        read_repair: false,
        read_writeback: false,
        clock,
        request_ticks: 5,
    }
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

/// The reply to `req` on `node`, if any yet.
pub(super) fn reply(s: &Sim<Nwr>, node: &str, req: ReqId) -> Option<Reply> {
    s.out[node]
        .replies
        .iter()
        .find(|(r, _)| *r == req)
        .map(|(_, r)| r.clone())
}

/// Ticks every live node once with wall clock `wall` (same clock everywhere) and settles.
fn tick_wall(s: &mut Sim<Nwr>, wall: u64) {
    let live: Vec<String> = s.live();
    for id in live {
        s.node(&id).tick(wall);
    }
    s.settle();
}

fn write(s: &mut Sim<Nwr>, node: &str, req: ReqId, key: &str, v: i64) -> Option<Reply> {
    s.node(node).propose(req, put(key, v));
    s.settle();
    reply(s, node, req)
}

fn read(s: &mut Sim<Nwr>, node: &str, req: ReqId, key: &str) -> Option<Reply> {
    s.node(node).read(req, key.into());
    s.settle();
    reply(s, node, req)
}

#[test]
fn write_waits_for_w_acks_and_times_out_unknown() {
    let mut s = sim(3, cfg(3, 2, 2, ClockMode::Hybrid));
    // n1 + n2 persist: W=2 reached although n3 is cut off.
    s.cut("n1", "n3");
    assert_eq!(write(&mut s, "n1", 1, "k", 1), Some(Reply::Ok));
    // Only n1 itself can ack: no answer until the deadline, then unknown (504).
    s.isolate("n1");
    assert_eq!(write(&mut s, "n1", 2, "k", 2), None);
    for t in 0..5 {
        tick_wall(&mut s, t);
    }
    assert_eq!(reply(&s, "n1", 2), Some(Reply::Unknown));
    // Reads: R=2 unreachable -> definite failure (503) at the deadline.
    assert_eq!(read(&mut s, "n1", 3, "k"), None);
    for t in 5..10 {
        tick_wall(&mut s, t);
    }
    assert!(matches!(reply(&s, "n1", 3), Some(Reply::Unavailable(_))));
    // The W=2 write is durable at n2 (persisted before acking), and the unknown one is at n1.
    assert_eq!(s.node("n2").stored("k").unwrap().value, Value::Int(1));
    assert_eq!(s.node("n1").stored("k").unwrap().value, Value::Int(2));
    assert_eq!(s.node("n3").stored("k"), None);
}

#[test]
fn read_counts_r_replies_and_returns_the_newest() {
    let mut s = sim(3, cfg(3, 3, 2, ClockMode::Hybrid));
    tick_wall(&mut s, 100);
    assert_eq!(write(&mut s, "n1", 1, "k", 1), Some(Reply::Ok));
    tick_wall(&mut s, 200);
    assert_eq!(write(&mut s, "n2", 2, "k", 2), Some(Reply::Ok));
    assert_eq!(
        read(&mut s, "n3", 3, "k"),
        Some(Reply::Value(Some(Value::Int(2))))
    );
    assert_eq!(read(&mut s, "n3", 4, "nope"), Some(Reply::Value(None)));
}

#[test]
fn cas_is_unsupported_definitely() {
    let mut s = sim(3, cfg(3, 2, 2, ClockMode::Hybrid));
    let cas = Command {
        op: Op::Cas {
            key: "k".into(),
            from: Value::Int(0),
            to: Value::Int(1),
        },
        client_id: None,
        seq: None,
    };
    s.node("n1").propose(7, cas);
    s.settle();
    assert_eq!(reply(&s, "n1", 7), Some(Reply::Unsupported));
}

/// W+R>N: over many seeds and random message drops, a read that gets an answer returns the
/// last acknowledged write or a later (possibly unacknowledged) one, never anything older.
#[test]
fn intersecting_quorums_never_read_stale_over_seeds() {
    let configs = [
        (3, 2, 2),
        (3, 3, 1),
        (3, 1, 3),
        (5, 3, 3),
        (5, 2, 4),
        (5, 4, 2),
    ];
    for seed in 0..120u64 {
        let (n, w, r) = configs[seed as usize % configs.len()];
        let mut s = sim(n, cfg(n, w, r, ClockMode::Hybrid));
        let rng = Rc::new(RefCell::new(ChaCha8Rng::seed_from_u64(seed)));
        let drop_p = 0.1 + 0.05 * (seed % 6) as f64;
        let frng = rng.clone();
        s.filter = Some(Box::new(move |_, _, _| frng.borrow_mut().gen_bool(drop_p)));
        let names = ids(n);
        let mut wall = 1000;
        // Values written since (and including) the last acknowledged one.
        let mut allowed: Vec<Option<i64>> = vec![None];
        let mut req = 0;
        let mut acked_reads = 0;
        for step in 0..40 {
            req += 1;
            wall += 10;
            tick_wall(&mut s, wall);
            let node = names[rng.borrow_mut().gen_range(0..n)].clone();
            if rng.borrow_mut().gen_bool(0.5) {
                let v = step as i64;
                s.node(&node).propose(req, put("k", v));
                s.settle();
                for _ in 0..6 {
                    tick_wall(&mut s, wall);
                }
                match reply(&s, &node, req) {
                    Some(Reply::Ok) => allowed = vec![Some(v)],
                    Some(Reply::Unknown) => allowed.push(Some(v)),
                    other => panic!("seed {seed}: write answered {other:?}"),
                }
            } else {
                s.node(&node).read(req, "k".into());
                s.settle();
                for _ in 0..6 {
                    tick_wall(&mut s, wall);
                }
                match reply(&s, &node, req) {
                    Some(Reply::Value(v)) => {
                        acked_reads += 1;
                        let v = v.map(|v| match v {
                            Value::Int(i) => i,
                            Value::Str(_) | Value::List(_) => unreachable!(),
                        });
                        assert!(
                            allowed.contains(&v),
                            "seed {seed} (N={n},W={w},R={r}): read {v:?}, allowed {allowed:?}"
                        );
                    }
                    Some(Reply::Unavailable(_)) => {}
                    other => panic!("seed {seed}: read answered {other:?}"),
                }
            }
        }
        assert!(acked_reads > 0, "seed {seed}: no read ever answered");
    }
}

/// W+R<=N: the read and write quorums need not intersect; here they do not.
#[test]
fn partial_quorums_allow_a_stale_read() {
    let mut s = sim(3, cfg(3, 1, 1, ClockMode::Hybrid));
    tick_wall(&mut s, 100);
    assert_eq!(write(&mut s, "n1", 1, "k", 1), Some(Reply::Ok));
    // Second write reaches only its coordinator n1 (W=1 acknowledges it right away).
    s.isolate("n1");
    tick_wall(&mut s, 200);
    assert_eq!(write(&mut s, "n1", 2, "k", 2), Some(Reply::Ok));
    // A read through n2 counts n2's own reply first (R=1): the acknowledged write is missed.
    assert_eq!(
        read(&mut s, "n2", 3, "k"),
        Some(Reply::Value(Some(Value::Int(1))))
    );
    // The same read with R=2 would have been impossible to answer stale: n3 is stale too,
    // but n1 is cut; with W=2, write 2 would not have been acknowledged at all.
}

/// LWW with wall-clock timestamps: n1's clock runs 10 s ahead; its write at real time 1 s
/// beats n2's write at real time 2 s, so the later acknowledged write is lost. The hybrid
/// clock carries n1's reading to n2 with the replication traffic and orders them correctly.
#[test]
fn wall_clock_skew_loses_a_write_and_hlc_fixes_it() {
    for (clock, expect) in [(ClockMode::Wall, 1), (ClockMode::Hybrid, 2)] {
        let mut s = sim(3, cfg(3, 2, 2, clock));
        s.node("n1").tick(11_000); // skewed +10 s
        s.node("n2").tick(1_000);
        s.node("n3").tick(1_000);
        s.settle();
        assert_eq!(write(&mut s, "n1", 1, "k", 1), Some(Reply::Ok));
        // One real second later n2 (correct clock) overwrites; acknowledged too.
        s.node("n1").tick(12_000);
        s.node("n2").tick(2_000);
        s.node("n3").tick(2_000);
        s.settle();
        assert_eq!(write(&mut s, "n2", 2, "k", 2), Some(Reply::Ok));
        assert_eq!(
            read(&mut s, "n3", 3, "k"),
            Some(Reply::Value(Some(Value::Int(expect)))),
            "{clock:?}"
        );
    }
}

#[test]
fn read_repair_converges_the_replicas_that_answered() {
    let mut c = cfg(3, 1, 3, ClockMode::Hybrid);
    c.read_repair = true;
    let mut s = sim(3, c);
    tick_wall(&mut s, 100);
    s.isolate("n1");
    assert_eq!(write(&mut s, "n1", 1, "k", 5), Some(Reply::Ok));
    assert_eq!(s.node("n2").stored("k"), None);
    s.recover();
    assert_eq!(
        read(&mut s, "n2", 2, "k"),
        Some(Reply::Value(Some(Value::Int(5))))
    );
    for n in ["n1", "n2", "n3"] {
        assert_eq!(s.node(n).stored("k").unwrap().value, Value::Int(5), "{n}");
    }
    // Without read repair the stale replicas stay stale.
    let mut s = sim(3, cfg(3, 1, 3, ClockMode::Hybrid));
    s.isolate("n1");
    write(&mut s, "n1", 1, "k", 5);
    s.recover();
    read(&mut s, "n2", 2, "k");
    assert_eq!(s.node("n2").stored("k"), None);
}

#[test]
fn placement_is_deterministic_with_n_below_cluster_size() {
    let nodes = ids(5);
    let mut load = BTreeMap::new();
    for k in 0..200 {
        let key = format!("key{k}");
        let p = placement(&nodes, 3, &key);
        assert_eq!(p, placement(&nodes, 3, &key));
        let set: BTreeSet<_> = p.iter().collect();
        assert_eq!(set.len(), 3, "{key}: {p:?}");
        for n in p {
            *load.entry(n).or_insert(0) += 1;
        }
    }
    // Every node holds some keys.
    assert_eq!(load.len(), 5, "{load:?}");
    assert_eq!(placement(&nodes, 5, "x"), nodes);
    // The engine uses the same placement, and only the replicas store the key.
    let mut s = sim(5, cfg(3, 2, 2, ClockMode::Hybrid));
    tick_wall(&mut s, 100);
    assert_eq!(write(&mut s, "n4", 1, "key7", 9), Some(Reply::Ok));
    let reps = placement(&nodes, 3, "key7");
    for n in &nodes {
        assert_eq!(s.node(n).stored("key7").is_some(), reps.contains(n), "{n}");
    }
    assert_eq!(
        read(&mut s, "n5", 2, "key7"),
        Some(Reply::Value(Some(Value::Int(9))))
    );
}

#[test]
fn replicas_survive_a_crash_and_request_ids_change_epoch() {
    let mut s = sim(3, cfg(3, 3, 3, ClockMode::Hybrid));
    tick_wall(&mut s, 100);
    assert_eq!(write(&mut s, "n1", 1, "k", 1), Some(Reply::Ok));
    assert_eq!(write(&mut s, "n1", 2, "j", 2), Some(Reply::Ok));
    let clock = s.node("n2").clock();
    s.crash("n2");
    s.restart("n2");
    assert_eq!(s.node("n2").stored("k").unwrap().value, Value::Int(1));
    assert_eq!(s.node("n2").stored("j").unwrap().value, Value::Int(2));
    assert!(s.node("n2").clock() >= (clock.0, 0));
    s.settle();
    assert_eq!(s.node("n2").epoch, 2);
    assert_eq!(
        read(&mut s, "n2", 3, "k"),
        Some(Reply::Value(Some(Value::Int(1))))
    );
}

#[test]
fn retry_through_the_same_coordinator_reuses_the_timestamp() {
    let mut s = sim(3, cfg(3, 2, 2, ClockMode::Hybrid));
    tick_wall(&mut s, 100);
    let tagged = |seq| Command {
        op: Op::Put {
            key: "k".into(),
            value: Value::Int(1),
        },
        client_id: Some("c".into()),
        seq: Some(seq),
    };
    s.isolate("n1");
    s.node("n1").propose(1, tagged(4));
    s.settle();
    let ts1 = s.node("n1").stored("k").unwrap().ts.clone();
    tick_wall(&mut s, 200);
    s.recover();
    s.node("n1").propose(2, tagged(4));
    s.settle();
    assert_eq!(reply(&s, "n1", 2), Some(Reply::Ok));
    for n in ["n1", "n2", "n3"] {
        assert_eq!(s.node(n).stored("k").unwrap().ts, ts1, "{n}");
    }
    // An older seq is not written and answers unknown.
    s.node("n1").propose(3, tagged(3));
    s.settle();
    assert_eq!(reply(&s, "n1", 3), Some(Reply::Unknown));
}

#[test]
fn out_of_range_settings_are_rejected_naming_the_flag() {
    let bad = [
        (cfg(4, 2, 2, ClockMode::Wall), "--n 4"),
        (cfg(0, 1, 1, ClockMode::Wall), "--n 0"),
        (cfg(3, 0, 2, ClockMode::Wall), "--w 0"),
        (cfg(3, 4, 2, ClockMode::Wall), "--w 4"),
        (cfg(3, 2, 0, ClockMode::Wall), "--r 0"),
        (cfg(2, 2, 3, ClockMode::Wall), "--r 3"),
    ];
    for (c, flag) in bad {
        let err = c.validate(3).unwrap_err().to_string();
        assert!(err.contains(flag), "{err}");
        let e = Nwr::new(
            EngineConfig::new("n1", &["n2", "n3"]),
            c,
            Recovered::default(),
        );
        assert!(e.is_err());
    }
    assert!(cfg(3, 1, 1, ClockMode::Wall).validate(3).is_ok());
    assert!(cfg(3, 3, 3, ClockMode::Wall).validate(5).is_ok());
}

/// The real-run case behind a stale read with W+R>N on the hybrid clock: n2 and n3 cannot
/// talk (a bridge partition through n1), and between gossip rounds n3 coordinates a write,
/// then n2 one that began 3 ms after it was acknowledged. Stamped with the last tick's
/// clock both got the same physical part and the tie went to the older write; stamped with
/// the clock read when each request arrived (what the node driver passes), the newer wins.
#[test]
fn hybrid_clock_orders_writes_by_arrival_time_between_gossip_rounds() {
    let mut s = sim(3, cfg(3, 2, 2, ClockMode::Hybrid));
    tick_wall(&mut s, 1_000);
    s.cut("n2", "n3");
    s.node("n3").observe_wall(1_003);
    assert_eq!(write(&mut s, "n3", 1, "k", 1), Some(Reply::Ok));
    s.node("n2").observe_wall(1_006);
    assert_eq!(write(&mut s, "n2", 2, "k", 2), Some(Reply::Ok));
    assert_eq!(
        read(&mut s, "n2", 3, "k"),
        Some(Reply::Value(Some(Value::Int(2))))
    );
}

/// ABD reads (`--read-writeback`): a write of 2 reached only n1 (its other messages lost).
/// A read through n2 hears 1 from itself and 2 from n1 and returns 2. Plain quorums answer
/// at once, so a later read through n3 (quorum n2, n3) returns 1: new-old inversion, not
/// linearizable. With write-back the first read puts 2 on a write quorum before answering,
/// and every later read sees it.
#[test]
fn read_writeback_prevents_a_new_old_inversion() {
    for (writeback, later) in [(false, 1), (true, 2)] {
        let mut c = cfg(3, 2, 2, ClockMode::Hybrid);
        c.read_writeback = writeback;
        let mut s = sim(3, c);
        tick_wall(&mut s, 1_000);
        assert_eq!(write(&mut s, "n1", 1, "k", 1), Some(Reply::Ok));
        tick_wall(&mut s, 1_001);
        // n1's messages carrying 2 are lost; it holds 2 alone.
        s.filter = Some(Box::new(|from, _to, m: &NwrMsg| {
            from == "n1"
                && matches!(&m.body, Body::Write { version, .. } if version.value == Value::Int(2))
        }));
        assert_eq!(
            write(&mut s, "n1", 2, "k", 2),
            None,
            "write of 2 cannot finish"
        );
        s.filter = None;
        // The first read is served by n2 and n1 (n3's reply is lost on the way).
        s.filter = Some(Box::new(|from, to, m: &NwrMsg| {
            from == "n3" && to == "n2" && matches!(m.body, Body::ReadReply { .. })
        }));
        assert_eq!(
            read(&mut s, "n2", 3, "k"),
            Some(Reply::Value(Some(Value::Int(2)))),
            "writeback {writeback}: the first read sees 2"
        );
        // The second read is served by n3 and n2 (n1's reply is lost).
        s.filter = Some(Box::new(|from, to, m: &NwrMsg| {
            from == "n1" && to == "n3" && matches!(m.body, Body::ReadReply { .. })
        }));
        assert_eq!(
            read(&mut s, "n3", 4, "k"),
            Some(Reply::Value(Some(Value::Int(later)))),
            "writeback {writeback}: the later read"
        );
    }
}

/// ABD writes (`--read-writeback`) ask a quorum for timestamps first: n2's write, begun
/// after n1's (whose clock runs 10 s ahead) was acknowledged, is stamped above it even with
/// wall-clock timestamps, so it is not lost.
#[test]
fn read_writeback_orders_writes_despite_wall_clock_skew() {
    for (writeback, expect) in [(false, 1), (true, 2)] {
        let mut c = cfg(3, 2, 2, ClockMode::Wall);
        c.read_writeback = writeback;
        let mut s = sim(3, c);
        s.node("n1").tick(11_000);
        s.node("n2").tick(1_000);
        s.node("n3").tick(1_000);
        s.settle();
        assert_eq!(write(&mut s, "n1", 1, "k", 1), Some(Reply::Ok));
        s.node("n1").tick(12_000);
        s.node("n2").tick(2_000);
        s.node("n3").tick(2_000);
        s.settle();
        assert_eq!(write(&mut s, "n2", 2, "k", 2), Some(Reply::Ok));
        assert_eq!(
            read(&mut s, "n3", 3, "k"),
            Some(Reply::Value(Some(Value::Int(expect)))),
            "writeback {writeback}"
        );
    }
}
