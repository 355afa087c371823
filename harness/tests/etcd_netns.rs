//! etcd in network namespaces (root): each member on its own address, so etcd needs no
//! proxy; partitions are iptables drops, packet faults tc netem (or NFQUEUE), kill and pause
//! signals. Linearizable reads stay valid under all four, and the namespaces are gone after.

mod common;
mod etcd_common;

use common::results_dir;
use etcd_common::{applied_fault_kinds, etcd_run, read_json};

#[test]
#[cfg_attr(
    any(missing_etcd, missing_netns, missing_iptables, missing_tc),
    ignore = "needs etcd (apt-get install -y etcd-server), root, ip netns, iptables and tc"
)]
fn etcd_in_namespaces_stays_valid_under_partitions_kills_pauses_and_packet_faults() {
    use testkit::Need;
    let needs = [Need::Etcd, Need::Netns, Need::Iptables, Need::Tc];
    if !needs.into_iter().all(|n| testkit::require(n).is_some()) {
        return;
    }
    let dir = results_dir();
    let (code, text, run) = etcd_run(
        dir.path(),
        &[
            "--env",
            "netns",
            "--time-limit",
            "12",
            "--nemesis",
            "partition,kill,pause,packet",
            "--nemesis-interval",
            "1",
            "--seed",
            "13",
        ],
    );
    assert_eq!(code, 0, "etcd in netns must be valid:\n{text}");
    let kinds: Vec<String> = applied_fault_kinds(&run).into_iter().collect();
    assert_eq!(
        kinds,
        ["kill", "packet", "partition", "pause"],
        "every kind applied"
    );
    let cluster = read_json(&run.join("cluster.json"));
    assert_eq!(cluster["system"], "etcd");
    assert_eq!(cluster["env"], "netns");
    // Members advertised their namespace addresses: the logs say so, and nothing is left.
    for n in cluster["nodes"].as_array().unwrap() {
        let id = n["id"].as_str().unwrap();
        let peer = n["peer"].as_str().unwrap();
        assert!(peer.starts_with("198.18."), "{peer}");
        let log = std::fs::read_to_string(run.join(id).join("node.log")).unwrap();
        assert!(
            log.contains(&format!("http://{peer}")),
            "{id} advertises {peer}"
        );
        let host = n["host"].as_str().unwrap();
        let ns = host
            .split_whitespace()
            .find(|w| w.starts_with("faultline-"))
            .unwrap()
            .trim_end_matches(',');
        assert!(
            !std::path::Path::new("/run/netns").join(ns).exists(),
            "namespace {ns} left behind"
        );
    }
}
