//! Numbers that survive parsing exactly, or a clear refusal.
//!
//! Histories may hold integers beyond 64 bits or decimals with more digits than a 64-bit
//! float keeps. serde_json (without `arbitrary_precision`, which would slow every parse and
//! change how numbers travel between our crates) reads those as the nearest f64, so
//! `write 18446744073709551616` then `read 18446744073709551617` would compare equal and a
//! wrong history would pass. faultline refuses such numbers instead, naming the line: every
//! integer must fit `i64` or `u64`, and a decimal must be exactly the value of the float it
//! parses to, digit for digit (`1.5`, `0.1`, `2.5e-3` are; `0.10000000000000000001` is not).
//! Two accepted decimals are equal iff their floats are, so comparisons stay exact. Values a
//! model compares as text (kv) can always be written as JSON strings instead.

use serde_json::Value;

/// `Err` with a sentence when the number token `tok` (JSON or EDN syntax, without EDN's `N` /
/// `M` suffix) cannot be held exactly.
pub fn check_number(tok: &str) -> Result<(), String> {
    let integer = !tok.contains(['.', 'e', 'E']);
    if integer {
        if tok.parse::<i64>().is_ok() || tok.parse::<u64>().is_ok() {
            return Ok(());
        }
        return Err(format!(
            "integer {tok} does not fit in 64 bits; faultline compares values exactly and \
             cannot hold it (write it as a string)"
        ));
    }
    let inexact = || {
        format!(
            "number {tok} cannot be held exactly (a 64-bit float would change it); faultline \
             compares values exactly (write it as a string)"
        )
    };
    let f: f64 = tok.parse().map_err(|_| format!("bad number {tok:?}"))?;
    if !f.is_finite() {
        return Err(inexact());
    }
    // Rust's `{:e}` prints the shortest digits that read back as the same float.
    match (decimal(tok), decimal(&format!("{f:e}"))) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(inexact()),
    }
}

/// A decimal number as (negative, significant digits without leading or trailing zeros,
/// power of ten of the last digit); zero is `(false, "", 0)`.
fn decimal(tok: &str) -> Option<(bool, String, i64)> {
    let (neg, rest) = match tok.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut exp = exp.checked_sub(frac.len() as i64)?;
    let trimmed = digits.trim_start_matches('0');
    let kept = trimmed.trim_end_matches('0');
    exp = exp.checked_add((trimmed.len() - kept.len()) as i64)?;
    if kept.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, kept.to_string(), exp))
}

/// `Err` for the first number in JSON `text` (outside strings) that cannot be held exactly.
pub fn check_json_numbers(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => i = skip_string(b, i),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                check_number(&text[start..i])?;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// The position just after the JSON string starting at `b[start]` (a quote).
fn skip_string(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// The position just after the JSON value starting at or after `b[i]` (after whitespace).
fn skip_value(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = skip_string(b, i);
                if depth == 0 {
                    return i;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b',' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The raw text of member `key` of the JSON object `text` (top level only), if it is there
/// and spelled without escapes.
pub fn member<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let b = text.as_bytes();
    let mut i = text.find('{')? + 1;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() || b[i] != b'"' {
            return None;
        }
        let end = skip_string(b, i);
        let name = text.get(i + 1..end.checked_sub(1)?)?;
        i = end;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = i + 1;
        i = skip_value(b, start);
        if name == key {
            return text.get(start..i).map(str::trim);
        }
    }
}

/// True when `v` holds a float anywhere (the only way an inexact number shows after parsing).
pub fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

/// Parses JSON `text`, refusing numbers it cannot hold exactly (for values given on the
/// command line, such as `--init`).
pub fn parse_json_exact(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if has_float(&v) {
        check_json_numbers(text)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_fit_64_bits_or_are_refused() {
        for ok in [
            "0",
            "-1",
            "9223372036854775807",
            "18446744073709551615",
            "-9223372036854775808",
        ] {
            assert!(check_number(ok).is_ok(), "{ok}");
        }
        for bad in [
            "18446744073709551616",
            "-9223372036854775809",
            "1000000000000000000000000",
        ] {
            assert!(check_number(bad).unwrap_err().contains("64 bits"), "{bad}");
        }
    }

    #[test]
    fn decimals_must_equal_their_float() {
        for ok in [
            "1.5",
            "0.1",
            "-2.5e-3",
            "1e2",
            "1.50",
            "0.0",
            "-0.0",
            "123456789.125",
            "5e-324",
        ] {
            assert!(check_number(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0.10000000000000000001",
            "1.00000000000000001",
            "1e400",
            "9007199254740993.0",
        ] {
            assert!(check_number(bad).unwrap_err().contains("exactly"), "{bad}");
        }
    }

    #[test]
    fn finds_members_and_numbers_outside_strings() {
        let line = r#"{"a":"x\"}","value":[1, {"b":"1e999"}, 2.5],"time":3}"#;
        assert_eq!(member(line, "value"), Some(r#"[1, {"b":"1e999"}, 2.5]"#));
        assert_eq!(member(line, "time"), Some("3"));
        assert_eq!(member(line, "nope"), None);
        assert!(check_json_numbers(member(line, "value").unwrap()).is_ok());
        assert!(check_json_numbers(r#"{"value":18446744073709551616}"#).is_err());
        assert!(parse_json_exact("18446744073709551617").is_err());
        assert_eq!(
            parse_json_exact("[1, 2.5]").unwrap(),
            serde_json::json!([1, 2.5])
        );
    }
}
