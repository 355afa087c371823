//! Jepsen EDN histories (`history.edn`, Knossos test data, Porcupine's kv logs).
//!
//! Accepts a vector or list of op maps, or maps one after another (one per line). Only the
//! EDN Jepsen histories use: keywords, strings, integers, floats, nil, booleans, vectors,
//! lists, sets, maps, `;` comments and commas as whitespace. Op maps have `:process`,
//! `:type`, `:f`, `:value` and optionally `:key`, `:time`, `:index`. Jepsen's multi-key
//! ("independent") form, where `:value` is the tuple `[key value]`, is split into key and
//! value: for a cas only when the second element is itself a vector (`[k [old new]]`), since a
//! plain cas value `[old new]` has the same shape.

use crate::history::exact::check_number;
use crate::history::{Event, EventType, History, HistoryError, Process};
use serde_json::Value;

/// An EDN value.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// An integer, within the range of `i64` or `u64` (larger ones are refused when parsed).
    Int(i128),
    /// A float; only decimals a 64-bit float holds exactly are accepted (see
    /// [`crate::history::exact`]).
    Float(f64),
    /// A string.
    Str(String),
    /// A keyword, without its colon.
    Keyword(String),
    /// A bare symbol.
    Symbol(String),
    /// `[..]`, `(..)` or `#{..}`.
    Seq(Vec<Edn>),
    /// `{..}`, entries in order.
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    /// Converts to JSON: keywords and symbols become strings, sequences arrays.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(v), _) => Value::from(v),
                (_, Ok(v)) => Value::from(v),
                _ => Value::String(i.to_string()), // never parsed: out of range is refused
            },
            Edn::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Seq(v) => Value::Array(v.iter().map(Edn::to_json).collect()),
            Edn::Map(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.as_text(), v.to_json())).collect())
            }
        }
    }

    fn as_text(&self) -> String {
        match self {
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
            Edn::Int(i) => i.to_string(),
            other => other.to_json().to_string(),
        }
    }

    fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(m) => m
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, m: impl Into<String>) -> HistoryError {
        HistoryError::Syntax {
            line: self.line,
            message: m.into(),
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() {
            match self.s[self.pos] {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1
                }
                b' ' | b'\t' | b'\r' | b',' => self.pos += 1,
                b';' => {
                    while self.pos < self.s.len() && self.s[self.pos] != b'\n' {
                        self.pos += 1
                    }
                }
                _ => break,
            }
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.s.len()
    }

    fn value(&mut self, depth: usize) -> Result<Edn, HistoryError> {
        if depth > 200 {
            return Err(self.err("nesting too deep"));
        }
        self.skip_ws();
        let Some(&c) = self.s.get(self.pos) else {
            return Err(self.err("unexpected end of input (truncated?)"));
        };
        match c {
            b'[' | b'(' => {
                self.pos += 1;
                Ok(Edn::Seq(
                    self.seq(if c == b'[' { b']' } else { b')' }, depth)?,
                ))
            }
            b'#' if self.s.get(self.pos + 1) == Some(&b'{') => {
                self.pos += 2;
                Ok(Edn::Seq(self.seq(b'}', depth)?))
            }
            b'{' => {
                self.pos += 1;
                let items = self.seq(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return Err(self.err("map with an odd number of forms"));
                }
                let mut it = items.into_iter();
                let mut m = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    m.push((k, v));
                }
                Ok(Edn::Map(m))
            }
            b'"' => self.string(),
            b']' | b')' | b'}' => Err(self.err(format!("unexpected {:?}", c as char))),
            _ => self.atom(),
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, HistoryError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.s.get(self.pos) {
                None => {
                    return Err(
                        self.err(format!("missing closing {:?} (truncated?)", close as char))
                    )
                }
                Some(&c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn string(&mut self) -> Result<Edn, HistoryError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(self.err("unterminated string (truncated?)"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(self.err("unterminated string (truncated?)"));
                    };
                    self.pos += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                b'\n' => {
                    self.line += 1;
                    out.push(c)
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out)
            .map(Edn::Str)
            .map_err(|_| self.err("string is not UTF-8"))
    }

    fn atom(&mut self) -> Result<Edn, HistoryError> {
        let start = self.pos;
        while self.pos < self.s.len()
            && !matches!(
                self.s[self.pos],
                b' ' | b'\t'
                    | b'\r'
                    | b'\n'
                    | b','
                    | b'['
                    | b']'
                    | b'('
                    | b')'
                    | b'{'
                    | b'}'
                    | b'"'
                    | b';'
            )
        {
            self.pos += 1;
        }
        let tok = std::str::from_utf8(&self.s[start..self.pos])
            .map_err(|_| self.err("token is not UTF-8"))?;
        if tok.is_empty() {
            return Err(self.err("unexpected character"));
        }
        Ok(match tok {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ if tok.starts_with(':') => Edn::Keyword(tok[1..].to_string()),
            _ => {
                let t = tok.trim_end_matches('N').trim_end_matches('M');
                let numeric = t.starts_with(|c: char| c.is_ascii_digit())
                    || (t.len() > 1 && t.starts_with(['-', '+', '.']))
                        && t[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.');
                if !numeric {
                    return Ok(Edn::Symbol(tok.to_string()));
                }
                let t = t.strip_prefix('+').unwrap_or(t);
                let integer = t
                    .bytes()
                    .enumerate()
                    .all(|(k, b)| b.is_ascii_digit() || (k == 0 && b == b'-'));
                if integer {
                    // Exact, or refused naming the line: never rounded through a float.
                    check_number(t).map_err(|m| self.err(m))?;
                    let i: i128 = t
                        .parse()
                        .map_err(|_| self.err(format!("bad number {tok:?}")))?;
                    Edn::Int(i)
                } else if let Ok(f) = t.parse::<f64>() {
                    check_number(t).map_err(|m| self.err(m))?;
                    Edn::Float(f)
                } else {
                    return Err(self.err(format!("bad number {tok:?}")));
                }
            }
        })
    }
}

/// Parses EDN text into top-level values, each with the line it starts on.
pub fn parse_values(text: &str) -> Result<Vec<(usize, Edn)>, HistoryError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    while !p.at_end() {
        let line = p.line;
        let v = p.value(0)?;
        out.push((line, v));
    }
    Ok(out)
}

/// Parses a Jepsen EDN history into events.
pub fn parse(text: &str) -> Result<History, HistoryError> {
    let values = parse_values(text)?;
    // One top-level vector/list holding the maps, or maps at top level.
    let maps: Vec<(usize, Edn)> = match values.as_slice() {
        [(line, Edn::Seq(items))] => {
            // Line numbers inside one big vector: re-parse to locate each element's line.
            let mut p = Parser {
                s: text.as_bytes(),
                pos: 0,
                line: 1,
            };
            p.skip_ws();
            p.pos += 1; // the opening bracket
            let mut located = Vec::with_capacity(items.len());
            for item in items {
                p.skip_ws();
                located.push((p.line, item.clone()));
                p.value(1)?;
            }
            let _ = line;
            located
        }
        _ => values,
    };
    let untimed = maps.iter().any(|(_, m)| m.get("time").is_none());
    let mut h = History::default();
    for (pos, (line, m)) in maps.into_iter().enumerate() {
        h.push(line, event(&m, line, pos as u64, untimed)?);
    }
    Ok(h)
}

fn event(m: &Edn, line: usize, pos: u64, untimed: bool) -> Result<Event, HistoryError> {
    let bad = |msg: String| HistoryError::Syntax { line, message: msg };
    if !matches!(m, Edn::Map(_)) {
        return Err(bad(format!(
            "expected an op map {{:process .. :type ..}}, got {}",
            m.to_json()
        )));
    }
    let process = match m.get("process") {
        Some(&Edn::Int(i)) if i >= 0 && i <= u64::MAX as i128 => Process::Client(i as u64),
        Some(Edn::Keyword(k) | Edn::Symbol(k) | Edn::Str(k)) if k == "nemesis" => Process::Nemesis,
        Some(other) => return Err(bad(format!("bad :process {}", other.to_json()))),
        None => return Err(bad("missing :process".into())),
    };
    let kind = match m.get("type") {
        Some(Edn::Keyword(k) | Edn::Str(k)) => match k.as_str() {
            "invoke" => EventType::Invoke,
            "ok" => EventType::Ok,
            "fail" => EventType::Fail,
            "info" => EventType::Info,
            other => {
                return Err(bad(format!(
                    "unknown :type :{other} (expected :invoke, :ok, :fail or :info)"
                )))
            }
        },
        Some(other) => return Err(bad(format!("bad :type {}", other.to_json()))),
        None => return Err(bad("missing :type".into())),
    };
    let f = match m.get("f") {
        Some(Edn::Keyword(k) | Edn::Str(k) | Edn::Symbol(k)) => k.clone(),
        Some(other) => other.to_json().to_string(),
        None => return Err(bad("missing :f".into())),
    };
    let mut key = m.get("key").map(Edn::as_text);
    let mut value = m.get("value").cloned().unwrap_or(Edn::Nil);
    // A transaction's micro-op list is never an independent [key value] tuple.
    let txn = f == "txn";
    if key.is_none() && process != Process::Nemesis && !txn {
        if let Edn::Seq(items) = &value {
            if items.len() == 2 && (f != "cas" || matches!(items[1], Edn::Seq(_))) {
                key = Some(items[0].as_text());
                value = items[1].clone();
            }
        }
    }
    let int = |name: &str| -> Result<Option<u64>, HistoryError> {
        match m.get(name) {
            None | Some(Edn::Nil) => Ok(None),
            Some(&Edn::Int(i)) if i >= 0 && i <= u64::MAX as i128 => Ok(Some(i as u64)),
            Some(other) => Err(HistoryError::Syntax {
                line,
                message: format!("bad :{name} {}", other.to_json()),
            }),
        }
    };
    let index = int("index")?.unwrap_or(pos);
    let time = if untimed {
        pos
    } else {
        int("time")?.unwrap_or(pos)
    };
    let error = m.get("error").map(|e| match e {
        Edn::Keyword(s) | Edn::Str(s) => s.clone(),
        other => other.to_json().to_string(),
    });
    Ok(Event {
        index,
        time,
        process,
        kind,
        f,
        key,
        value: if txn {
            crate::txn::edn_value(&value).map_err(bad)?
        } else {
            value.to_json()
        },
        node: m.get("node").map(Edn::as_text),
        error,
    })
}
