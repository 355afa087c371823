//! Running a suite: every entry × seed as its own `faultline test` process (this same
//! executable), `--jobs` at a time, each in its own run directory inside the suite directory
//! and with its own free ports (the test command picks them); progress streamed as runs end;
//! `suite.json` rewritten after every run so an interrupted suite still says what it saw.
//!
//! A separate process per run keeps runs apart: a run that crashes or hangs costs only its
//! own verdict (it is killed at its deadline), and its output goes to its own log file instead
//! of interleaving with other runs on the terminal.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use checkers::analysis::Analysis;
use checkers::layout::RunDir;
use report::suite::{EntryInfo, Outcome, RunFigures, RunRecord, SuiteResult, SUITE_SCHEMA};

use super::spec::{Entry, Suite};

/// Grace beyond a run's time limit before it is killed: cluster start (≤ 30 s), recovery and
/// final reads (≤ 20 s), the check (≤ 60 s by default) and the report.
const GRACE: Duration = Duration::from_secs(240);

/// How a suite is run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs at a time.
    pub jobs: usize,
    /// The `faultline` executable that runs each test.
    pub exe: PathBuf,
}

/// One entry × seed to run.
struct Job<'a> {
    index: usize,
    entry: &'a Entry,
    seed: u64,
}

/// Creates `<results>/suites/<name>/<timestamp>[-i]/`, the way run directories are made.
pub fn create_suite_dir(results: &Path, name: &str) -> Result<PathBuf> {
    crate::plan::create_run_dir(&results.join("suites"), name)
}

