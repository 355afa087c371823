//! `faultline check FILE`: checks a history file (our JSONL, Jepsen EDN, Porcupine etcd log)
//! for linearizability and maps the outcome to an exit code: 0 linearizable, 1 illegal,
//! 2 unknown (time or memory ran out), 3 bad input (named by file:line). All the work is in
//! `checkers`; this file only handles flags, the file (read within the memory cap and the
//! longest-line limit, so `/dev/zero` is refused at line 1 in milliseconds), and what a
//! person sees.

use anyhow::Context;
use checkers::import::{self, Format, ReadError, ReadLimits};
use checkers::linearizable::{self, show_bytes, CheckOptions, CheckResult, Strategy, Verdict};
use checkers::model::{ModelKind, NilReads};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `faultline check`.
#[derive(clap::Args)]
pub struct Args {
    /// The history file (a line longer than 4 MiB is refused as bad input).
    pub file: PathBuf,
    /// Model: linearizability of register, cas-register, kv, or multi-register (atomic
    /// read/write transactions, Knossos's model); or list-append / rw-register (Elle-style
    /// transactional isolation, see --isolation), bank, set, counter. Default: inferred from
    /// the functions used.
    #[arg(long, value_parser = parse_model)]
    pub model: Option<AnyModel>,
    /// list-append / rw-register: the isolation level the history must satisfy:
    /// strict-serializable (default), serializable, strong-session-serializable,
    /// snapshot-isolation, strong-snapshot-isolation, strong-session-snapshot-isolation,
    /// read-committed.
    #[arg(long, default_value = "strict-serializable")]
    pub isolation: checkers::elle::ConsistencyModel,
    /// Format: jsonl, edn or porcupine (default: detected from the first line).
    #[arg(long)]
    pub format: Option<Format>,
    /// Time budget in seconds; when it runs out the verdict is `unknown`.
    #[arg(long, default_value_t = 60.0, value_name = "SECS",
          value_parser = crate::numeric::secs(0.001, crate::numeric::MAX_BUDGET_S))]
    pub timeout: f64,
    /// Initial value of every register/key, as JSON (bare words are strings). Default nil.
    /// multi-register also takes an object of per-key values: --init '{"x":0,"y":0}'.
    /// Numbers must be exact: integers within 64 bits, decimals a 64-bit float holds exactly.
    #[arg(long, value_parser = parse_init)]
    pub init: Option<serde_json::Value>,
    /// What a read that returned nil means: `value` (the default: the register held nil, as
    /// in faultline's and Porcupine's histories) or `unknown` (Knossos's reading of Jepsen
    /// histories: the result was lost, so the read matches any value).
    #[arg(long, default_value = "value", value_parser = parse_nil_reads, value_name = "value|unknown")]
    pub nil_reads: NilReads,
    /// Memory cap for reading and checking, e.g. 512M, 2G (binary units; 16M to 1T). Every
    /// search's memo and the values models intern count against it, across all parallel
    /// searches; reaching it gives `unknown` with the reason. The text of the history may use
    /// an eighth of it. Default: a quarter of physical memory, at most 4G.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<usize>,
    /// Print the full result as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML page to this file: the counterexample drawn as a timeline when the
    /// history is not linearizable, the verdict otherwise.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Check the history as one object instead of one part per key.
    #[arg(long)]
    pub no_partition: bool,
    /// With --no-partition: `compositional` (default) or `plain` (Porcupine-style product search).
    #[arg(long, default_value = "compositional", value_parser = parse_strategy)]
    pub strategy: Strategy,
}

/// Smallest and largest `--max-memory`.
const MIN_MEMORY: usize = 16 << 20;
const MAX_MEMORY: usize = 1 << 40;

/// The default `--max-memory`: a quarter of physical memory, at most 4 GiB (2 GiB when the
/// machine does not say).
fn default_max_memory() -> usize {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let kb = m.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
        kb.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<usize>()
            .ok()
    });
    match total {
        Some(kb) => (kb.saturating_mul(1024) / 4).clamp(MIN_MEMORY, 4 << 30),
        None => 2 << 30,
    }
}

