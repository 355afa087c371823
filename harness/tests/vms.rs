//! `--env ssh` on real virtual machines: `harness/scripts/vms.sh` boots Debian 12 VMs under
//! qemu from an image provisioned by `harness/scripts/provision.sh` (what the Vagrantfile
//! runs), and the same self-validation as the sshd-in-namespace hosts runs against them —
//! safe Raft valid under every fault kind, `--read unsafe-local` caught under partitions —
//! plus what only machines with clocks of their own can show: `--read
//! unsafe-lease-wallclock` caught while `faultline clock` moves the VMs' real system clocks
//! (no libfaketime anywhere). Also: `vms.sh up` interrupted by SIGINT leaves no VM, network
//! or overlay behind, and `down` stops everything `up` started.
//!
//! Phase timings go to stderr (`--nocapture` shows them): they are the "what to expect"
//! figures of the README.
//!
//! Not part of `cargo test --workspace`: the tests are `#[ignore]`d with the reason, because
//! emulated VMs on the shared 2-core machine take far longer than CI allows (image build,
//! minutes of boot, every run several times its time limit; figures in the README's Vagrant
//! section). Run them with
//!
//!     cargo test --release -p harness --test vms -- --ignored --nocapture
//!
//! (`--release`: the binary uploaded to the VMs is the one under test, and a debug kvnode
//! under software emulation is too slow to elect a leader reliably). Without qemu,
//! debootstrap or root they skip with a SKIPPED line (fail under FAULTLINE_REQUIRE_ALL=1).

mod common;
mod isolations;

use common::processes_mentioning;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// VMs are heavy (one emulated CPU each): one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn have_everything() -> bool {
    [testkit::Need::Qemu, testkit::Need::Netns]
        .into_iter()
        .all(|n| testkit::require(n).is_some())
}

fn script() -> PathBuf {
    testkit::repo_root().join("harness/scripts/vms.sh")
}

/// `vms.sh` with its state in `state`.
fn vms_sh(state: &Path) -> Command {
    let mut c = Command::new("bash");
    c.arg(script()).env("FAULTLINE_VMS_DIR", state);
    c
}

