//! The bank workload's checker: money moves between accounts by transfers, so every read of
//! all balances must add up to the same total, and (unless allowed) no balance may be
//! negative. A read that does not is a snapshot no serial execution could produce (a
//! transfer seen half applied, or lost, or applied twice).
//!
//! # History shape
//!
//! ```text
//! {"type":"invoke","f":"transfer","value":{"from":"a","to":"b","amount":5}, ...}
//! {"type":"ok",    "f":"transfer","value":{"from":"a","to":"b","amount":5}, ...}
//! {"type":"invoke","f":"read","value":null, ...}
//! {"type":"ok",    "f":"read","value":{"a":95,"b":105}, ...}
//! ```
//!
//! Accounts are JSON strings or integers in `from` / `to` (object keys in reads are always
//! strings); amounts and balances are integers. Only `ok` reads are judged; transfers are
//! validated and counted. The expected total is an option, else the first `ok` read's.

use crate::history::{EventType, History, HistoryError};
use crate::txn::{first, json_int, json_key, line_at, pair_calls, syntax_at, Validity, NO_READS};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// What to check.
#[derive(Debug, Clone)]
pub struct BankOptions {
    /// The total every read must show; `None` = the first `ok` read's total.
    pub total: Option<i64>,
    /// Whether balances may go below zero.
    pub negative_balances: bool,
    /// The accounts every read must show exactly; `None` = not checked.
    pub accounts: Option<Vec<String>>,
    /// Bad reads kept as examples (all are counted).
    pub max_examples: usize,
}

impl Default for BankOptions {
    fn default() -> Self {
        BankOptions {
            total: None,
            negative_balances: false,
            accounts: None,
            max_examples: 16,
        }
    }
}

/// A read that breaks the invariant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadRead {
    /// History index of the read's completion.
    pub index: u64,
    /// Completion time, ns.
    pub time: u64,
    /// The process that read.
    pub process: u64,
    /// Source line of the completion.
    pub line: usize,
    /// The balances read.
    pub balances: BTreeMap<String, i64>,
    /// Their sum.
    pub total: i64,
    /// The sum expected.
    pub expected: i64,
    /// Accounts with a balance below zero (when not allowed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub negative: BTreeMap<String, i64>,
    /// Expected accounts the read lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_accounts: Vec<String>,
    /// Accounts the read has but should not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unexpected_accounts: Vec<String>,
    /// What is wrong, in one sentence.
    pub explanation: String,
}

/// Transfers by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Acknowledged.
    pub ok: usize,
    /// Definitely not applied.
    pub fail: usize,
    /// Unknown.
    pub info: usize,
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankResult {
    /// `invalid` if some read is bad, `unknown` if no read completed, else `valid`.
    pub verdict: Validity,
    /// Reads judged (`ok` reads).
    pub reads: usize,
    /// Transfers by outcome.
    pub transfers: Outcomes,
    /// The total every read had to show (None when no read completed and none was given).
    pub expected_total: Option<i64>,
    /// Where `expected_total` came from.
    pub total_source: String,
    /// How many reads were bad.
    pub bad_reads: usize,
    /// The first bad reads, in history order.
    pub examples: Vec<BadRead>,
    /// The verdict in a sentence or two.
    pub explanation: String,
}