/// Parses a size like `512M`, `2G`, `1.5GiB` or `1048576` (binary units) within
/// [`MIN_MEMORY`, `MAX_MEMORY`].
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("{s:?} is not a size (like 512M or 2G)")),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (like 512M or 2G)"))?;
    let bytes = v * scale;
    if bytes.is_finite() && bytes >= MIN_MEMORY as f64 && bytes <= MAX_MEMORY as f64 {
        Ok(bytes as usize)
    } else {
        Err(format!("must be between 16M and 1T (got {s})"))
    }
}

/// Parses `--init`: JSON whose numbers are exact, or a bare word taken as a string. A word
/// that looks like a number must be one faultline can hold exactly.
fn parse_init(s: &str) -> Result<serde_json::Value, String> {
    use checkers::history::exact;
    let numeric = s
        .trim()
        .trim_start_matches('-')
        .starts_with(|c: char| c.is_ascii_digit());
    if numeric {
        exact::check_number(s.trim())?;
    }
    match exact::parse_json_exact(s) {
        Ok(v) => Ok(v),
        Err(e) if numeric || s.trim_start().starts_with(['[', '{', '"']) => Err(e),
        Err(_) => Ok(serde_json::Value::String(s.to_string())),
    }
}

/// A `--model`: a linearizability model or one of the other checkers.
#[derive(Debug, Clone, Copy)]
pub enum AnyModel {
    /// Linearizability against this model.
    Linear(ModelKind),
    /// Transactional isolation or an invariant checker.
    Txn(super::check_txn::TxnModel),
}

fn parse_model(s: &str) -> Result<AnyModel, String> {
    if let Some(m) = super::check_txn::TxnModel::parse(s) {
        return Ok(AnyModel::Txn(m));
    }
    s.parse::<ModelKind>()
        .map(AnyModel::Linear)
        .map_err(|e| format!("{e}, or list-append, rw-register, bank, set, counter"))
}

fn parse_nil_reads(s: &str) -> Result<NilReads, String> {
    match s {
        "value" => Ok(NilReads::Value),
        "unknown" => Ok(NilReads::Unknown),
        _ => Err(format!("{s:?}: expected value or unknown")),
    }
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    match s {
        "compositional" => Ok(Strategy::Compositional),
        "plain" => Ok(Strategy::Plain),
        _ => Err(format!("unknown strategy {s:?} (compositional or plain)")),
    }
}

/// Exit code for bad input (unreadable or malformed history, bad flags).
const BAD_INPUT: u8 = 3;

/// Exit code for `unknown`.
const UNKNOWN: u8 = 2;

/// Bytes that parsed events and ops take per byte of history text (measured: a 38 MB JSONL
/// history of 400,000 events peaks near 220 MB).
const PARSE_OVERHEAD: usize = 6;

/// The verdict is `unknown` before any search ran (the history does not fit the memory cap).
fn unknown_before_checking(file: &str, why: &str, json: bool) -> ExitCode {
    if json {
        let v =
            serde_json::json!({ "verdict": "unknown", "explanation": format!("unknown: {why}") });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{file}: unknown");
        println!("unknown: {why}");
    }
    ExitCode::from(UNKNOWN)
}

/// Bad input at `file:line`: the error's own "line N: " prefix gives way to the file's name.
fn bad_line(file: &str, line: usize, e: &dyn std::fmt::Display) -> ExitCode {
    bad_input(format!("{file}:{line}: {}", strip_line(&e.to_string())))
}

