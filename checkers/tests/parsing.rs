//! The parse API on malformed and unusual input: errors name the line, nothing panics, and
//! the importers agree with the writer.

use checkers::history::{parse_jsonl, Event, EventType, HistoryError, HistoryWriter, Process};
use checkers::import::{self, Format};

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
