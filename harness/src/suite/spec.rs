//! Reading a suite file: TOML into a validated [`Suite`], with every error pointing at
//! file:line and nothing started before the whole file is known to be runnable.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use report::suite::Expect;
use serde::Deserialize;
use toml::Spanned;

/// Flags the suite sets itself for every run; an entry giving them would be overridden.
const RESERVED: [(&str, &str); 6] = [
    ("--seed", "use `seeds = [...]`"),
    ("--time-limit", "use `time_limit = SECS`"),
    (
        "--results",
        "the suite writes runs inside its own directory",
    ),
    ("--name", "the suite names runs after the entry and seed"),
    ("--repeat", "a suite entry is a fresh run"),
    ("--dry-run", "a suite entry is a real run"),
];

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    seeds: Option<Spanned<Vec<u64>>>,
    #[serde(default)]
    time_limit: Option<Spanned<f64>>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    entry: Vec<Spanned<EntryFile>>,
}

/// One `[[entry]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    args: Option<Spanned<Vec<String>>>,
    expect: Expect,
    #[serde(default)]
    seeds: Option<Spanned<Vec<u64>>>,
    #[serde(default)]
    time_limit: Option<Spanned<f64>>,
}

/// A validated suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Its name (the results subdirectory): letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Entries in file order.
    pub entries: Vec<Entry>,
}

/// A validated entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// `faultline test` flags: the suite's shared ones, then the entry's.
    pub args: Vec<String>,
    /// The expectation.
    pub expect: Expect,
    /// Seeds to run.
    pub seeds: Vec<u64>,
    /// Main phase length of each run, seconds.
    pub time_limit: f64,
}

impl Suite {
    /// Keeps only the entries named in `names` (file order kept); a name that is not an entry
    /// is an error listing the entries there are, so a typo never runs an empty suite.
    pub fn only(mut self, names: &[String]) -> Result<Suite> {
        for n in names {
            if !self.entries.iter().any(|e| &e.name == n) {
                let known: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
                bail!(
                    "--only: {}: no entry named {n:?}; entries: {}",
                    self.file.display(),
                    known.join(", ")
                );
            }
        }
        self.entries.retain(|e| names.contains(&e.name));
        Ok(self)
    }
}

impl Entry {
    /// The `faultline test` arguments of one seed (without the suite's own `--results` and
    /// `--name`): what a person types to repeat it.
    pub fn test_args(&self, seed: u64) -> Vec<String> {
        let mut a = self.args.clone();
        a.extend([
            "--time-limit".into(),
            fmt_secs(self.time_limit),
            "--seed".into(),
            seed.to_string(),
        ]);
        a
    }
}

/// Seconds without a needless `.0`.
fn fmt_secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        s.to_string()
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses `faultline test` flags, as the test command would.
#[derive(clap::Parser)]
#[command(name = "faultline test")]
struct TestArgv {
    #[command(flatten)]
    flags: crate::plan::Flags,
}

/// Checks one entry's flags with `faultline test`'s parser and resolver (nothing starts).
pub fn check_args(args: &[String]) -> Result<()> {
    for a in args {
        if let Some((flag, why)) = RESERVED
            .iter()
            .find(|(f, _)| a == f || a.starts_with(&format!("{f}=")))
        {
            bail!("{flag} is set by the suite: {why}");
        }
    }
    let argv = std::iter::once("faultline test".to_string()).chain(args.iter().cloned());
    let parsed = <TestArgv as clap::Parser>::try_parse_from(argv).map_err(|e| {
        // clap's rendering ends in usage lines; the first line says what is wrong.
        let text = e.to_string();
        anyhow::anyhow!(
            "{}",
            text.lines()
                .next()
                .unwrap_or("bad flags")
                .trim_start_matches("error: ")
        )
    })?;
    parsed.flags.resolve_dry().map(|_| ())
}

/// Reads and validates a suite file; `seeds` overrides every entry's seeds.
pub fn load(path: &Path, seeds: Option<&[u64]>) -> Result<Suite> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read suite file {}", path.display()))?;
    parse(&text, path, seeds)
}

