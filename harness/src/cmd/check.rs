//! `faultline check FILE`: checks a history file (our JSONL, Jepsen EDN, Porcupine etcd log)
//! for linearizability and maps the outcome to an exit code: 0 linearizable, 1 illegal,
//! 2 unknown, 3 bad input. All the work is in `checkers`; this file only handles flags, the
//! file, and what a person sees.

use anyhow::Context;
use checkers::import::{self, Format};
use checkers::linearizable::{self, CheckOptions, CheckResult, Strategy, Verdict};
use checkers::model::ModelKind;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `faultline check`.
#[derive(clap::Args)]
pub struct Args {
    /// The history file.
    pub file: PathBuf,
    /// Model: register, cas-register or kv (default: inferred from the functions used).
    #[arg(long)]
    pub model: Option<ModelKind>,
    /// Format: jsonl, edn or porcupine (default: detected from the first line).
    #[arg(long)]
    pub format: Option<Format>,
    /// Time budget in seconds; when it runs out the verdict is `unknown`.
    #[arg(long, default_value_t = 60.0, value_name = "SECS",
          value_parser = crate::numeric::secs(0.001, crate::numeric::MAX_BUDGET_S))]
    pub timeout: f64,
    /// Initial value of every register/key, as JSON (bare words are strings). Default nil.
    #[arg(long)]
    pub init: Option<String>,
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

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    match s {
        "compositional" => Ok(Strategy::Compositional),
        "plain" => Ok(Strategy::Plain),
        _ => Err(format!("unknown strategy {s:?} (compositional or plain)")),
    }
}

/// Exit code for bad input (unreadable or malformed history, bad flags).
const BAD_INPUT: u8 = 3;

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
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => return Ok(bad_input(format!("{shown}: cannot read: {e}"))),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            return Ok(bad_input(format!("{shown}:{line}: not UTF-8 text")));
        }
    };
    let history = match import::parse(&text, args.format) {
        Ok(h) => h,
        Err(e) => {
            return Ok(bad_input(format!(
                "{shown}:{}: {}",
                e.line(),
                strip_line(&e.to_string())
            )))
        }
    };
    let ops = match history.operations() {
        Ok(o) => o,
        Err(e) => {
            return Ok(bad_input(format!(
                "{shown}:{}: {}",
                e.line(),
                strip_line(&e.to_string())
            )))
        }
    };
    let init = match &args.init {
        None => serde_json::Value::Null,
        Some(s) => serde_json::from_str(s).unwrap_or_else(|_| serde_json::Value::String(s.clone())),
    };
    let opts = CheckOptions {
        model: args.model,
        init,
        timeout: Some(Duration::from_secs_f64(args.timeout)),
        partition: !args.no_partition,
        strategy: args.strategy,
        ..CheckOptions::default()
    };
    let result = match linearizable::check(&ops, &opts) {
        Ok(r) => r,
        Err(e) => return Ok(bad_input(format!("{shown}: {e}"))),
    };
    if let (Some(mut file), Some(out)) = (html_file, &args.html) {
        let title = format!("faultline check: {shown}");
        // The page draws the typed analysis: minimal counterexample and its sentence.
        let observed = checkers::analysis::Observed::from_history(&history)
            .with_context(|| format!("{shown}: pairing for --html"))?;
        let analysis_opts = checkers::analysis::AnalysisOptions {
            check: opts.clone(),
            ..Default::default()
        };
        let analysis =
            checkers::analysis::Analysis::of_checked(&observed, &analysis_opts, result.clone());
        let page = report::render_check_page(&analysis, &observed, &title);
        file.write_all(page.as_bytes())
            .with_context(|| format!("--html: cannot write {}", out.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_summary(&shown, &result);
    }
    Ok(ExitCode::from(match result.verdict {
        Verdict::Linearizable => 0,
        Verdict::Illegal => 1,
        Verdict::Unknown => 2,
    }))
}

/// Drops the "line N: " prefix of a history error; the caller prints `file:line:` instead.
fn strip_line(msg: &str) -> &str {
    match msg.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest,
        _ => msg,
    }
}

fn print_summary(file: &str, r: &CheckResult) {
    println!(
        "{file}: {} ({} model, {} ops, {} part(s), {:.1} ms)",
        r.verdict.name(),
        r.model,
        r.ops,
        r.partitions.len(),
        r.elapsed_ms
    );
    println!("{}", r.explanation);
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
                "  #{:<4} {:<32} process {}, index {}",
                op.order.unwrap_or(0),
                op.description,
                op.op.process,
                op.op.invoke_index
            );
        }
        println!("  state here: {}", c.state);
        for op in &c.unplaceable {
            println!(
                "  cannot place: {:<24} process {}, index {}",
                op.description, op.op.process, op.op.invoke_index
            );
        }
        break;
    }
}
