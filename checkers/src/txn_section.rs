//! The `transactions` section of `results.json`: a run of a transactional workload
//! (list-append, bank, set, counter) is judged by that workload's checker instead of by
//! linearizability. [`TxnCheck`] says which checker with which options (the harness picks it
//! from the run's workload); [`TxnSection`] is that checker's full result, stored as it came.
//! [`crate::analysis::Analysis`] turns it into the run's verdict and summary.

use crate::bank::{self, BankOptions, BankResult};
use crate::counter::{self, CounterOptions, CounterResult};
use crate::elle::{self, ElleResult};
use crate::history::{History, HistoryError};
use crate::set::{self, SetOptions, SetResult};
use crate::txn::Validity;
use serde::{Deserialize, Serialize};

/// Which transactional checker judges a run, with its options.
#[derive(Debug, Clone)]
pub enum TxnCheck {
    /// Elle: dependency cycles of list-append (or rw-register) transactions.
    Elle(elle::CheckOptions),
    /// Every read of all balances shows the same total.
    Bank(BankOptions),
    /// Lost, unexpected and stale elements of a set.
    Set(SetOptions),
    /// Every counter read within its bounds.
    Counter(CounterOptions),
}

/// A transactional checker's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "checker", rename_all = "kebab-case")]
pub enum TxnSection {
    /// Elle's result (`workload` inside says list-append or rw-register).
    Elle(ElleResult),
    /// The bank checker's.
    Bank(BankResult),
    /// The set checker's.
    Set(SetResult),
    /// The counter checker's.
    Counter(CounterResult),
}

impl TxnCheck {
    /// Runs the checker over the history; errors name the line of input it could not read.
    pub fn run(&self, h: &History) -> Result<TxnSection, HistoryError> {
        Ok(match self {
            TxnCheck::Elle(o) => TxnSection::Elle(elle::check_history(h, o)?),
            TxnCheck::Bank(o) => TxnSection::Bank(bank::check(h, o)?),
            TxnCheck::Set(o) => TxnSection::Set(set::check(h, o)?),
            TxnCheck::Counter(o) => TxnSection::Counter(counter::check(h, o)?),
        })
    }
}

impl TxnSection {
    /// The checker's verdict.
    pub fn verdict(&self) -> Validity {
        match self {
            TxnSection::Elle(r) => r.verdict,
            TxnSection::Bank(r) => r.verdict,
            TxnSection::Set(r) => r.verdict,
            TxnSection::Counter(r) => r.verdict,
        }
    }

    /// The checker's name as people read it: `Elle (strict-serializable)`, `bank`, `set`,
    /// `counter`.
    pub fn checker(&self) -> String {
        match self {
            TxnSection::Elle(r) => format!("Elle {} ({})", r.workload, r.model),
            TxnSection::Bank(_) => "bank".into(),
            TxnSection::Set(_) => "set".into(),
            TxnSection::Counter(_) => "counter".into(),
        }
    }

    /// The checker's verdict in its own sentences.
    pub fn explanation(&self) -> &str {
        match self {
            TxnSection::Elle(r) => &r.explanation,
            TxnSection::Bank(r) => &r.explanation,
            TxnSection::Set(r) => &r.explanation,
            TxnSection::Counter(r) => &r.explanation,
        }
    }

    /// Up to `n` examples of what is wrong, one sentence each (for an Elle result: the first
    /// explained anomaly of each class, cycles included, in class order).
    pub fn examples(&self, n: usize) -> Vec<String> {
        match self {
            TxnSection::Elle(r) => r
                .anomalies
                .iter()
                .filter_map(|(class, list)| {
                    list.first().map(|a| {
                        if a.explanation.starts_with(class.name()) {
                            a.explanation.clone()
                        } else {
                            format!("{}: {}", class.name(), a.explanation)
                        }
                    })
                })
                .take(n)
                .collect(),
            TxnSection::Bank(r) => r
                .examples
                .iter()
                .take(n)
                .map(|b| b.explanation.clone())
                .collect(),
            TxnSection::Set(r) => [&r.lost, &r.unexpected, &r.stale]
                .into_iter()
                .flat_map(|e| e.examples.iter().take(n).map(|c| c.explanation.clone()))
                .take(n)
                .collect(),
            TxnSection::Counter(r) => r
                .examples
                .iter()
                .take(n)
                .map(|v| v.explanation.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Analysis, AnalysisOptions, Check, Verdict};
    use crate::history::{Event, EventType, Process};
    use serde_json::{json, Value};

    fn history(txns: &[(u64, &str, Value)]) -> History {
        let mut events = Vec::new();
        for (p, kind, v) in txns {
            let done = match *kind {
                "ok" => EventType::Ok,
                _ => EventType::Fail,
            };
            for k in [EventType::Invoke, done] {
                events.push(Event {
                    index: events.len() as u64,
                    time: events.len() as u64 * 10,
                    process: Process::Client(*p),
                    kind: k,
                    f: "txn".into(),
                    key: None,
                    value: v.clone(),
                    node: None,
                    error: None,
                });
            }
        }
        History::from_events(events)
    }

    fn analyze(h: &History) -> Analysis {
        let opts = AnalysisOptions {
            txn: Some(TxnCheck::Elle(elle::CheckOptions::default())),
            ..AnalysisOptions::default()
        };
        Analysis::new(h, &opts)
    }

    #[test]
    fn an_aborted_read_makes_the_run_invalid_and_the_summary_names_it() {
        let h = history(&[
            (0, "fail", json!([["append", "x", 1]])),
            (1, "ok", json!([["r", "x", [1]]])),
        ]);
        let a = analyze(&h);
        assert_eq!(a.verdict, Verdict::Invalid);
        assert_eq!(a.decided_by, Some(Check::Transactions));
        assert!(a.linearizability.is_none());
        assert!(a.summary.starts_with("Elle list-append"), "{}", a.summary);
        assert!(a.summary.contains("G1a"), "{}", a.summary);
        let back = Analysis::from_json(&serde_json::to_string(&a).unwrap()).unwrap();
        // Everything but the checker's float timing, which JSON need not return bit for bit.
        let untimed = |t: &Option<TxnSection>| match t.clone() {
            Some(TxnSection::Elle(mut e)) => {
                e.elapsed_ms = 0.0;
                Some(TxnSection::Elle(e))
            }
            other => other,
        };
        assert_eq!(untimed(&back.transactions), untimed(&a.transactions));
    }

    #[test]
    fn a_serial_history_is_valid_and_a_bad_one_is_unknown_with_the_line() {
        let h = history(&[
            (0, "ok", json!([["append", "x", 1]])),
            (1, "ok", json!([["r", "x", [1]], ["append", "x", 2]])),
        ]);
        let a = analyze(&h);
        assert_eq!(a.verdict, Verdict::Valid, "{}", a.summary);
        assert_eq!(a.decided_by, None);
        let bad = history(&[(0, "ok", json!([["frob", "x", 1]]))]);
        let a = analyze(&bad);
        assert_eq!(a.verdict, Verdict::Unknown);
        assert_eq!(a.decided_by, Some(Check::CheckerError));
        assert!(a.summary.contains("line 1"), "{}", a.summary);
    }
}
