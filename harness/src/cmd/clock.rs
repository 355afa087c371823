//! `faultline clock offset|bump|strobe|reset|show`: moves THIS machine's system clock, as
//! root, for clock faults on VMs and machines with clocks of their own (the ssh environment
//! runs it on the hosts with sudo). Never run it where nodes share a kernel clock with
//! anything you care about.
//!
//! It remembers the offset it applied in `/run/faultline-clock-offset-ms` (tmpfs: forgotten
//! at boot, when the clock is true again), so `reset` moves the clock back by exactly what
//! was applied, and repeated offsets do not accumulate. Time that passed in between is kept:
//! a reset clock reads true time again, not the time it was bumped at.

use anyhow::{bail, Context, Result};
use nix::time::{clock_gettime, clock_settime, ClockId};
use std::process::ExitCode;
use std::time::Duration;

/// Where the applied offset is remembered.
pub const STATE: &str = "/run/faultline-clock-offset-ms";

/// Flags of `faultline clock`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Set the clock to true time + MS milliseconds (negative: behind).
    Offset {
        /// The offset from true time, milliseconds.
        #[arg(long, allow_hyphen_values = true)]
        ms: i64,
    },
    /// Move the clock by MS milliseconds from where it is now.
    Bump {
        /// The jump, milliseconds (negative: back in time).
        #[arg(long, allow_hyphen_values = true)]
        ms: i64,
    },
    /// Flip between +MS and true time every PERIOD for DURATION, then reset.
    Strobe {
        /// The offset while flipped, milliseconds.
        #[arg(long, allow_hyphen_values = true)]
        ms: i64,
        /// Time between flips, milliseconds.
        #[arg(long, value_parser = crate::numeric::count::<u64>(10, 60_000))]
        period_ms: u64,
        /// How long to strobe, seconds.
        #[arg(long, value_parser = crate::numeric::secs(0.01, 86_400.0))]
        duration_s: f64,
    },
    /// Back to true time.
    Reset,
    /// Print the offset currently applied, milliseconds.
    Show,
}

/// Largest offset accepted: ten years either way (beyond it clock_settime misbehaves on
/// some kernels, and no test needs it).
const MAX_OFFSET_MS: i64 = 10 * 365 * 86_400_000;

fn applied() -> i64 {
    std::fs::read_to_string(STATE)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Sets the clock to true time + `target_ms`, given what was applied before.
pub fn set_offset(target_ms: i64) -> Result<()> {
    if target_ms.abs() > MAX_OFFSET_MS {
        bail!("offset {target_ms} ms is beyond ±{MAX_OFFSET_MS} ms");
    }
    let delta_ms = target_ms - applied();
    if delta_ms != 0 {
        let now = clock_gettime(ClockId::CLOCK_REALTIME).context("cannot read the clock")?;
        let now_ns = now.tv_sec() as i128 * 1_000_000_000 + now.tv_nsec() as i128;
        let new_ns = now_ns + delta_ms as i128 * 1_000_000;
        let ts = nix::sys::time::TimeSpec::new(
            (new_ns.div_euclid(1_000_000_000)) as libc::time_t,
            (new_ns.rem_euclid(1_000_000_000)) as libc::c_long,
        );
        clock_settime(ClockId::CLOCK_REALTIME, ts).map_err(|e| {
            anyhow::anyhow!("cannot set the system clock ({e}); this needs root (sudo)")
        })?;
    }
    if target_ms == 0 {
        let _ = std::fs::remove_file(STATE);
    } else {
        std::fs::write(STATE, format!("{target_ms}\n"))
            .with_context(|| format!("cannot remember the offset in {STATE}"))?;
    }
    Ok(())
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        Command::Offset { ms } => set_offset(ms)?,
        Command::Bump { ms } => set_offset(applied().saturating_add(ms))?,
        Command::Reset => set_offset(0)?,
        Command::Show => println!("{}", applied()),
        Command::Strobe {
            ms,
            period_ms,
            duration_s,
        } => {
            let end = std::time::Instant::now() + Duration::from_secs_f64(duration_s);
            let mut on = false;
            while std::time::Instant::now() < end {
                on = !on;
                set_offset(if on { ms } else { 0 })?;
                std::thread::sleep(Duration::from_millis(period_ms));
            }
            set_offset(0)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
