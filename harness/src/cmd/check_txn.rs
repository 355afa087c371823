//! The non-linearizability checkers behind `faultline check`: Elle-style transactional
//! isolation (list-append, rw-register) and the bank, set and counter invariants. The
//! history is the same parsed history as for the linearizability models; only which checker
//! reads it differs. Exit codes match: 0 valid, 1 invalid, 2 unknown, 3 bad input.

use checkers::elle::{self, ConsistencyModel};
use checkers::history::{History, HistoryError};
use checkers::txn::Validity;
use checkers::{bank, counter, set};
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

/// A checker that is not a linearizability model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnModel {
    /// Elle on list-append transactions.
    ListAppend,
    /// Elle on read/write register transactions (`["r", k, v]` / `["w", k, v]`).
    RwRegister,
    /// Transfers between accounts; every read shows the same total.
    Bank,
    /// Adds and reads of a set: lost, unexpected, stale elements.
    Set,
    /// Increments and reads of a counter: every read within bounds.
    Counter,
}

impl TxnModel {
    /// The `--model` name.
    pub fn name(self) -> &'static str {
        match self {
            TxnModel::ListAppend => "list-append",
            TxnModel::RwRegister => "rw-register",
            TxnModel::Bank => "bank",
            TxnModel::Set => "set",
            TxnModel::Counter => "counter",
        }
    }

    /// Parses a `--model` name.
    pub fn parse(s: &str) -> Option<TxnModel> {
        [
            TxnModel::ListAppend,
            TxnModel::RwRegister,
            TxnModel::Bank,
            TxnModel::Set,
            TxnModel::Counter,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }

    /// Which of these checkers a history is for, from its functions: txns with `append` (or
    /// Elle's `r`/`w`) micro-ops, `transfer`, or `add` with list or integer reads. Txns of
    /// Knossos's `read`/`write` micro-ops are the multi-register linearizability model: None.
    pub fn infer(h: &History) -> Option<TxnModel> {
        let mut has_add = false;
        for e in &h.events {
            match e.f.as_str() {
                "txn" => {
                    let Value::Array(mops) = &e.value else {
                        continue;
                    };
                    let names: Vec<&str> = mops
                        .iter()
                        .filter_map(|m| m.get(0).and_then(Value::as_str))
                        .collect();
                    if names.contains(&"append") {
                        return Some(TxnModel::ListAppend);
                    }
                    if names.iter().any(|n| *n == "r" || *n == "w") {
                        return Some(TxnModel::RwRegister);
                    }
                    return None;
                }
                "transfer" => return Some(TxnModel::Bank),
                "add" => has_add = true,
                "read" if has_add => match &e.value {
                    Value::Array(_) => return Some(TxnModel::Set),
                    Value::Number(_) => return Some(TxnModel::Counter),
                    _ => {}
                },
                _ => {}
            }
        }
        has_add.then_some(TxnModel::Set)
    }
}

/// What one of these checkers concluded, in the shape the CLI prints.
struct Outcome {
    verdict: Validity,
    explanation: String,
    details: Vec<String>,
    json: Value,
}

fn outcome<T: serde::Serialize>(
    verdict: Validity,
    explanation: String,
    details: Vec<String>,
    full: &T,
) -> Outcome {
    Outcome {
        verdict,
        explanation,
        details,
        json: serde_json::to_value(full).unwrap_or(Value::Null),
    }
}

fn run_checker(
    h: &History,
    model: TxnModel,
    isolation: ConsistencyModel,
    timeout: Duration,
) -> Result<Outcome, HistoryError> {
    Ok(match model {
        TxnModel::ListAppend | TxnModel::RwRegister => {
            let opts = elle::CheckOptions {
                model: isolation,
                timeout: Some(timeout),
                ..elle::CheckOptions::default()
            };
            let r = elle::check_history(h, &opts)?;
            let details = r
                .anomalies
                .iter()
                .flat_map(|(class, list)| {
                    list.iter().take(3).map(move |a| {
                        // Cycle explanations already open with their class.
                        if a.explanation.starts_with(class.name()) {
                            a.explanation.clone()
                        } else {
                            format!("{}: {}", class.name(), a.explanation)
                        }
                    })
                })
                .collect();
            outcome(r.verdict, r.explanation.clone(), details, &r)
        }
        TxnModel::Bank => {
            let r = bank::check(h, &bank::BankOptions::default())?;
            let details = r
                .examples
                .iter()
                .take(5)
                .map(|b| b.explanation.clone())
                .collect();
            outcome(r.verdict, r.explanation.clone(), details, &r)
        }
        TxnModel::Set => {
            let r = set::check(h, &set::SetOptions::default())?;
            outcome(r.verdict, r.explanation.clone(), Vec::new(), &r)
        }
        TxnModel::Counter => {
            let r = counter::check(h, &counter::CounterOptions::default())?;
            let details = r
                .examples
                .iter()
                .take(5)
                .map(|v| v.explanation.clone())
                .collect();
            outcome(r.verdict, r.explanation.clone(), details, &r)
        }
    })
}

/// Checks `h` with `model` and prints the result; returns the exit code (bad input: the
/// caller's `bad_line`).
pub fn check(
    file: &str,
    h: &History,
    model: TxnModel,
    isolation: ConsistencyModel,
    timeout: Duration,
    json: bool,
) -> Result<ExitCode, HistoryError> {
    let o = run_checker(h, model, isolation, timeout)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&o.json).unwrap_or_default()
        );
    } else {
        let name = match o.verdict {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        };
        let iso = match model {
            TxnModel::ListAppend | TxnModel::RwRegister => format!(", {isolation}"),
            _ => String::new(),
        };
        println!("{file}: {name} ({}{iso})", model.name());
        println!("{}", o.explanation);
        for d in &o.details {
            println!("  {d}");
        }
    }
    Ok(ExitCode::from(match o.verdict {
        Validity::Valid => 0,
        Validity::Invalid => 1,
        Validity::Unknown => 2,
    }))
}
