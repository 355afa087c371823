//! Property tests of the linearizability checker (proptest): random linearizable executions
//! pass, injected stale reads fail, tiny histories agree with a brute-force enumerator, an
//! exhausted budget is Unknown (never Linearizable), and partitioned equals unpartitioned.

use checkers::history::{pair, EventType};
use checkers::linearizable::{check, CheckOptions, Strategy, Verdict};
use checkers::model::ModelKind;
use checkers::synth::{self, SynthSpec};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::time::Duration;

mod common;
use common::brute_force;

fn opts(model: ModelKind) -> CheckOptions {
    CheckOptions {
        model: Some(model),
        timeout: Some(Duration::from_secs(30)),
        ..CheckOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_linearizable_executions_pass(seed in any::<u64>(), procs in 1usize..8, cas in any::<bool>()) {
        let spec = SynthSpec { ops: 200, keys: 3, processes: procs, info_rate: 0.05, latency: 200, seed };
        let ops = pair(&synth::register(&spec, cas, 4), &[]).unwrap();
        let model = if cas { ModelKind::CasRegister } else { ModelKind::Register };
        prop_assert_eq!(check(&ops, &opts(model)).unwrap().verdict, Verdict::Linearizable);
        let ops = pair(&synth::kv(&spec), &[]).unwrap();
        prop_assert_eq!(check(&ops, &opts(ModelKind::Kv)).unwrap().verdict, Verdict::Linearizable);
    }

    #[test]
    fn injected_stale_read_is_illegal(seed in any::<u64>(), procs in 1usize..6) {
        let spec = SynthSpec { ops: 120, keys: 1, processes: procs, info_rate: 0.0, latency: 200, seed };
        let mut events = synth::register(&spec, false, 1000);
        if synth::inject_stale_read(&mut events) {
            let ops = pair(&events, &[]).unwrap();
            prop_assert_eq!(check(&ops, &opts(ModelKind::Register)).unwrap().verdict, Verdict::Illegal);
        }
    }

    #[test]
    fn tiny_histories_agree_with_brute_force(
        seed in any::<u64>(),
        n in 1usize..14,
        procs in 1usize..6,
        corrupt in proptest::collection::vec((any::<prop::sample::Index>(), 0i64..4), 0..3),
    ) {
        let spec = SynthSpec { ops: n, keys: 1, processes: procs, info_rate: 0.2, latency: 200, seed };
        let mut events = synth::register(&spec, true, 3);
        let oks: Vec<usize> = (0..events.len()).filter(|&i| events[i].kind == EventType::Ok && events[i].f == "read").collect();
        for (ix, v) in corrupt {
            if !oks.is_empty() {
                events[oks[ix.index(oks.len())]].value = if v == 3 { Value::Null } else { json!(v) };
            }
        }
        let ops = pair(&events, &[]).unwrap();
        let want = if brute_force(&ops, &Value::Null) { Verdict::Linearizable } else { Verdict::Illegal };
        prop_assert_eq!(check(&ops, &opts(ModelKind::CasRegister)).unwrap().verdict, want);
    }

    #[test]
    fn tiny_kv_histories_agree_with_brute_force(
        seed in any::<u64>(),
        n in 1usize..16,
        procs in 1usize..7,
        corrupt in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..7), 0..3),
    ) {
        // Texts that are prefixes of one another, so results share prefixes and the same
        // string arises by several routes: the cases the kv model's prefix reasoning must get
        // right (live and dead values, puts of a prefix, empty appends).
        let spec = SynthSpec { ops: n, keys: 1, processes: procs, info_rate: 0.2, latency: 200, seed };
        let mut events = synth::kv_small_alphabet(&spec);
        let oks: Vec<usize> = (0..events.len()).filter(|&i| events[i].kind == EventType::Ok && events[i].f == "get").collect();
        const WRONG: [&str; 7] = ["", "a", "b", "ab", "ba", "aab", "bab"];
        for (ix, w) in corrupt {
            if !oks.is_empty() {
                events[oks[ix.index(oks.len())]].value = json!(WRONG[w]);
            }
        }
        let ops = pair(&events, &[]).unwrap();
        let want = if brute_force(&ops, &json!("")) { Verdict::Linearizable } else { Verdict::Illegal };
        prop_assert_eq!(check(&ops, &opts(ModelKind::Kv)).unwrap().verdict, want);
        let plain = CheckOptions { partition: false, strategy: Strategy::Plain, ..opts(ModelKind::Kv) };
        prop_assert_eq!(check(&ops, &plain).unwrap().verdict, want);
    }

    #[test]
    fn exhausted_budget_is_unknown_never_linearizable(seed in any::<u64>()) {
        let spec = SynthSpec { ops: 300, keys: 1, processes: 6, info_rate: 0.02, latency: 200, seed };
        let ops = pair(&synth::register(&spec, true, 5), &[]).unwrap();
        let mut o = opts(ModelKind::CasRegister);
        o.timeout = Some(Duration::ZERO);
        prop_assert_eq!(check(&ops, &o).unwrap().verdict, Verdict::Unknown);
    }

    #[test]
    fn partitioned_equals_unpartitioned(seed in any::<u64>(), corrupt in any::<bool>(), v in 0i64..3) {
        let spec = SynthSpec { ops: 40, keys: 3, processes: 4, info_rate: 0.05, latency: 200, seed };
        let mut events = synth::register(&spec, true, 3);
        if corrupt {
            if let Some(e) = events.iter_mut().find(|e| e.kind == EventType::Ok && e.f == "read") {
                e.value = json!(v);
            }
        }
        let ops = pair(&events, &[]).unwrap();
        let part = check(&ops, &opts(ModelKind::CasRegister)).unwrap().verdict;
        for strategy in [Strategy::Plain, Strategy::Compositional] {
            let o = CheckOptions { partition: false, strategy, ..opts(ModelKind::CasRegister) };
            prop_assert_eq!(check(&ops, &o).unwrap().verdict, part);
        }
    }
}