fn bad_input(msg: String) -> ExitCode {
    eprintln!("faultline: {msg}");
    ExitCode::from(BAD_INPUT)
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let shown = args.file.display().to_string();
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Ok(bad_input(format!(
            "--timeout must be a positive number of seconds, got {}",
            args.timeout
        )));
    }
    // Open the page's file before checking, so a bad path fails in a second, not after a
    // long check.
    let html_file = match &args.html {
        None => None,
        Some(out) => match std::fs::File::create(out) {
            Ok(f) => Some(f),
            Err(e) => {
                return Ok(bad_input(format!(
                    "--html {}: cannot write: {e}",
                    out.display()
                )))
            }
        },
    };
    let max_memory = args.max_memory.unwrap_or_else(default_max_memory);
    // The text may use an eighth of the cap: parsed events and ops take about six times
    // its size, and that is reserved before the searches get the rest.
    let limits = ReadLimits {
        max_line: import::MAX_LINE_BYTES,
        max_bytes: max_memory / 8,
    };
    let file = match std::fs::File::open(&args.file) {
        Ok(f) => f,
        Err(e) => return Ok(bad_input(format!("{shown}: cannot read: {e}"))),
    };
    let text = match import::read_text(file, limits) {
        Ok(t) => t,
        Err(e @ ReadError::TooLarge { .. }) => {
            let why = format!(
                "{} (an eighth of --max-memory {}; raise it)",
                strip_line(&e.to_string()),
                show_bytes(max_memory)
            );
            return Ok(unknown_before_checking(&shown, &why, args.json));
        }
        Err(e) => return Ok(bad_line(&shown, e.line(), &e)),
    };
    let history = match import::parse(&text, args.format) {
        Ok(h) => h,
        Err(e) => return Ok(bad_line(&shown, e.line(), &e)),
    };
    let parsed_bytes = text.len().saturating_mul(PARSE_OVERHEAD);
    drop(text);
    let ops = match history.operations() {
        Ok(o) => o,
        Err(e) => return Ok(bad_line(&shown, e.line(), &e)),
    };
    let txn_model = match args.model {
        Some(AnyModel::Txn(m)) => Some(m),
        Some(AnyModel::Linear(_)) => None,
        None => super::check_txn::TxnModel::infer(&history),
    };
    if let Some(m) = txn_model {
        let timeout = Duration::from_secs_f64(args.timeout);
        return Ok(
            match super::check_txn::check(&shown, &history, m, args.isolation, timeout, args.json) {
                Ok(code) => code,
                Err(e) => bad_line(&shown, e.line(), &e),
            },
        );
    }
    let opts = CheckOptions {
        model: match args.model {
            Some(AnyModel::Linear(m)) => Some(m),
            _ => None,
        },
        init: args.init.clone().unwrap_or(serde_json::Value::Null),
        timeout: Some(Duration::from_secs_f64(args.timeout)),
        partition: !args.no_partition,
        strategy: args.strategy,
        max_memory,
        input_bytes: parsed_bytes,
        nil_reads: args.nil_reads,
    };
    let result = match linearizable::check(&ops, &opts) {
        Ok(r) => r,
        Err(e) => return Ok(bad_line(&shown, e.line(), &e)),
    };
    // A person reading an illegal verdict (on the terminal or the page) gets the typed
    // analysis: per key a minimal counterexample and one sentence whose claims were checked
    // against the history. `--json` stays the checker's raw result, for tools.
    let wants_sentence = !args.json && result.verdict == Verdict::Illegal;
    let analysis = if html_file.is_some() || wants_sentence {
        let observed = checkers::analysis::Observed::from_history(&history)
            .with_context(|| format!("{shown}: pairing the history"))?;
        let analysis_opts = checkers::analysis::AnalysisOptions {
            check: opts.clone(),
            minimize: Duration::from_secs_f64(args.timeout / 2.0).min(MINIMIZE_BUDGET),
            ..Default::default()
        };
        let analysis =
            checkers::analysis::Analysis::of_checked(&observed, &analysis_opts, result.clone());
        Some((analysis, observed))
    } else {
        None
    };
    if let (Some(mut file), Some(out), Some((analysis, observed))) =
        (html_file, &args.html, &analysis)
    {
        let title = format!("faultline check: {shown}");
        let page = report::render_check_page(analysis, observed, &title);
        file.write_all(page.as_bytes())
            .with_context(|| format!("--html: cannot write {}", out.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_summary(&shown, &result, analysis.as_ref().map(|(a, _)| a));
    }
    Ok(ExitCode::from(match result.verdict {
        Verdict::Linearizable => 0,
        Verdict::Illegal => 1,
        Verdict::Unknown => UNKNOWN,
    }))
}

/// Drops the "line N: " prefix of a history error; the caller prints `file:line:` instead.
fn strip_line(msg: &str) -> &str {
    match msg.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => msg,
    }
}

/// Shrinking illegal keys to minimal counterexamples gets at most this long (and at most
/// half of `--timeout`).
const MINIMIZE_BUDGET: Duration = Duration::from_secs(10);