/// A file-name-safe form of an entry name.
fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A shell-quoted command line (single quotes where needed).
pub fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.,/=:+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the whole suite into `dir` and returns its results (also written as `suite.json`,
/// `junit.xml` and `index.html` there).
pub fn run_suite(suite: &Suite, dir: &Path, opts: &Options) -> Result<SuiteResult> {
    let started = Instant::now();
    let jobs: Vec<Job> = suite
        .entries
        .iter()
        .flat_map(|e| e.seeds.iter().map(move |s| (e, *s)))
        .enumerate()
        .map(|(index, (entry, seed))| Job { index, entry, seed })
        .collect();
    let total = jobs.len();
    let mut result = SuiteResult {
        schema: SUITE_SCHEMA,
        name: suite.name.clone(),
        file: suite.file.display().to_string(),
        started: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        wall_s: 0.0,
        jobs: opts.jobs,
        entries: suite
            .entries
            .iter()
            .map(|e| EntryInfo {
                name: e.name.clone(),
                description: e.description.clone(),
                args: e.args.clone(),
                expect: e.expect,
                seeds: e.seeds.clone(),
            })
            .collect(),
        runs: Vec::new(),
        exit_code: 0,
    };
    std::fs::create_dir_all(dir.join("runs"))?;
    let tty = std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::new(total as u64);
    if tty {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} runs {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let say = |line: String| {
        if tty {
            bar.println(line);
        } else {
            eprintln!("{line}");
        }
    };
    say(format!(
        "faultline: suite {}: {} entries, {total} runs, {} at a time -> {}",
        suite.name,
        suite.entries.len(),
        opts.jobs,
        dir.display()
    ));
    let mut slots: Vec<Option<RunRecord>> = vec![None; total];
    let queue = Mutex::new(jobs.iter());
    let (tx, rx) = std::sync::mpsc::channel::<(usize, RunRecord)>();
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..opts.jobs.max(1) {
            let tx = tx.clone();
            let queue = &queue;
            s.spawn(move || loop {
                let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                let Some(job) = next else { break };
                let rec = run_one(job, dir, opts);
                if tx.send((job.index, rec)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut done = 0;
        for (index, rec) in rx {
            done += 1;
            let expected = match rec.outcome {
                Outcome::Held => "as expected",
                Outcome::NotHeld => "NOT as expected",
                Outcome::Unknown => "undecided",
                Outcome::Error => "no verdict",
                Outcome::Reported => "measured",
            };
            let mut line = format!(
                "[{done}/{total}] {} seed {}: {} (expect {}, {expected}) in {:.0} s",
                rec.entry,
                rec.seed,
                rec.figures.verdict.map_or("error", |v| v.name()),
                rec.expect.name(),
                rec.wall_s
            );
            if matches!(rec.outcome, Outcome::NotHeld | Outcome::Error) {
                line.push_str(&format!("\n    repeat: {}", rec.reproduce));
            }
            slots[index] = Some(rec);
            result.runs = slots.iter().flatten().cloned().collect();
            let count = |o: Outcome| result.runs.iter().filter(|r| r.outcome == o).count();
            bar.set_message(format!(
                "{} held, {} not, {} undecided, {} errors",
                count(Outcome::Held) + count(Outcome::Reported),
                count(Outcome::NotHeld),
                count(Outcome::Unknown),
                count(Outcome::Error)
            ));
            bar.inc(1);
            say(line);
            result.wall_s = started.elapsed().as_secs_f64();
            result.exit_code = SuiteResult::exit_code_of(&result.runs);
            write_json(dir, &result)?;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    result.wall_s = started.elapsed().as_secs_f64();
    result.exit_code = SuiteResult::exit_code_of(&result.runs);
    write_json(dir, &result)?;
    std::fs::write(
        dir.join(report::suite::JUNIT_XML),
        super::junit::render(&result),
    )
    .context("cannot write junit.xml")?;
    std::fs::write(
        dir.join(checkers::layout::INDEX),
        report::render_suite(&result, dir),
    )
    .context("cannot write the suite's index.html")?;
    Ok(result)
}

fn write_json(dir: &Path, result: &SuiteResult) -> Result<()> {
    let path = dir.join(report::suite::SUITE_JSON);
    let tmp = dir.join(".suite.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(result)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs one entry × seed and judges it.
fn run_one(job: &Job, suite_dir: &Path, opts: &Options) -> RunRecord {
    let started = Instant::now();
    let id = format!("{}-s{}", slug(&job.entry.name), job.seed);
    let test_args = job.entry.test_args(job.seed);
    let reproduce = format!("faultline test {}", shell_line(&test_args));
    let log_rel = format!("runs/{id}.log");
    let mut rec = RunRecord {
        entry: job.entry.name.clone(),
        seed: job.seed,
        expect: job.entry.expect,
        outcome: Outcome::Error,
        figures: RunFigures::default(),
        run_dir: None,
        log: log_rel.clone(),
        exit_code: None,
        wall_s: 0.0,
        reproduce,
        error: None,
    };
    let outcome = (|| -> Result<(Option<i32>, Option<PathBuf>)> {
        let log = std::fs::File::create(suite_dir.join(&log_rel))
            .with_context(|| format!("cannot create {log_rel}"))?;
        let runs = suite_dir.join("runs");
        let mut child = Command::new(&opts.exe)
            .arg("test")
            .args(&test_args)
            .arg("--results")
            .arg(&runs)
            .arg("--name")
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {}", opts.exe.display()))?;
        let deadline = started + Duration::from_secs_f64(job.entry.time_limit) + GRACE;
        let code = loop {
            if let Some(status) = child.try_wait()? {
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "killed after {:.0} s (time limit {} s + {} s for start, recovery, check and report)",
                    started.elapsed().as_secs_f64(),
                    job.entry.time_limit,
                    GRACE.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // The test command created exactly one directory under runs/<id>/.
        let run_dir = std::fs::read_dir(runs.join(&id))
            .ok()
            .and_then(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()).max());
        Ok((code, run_dir))
    })();
    rec.wall_s = started.elapsed().as_secs_f64();
    let (code, run_dir) = match outcome {
        Ok(x) => x,
        Err(e) => {
            rec.error = Some(format!("{e:#}"));
            return rec;
        }
    };
    rec.exit_code = code;
    let Some(run_dir) = run_dir else {
        rec.error = Some(last_error(&suite_dir.join(&log_rel)));
        return rec;
    };
    rec.run_dir = run_dir
        .strip_prefix(suite_dir)
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let results = RunDir::new(&run_dir).results();
    match std::fs::read_to_string(&results)
        .map_err(anyhow::Error::from)
        .and_then(|t| Analysis::from_json(&t).map_err(anyhow::Error::from))
    {
        Ok(a) => {
            rec.figures = RunFigures::of(&a);
            rec.outcome = Outcome::of(job.entry.expect, Some(a.verdict));
        }
        Err(_) => rec.error = Some(last_error(&suite_dir.join(&log_rel))),
    }
    rec.reproduce = format!(
        "{} (or: faultline test --repeat {})",
        rec.reproduce,
        shell_line(&[run_dir.display().to_string()])
    );
    rec
}

/// The run's last `faultline:` error line, for a run that left no results.
fn last_error(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| l.starts_with("faultline: ") && !l.starts_with("faultline: note"))
        .map(|l| {
            format!(
                "the run left no results: {}",
                l.trim_start_matches("faultline: ")
            )
        })
        .unwrap_or_else(|| format!("the run left no results; see {}", log.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let a = [
            "--kvnode-args".to_string(),
            "--read unsafe-local".into(),
            "it's".into(),
        ];
        assert_eq!(
            shell_line(&a),
            "--kvnode-args '--read unsafe-local' 'it'\\''s'"
        );
        assert_eq!(slug("nwr 3/1/1"), "nwr-3-1-1");
    }
}
