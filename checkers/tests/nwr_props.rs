//! Properties of `checkers::nwr` (Bailis et al., "Probabilistically Bounded Staleness for
//! Practical Partial Quorums", VLDB 2012): a sequential execution of a correct register has no
//! staleness at all, and a read that returns the j-th newest of a run of sequential writes is
//! exactly j versions behind.

use checkers::history::{Event, EventType, History, Process};
use checkers::nwr::{self, NwrOptions};
use proptest::prelude::*;
use serde_json::{json, Value};

fn ev(p: u64, kind: EventType, f: &str, key: &str, v: Value, t: u64) -> Event {
    Event {
        index: 0,
        time: t,
        process: Process::Client(p),
        kind,
        f: f.into(),
        key: Some(key.into()),
        value: v,
        node: None,
        error: None,
    }
}

fn finish(mut evs: Vec<Event>) -> History {
    for (i, e) in evs.iter_mut().enumerate() {
        e.index = i as u64;
    }
    History::from_events(evs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// One op at a time over a few keys, reads return the current value: nothing is stale,
    /// lost or out of order.
    #[test]
    fn sequential_correct_register_is_clean(script in prop::collection::vec((0u8..3, any::<bool>(), 0u64..4), 1..80)) {
        let mut state: [Option<u64>; 3] = [None; 3];
        let mut evs = Vec::new();
        let mut t = 0u64;
        let mut next = 1u64;
        for (key, is_write, p) in script {
            let k = key.to_string();
            if is_write {
                evs.push(ev(p, EventType::Invoke, "write", &k, json!(next), t));
                evs.push(ev(p, EventType::Ok, "write", &k, json!(next), t + 1));
                state[key as usize] = Some(next);
                next += 1;
            } else {
                let v = state[key as usize].map_or(Value::Null, |v| json!(v));
                evs.push(ev(p, EventType::Invoke, "read", &k, Value::Null, t));
                evs.push(ev(p, EventType::Ok, "read", &k, v, t + 1));
            }
            t += 2;
        }
        let a = nwr::analyze_history(&finish(evs), &NwrOptions::default()).unwrap();
        prop_assert_eq!(a.stale, 0);
        prop_assert_eq!(a.lost_writes, 0);
        prop_assert_eq!(a.new_old_inversions, 0);
        prop_assert_eq!(a.monotonic_read_violations + a.read_your_writes_violations, 0);
        prop_assert_eq!(a.unexplained_reads, 0);
        prop_assert!(a.anomalies.is_empty());
    }

    /// `n` sequential writes, then a read of the j-th newest (j = 0 newest): k = j.
    #[test]
    fn k_counts_newer_acknowledged_versions(n in 1u64..30, back in 0u64..30) {
        let j = back % n;
        let mut evs = Vec::new();
        for i in 0..n {
            evs.push(ev(0, EventType::Invoke, "write", "x", json!(i + 1), 10 * i));
            evs.push(ev(0, EventType::Ok, "write", "x", json!(i + 1), 10 * i + 5));
        }
        let t = 10 * n;
        evs.push(ev(1, EventType::Invoke, "read", "x", Value::Null, t));
        evs.push(ev(1, EventType::Ok, "read", "x", json!(n - j), t + 1));
        let a = nwr::analyze_history(&finish(evs), &NwrOptions::default()).unwrap();
        prop_assert_eq!(a.max_k, j);
        prop_assert_eq!(a.stale, u64::from(j > 0));
        // The final read is the only read after quiescence: writes newer than it are lost.
        prop_assert_eq!(a.lost_writes, j);
    }
}