/// A value of the `key=value` file `up` writes before it creates anything.
fn state_value(state: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(state.join("vms.env")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or("")
        .to_string()
}

fn qemu_pids(state: &Path) -> Vec<u32> {
    (1..=50)
        .filter_map(|k| std::fs::read_to_string(state.join(format!("n{k}.pid"))).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn namespace_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

fn link_exists(link: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", link])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What `up` created, remembered so that its absence can be checked after `down`.
struct Footprint {
    state: PathBuf,
    pids: Vec<u32>,
    ns: String,
    link: String,
}

impl Footprint {
    fn of(state: &Path) -> Footprint {
        Footprint {
            state: state.to_path_buf(),
            pids: qemu_pids(state),
            ns: state_value(state, "ns"),
            link: state_value(state, "link"),
        }
    }

    fn assert_gone(&self) {
        assert!(!self.ns.is_empty() && !self.link.is_empty() && !self.pids.is_empty());
        let alive: Vec<u32> = self
            .pids
            .iter()
            .copied()
            .filter(|p| Path::new(&format!("/proc/{p}")).exists())
            .collect();
        assert!(alive.is_empty(), "qemu processes left: {alive:?}");
        let mentioning = processes_mentioning(&self.state.display().to_string());
        assert!(
            mentioning.is_empty(),
            "processes using {} left: {mentioning:?}",
            self.state.display()
        );
        assert!(!namespace_exists(&self.ns), "namespace {} left", self.ns);
        assert!(!link_exists(&self.link), "veth {} left", self.link);
        assert!(
            !self.state.exists(),
            "state directory {} (overlays, consoles, keys) left",
            self.state.display()
        );
    }
}

/// Running VMs; dropped = `vms.sh down`.
struct Vms {
    _dir: tempfile::TempDir,
    state: PathBuf,
    hosts_file: PathBuf,
    addresses: Vec<String>,
}

impl Vms {
    fn up(n: usize) -> Vms {
        let dir = tempfile::Builder::new()
            .prefix("faultline-vms-")
            .tempdir()
            .unwrap();
        let state = dir.path().join("vms");
        let t = Instant::now();
        let out = vms_sh(&state)
            .args(["up", &n.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        // Built before any assertion, so that a failing one still runs `down` (Drop).
        let mut vms = Vms {
            _dir: dir,
            hosts_file: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
            addresses: Vec::new(),
            state,
        };
        assert!(out.status.success(), "vms.sh up {n} failed");
        eprintln!(
            "timing: vms.sh up {n}: {:.0} s (image build or cache + boot)",
            t.elapsed().as_secs_f64()
        );
        let text = std::fs::read_to_string(&vms.hosts_file).unwrap();
        assert!(text.contains("clock = \"system\""), "{text}");
        let addresses = text
            .lines()
            .filter_map(|l| l.strip_prefix("address = \""))
            .map(|a| a.trim_end_matches('"').to_string())
            .collect::<Vec<_>>();
        assert_eq!(addresses.len(), n, "{text}");
        vms.addresses = addresses;
        vms
    }

    /// Runs a shell command on VM `k` (0-based) as the login user, over OpenSSH with the
    /// key and known_hosts `up` wrote (unknown host keys refused).
    fn ssh(&self, k: usize, cmd: &str) -> String {
        let out = Command::new("ssh")
            .arg("-n")
            .arg("-i")
            .arg(self.state.join("id_ed25519"))
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.state.join("known_hosts").display()
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg(format!("faultline@{}", self.addresses[k]))
            .arg(cmd)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh n{} {cmd:?}: {}",
            k + 1,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// VM `k`'s clock minus this machine's, in seconds (the SSH round trip, well under a
    /// second, is halved away).
    fn clock_skew(&self, k: usize) -> f64 {
        let before = now_s();
        let theirs: f64 = self.ssh(k, "date +%s.%N").trim().parse().unwrap();
        let after = now_s();
        theirs - (before + after) / 2.0
    }

    /// Nothing of a run on the VMs: no node, run directory, iptables chain, qdisc or
    /// clock offset (the uploaded binary stays, by design).
    fn assert_clean(&self) {
        for k in 0..self.addresses.len() {
            let left = self.ssh(
                k,
                "ls /tmp/faultline/*/ 2>/dev/null | grep -v '^bin$' | grep -v '^/' | grep -v '^$'; \
                 for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done \
                   | grep 'faultline[ ]kvnode'; \
                 rules=$(sudo -n /usr/sbin/iptables -S) || echo 'iptables -S failed'; \
                 echo \"$rules\" | grep FAULTLINE; \
                 qdiscs=$(/usr/sbin/tc qdisc show) || echo 'tc failed'; \
                 echo \"$qdiscs\" | grep -w netem; \
                 cat /run/faultline-clock-offset-ms 2>/dev/null; true",
            );
            assert!(left.trim().is_empty(), "left on n{}: {left}", k + 1);
        }
    }

    fn footprint(&self) -> Footprint {
        Footprint::of(&self.state)
    }
}

impl Drop for Vms {
    fn drop(&mut self) {
        let _ = vms_sh(&self.state).arg("down").status();
    }
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// What emulated VMs on a busy machine need on top of a scenario: fewer clients, client
/// timeouts of seconds, not hundreds of milliseconds.
const SLOW_HOSTS: &[&str] = &[
    "--concurrency",
    "20",
    "--op-timeout-ms",
    "3000",
    "--check-timeout",
    "120",
];

/// kvnode's side of the same: 50 ms ticks, so elections time out after 1.5-3 s instead of
/// 0.3-0.6 s (with 10 ms ticks, emulated nodes on a loaded machine never kept a leader).
const SLOW_TICKS: &str = "--tick-ms 50";

/// The ops line's (invoked, ok) counts, from `ops: N invoked, M ok, ...`.
fn op_counts(text: &str) -> (u64, u64) {
    let line = text.lines().find(|l| l.starts_with("ops:")).unwrap_or("");
    let num = |word: &str| {
        let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
        words
            .windows(2)
            .find(|w| w[1] == word)
            .and_then(|w| w[0].parse().ok())
            .unwrap_or(0)
    };
    (num("invoked"), num("ok"))
}

/// One `faultline test --env ssh` run on the VMs: (exit code, output, run directory).
fn vm_run(vms: &Vms, what: &str, args: &[&str]) -> (i32, String, PathBuf, tempfile::TempDir) {
    let t = Instant::now();
    let (code, text, run, dir) = common::run_ssh_test(&vms.hosts_file, args);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let limit: f64 = args
        .iter()
        .position(|a| *a == "--time-limit")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let (invoked, ok) = op_counts(&text);
    eprintln!(
        "timing: {what}: exit {code}, {:.0} s wall; {} | {invoked} ops invoked, {ok} ok ({:.1} ok/s of the time limit) | {} | {}",
        t.elapsed().as_secs_f64(),
        line("verdict"),
        ok as f64 / limit,
        line("faultline: 3 nodes up"),
        line("latency"),
    );
    (code, text, run, dir)
}

/// Runs `--kvnode-args read` under `nemesis` (partitions isolating the leader, every
/// `interval` s on average) with seeds 1, 2, ... until the checker catches it; fails if none
/// of `seeds` does. Prints what each run's leader isolations did (who was cut off, whether
/// it led, its clock): the reason a run caught the bug or did not.
fn caught_within(vms: &Vms, read: &str, nemesis: &str, interval: &str, seeds: u64) {
    let kvnode_args = format!("{read} {SLOW_TICKS}");
    let mut codes = Vec::new();
    for seed in 1..=seeds {
        let seed = seed.to_string();
        let args = [
            &[
                "--time-limit",
                "30",
                "--workload",
                "kv",
                "--nemesis",
                nemesis,
                "--partition-shapes",
                "leader",
                "--nemesis-interval",
                interval,
                "--kvnode-args",
                &kvnode_args,
                "--seed",
                &seed,
            ],
            SLOW_HOSTS,
        ]
        .concat();
        let (code, text, run, _dir) =
            vm_run(vms, &format!("{read}, {nemesis}, seed {seed}"), &args);
        assert!((0..=2).contains(&code), "harness failed:\n{text}");
        let isolations = isolations::isolations(&run);
        let hits = isolations
            .iter()
            .filter(|i| i.leader_before.as_deref() == Some(i.isolated.as_str()))
            .count();
        let (answered, polled) = isolations::status_answers(&run);
        eprintln!(
            "isolations: {hits} of {} cut off the leader (node answers in the recorded status changes: {answered} of {polled}): {}",
            isolations.len(),
            isolations::describe(&isolations)
        );
        codes.push(code);
        if code == 1 {
            eprintln!("detection: {read} caught in try {seed} of at most {seeds}");
            return;
        }
    }
    panic!("{read} not caught on VMs under {nemesis} in {seeds} seeds: exits {codes:?}");
}

#[test]
#[ignore = "boots qemu VMs for many minutes: cargo test --release -p harness --test vms -- --ignored"]
fn interrupted_up_leaves_no_vm_network_or_overlay() {
    if !have_everything() {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("vms");
    let mut child = vms_sh(&state)
        .args(["up", "2"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The image may be built first (minutes, once per provision.sh change).
    let deadline = Instant::now() + Duration::from_secs(1200);
    while qemu_pids(&state).len() < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "vms.sh up exited before starting its VMs"
        );
        assert!(Instant::now() < deadline, "vms.sh up started no VMs");
        std::thread::sleep(Duration::from_millis(100));
    }
    let footprint = Footprint::of(&state);
    assert!(namespace_exists(&footprint.ns) && link_exists(&footprint.link));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "vms.sh up ignored SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130));
    footprint.assert_gone();
}

#[test]
#[ignore = "boots qemu VMs for many minutes: cargo test --release -p harness --test vms -- --ignored"]
fn raft_on_three_vms_with_their_own_clocks() {
    if !have_everything() {
        return;
    }
    let _g = serial();
    let t0 = Instant::now();
    let vms = Vms::up(3);
    let footprint = vms.footprint();

    // Safe Raft, every fault kind, the clock faults on the VMs' system clocks.
    let (code, text, run, _dir) = vm_run(
        &vms,
        "safe raft, nemesis all",
        &[
            &[
                "--engine",
                "raft",
                "--time-limit",
                "20",
                "--nemesis",
                "all",
                "--nemesis-interval",
                "3",
                "--kvnode-args",
                SLOW_TICKS,
                "--seed",
                "11",
            ],
            SLOW_HOSTS,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "safe Raft on VMs must be valid:\n{text}");
    // A valid verdict on a cluster that never answered would prove nothing.
    let (_, ok) = op_counts(&text);
    assert!(
        ok >= 20,
        "safe Raft on VMs: only {ok} ops succeeded:\n{text}"
    );
    common::assert_every_fault_kind_applied(&run, "safe Raft on VMs");
    vms.assert_clean();

    // The mechanism itself: `faultline clock` (uploaded by the run) moves one VM's own
    // clock and nothing else; reset brings it back.
    let skew0 = vms.clock_skew(0);
    vms.ssh(
        0,
        "sudo -n /tmp/faultline/n1/bin/faultline clock offset --ms -30000",
    );
    let (moved, other) = (vms.clock_skew(0), vms.clock_skew(1));
    vms.ssh(0, "sudo -n /tmp/faultline/n1/bin/faultline clock reset");
    let back = vms.clock_skew(0);
    eprintln!("clocks: n1 {skew0:+.2} s, offset -30 s -> {moved:+.2} s (n2 {other:+.2} s), reset -> {back:+.2} s");
    assert!(
        (moved - skew0 + 30.0).abs() < 2.0,
        "n1's clock did not move by -30 s: {skew0} -> {moved}"
    );
    assert!(other.abs() < 5.0, "n2's clock moved with n1's: {other}");
    assert!(
        (back - skew0).abs() < 2.0,
        "n1's clock was not reset: {skew0} -> {back}"
    );

    // The unsafe wall-clock lease: caught under real clock jumps.
    // Partitions of 2.5-7.5 s: a new leader needs 1.5-3 s (50 ms ticks) plus the VMs' delays
    // before the deposed one's stale reads can show.
    caught_within(
        &vms,
        "--read unsafe-lease-wallclock",
        "partition,clock",
        "5",
        3,
    );
    vms.assert_clean();

    // Stale reads from a deposed leader: caught under partitions.
    caught_within(&vms, "--read unsafe-local", "partition", "3", 3);
    vms.assert_clean();

    let t = Instant::now();
    drop(vms);
    eprintln!("timing: vms.sh down: {:.1} s", t.elapsed().as_secs_f64());
    footprint.assert_gone();
    eprintln!("timing: whole test: {:.0} s", t0.elapsed().as_secs_f64());
}
