//! The parse API on malformed and unusual input: errors name the line, nothing panics, the
//! importers agree with the writer, numbers are compared exactly or refused, and reading
//! stops at an overlong line.

use checkers::history::{parse_jsonl, Event, EventType, HistoryError, HistoryWriter, Process};
use checkers::import::{self, Format};
use checkers::linearizable::{check, CheckOptions, Verdict};
use checkers::model::ModelKind;

const W: &str = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":1}"#;

fn line_of(text: &str) -> usize {
    match import::parse(text, None).and_then(|h| h.operations()) {
        Ok(_) => panic!("{text:?} should be rejected"),
        Err(e) => e.line(),
    }
}

#[test]
fn malformed_jsonl_names_the_line() {
    assert_eq!(line_of(&format!("{W}\n{{oops\n")), 2);
    assert_eq!(
        line_of(&format!("{W}\n\n{}\n", W.replace("invoke", "nope"))),
        3
    );
    assert_eq!(line_of(&format!("{}\n", W.replace("invoke", "ok"))), 1);
    assert_eq!(line_of(&format!("{W}\n{W}\n")), 2); // second invoke while pending
    let truncated = format!("{W}\n{{\"index\":1,\"time\"");
    assert!(matches!(
        parse_jsonl(&truncated),
        Err(HistoryError::Truncated { line: 2, .. })
    ));
    assert_eq!(line_of("   \n"), 1);
}

#[test]
fn writer_output_reads_back() {
    let mut w = HistoryWriter::new(Vec::new());
    let ev = Event {
        index: 0,
        time: 5,
        process: Process::Nemesis,
        kind: EventType::Info,
        f: "partition-start".into(),
        key: None,
        value: serde_json::json!({"n1": ["n2"]}),
        node: None,
        error: None,
    };
    w.write(&ev).unwrap();
    let text = String::from_utf8(w.into_inner()).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(import::parse(&text, None).unwrap().events, vec![ev]);
}

#[test]
fn edn_forms() {
    let vector = r#"[{:process 0, :type :invoke, :f :write, :value 3}
 {:process 0, :type :ok, :f :write, :value 3}
 {:process 1 :type :invoke :f :read :value nil} {:process 1 :type :ok :f :read :value 3}]"#;
    let h = import::parse(vector, None).unwrap();
    assert_eq!(h.events.len(), 4);
    assert_eq!(h.lines, vec![1, 2, 3, 3]);
    assert_eq!(h.operations().unwrap().len(), 2);
    // Jepsen's independent form: [key value], cas as [key [old new]].
    let multi = "{:process 0, :type :invoke, :f :cas, :value [7 [1 2]]}\n{:process 0, :type :fail, :f :cas, :value [7 [1 2]]}\n({:process :nemesis :type :info :f :start :value \"x\"})";
    assert!(
        import::parse(multi, Some(Format::Edn)).is_err(),
        "a list among maps is not an op map"
    );
    let multi = "{:process 0, :type :invoke, :f :cas, :value [7 [1 2]]}\n{:process 0, :type :ok, :f :read, :value [7 1]}";
    let h = import::parse(multi, None).unwrap();
    assert_eq!(h.events[0].key.as_deref(), Some("7"));
    assert_eq!(h.events[0].value, serde_json::json!([1, 2]));
    // Malformed EDN names the line.
    let bad = "{:process 0, :type :invoke, :f :write, :value 3}\n{:process 0, :type :ok :f :write :value [3}";
    assert_eq!(line_of(bad), 2);
    assert_eq!(line_of("{:process 0, :type :weird, :f :write}"), 1);
}

#[test]
fn porcupine_logs_with_tabs_or_spaces() {
    let tabs = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - 2\t:fail\t:cas\t[3 0]\nINFO  jepsen.util - 4\t:invoke\t:write\t1\nINFO  jepsen.util - 4\t:info\t:write\t:timed-out\n";
    let spaces = tabs.replace('\t', "   ");
    for text in [tabs.to_string(), spaces] {
        assert_eq!(import::detect(&text), Some(Format::Porcupine));
        let ops = import::parse(&text, None).unwrap().operations().unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(
            ops[0].output,
            Some(serde_json::Value::Bool(false)),
            "a failed cas ran and mismatched"
        );
        assert_eq!(ops[1].ret, None, "info never returns");
    }
    assert_eq!(
        line_of("INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - x\t:ok\n"),
        2
    );
}

