//! The Vagrantfile is valid (`vagrant validate`), defines five machines n1..n5 on the
//! private network, and provisions them with the script CI's SSH test hosts run.

use std::path::Path;

#[test]
#[cfg_attr(missing_vagrant, ignore = "needs vagrant: apt-get install -y vagrant")]
fn vagrantfile_validates_and_uses_the_shared_provisioning_script() {
    let Some(vagrant) = testkit::require(testkit::Need::Vagrant) else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // No provider (VirtualBox, libvirt) on CI machines: validate the configuration only.
    let out = std::process::Command::new(vagrant)
        .args(["validate", "--ignore-provider"])
        .current_dir(&root)
        .env("VAGRANT_HOME", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vagrant validate failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in 1..=5 {
        assert!(
            text.contains(&format!("n{n}:")),
            "machine n{n} missing:\n{text}"
        );
    }
    let file = std::fs::read_to_string(root.join("Vagrantfile")).unwrap();
    assert!(file.contains("harness/scripts/provision.sh"));
    assert!(root.join("harness/scripts/provision.sh").is_file());
}
