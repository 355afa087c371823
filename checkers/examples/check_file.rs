//! Times one check of one file: `cargo run --release -p checkers --example check_file -- FILE
//! [MODEL] [plain|compositional|partitioned] [TIMEOUT_S]`. A quick probe next to the bench.

use checkers::linearizable::{check, CheckOptions, Strategy};
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&a[1]).expect("readable file");
    let ops = checkers::import::parse(&text, None)
        .expect("parses")
        .operations()
        .expect("pairs");
    let mode = a.get(3).map(String::as_str).unwrap_or("partitioned");
    let opts = CheckOptions {
        model: a.get(2).map(|m| m.parse().expect("model")),
        partition: mode == "partitioned",
        strategy: if mode == "plain" {
            Strategy::Plain
        } else {
            Strategy::Compositional
        },
        timeout: Some(Duration::from_secs_f64(
            a.get(4).map_or(60.0, |t| t.parse().expect("seconds")),
        )),
        ..CheckOptions::default()
    };
    let t = Instant::now();
    let r = check(&ops, &opts).expect("checks");
    println!(
        "{} in {:.1} ms",
        r.verdict.name(),
        t.elapsed().as_secs_f64() * 1e3
    );
    for p in &r.partitions {
        println!(
            "  {:?} {} {:.1} ms ({} ops)",
            p.key,
            p.verdict.name(),
            p.elapsed_ms,
            p.ops
        );
    }
}
