//! `--env netns` for real (root): every node in its own network namespace on a bridge,
//! partitions cut with iptables, packet faults with tc netem, clock faults with libfaketime.
//!
//! - self-validation: safe Raft and safe Multi-Paxos stay linearizable under every fault
//!   kind (and results.json shows each kind applied); `--read unsafe-local` is caught;
//! - an asymmetric grudge is one-way at the packet level;
//! - nothing is left (namespaces, veths, registry records, processes) after a normal run,
//!   after SIGINT at random moments, and — with `faultline env clean` — after SIGKILL.
//!
//! Runs are serialized (two cores).

mod common;

use common::{faultline, results_dir, run_dir};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn have_everything() -> bool {
    [
        testkit::Need::Netns,
        testkit::Need::Iptables,
        testkit::Need::Tc,
        testkit::Need::Faketime,
    ]
    .into_iter()
    .all(|n| testkit::require(n).is_some())
}

/// Namespaces and root links of faultline runs that exist right now.
fn leftovers(tag_filter: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(o) = Command::new("ip").args(["netns", "list"]).output() {
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let name = l.split_whitespace().next().unwrap_or("");
            if name.starts_with("faultline-") && tag_filter(name) {
                out.push(format!("netns {name}"));
            }
        }
    }
    if let Ok(o) = Command::new("ip").args(["-o", "link"]).output() {
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let name = l.split(':').nth(1).unwrap_or("").trim();
            let name = name.split('@').next().unwrap_or("");
            if name.starts_with("fl") && tag_filter(name) {
                out.push(format!("link {name}"));
            }
        }
    }
    out
}

/// Tags of the runs this machine's registry knows.
fn registry_tags() -> Vec<String> {
    std::fs::read_dir("/run/faultline")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".json").map(String::from)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The tag of a netns run, from its cluster.json node descriptions.
fn run_tag(run: &Path) -> Option<String> {
    let text = std::fs::read_to_string(run.join("cluster.json")).ok()?;
    let start = text.find("netns faultline-")? + "netns faultline-".len();
    Some(text[start..].split('-').next()?.to_string())
}

fn netns_run(args: &[&str]) -> (i32, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = results_dir();
    let out = faultline()
        .args([
            "test",
            "--env",
            "netns",
            "--nodes",
            "3",
            "--no-report",
            "--results",
        ])
        .arg(dir.path())
        .args(args)
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let run = run_dir(dir.path());
    (code, text, run, dir)
}

fn assert_clean_after(run: &Path) {
    let tag = run_tag(run).expect("cluster.json names the run's namespaces");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = leftovers(&|n| n.contains(&tag));
        let registered = registry_tags().contains(&tag);
        let procs = common::processes_mentioning(&run.display().to_string());
        if left.is_empty() && !registered && procs.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind by run {tag}: {left:?}, registered {registered}, pids {procs:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[cfg_attr(
    any(missing_netns, missing_iptables, missing_tc, missing_faketime),
    ignore = "needs root, ip netns, iptables, tc and libfaketime"
)]
fn safe_raft_and_multipaxos_pass_with_every_fault_kind() {
    if !have_everything() {
        return;
    }
    let _g = serial();
    for engine in ["raft", "multipaxos"] {
        let (code, text, run, _dir) = netns_run(&[
            "--engine",
            engine,
            "--time-limit",
            "12",
            "--nemesis",
            "all",
            "--nemesis-interval",
            "1",
            "--seed",
            "11",
        ]);
        assert_eq!(code, 0, "safe {engine} in netns must be valid:\n{text}");
        let kinds = common::fault_kinds(&run);
        assert_eq!(
            kinds,
            ["clock", "kill", "packet", "partition", "pause"],
            "every fault kind applied ({engine})"
        );
        let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
        assert!(
            !history.contains("-failed\""),
            "a fault failed to apply ({engine}): {}",
            history
                .lines()
                .find(|l| l.contains("-failed\""))
                .unwrap_or("")
        );
        assert_clean_after(&run);
    }
}

#[test]
#[cfg_attr(
    any(missing_netns, missing_iptables, missing_tc, missing_faketime),
    ignore = "needs root, ip netns, iptables, tc and libfaketime"
)]
fn unsafe_local_reads_are_caught_in_netns() {
    if !have_everything() {
        return;
    }
    let _g = serial();
    let mut codes = Vec::new();
    for seed in 1..=3 {
        let seed = seed.to_string();
        let mut args = common::STALE_READ_SCENARIO.to_vec();
        args.extend(["--seed", &seed]);
        let (code, text, run, _dir) = netns_run(&args);
        assert!((0..=2).contains(&code), "harness failed:\n{text}");
        assert_clean_after(&run);
        codes.push(code);
        if code == 1 {
            return;
        }
    }
    panic!("--read unsafe-local was not caught in netns in 3 seeds: exits {codes:?}");
}