/// Keys whose minimal counterexample the terminal lists (the page has them all).
const KEYS_SHOWN: usize = 3;

fn print_summary(file: &str, r: &CheckResult, analysis: Option<&checkers::analysis::Analysis>) {
    println!(
        "{file}: {} ({} model, {} ops, {} key{}, {:.1} ms)",
        r.verdict.name(),
        r.model,
        r.ops,
        r.partitions.len(),
        if r.partitions.len() == 1 { "" } else { "s" },
        r.elapsed_ms
    );
    let explained = analysis.map_or(&[][..], |a| &a.counterexamples[..]);
    if explained.iter().any(|k| k.culprit.is_some()) {
        print_minimal(r, explained);
        return;
    }
    println!("{}", r.explanation);
    print_longest_prefix(r);
}

/// Each illegal key's sentence and the few ops that make it illegal (up to [`KEYS_SHOWN`]).
fn print_minimal(r: &CheckResult, explained: &[checkers::explain::KeyExplanation]) {
    let illegal = r
        .partitions
        .iter()
        .filter(|p| p.verdict == Verdict::Illegal)
        .count();
    println!(
        "{illegal} of {} key{} cannot be linearized.",
        r.partitions.len(),
        if r.partitions.len() == 1 { "" } else { "s" }
    );
    for k in explained
        .iter()
        .filter(|k| k.culprit.is_some())
        .take(KEYS_SHOWN)
    {
        let key = k
            .key
            .as_deref()
            .map(|k| format!("key {k:?}"))
            .unwrap_or_else(|| "the register".into());
        println!("\n{key}: {}", k.sentence.text);
        println!(
            "  {} ops are enough to show it{}:",
            k.ops.len(),
            if k.one_minimal {
                " (without any one of them it is linearizable)"
            } else {
                ""
            }
        );
        for (i, op) in k.ops.iter().enumerate() {
            let mark = if Some(i) == k.culprit {
                "cannot be placed"
            } else {
                ""
            };
            let line = format!(
                "  {:<40} process {}, line {}  {mark}",
                op_text(op),
                op.process,
                op.line
            );
            println!("{}", line.trim_end());
        }
    }
    let more = explained.iter().filter(|k| k.culprit.is_some()).count();
    if more > KEYS_SHOWN {
        println!(
            "\n... and {} more key(s); --html draws every one",
            more - KEYS_SHOWN
        );
    }
}

/// An op as `f(input) -> output`, the way the counterexample lists write it.
fn op_text(op: &checkers::history::Operation) -> String {
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "nil".to_string(),
        v => v.to_string(),
    };
    let input = if op.input.is_null() && matches!(op.f.as_str(), "read" | "get") {
        String::new()
    } else {
        show(&op.input)
    };
    match (&op.output, op.ret) {
        (Some(out), Some(_)) if matches!(op.f.as_str(), "read" | "get") => {
            format!("{}({input}) -> {}", op.f, show(out))
        }
        (_, None) => format!("{}({input}) (outcome unknown)", op.f),
        _ => format!("{}({input})", op.f),
    }
}

/// The checker's own view when no minimal set could be shrunk in time: the longest prefix it
/// linearized and the ops it could not place after it.
fn print_longest_prefix(r: &CheckResult) {
    for p in &r.partitions {
        let Some(c) = &p.counterexample else { continue };
        let key = p
            .key
            .as_deref()
            .map(|k| format!(" (key {k:?})"))
            .unwrap_or_default();
        println!("\ncounterexample{key}:");
        let skip = c.prefix.len().saturating_sub(5);
        if skip > 0 {
            println!("  ... {skip} earlier linearized ops");
        }
        for op in &c.prefix[skip..] {
            println!(
                "  #{:<4} {:<32} process {}, line {}",
                op.order.unwrap_or(0),
                op.description,
                op.op.process,
                op.op.line
            );
        }
        println!("  state here: {}", c.state);
        for op in &c.unplaceable {
            println!(
                "  cannot place: {:<24} process {}, line {}{}",
                op.description,
                op.op.process,
                op.op.line,
                op.why
                    .as_deref()
                    .map(|w| format!(": {w}"))
                    .unwrap_or_default()
            );
        }
        break;
    }
}