/// Validates the text of a suite file (see [`load`]); `path` names it in errors.
pub fn parse(text: &str, path: &Path, seeds: Option<&[u64]>) -> Result<Suite> {
    let at = |offset: usize| format!("{}:{}", path.display(), line_of(text, offset));
    let file: SuiteFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| at(s.start))
            .unwrap_or_else(|| path.display().to_string());
        anyhow::anyhow!("{line}: {}", e.message())
    })?;
    let name = file.name.get_ref().clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || name.starts_with('.')
    {
        bail!(
            "{}: name {name:?}: use letters, digits, '-', '_' or '.' (it names a directory)",
            at(file.name.span().start)
        );
    }
    let positive = |t: &Option<Spanned<f64>>| -> Result<Option<f64>> {
        match t {
            None => Ok(None),
            Some(t) if *t.get_ref() > 0.0 && *t.get_ref() <= crate::numeric::MAX_TIME_LIMIT_S => {
                Ok(Some(*t.get_ref()))
            }
            Some(t) => bail!(
                "{}: time_limit {} must be more than 0 and at most {} seconds",
                at(t.span().start),
                t.get_ref(),
                crate::numeric::MAX_TIME_LIMIT_S
            ),
        }
    };
    let some_seeds = |s: &Option<Spanned<Vec<u64>>>| -> Result<Option<Vec<u64>>> {
        match s {
            Some(s) if s.get_ref().is_empty() => {
                bail!("{}: seeds is empty: give at least one", at(s.span().start))
            }
            Some(s) => Ok(Some(s.get_ref().clone())),
            None => Ok(None),
        }
    };
    let default_time = positive(&file.time_limit)?;
    let default_seeds = some_seeds(&file.seeds)?;
    if file.entry.is_empty() {
        bail!(
            "{}: no [[entry]]: a suite needs at least one",
            path.display()
        );
    }
    let mut entries: Vec<Entry> = Vec::new();
    for e in &file.entry {
        let e_at = at(e.span().start);
        let e = e.get_ref();
        let ename = e.name.get_ref().trim().to_string();
        if ename.is_empty() {
            bail!("{}: entry name is empty", at(e.name.span().start));
        }
        if entries.iter().any(|x| x.name == ename) {
            bail!(
                "{}: entry name {ename:?} is used twice (names are the rows of the comparison)",
                at(e.name.span().start)
            );
        }
        let own = e
            .args
            .as_ref()
            .map(|a| a.get_ref().as_slice())
            .unwrap_or_default();
        let args: Vec<String> = file.args.iter().chain(own).cloned().collect();
        let args_at = e
            .args
            .as_ref()
            .map_or(e.name.span().start, |a| a.span().start);
        check_args(&args)
            .map_err(|err| anyhow::anyhow!("{}: entry {ename:?}: {err:#}", at(args_at)))?;
        let seeds = match seeds {
            Some(s) => s.to_vec(),
            None => some_seeds(&e.seeds)?
                .or_else(|| default_seeds.clone())
                .with_context(|| {
                    format!("{e_at}: entry {ename:?} has no seeds (set `seeds` at the top or in the entry)")
                })?,
        };
        let time_limit = positive(&e.time_limit)?.or(default_time).with_context(|| {
            format!("{e_at}: entry {ename:?} has no time_limit (set it at the top or in the entry)")
        })?;
        entries.push(Entry {
            name: ename,
            description: e.description.clone(),
            args,
            expect: e.expect,
            seeds,
            time_limit,
        });
    }
    Ok(Suite {
        name,
        description: file.description,
        file: path.to_owned(),
        entries,
    })
}

