//! Test-only support: one place that knows what the test suite may need from outside the
//! repository (the `../shared` corpus, libfaketime, chromium, root with network namespaces,
//! sshd, iptables, etcd, qemu), how to find it and how to get it.
//!
//! The fresh-clone rule: `cargo test --workspace` passes with nothing beside the repository.
//! A test that needs something missing is *skipped visibly*: each crate's `build.rs` calls
//! [`emit_build_cfgs`], which sets `cfg(missing_<need>)` for what is absent, and the test
//! carries `#[cfg_attr(missing_<need>, ignore = "needs ...")]`, so `cargo test` prints
//! `test x ... ignored, needs libfaketime: apt-get install -y faketime` without
//! `--nocapture`. Under `FAULTLINE_REQUIRE_ALL=1` (CI, after installing everything) no
//! `missing_*` cfg is ever set: the test runs, and its [`require`] call fails it with the
//! same reason instead of skipping.
//!
//! The probe runs at build time; the build script re-runs when the relevant environment
//! variables change, when the probed file appears or changes, and (for Debian packages) when
//! `/var/lib/dpkg/status` changes, i.e. after any `apt-get install`.

use std::path::{Path, PathBuf};

/// Something a test may need from outside the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The optional checker corpus (`$FAULTLINE_CORPUS`, default `../shared/data`).
    Corpus,
    /// libfaketime, for clock faults on local processes.
    Faketime,
    /// A headless chromium, for the report's browser tests.
    Chromium,
    /// Root and `ip netns`, for the network-namespace environment.
    Netns,
    /// iptables, for partitions in namespaces and on SSH hosts.
    Iptables,
    /// tc (iproute2), for packet delay and loss.
    Tc,
    /// OpenSSH's sshd, to run SSH hosts inside namespaces.
    Sshd,
    /// The etcd server binary.
    Etcd,
    /// qemu-system-x86_64 and debootstrap, for the VM tests.
    Qemu,
    /// Vagrant, to validate the Vagrantfile.
    Vagrant,
}

impl Need {
    /// Every need, in the order the build scripts report them.
    pub const ALL: [Need; 10] = [
        Need::Corpus,
        Need::Faketime,
        Need::Chromium,
        Need::Netns,
        Need::Iptables,
        Need::Tc,
        Need::Sshd,
        Need::Etcd,
        Need::Qemu,
        Need::Vagrant,
    ];

    /// The name used in `cfg(missing_<name>)`.
    pub fn cfg_name(self) -> &'static str {
        match self {
            Need::Corpus => "corpus",
            Need::Faketime => "faketime",
            Need::Chromium => "chromium",
            Need::Netns => "netns",
            Need::Iptables => "iptables",
            Need::Tc => "tc",
            Need::Sshd => "sshd",
            Need::Etcd => "etcd",
            Need::Qemu => "qemu",
            Need::Vagrant => "vagrant",
        }
    }

    /// What it is and how to get it, for skip and failure messages.
    pub fn how_to_get(self) -> &'static str {
        match self {
            Need::Corpus => {
                "the Porcupine corpus: set FAULTLINE_CORPUS=DIR or place it at ../shared/data \
                 beside the repository (rebuild it from github.com/anishathalye/porcupine test_data/)"
            }
            Need::Faketime => "libfaketime: apt-get install -y faketime",
            Need::Chromium => "chromium: apt-get install -y chromium",
            Need::Netns => "root and ip netns (iproute2): run as root, apt-get install -y iproute2",
            Need::Iptables => "iptables: apt-get install -y iptables",
            Need::Tc => "tc: apt-get install -y iproute2",
            Need::Sshd => "sshd: apt-get install -y openssh-server",
            Need::Etcd => "etcd: apt-get install -y etcd-server",
            Need::Qemu => "qemu and debootstrap: apt-get install -y qemu-system-x86 debootstrap",
            Need::Vagrant => "vagrant: apt-get install -y vagrant",
        }
    }

    /// Finds it: the path that satisfies the need, or `None`.
    pub fn probe(self) -> Option<PathBuf> {
        match self {
            Need::Corpus => {
                Some(corpus_dir()).filter(|d| d.join("porcupine/expected.tsv").is_file())
            }
            Need::Faketime => {
                env_path("FAULTLINE_FAKETIME_LIB").or_else(|| first_file(FAKETIME_PATHS))
            }
            Need::Chromium => env_path("FAULTLINE_CHROMIUM").or_else(|| {
                ["chromium", "chromium-browser", "google-chrome"]
                    .iter()
                    .find_map(|b| which(b))
            }),
            Need::Netns => which("ip").filter(|_| is_root()),
            Need::Iptables => which("iptables"),
            Need::Tc => which("tc"),
            Need::Sshd => which("sshd").or_else(|| first_file(&["/usr/sbin/sshd"])),
            Need::Etcd => env_path("FAULTLINE_ETCD").or_else(|| which("etcd")),
            Need::Qemu => which("qemu-system-x86_64").filter(|_| which("debootstrap").is_some()),
            Need::Vagrant => which("vagrant"),
        }
    }

    /// Environment variables that change what [`Need::probe`] finds.
    fn env_vars(self) -> &'static [&'static str] {
        match self {
            Need::Corpus => &["FAULTLINE_CORPUS"],
            Need::Faketime => &["FAULTLINE_FAKETIME_LIB"],
            Need::Chromium => &["FAULTLINE_CHROMIUM", "PATH"],
            Need::Etcd => &["FAULTLINE_ETCD", "PATH"],
            _ => &["PATH"],
        }
    }
}

