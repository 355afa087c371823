//! Probes what this crate's tests need from outside the repository, so a missing piece
//! shows as an ignored test with its reason (see the `testkit` crate).

fn main() {
    use testkit::Need;
    testkit::emit_build_cfgs(&[
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
    ]);
}