/// The op lines of a two-op history in each format: a write of `w`, then a read of `r`.
fn write_then_read(w: &str, r: &str) -> [(Format, String); 3] {
    let jsonl = format!(
        "{}\n{}\n{}\n{}\n",
        format_args!(
            r#"{{"index":0,"time":1,"process":0,"type":"invoke","f":"write","value":{w}}}"#
        ),
        format_args!(r#"{{"index":1,"time":2,"process":0,"type":"ok","f":"write","value":{w}}}"#),
        format_args!(
            r#"{{"index":2,"time":3,"process":1,"type":"invoke","f":"read","value":null}}"#
        ),
        format_args!(r#"{{"index":3,"time":4,"process":1,"type":"ok","f":"read","value":{r}}}"#),
    );
    let edn = format!(
        "{{:process 0 :type :invoke :f :write :value {w}}}\n{{:process 0 :type :ok :f :write :value {w}}}\n{{:process 1 :type :invoke :f :read :value nil}}\n{{:process 1 :type :ok :f :read :value {r}}}\n"
    );
    let log = format!(
        "INFO  jepsen.util - 0\t:invoke\t:write\t{w}\nINFO  jepsen.util - 0\t:ok\t:write\t{w}\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\t{r}\n"
    );
    [
        (Format::Jsonl, jsonl),
        (Format::Edn, edn),
        (Format::Porcupine, log),
    ]
}

fn verdict(text: &str, format: Format) -> Result<Verdict, String> {
    let ops = import::parse(text, Some(format))
        .and_then(|h| h.operations())
        .map_err(|e| e.to_string())?;
    let opts = CheckOptions {
        model: Some(ModelKind::Register),
        ..CheckOptions::default()
    };
    Ok(check(&ops, &opts).map_err(|e| e.to_string())?.verdict)
}

#[test]
fn integers_beyond_64_bits_are_refused_naming_the_line_never_rounded() {
    // Read as floats these two are equal, and the stale read passed as linearizable.
    for (format, text) in write_then_read("18446744073709551616", "18446744073709551617") {
        let err = verdict(&text, format).expect_err("refused");
        assert!(
            err.starts_with("line 1:") && err.contains("does not fit in 64 bits"),
            "{format:?}: {err}"
        );
    }
    // Within u64 (and i64 for EDN/logs) they are compared exactly.
    for (format, text) in write_then_read("18446744073709551615", "18446744073709551614") {
        assert_eq!(verdict(&text, format), Ok(Verdict::Illegal), "{format:?}");
    }
    for (format, text) in write_then_read("9223372036854775807", "9223372036854775807") {
        assert_eq!(
            verdict(&text, format),
            Ok(Verdict::Linearizable),
            "{format:?}"
        );
    }
}

#[test]
fn decimals_are_exact_or_refused() {
    // JSONL and EDN carry decimals (Porcupine's logs only integers).
    for (format, text) in write_then_read("1.5", "1.5").into_iter().take(2) {
        assert_eq!(
            verdict(&text, format),
            Ok(Verdict::Linearizable),
            "{format:?}"
        );
    }
    for (format, text) in write_then_read("0.1", "0.2").into_iter().take(2) {
        assert_eq!(verdict(&text, format), Ok(Verdict::Illegal), "{format:?}");
    }
    // One digit past what a float keeps: rounding would make the read match the write.
    for (format, text) in write_then_read("0.1", "0.10000000000000000001")
        .into_iter()
        .take(2)
    {
        let err = verdict(&text, format).expect_err("refused");
        assert!(
            err.starts_with("line 4:") && err.contains("exactly"),
            "{format:?}: {err}"
        );
    }
    let (_, log) = &write_then_read("1.5", "1.5")[2];
    assert!(verdict(log, Format::Porcupine)
        .unwrap_err()
        .starts_with("line 1:"));
}

#[test]
fn a_completion_before_its_invoke_is_refused_naming_both_lines() {
    let jsonl = format!(
        "{W}\n{}\n",
        W.replace(r#""time":1"#, r#""time":0"#)
            .replace("invoke", "ok")
            .replace(r#""index":0"#, r#""index":1"#)
    );
    let err = import::parse(&jsonl, None)
        .and_then(|h| h.operations())
        .unwrap_err();
    assert!(
        matches!(
            err,
            HistoryError::CompletionBeforeInvoke {
                line: 2,
                invoke_line: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("earlier than its invoke"), "{err}");
    let edn = "{:process 0 :type :invoke :f :write :value 1 :time 10}\n\n{:process 0 :type :info :f :write :value 1 :time 9}\n";
    assert_eq!(line_of(edn), 3);
}

#[test]
fn ops_a_model_cannot_read_name_their_line() {
    let opts = CheckOptions {
        model: Some(ModelKind::CasRegister),
        ..CheckOptions::default()
    };
    let cases = [
        // An unknown function, on line 3 (index 0 in the file's own numbering).
        (
            "{:process 1 :type :invoke :f :write :value 1}\n{:process 1 :type :ok :f :write :value 1}\n{:process 0 :type :invoke :f :frobnicate :value 1 :index 0}\n",
            3,
            "unknown function",
        ),
        // A cas whose value is not [expected, new].
        (
            "\n{:process 0 :type :invoke :f :cas :value 7}\n{:process 0 :type :ok :f :cas :value 7}\n",
            2,
            "cas needs [expected, new]",
        ),
    ];
    for (text, line, what) in cases {
        let ops = import::parse(text, None)
            .and_then(|h| h.operations())
            .expect("pairs");
        let err = check(&ops, &opts).expect_err("bad op");
        assert_eq!(err.line(), line, "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("line {line}:")) && msg.contains(what),
            "{msg}"
        );
        assert!(
            !msg.contains("index"),
            "names the line, not an index: {msg}"
        );
    }
}

#[test]
fn reading_stops_at_an_overlong_line_or_too_much_input() {
    use checkers::import::{read_text, ReadError, ReadLimits};
    let limits = ReadLimits {
        max_line: 1000,
        max_bytes: 1 << 20,
    };
    // No newline at all (like /dev/zero): refused on line 1 after max_line bytes, not read
    // to the end (the reader below never ends).
    let err = read_text(std::io::repeat(0), limits).unwrap_err();
    assert!(
        matches!(err, ReadError::LineTooLong { line: 1, max: 1000 }),
        "{err}"
    );
    let long = format!("{W}\n{W}\n{}\n", "x".repeat(1001));
    let err = read_text(long.as_bytes(), limits).unwrap_err();
    assert_eq!(err.line(), 3, "{err}");
    let lines = format!("{W}\n").repeat(100_000);
    let err = read_text(lines.as_bytes(), limits).unwrap_err();
    assert!(matches!(err, ReadError::TooLarge { .. }), "{err}");
    let err = read_text(&b"ok\n\xff\n"[..], limits).unwrap_err();
    assert!(matches!(err, ReadError::NotUtf8 { line: 2 }), "{err}");
    assert_eq!(read_text(W.as_bytes(), limits).unwrap(), W);
}