/// Moves this thread into network namespace `ns` (sockets it creates live there).
fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
}

/// Sends one UDP datagram from namespace `from` to `to_ip` and reports whether it arrived.
fn udp_arrives(from: &str, to: &str, to_ip: std::net::Ipv4Addr) -> bool {
    let (to, from) = (to.to_string(), from.to_string());
    let receiver = std::thread::spawn(move || {
        enter(&to);
        let s = std::net::UdpSocket::bind((to_ip, 9999)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        let mut buf = [0u8; 16];
        s.recv_from(&mut buf).is_ok()
    });
    std::thread::sleep(Duration::from_millis(100));
    std::thread::spawn(move || {
        enter(&from);
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        for _ in 0..3 {
            let _ = s.send_to(b"probe", (to_ip, 9999));
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .join()
    .unwrap();
    receiver.join().unwrap()
}

#[test]
#[cfg_attr(
    any(missing_netns, missing_iptables),
    ignore = "needs root, ip netns and iptables"
)]
fn an_asymmetric_grudge_drops_one_direction_only() {
    if testkit::require(testkit::Need::Netns).is_none()
        || testkit::require(testkit::Need::Iptables).is_none()
    {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    let environment = harness::env::netns::build(
        &ids,
        dir.path(),
        None,
        env!("CARGO_BIN_EXE_faultline").as_ref(),
    )
    .unwrap();
    let hosts = environment.env.hosts().to_vec();
    let ns = |k: usize| {
        hosts[k]
            .describe
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_end_matches(',')
            .to_string()
    };
    let ip = |k: usize| match hosts[k].peer_listen.ip() {
        std::net::IpAddr::V4(a) => a,
        _ => unreachable!(),
    };
    assert!(udp_arrives(&ns(1), &ns(0), ip(0)), "before the partition");
    // n1 drops traffic from n2; n2 still hears n1.
    let mut g = nemesis::Grudge::new();
    g.entry("n1".into()).or_default().insert("n2".into());
    environment.net.partition(&g).unwrap();
    assert!(
        !udp_arrives(&ns(1), &ns(0), ip(0)),
        "n2 -> n1 must be dropped"
    );
    assert!(
        udp_arrives(&ns(0), &ns(1), ip(1)),
        "n1 -> n2 must still arrive"
    );
    assert!(
        udp_arrives(&ns(2), &ns(0), ip(0)),
        "n3 -> n1 is not in the grudge"
    );
    environment.net.heal().unwrap();
    assert!(udp_arrives(&ns(1), &ns(0), ip(0)), "healed");
    let tag = ns(0).split('-').nth(1).unwrap().to_string();
    environment.env.teardown();
    drop(environment);
    assert!(leftovers(&|n| n.contains(&tag)).is_empty());
}

/// Starts a netns run in the background with output discarded.
fn spawn_run(dir: &Path, seed: u64) -> std::process::Child {
    faultline()
        .args([
            "test",
            "--env",
            "netns",
            "--nodes",
            "3",
            "--no-report",
            "--time-limit",
            "20",
        ])
        .args(["--nemesis", "all", "--nemesis-interval", "0.5", "--seed"])
        .arg(seed.to_string())
        .arg("--results")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the run's cluster.json exists (its namespaces are up), bounded.
fn wait_for_cluster(dir: &Path) -> Option<std::path::PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(run) = std::fs::canonicalize(dir.join("latest")) {
            if run.join("cluster.json").exists() {
                return Some(run);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
#[cfg_attr(
    any(missing_netns, missing_iptables, missing_tc, missing_faketime),
    ignore = "needs root, ip netns, iptables, tc and libfaketime"
)]
fn sigint_at_random_moments_leaves_nothing() {
    if !have_everything() {
        return;
    }
    let _g = serial();
    // Seeded "random" moments: during start-up, early faults, mid-run.
    for (seed, delay_ms) in [(1u64, 150u64), (2, 1700), (3, 4300)] {
        let dir = results_dir();
        let mut child = spawn_run(dir.path(), seed);
        std::thread::sleep(Duration::from_millis(delay_ms));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "no exit after SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(255), "SIGINT after {delay_ms} ms");
        if let Ok(run) = std::fs::canonicalize(dir.path().join("latest")) {
            if run.join("cluster.json").exists() {
                assert_clean_after(&run);
            }
        }
        assert!(
            common::processes_mentioning(&dir.path().display().to_string()).is_empty(),
            "processes left after SIGINT at {delay_ms} ms"
        );
    }
}

#[test]
#[cfg_attr(
    any(missing_netns, missing_iptables, missing_tc, missing_faketime),
    ignore = "needs root, ip netns, iptables, tc and libfaketime"
)]
fn after_sigkill_env_clean_removes_everything() {
    if !have_everything() {
        return;
    }
    let _g = serial();
    let dir = results_dir();
    let mut child = spawn_run(dir.path(), 9);
    let run = wait_for_cluster(dir.path()).expect("the run started");
    let tag = run_tag(&run).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !leftovers(&|n| n.contains(&tag)).is_empty(),
        "a SIGKILLed run leaves its namespaces (or this test proves nothing)"
    );
    let out = faultline().args(["env", "clean"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_clean_after(&run);
}

/// Milliseconds a UDP datagram takes from `from` to `to` (None: lost), measured on one clock.
fn udp_latency(from: &str, to: &str, to_ip: std::net::Ipv4Addr) -> Option<u128> {
    let (to, from) = (to.to_string(), from.to_string());
    let start = Instant::now();
    let receiver = std::thread::spawn(move || {
        enter(&to);
        let s = std::net::UdpSocket::bind((to_ip, 9998)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut buf = [0u8; 16];
        s.recv_from(&mut buf).ok().map(|_| Instant::now())
    });
    std::thread::sleep(Duration::from_millis(100));
    let sent = std::thread::spawn(move || {
        enter(&from);
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let t = Instant::now();
        let _ = s.send_to(b"probe", (to_ip, 9998));
        t
    })
    .join()
    .unwrap();
    let got = receiver.join().unwrap()?;
    let _ = start;
    Some(got.duration_since(sent).as_millis())
}

#[test]
#[cfg_attr(
    any(missing_netns, missing_iptables, missing_tc),
    ignore = "needs root, ip netns, iptables and tc"
)]
fn packet_faults_delay_and_drop_real_packets() {
    if testkit::require(testkit::Need::Netns).is_none()
        || testkit::require(testkit::Need::Iptables).is_none()
    {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (1..=2).map(|i| format!("n{i}")).collect();
    let environment = harness::env::netns::build(
        &ids,
        dir.path(),
        None,
        env!("CARGO_BIN_EXE_faultline").as_ref(),
    )
    .unwrap();
    let hosts = environment.env.hosts().to_vec();
    let ns = |k: usize| {
        hosts[k]
            .describe
            .split_whitespace()
            .nth(2)
            .unwrap()
            .trim_end_matches(',')
            .to_string()
    };
    let ip = |k: usize| match hosts[k].peer_listen.ip() {
        std::net::IpAddr::V4(a) => a,
        _ => unreachable!(),
    };
    let before = udp_latency(&ns(0), &ns(1), ip(1)).expect("arrives without faults");
    assert!(before < 50, "{before} ms without a fault");
    environment.net.packet(&[0], 150, 0.0).unwrap();
    let delayed = udp_latency(&ns(0), &ns(1), ip(1)).expect("a delayed packet still arrives");
    assert!(
        (140..1000).contains(&delayed),
        "a 150 ms delay on n1's egress took {delayed} ms"
    );
    // The other direction is not n1's egress: undelayed.
    let back = udp_latency(&ns(1), &ns(0), ip(0)).expect("arrives");
    assert!(back < 100, "n2 -> n1 took {back} ms");
    environment.net.packet(&[0], 0, 1.0).unwrap();
    assert_eq!(
        udp_latency(&ns(0), &ns(1), ip(1)),
        None,
        "100% loss drops the packet"
    );
    environment.net.clear_packet().unwrap();
    let after = udp_latency(&ns(0), &ns(1), ip(1)).expect("cleared");
    assert!(after < 50, "{after} ms after clearing");
    environment.net.teardown();
    environment.env.teardown();
}