/// Parses `--seeds`: a list (`1,2,5`) or a range (`1..10`, both ends included).
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let num = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|_| format!("{t:?} is not a seed (a whole number)"))
    };
    let seeds: Vec<u64> = if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (num(a)?, num(b)?);
        if b < a || b - a >= 10_000 {
            return Err(format!(
                "{s}: a range a..b needs a <= b and at most 10000 seeds"
            ));
        }
        (a..=b).collect()
    } else {
        s.split(',').map(num).collect::<Result<_, _>>()?
    };
    if seeds.is_empty() {
        return Err("no seeds".into());
    }
    Ok(seeds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", parse(text, Path::new("s.toml"), None).unwrap_err())
    }

    #[test]
    fn errors_name_the_line() {
        assert!(err("name = \"x\"\nseeds = [1]\ntime_limit = 1\n[[entry]]\nname = \"a\"\nexpect = \"maybe\"\n")
            .starts_with("s.toml:6:"));
        assert!(err("name = \"x\"\nseeds = [1]\ntime_limit = 1\n[[entry]]\nname = \"a\"\nexpect = \"valid\"\nargs = [\"--bogus\"]\n")
            .starts_with("s.toml:7: entry \"a\""));
        assert!(err("name = \"x\"\nseeds = [1]\ntime_limit = -1\n[[entry]]\nname = \"a\"\nexpect = \"valid\"\n")
            .starts_with("s.toml:3: time_limit"));
        assert!(err("name = \"x\"\nseeds = [1]\ntime_limit = 1\n[[entry]]\nname = \"a\"\nexpect = \"valid\"\n[[entry]]\nname = \"a\"\nexpect = \"valid\"\n")
            .starts_with("s.toml:8: entry name \"a\" is used twice"));
        assert!(err("name = \"x\"\nseeds = [1]\ntime_limit = 1\n[[entry]]\nname = \"a\"\nexpect = \"valid\"\nargs = [\"--seed\", \"3\"]\n")
            .contains("--seed is set by the suite"));
        assert!(err("name = \"../x\"\n").starts_with("s.toml:1: name"));
        assert!(err("name = [\n").starts_with("s.toml:"));
    }

    #[test]
    fn entries_inherit_and_override() {
        let s = parse(
            "name = \"x\"\nseeds = [1, 2]\ntime_limit = 3\nargs = [\"--nodes\", \"3\"]\n\
             [[entry]]\nname = \"a\"\nexpect = \"valid\"\n\
             [[entry]]\nname = \"b\"\nexpect = \"report\"\nseeds = [7]\ntime_limit = 2.5\nargs = [\"--engine\", \"nwr\"]\n",
            Path::new("s.toml"),
            None,
        )
        .unwrap();
        assert_eq!(s.entries[0].seeds, vec![1, 2]);
        assert_eq!(s.entries[1].args, vec!["--nodes", "3", "--engine", "nwr"]);
        assert_eq!(
            s.entries[1].test_args(7)[4..],
            ["--time-limit", "2.5", "--seed", "7"]
        );
        assert_eq!(s.entries[0].test_args(1)[3], "3");
    }

    #[test]
    fn only_keeps_named_entries_and_refuses_unknown_names() {
        let s = parse(
            "name = \"x\"\nseeds = [1]\ntime_limit = 1\n[[entry]]\nname = \"a\"\nexpect = \"valid\"\n\
             [[entry]]\nname = \"b\"\nexpect = \"valid\"\n[[entry]]\nname = \"c\"\nexpect = \"valid\"\n",
            Path::new("s.toml"),
            None,
        )
        .unwrap();
        let kept = s.clone().only(&["c".into(), "a".into()]).unwrap();
        let names: Vec<&str> = kept.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        let e = s.only(&["z".into()]).unwrap_err().to_string();
        assert!(e.contains("\"z\"") && e.contains("a, b, c"), "{e}");
    }

    #[test]
    fn seeds_flag() {
        assert_eq!(parse_seeds("1..3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_seeds("4,2").unwrap(), vec![4, 2]);
        assert!(parse_seeds("3..1").is_err());
        assert!(parse_seeds("x").is_err());
        assert!(parse_seeds("1..99999999").is_err());
    }
}