/// Checks every `read` and validates every `transfer` of a bank history.
pub fn check(h: &History, opts: &BankOptions) -> Result<BankResult, HistoryError> {
    let calls = pair_calls(h, |f| f == "transfer" || f == "read")?;
    let mut transfers = Outcomes::default();
    let mut reads: Vec<(usize, u64, BTreeMap<String, i64>)> = Vec::new();
    for c in calls {
        let inv = &h.events[c.invoke];
        let done = c.completion.map(|p| (p, &h.events[p]));
        if inv.f == "transfer" {
            transfer_shape(&inv.value).map_err(|m| syntax_at(h, c.invoke, m))?;
            match done.map(|(_, e)| e.kind) {
                Some(EventType::Ok) => transfers.ok += 1,
                Some(EventType::Fail) => transfers.fail += 1,
                _ => transfers.info += 1,
            }
        } else if let Some((p, e)) = done {
            if e.kind == EventType::Ok {
                reads.push((
                    p,
                    c.process,
                    balances(&e.value).map_err(|m| syntax_at(h, p, m))?,
                ));
            }
        }
    }
    reads.sort_by_key(|r| r.0);
    let (expected, source) = match (opts.total, reads.first()) {
        (Some(t), _) => (Some(t), "given".to_string()),
        (None, Some((p, _, b))) => (
            Some(sum(b)),
            format!("the first read (index {})", h.events[*p].index),
        ),
        (None, None) => (None, "no read completed".to_string()),
    };
    let mut bad = 0;
    let mut examples = Vec::new();
    for (p, process, b) in &reads {
        let expected = expected.expect("reads exist, so a total is known");
        if let Some(r) = judge(h, (*p, *process), b, expected, opts) {
            bad += 1;
            if examples.len() < opts.max_examples {
                examples.push(r);
            }
        }
    }
    let verdict = Validity::of(bad > 0, reads.is_empty());
    let explanation = match verdict {
        Validity::Invalid => format!(
            "{bad} of {} reads broke the bank's invariant (total {}, from {source}){}",
            reads.len(),
            expected.unwrap_or(0),
            first(examples.first().map(|e| &e.explanation))
        ),
        Validity::Unknown => NO_READS.to_string(),
        Validity::Valid => format!(
            "all {} reads total {} (from {source}){}",
            reads.len(),
            expected.unwrap_or(0),
            if opts.negative_balances {
                String::new()
            } else {
                " with no negative balance".to_string()
            }
        ),
    };
    Ok(BankResult {
        verdict,
        reads: reads.len(),
        transfers,
        expected_total: expected,
        total_source: source,
        bad_reads: bad,
        examples,
        explanation,
    })
}

/// The sum of the balances, saturating (absurd balances must not crash the checker).
fn sum(b: &BTreeMap<String, i64>) -> i64 {
    b.values().fold(0i64, |a, &x| a.saturating_add(x))
}

fn transfer_shape(v: &Value) -> Result<(), String> {
    let Value::Object(m) = v else {
        return Err(format!(
            "a transfer's value must be {{\"from\":k,\"to\":k,\"amount\":n}}, got {v}"
        ));
    };
    for f in ["from", "to"] {
        let x = m
            .get(f)
            .ok_or_else(|| format!("transfer without \"{f}\""))?;
        json_key(x).map_err(|e| format!("transfer \"{f}\": {e}"))?;
    }
    let a = m.get("amount").ok_or("transfer without \"amount\"")?;
    json_int(a).map_err(|e| format!("transfer amount {e}"))?;
    Ok(())
}

fn balances(v: &Value) -> Result<BTreeMap<String, i64>, String> {
    let Value::Object(m) = v else {
        return Err(format!(
            "a completed read's value must be a map of account to balance, got {v}"
        ));
    };
    m.iter()
        .map(|(k, b)| {
            json_int(b)
                .map(|b| (k.clone(), b))
                .map_err(|e| format!("balance of account {k} {e}"))
        })
        .collect()
}

fn judge(
    h: &History,
    (pos, process): (usize, u64),
    b: &BTreeMap<String, i64>,
    expected: i64,
    opts: &BankOptions,
) -> Option<BadRead> {
    let total = sum(b);
    let negative: BTreeMap<String, i64> = if opts.negative_balances {
        BTreeMap::new()
    } else {
        b.iter()
            .filter(|(_, &v)| v < 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    let (missing, unexpected) = match &opts.accounts {
        Some(want) => (
            want.iter()
                .filter(|a| !b.contains_key(*a))
                .cloned()
                .collect(),
            b.keys().filter(|a| !want.contains(a)).cloned().collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    if total == expected && negative.is_empty() && missing.is_empty() && unexpected.is_empty() {
        return None;
    }
    let e = &h.events[pos];
    let mut why = Vec::new();
    if total != expected {
        why.push(format!("totals {total}, not {expected}"));
    }
    for (k, v) in &negative {
        why.push(format!("has account {k} at {v}"));
    }
    if !missing.is_empty() {
        why.push(format!("lacks accounts {}", missing.join(", ")));
    }
    if !unexpected.is_empty() {
        why.push(format!("shows unknown accounts {}", unexpected.join(", ")));
    }
    let shown: Vec<String> = b.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    Some(BadRead {
        index: e.index,
        time: e.time,
        process,
        line: line_at(h, pos),
        balances: b.clone(),
        total,
        expected,
        negative,
        missing_accounts: missing,
        unexpected_accounts: unexpected,
        explanation: format!(
            "the read completed at index {} (process {}, {:.3} s) {}: {{{}}}",
            e.index,
            process,
            e.time as f64 / 1e9,
            why.join(" and "),
            shown.join(", ")
        ),
    })
}
