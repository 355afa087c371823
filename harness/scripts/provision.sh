#!/bin/sh
# Provisions a faultline test host: the Vagrant VMs (Vagrantfile), the VM image
# (harness/scripts/vms.sh) and the machine that hosts the sshd-in-namespace test hosts in CI
# all run this same script, so CI exercises what the VMs run.
#
#   provision.sh [--user NAME] [--authorized-key FILE.pub]
#
# Installs what the harness uses on a host (iptables, iproute2 for tc and ip, faketime, sudo,
# openssh-server), creates the login user (default `faultline`) with passwordless sudo,
# authorizes FILE.pub for it, and stops time synchronisation (clock faults move the system
# clock; NTP would quietly move it back). Idempotent; needs root.
set -eu

user=faultline
key=""
while [ $# -gt 0 ]; do
    case "$1" in
        --user) user="$2"; shift 2 ;;
        --authorized-key) key="$2"; shift 2 ;;
        *) echo "provision.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "provision.sh: run as root" >&2
    exit 1
fi

missing=""
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || missing="$missing iptables"
command -v tc >/dev/null 2>&1 || [ -x /usr/sbin/tc ] || [ -x /sbin/tc ] || missing="$missing iproute2"
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 ] || missing="$missing faketime"
command -v sudo >/dev/null 2>&1 || missing="$missing sudo"
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v sha256sum >/dev/null 2>&1 || missing="$missing coreutils"
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing
fi

if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/sh "$user"
fi
# useradd leaves the account locked ("!"), and sshd refuses locked accounts even for keys;
# "*" means: no password can log in, keys can.
if getent shadow "$user" | cut -d: -f2 | grep -q '^!'; then
    usermod -p '*' "$user"
fi
echo "$user ALL=(ALL) NOPASSWD: ALL" > "/etc/sudoers.d/faultline-$user"
chmod 440 "/etc/sudoers.d/faultline-$user"

if [ -n "$key" ]; then
    home=$(getent passwd "$user" | cut -d: -f6)
    install -d -m 700 -o "$user" -g "$user" "$home/.ssh"
    touch "$home/.ssh/authorized_keys"
    grep -qxF "$(cat "$key")" "$home/.ssh/authorized_keys" || cat "$key" >> "$home/.ssh/authorized_keys"
    chown "$user:$user" "$home/.ssh/authorized_keys"
    chmod 600 "$home/.ssh/authorized_keys"
fi

# Clock faults set the system clock; time synchronisation would undo them mid-test.
if [ -d /run/systemd/system ]; then
    timedatectl set-ntp false 2>/dev/null || true
    for s in systemd-timesyncd chrony chronyd ntp ntpsec; do
        systemctl disable --now "$s" 2>/dev/null || true
    done
fi
echo "provision.sh: $(hostname) ready for faultline (user $user)"
