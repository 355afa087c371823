//! Transactions on the NWR engine (`Op::Txn`), on the in-memory network: micro-ops run one
//! after the other on their own quorums, reads see the transaction's earlier writes (when
//! the quorums intersect), and — the point — there is no isolation and no atomicity:
//! concurrent appends overwrite each other, and a failure after a write leaves the
//! transaction partly applied, which is why it is then answered unknown, never failed.

use super::tests::{cfg, reply, sim};
use super::*;
use crate::engine::sim::Sim;
use crate::msg::{AbortReason, Command, MicroOp, Op, Reply, Value};

fn sim3() -> Sim<Nwr> {
    sim(3, cfg(3, 2, 2, ClockMode::Hybrid))
}

fn txn(ops: &str) -> Command {
    let ops: Vec<MicroOp> = serde_json::from_str(ops).expect("valid micro-ops");
    Command {
        op: Op::Txn { ops },
        client_id: None,
        seq: None,
    }
}

fn run(s: &mut Sim<Nwr>, node: &str, req: ReqId, ops: &str) -> Option<Reply> {
    s.node(node).propose(req, txn(ops));
    s.settle();
    reply(s, node, req)
}

fn tick(s: &mut Sim<Nwr>, n: usize) {
    for _ in 0..n {
        for id in s.live() {
            s.node(&id).tick(1000);
        }
        s.settle();
    }
}

fn ints(l: &[i64]) -> Option<Value> {
    Some(Value::List(l.iter().map(|i| Value::Int(*i)).collect()))
}

#[test]
fn micro_ops_run_in_order_and_see_earlier_writes() {
    let mut s = sim3();
    let r = run(
        &mut s,
        "n1",
        1,
        r#"[["r","x",null],["append","x",1],["append","x",2],["r","x",null],
            ["w","y",5],["r","y",null],["add","c",2],["add","c",3],["r","c",null],
            ["expect","c",5]]"#,
    );
    assert_eq!(
        r,
        Some(Reply::Txn(vec![
            None,
            None,
            None,
            ints(&[1, 2]),
            None,
            Some(Value::Int(5)),
            None,
            None,
            Some(Value::Int(5)),
            None
        ]))
    );
    // Another coordinator reads what the transaction wrote.
    assert_eq!(
        run(&mut s, "n3", 2, r#"[["r","x",null]]"#),
        Some(Reply::Txn(vec![ints(&[1, 2])]))
    );
}

#[test]
fn concurrent_appends_overwrite_each_other() {
    let mut s = sim3();
    // Both transactions read the empty list before either writes: last writer wins, so one
    // acknowledged append is lost — what a replicated log's single entry cannot do.
    s.node("n1").propose(1, txn(r#"[["append","x",1]]"#));
    s.node("n2").propose(2, txn(r#"[["append","x",2]]"#));
    s.settle();
    assert_eq!(reply(&s, "n1", 1), Some(Reply::Txn(vec![None])));
    assert_eq!(reply(&s, "n2", 2), Some(Reply::Txn(vec![None])));
    let Some(Reply::Txn(read)) = run(&mut s, "n3", 3, r#"[["r","x",null]]"#) else {
        panic!("read failed");
    };
    assert!(
        read == vec![ints(&[1])] || read == vec![ints(&[2])],
        "one append must be lost, read {read:?}"
    );
}

#[test]
fn failures_are_definite_before_a_write_and_unknown_after() {
    let mut s = sim3();
    // An expect that does not hold, first: nothing was written.
    match run(&mut s, "n1", 1, r#"[["expect","x",7],["w","x",1]]"#) {
        Some(Reply::TxnAborted(a)) => {
            assert_eq!((a.reason, a.op), (AbortReason::Precondition, Some(0)))
        }
        other => panic!("{other:?}"),
    }
    // The same after a write: the write stays, so the outcome is unknown.
    assert_eq!(
        run(&mut s, "n1", 2, r#"[["w","y",1],["expect","x",7]]"#),
        Some(Reply::Unknown)
    );
    assert_eq!(
        s.node("n2").stored("y").map(|v| v.value.clone()),
        Some(Value::Int(1))
    );
    // A type error after a write: unknown too.
    assert_eq!(
        run(&mut s, "n1", 3, r#"[["w","z",2],["append","y",1]]"#),
        Some(Reply::Unknown)
    );
    // Cut off: a read quorum missed first is a definite failure (503) ...
    s.isolate("n1");
    assert_eq!(
        run(&mut s, "n1", 4, r#"[["r","x",null],["w","x",1]]"#),
        None
    );
    tick(&mut s, 6);
    assert!(matches!(reply(&s, "n1", 4), Some(Reply::Unavailable(_))));
    // ... a write quorum missed is unknown (this node holds the write).
    assert_eq!(run(&mut s, "n1", 5, r#"[["w","x",9]]"#), None);
    tick(&mut s, 6);
    assert_eq!(reply(&s, "n1", 5), Some(Reply::Unknown));
    assert!(s.node("n1").txns.is_empty(), "no transaction left behind");
}