/// Where Debian's `faketime` package (and common alternatives) put the library.
pub const FAKETIME_PATHS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// True when `FAULTLINE_REQUIRE_ALL=1`: every need must be met, nothing may skip.
pub fn require_all() -> bool {
    std::env::var("FAULTLINE_REQUIRE_ALL").as_deref() == Ok("1")
}

/// The repository root (this crate lives in `<root>/testkit`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The corpus directory: `$FAULTLINE_CORPUS`, else `../shared/data` beside the repository.
pub fn corpus_dir() -> PathBuf {
    match std::env::var_os("FAULTLINE_CORPUS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join("../shared/data"),
    }
}

/// For a test at run time: the path that satisfies `need`, or — when it is missing — `None`
/// after a `SKIPPED` line on stderr, or a panic naming what is missing and how to get it
/// under `FAULTLINE_REQUIRE_ALL=1`.
pub fn require(need: Need) -> Option<PathBuf> {
    if let Some(p) = need.probe() {
        return Some(p);
    }
    if require_all() {
        panic!(
            "FAULTLINE_REQUIRE_ALL=1 but this test needs {}",
            need.how_to_get()
        );
    }
    eprintln!("SKIPPED: this test needs {}", need.how_to_get());
    None
}

/// For a crate's `build.rs`: sets `cfg(missing_<need>)` for every need in `needs` that is
/// absent (never under `FAULTLINE_REQUIRE_ALL=1`), declares every `missing_*` cfg for
/// `check-cfg`, and tells cargo when to probe again.
pub fn emit_build_cfgs(needs: &[Need]) {
    println!("cargo:rerun-if-env-changed=FAULTLINE_REQUIRE_ALL");
    for n in Need::ALL {
        println!("cargo::rustc-check-cfg=cfg(missing_{})", n.cfg_name());
    }
    let dpkg = Path::new("/var/lib/dpkg/status");
    if dpkg.is_file() {
        println!("cargo:rerun-if-changed={}", dpkg.display());
    }
    let strict = require_all();
    for &n in needs {
        for v in n.env_vars() {
            println!("cargo:rerun-if-env-changed={v}");
        }
        match n.probe() {
            Some(p) => println!("cargo:rerun-if-changed={}", p.display()),
            None => {
                if n == Need::Corpus {
                    // Appears without a package install: watch the path itself (cargo
                    // re-probes on every build while it is missing, which is cheap here).
                    println!("cargo:rerun-if-changed={}", corpus_dir().display());
                }
                if !strict {
                    println!("cargo:rustc-cfg=missing_{}", n.cfg_name());
                }
            }
        }
    }
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

fn first_file(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Finds an executable on `PATH` (and in the sbin directories, which a non-login root shell
/// may lack).
pub fn which(bin: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// True when this process runs as root (the owner of `/proc/self` is our effective uid).
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_need_has_a_cfg_name_and_a_hint() {
        for n in Need::ALL {
            assert!(!n.cfg_name().is_empty());
            assert!(
                n.how_to_get().contains(':'),
                "{n:?} hint says how to get it"
            );
        }
    }

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("no-such-binary-faultline").is_none());
    }
}
