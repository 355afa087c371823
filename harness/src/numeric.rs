//! Parsers for numeric flags: every duration, rate and count a user types is checked at parse
//! time — a finite number within stated bounds — so no flag can reach a
//! `Duration::from_secs_f64` or an allocation with `nan`, `inf`, a negative or an absurd
//! value. clap turns the error into `error: invalid value 'nan' for '--time-limit <SECS>':
//! ...` and faultline exits 255.
//!
//! The bounds are product decisions, named here once: the longest test, the longest budget,
//! the fastest rate, the most workers.

/// Longest main phase of `faultline test`: 7 days.
pub const MAX_TIME_LIMIT_S: f64 = 7.0 * 86_400.0;
/// Longest checker budget: 7 days.
pub const MAX_BUDGET_S: f64 = 7.0 * 86_400.0;
/// Longest mean interval between fault changes: 1 day.
pub const MAX_INTERVAL_S: f64 = 86_400.0;
/// Highest target rate, ops/s (far beyond what a harness can issue; a sanity bound).
pub const MAX_RATE: f64 = 10_000_000.0;
/// Lowest non-zero target rate, ops/s (one op every 100 s across all workers).
pub const MIN_RATE: f64 = 0.01;
/// Most client workers.
pub const MAX_CONCURRENCY: u64 = 10_000;
/// Shortest client op deadline, ms: below it nearly every op ends `info` and the history
/// says nothing about the system.
pub const MIN_OP_TIMEOUT_MS: u64 = 50;
/// Longest client op deadline, ms (10 minutes).
pub const MAX_OP_TIMEOUT_MS: u64 = 600_000;

/// A parser for a number of seconds in `[min, max]`.
pub fn secs(
    min: f64,
    max: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        if v.is_finite() && v >= min && v <= max {
            Ok(v)
        } else {
            Err(format!(
                "must be a finite number of seconds between {min} and {max} (got {s})"
            ))
        }
    }
}

/// A parser for a target rate in ops/s: 0 (unlimited) or `[MIN_RATE, MAX_RATE]`.
pub fn rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate in ops/s"))?;
    if v == 0.0 || (v.is_finite() && (MIN_RATE..=MAX_RATE).contains(&v)) {
        Ok(v)
    } else {
        Err(format!(
            "must be 0 (as fast as possible) or a rate between {MIN_RATE} and {MAX_RATE} ops/s (got {s})"
        ))
    }
}

/// A parser for a whole number in `[min, max]`.
pub fn count<T>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64>,
{
    move |s: &str| {
        let v: u64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number between {min} and {max}"))?;
        if (min..=max).contains(&v) {
            T::try_from(v).map_err(|_| format!("{v} is out of range"))
        } else {
            Err(format!("must be between {min} and {max} (got {v})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_would_panic_later() {
        let p = secs(0.001, MAX_TIME_LIMIT_S);
        for bad in ["nan", "inf", "-inf", "-1", "0", "1e30", "", "x"] {
            assert!(p(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(p("2.5"), Ok(2.5));
        for bad in ["nan", "inf", "-1", "1e-300", "1e30"] {
            assert!(rate(bad).is_err(), "rate {bad} accepted");
        }
        assert_eq!(rate("0"), Ok(0.0));
        let c = count::<usize>(1, 10);
        assert!(c("0").is_err() && c("11").is_err() && c("-1").is_err() && c("1e3").is_err());
        assert_eq!(c("10"), Ok(10));
    }
}
