//! Run directories: the timestamped name of a new run, and the `results/latest` link.
//!
//! The files inside a run directory are named in one place, `checkers::layout` (re-exported
//! here as [`layout`]), because the report crate and the checkers read and write them too;
//! this module adds what only the harness does with directories.

use anyhow::{Context, Result};
pub use checkers::layout::{self, RunDir};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYYMMDDTHHMMSSZ` (UTC) for a run directory name.
pub fn timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Points `results/latest` at `run_dir` (relative link), replacing an older link.
pub fn link_latest(results: &Path, run_dir: &Path) -> Result<()> {
    let link = results.join(layout::LATEST);
    let target = run_dir
        .strip_prefix(results)
        .map(PathBuf::from)
        .unwrap_or_else(|_| run_dir.to_path_buf());
    let tmp = results.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)?;
    std::fs::rename(&tmp, &link).context("cannot update results/latest")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_464_410);
        assert_eq!(timestamp(t), "20261123T200650Z");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000Z");
    }
}
