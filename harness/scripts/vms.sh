#!/usr/bin/env bash
# Real Debian 12 VMs on this machine for `faultline test --env ssh`: what the Vagrantfile
# gives a laptop, without Vagrant or a hypervisor plugin — qemu, debootstrap and root.
#
#   vms.sh up [N]      build (or reuse) the image, boot N VMs (default 3), write hosts.toml
#   vms.sh down        stop every VM `up` started (by pid), remove the network and overlays
#   vms.sh image       only build (or find) the image; prints its directory
#
#   faultline test --env ssh --hosts "$FAULTLINE_VMS_DIR/hosts.toml" ...
#
# The image: `debootstrap --variant=minbase` of Debian 12 with openssh-server, iproute2,
# iptables, sudo, faketime and the stock kernel, provisioned by harness/scripts/provision.sh —
# the script the Vagrantfile runs — with one SSH key of its own, packed by
# `mkfs.ext4 -d` (no qemu-img). It is cached under $FAULTLINE_VMS_CACHE, keyed by the hash of
# provision.sh and of this script's image recipe (the section between the recipe markers), so
# a change to either rebuilds it; older images are removed.
#
# The VMs: qemu boots the image's kernel and initrd directly, each VM on a throw-away
# copy-on-write overlay (`snapshot=on`, kept in the state directory), one vCPU, software
# emulation by default (FAULTLINE_VMS_ACCEL=kvm to try KVM). Their network never leaves this
# machine: a namespace of its own (faultline-vms-<tag>) holds a bridge and one tap per VM,
# and a veth joins it to the root namespace at 198.19.S.254; VM K is 198.19.S.K (S: a free
# /24 of 198.19.0.0/16, inside 198.18.0.0/15, the range reserved for benchmarks, and apart
# from the 198.18.S.0/24 subnets of `--env netns` runs). The hosts file selects the VMs' own
# system clocks for clock faults (clock = "system"): `faultline clock` moves them with
# clock_settime, which network namespaces, sharing one kernel clock, cannot show.
#
# Every VM is a process in the namespace; `down` stops them by their pid files, then kills
# whatever else runs in the namespace, deletes it (and with it the bridge, taps and veth)
# and the state directory (overlays, consoles, keys). Ctrl-C or SIGTERM during `up` does the
# same before exiting. A SIGKILLed `up` leaves its state directory: `vms.sh down` cleans it.
#
# Environment:
#   FAULTLINE_VMS_DIR           state of the running VMs (default $FAULTLINE_VMS_CACHE/run)
#   FAULTLINE_VMS_CACHE         image cache (default ${XDG_CACHE_HOME:-~/.cache}/faultline/vms)
#   FAULTLINE_VMS_MEM           MiB per VM (default 768)
#   FAULTLINE_VMS_ACCEL         tcg (default) or kvm
#   FAULTLINE_VMS_BOOT_TIMEOUT  seconds to wait for every VM's SSH login (default 900)
#   FAULTLINE_DEBIAN_MIRROR     debootstrap's mirror (default http://deb.debian.org/debian)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
provision="$here/provision.sh"
cache=${FAULTLINE_VMS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faultline/vms}
state=${FAULTLINE_VMS_DIR:-$cache/run}
mem=${FAULTLINE_VMS_MEM:-768}
accel=${FAULTLINE_VMS_ACCEL:-tcg}
boot_timeout=${FAULTLINE_VMS_BOOT_TIMEOUT:-900}
mirror=${FAULTLINE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

die() {
    echo "vms.sh: $*" >&2
    exit 1
}
say() { echo "vms.sh: $*" >&2; }

usage() {
    sed -n '2,9p' "$self" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

need() {
    for b in "$@"; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || [ -x "/sbin/$b" ] ||
            die "needs $b (apt-get install -y qemu-system-x86 debootstrap e2fsprogs iproute2 openssh-client)"
    done
}

ms_now() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

need_root() {
    [ "$(id -u)" = 0 ] || die "run as root (debootstrap, network namespaces, taps)"
}

# The recipe's text and provision.sh decide the image: their hash names it.
image_key() {
    {
        cat "$provision"
        sed -n '/^# >>> image recipe/,/^# <<< image recipe/p' "$self"
    } | sha256sum | cut -c1-16
}

# Unmounts everything mounted below $1 (debootstrap mounts /proc and /sys in its target);
# fails if anything stays mounted, so nothing below it is ever deleted through a mount.
unmount_below() {
    local dir m
    dir=$(realpath -m "$1")
    for _ in 1 2 3; do
        m=$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
        [ -z "$m" ] && return 0
        for p in $m; do umount -l "$p" 2>/dev/null || true; done
    done
    m=$(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts)
    [ -z "$m" ] || die "still mounted below $dir: $m (not deleting it)"
}

remove_tree() {
    [ -e "$1" ] || return 0
    unmount_below "$1"
    rm -rf --one-file-system "$1"
}

child=""
build_dir=""

on_build_signal() {
    trap - INT TERM HUP
    [ -n "$child" ] && kill "$child" 2>/dev/null && wait "$child" 2>/dev/null
    [ -n "$build_dir" ] && remove_tree "$build_dir"
    say "interrupted; partial image removed"
    exit 130
}

# Runs a long command in the background and waits, so a signal runs the trap at once
# instead of after the command.
bg_wait() {
    "$@" &
    child=$!
    local rc=0
    wait "$child" || rc=$?
    child=""
    return "$rc"
}

# >>> image recipe (hashed: a change here rebuilds the image)
suite=bookworm
packages=openssh-server,iproute2,iptables,sudo,faketime,linux-image-amd64,systemd-sysv,udev

# Builds the image into $1: disk.img, vmlinuz, initrd.img, id_ed25519{,.pub},
# host_ed25519.pub.
build_image() {
    local out=$1 root=$1/rootfs
    mkdir -p "$out"
    say "debootstrap $suite (minbase + $packages) from $mirror ..."
    bg_wait debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" \
        >"$out/debootstrap.log" 2>&1 || die "debootstrap failed; see $out/debootstrap.log"
    ssh-keygen -q -t ed25519 -N '' -C faultline-vms -f "$out/id_ed25519"
    # The provisioning the Vagrant VMs get, run inside the image.
    cp "$provision" "$root/tmp/provision.sh"
    cp "$out/id_ed25519.pub" "$root/tmp/faultline_id.pub"
    chroot "$root" sh /tmp/provision.sh --authorized-key /tmp/faultline_id.pub
    rm -f "$root/tmp/provision.sh" "$root/tmp/faultline_id.pub"
    # What makes it a VM rather than a chroot: the root filesystem, the network from the
    # kernel command line (systemd-network-generator reads `ip=`), one host key type (the
    # one in the known_hosts `up` writes), and nothing that wakes up to do maintenance.
    echo '/dev/vda / ext4 rw,noatime 0 0' >"$root/etc/fstab"
    : >"$root/etc/hostname"
    # sudo resolves the host's name on every call; unresolvable, each call waits on DNS.
    printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$(seq -f 'n%g' -s ' ' 50)" >"$root/etc/hosts"
    chroot "$root" systemctl enable --quiet systemd-networkd systemd-network-generator
    chroot "$root" systemctl disable --quiet systemd-networkd-wait-online \
        apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
        fstrim.timer e2scrub_reap getty@tty1 2>/dev/null || true
    chroot "$root" systemctl mask --quiet getty-static
    # An initrd with the three modules the VM needs to mount its root (6 MB instead of 36:
    # unpacked under emulation, every megabyte is boot time).
    sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
    printf 'virtio_pci\nvirtio_blk\next4\n' >>"$root/etc/initramfs-tools/modules"
    chroot "$root" update-initramfs -u -k all >/dev/null 2>&1
    rm -f "$root"/etc/ssh/ssh_host_rsa_key* "$root"/etc/ssh/ssh_host_ecdsa_key*
    printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nUseDNS no\nMaxStartups 100\n' \
        >"$root/etc/ssh/sshd_config.d/faultline.conf"
    cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$out/host_ed25519.pub"
    cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
    cp "$root"/boot/initrd.img-* "$out/initrd.img"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    bg_wait mkfs.ext4 -q -F -L faultline -d "$root" "$out/disk.img" 2G
    remove_tree "$root"
}
# <<< image recipe

# Prints the directory of the image for the current recipe, building it if needed.
image() {
    need debootstrap mkfs.ext4 ssh-keygen sha256sum flock
    need_root
    local key dir t0
    key=$(image_key)
    dir="$cache/image-$key"
    mkdir -p "$cache"
    exec 9>"$cache/.lock"
    flock 9
    if [ ! -f "$dir/disk.img" ]; then
        t0=$(date +%s)
        build_dir="$cache/build-$key.$$"
        trap on_build_signal INT TERM HUP
        build_image "$build_dir"
        mv "$build_dir" "$dir"
        build_dir=""
        trap - INT TERM HUP
        say "image $key built in $(($(date +%s) - t0)) s"
        for old in "$cache"/image-* "$cache"/build-*; do
            [ "$old" = "$dir" ] || remove_tree "$old"
        done
    else
        say "image $key cached"
    fi
    exec 9>&-
    echo "$dir"
}

# --- running VMs -------------------------------------------------------------------------

# key=value lines `up` writes first thing, so `down` can undo a partial `up`.
state_get() {
    sed -n "s/^$1=//p" "$state/vms.env" 2>/dev/null | head -n1
}

is_our_qemu() {
    local pid=$1
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "qemu-system-x86_64 .*-pidfile $state/"
}

down() {
    need_root
    if [ ! -f "$state/vms.env" ]; then
        [ -d "$state" ] && remove_tree "$state"
        return 0
    fi
    local ns link pids pid
    ns=$(state_get ns)
    link=$(state_get link)
    pids=""
    for f in "$state"/n*.pid; do
        [ -f "$f" ] || continue
        pid=$(tr -dc '0-9' <"$f")
        if is_our_qemu "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            pids="$pids $pid"
        fi
    done
    # Whatever else runs in the namespace (a qemu whose pid file was not written yet).
    if [ -n "$ns" ] && ip netns list | grep -qw "^$ns"; then
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -TERM "$pid" 2>/dev/null || true
            pids="$pids $pid"
        done
    fi
    for pid in $pids; do
        for _ in $(seq 100); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        for _ in $(seq 50); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
    done
    if [ -n "$ns" ]; then
        ip netns del "$ns" 2>/dev/null || true
    fi
    if [ -n "$link" ]; then
        ip link del "$link" 2>/dev/null || true
    fi
    remove_tree "$state"
    say "VMs stopped; network $ns and $state removed"
}

# A free third octet S for 198.19.S.0/24: not on any interface of the root namespace.
free_subnet() {
    local used s
    used=$(ip -o -4 addr show | awk '{print $4}' | sed -n 's/^198\.19\.\([0-9]*\)\..*/\1/p')
    s=$((RANDOM % 250 + 1))
    for _ in $(seq 250); do
        if ! printf '%s\n' $used | grep -qx "$s"; then
            echo "$s"
            return 0
        fi
        s=$((s % 250 + 1))
    done
    die "no free /24 left in 198.19.0.0/16"
}

on_up_signal() {
    trap - INT TERM HUP
    [ -n "$child" ] && kill "$child" 2>/dev/null
    say "interrupted; stopping the VMs"
    down
    exit 130
}

ssh_vm() {
    local ip=$1
    shift
    ssh -n -i "$state/id_ed25519" -o BatchMode=yes -o ConnectTimeout=5 \
        -o UserKnownHostsFile="$state/known_hosts" -o StrictHostKeyChecking=yes \
        -o LogLevel=ERROR "faultline@$ip" "$@"
}

up() {
    local n=${1:-3}
    case "$n" in '' | *[!0-9]*) die "up N: N must be a number of VMs, not '$n'" ;; esac
    [ "$n" -ge 1 ] && [ "$n" -le 50 ] || die "up N: N must be between 1 and 50"
    need_root
    need qemu-system-x86_64 ip ssh
    local img
    img=$(image)
    [ -f "$state/vms.env" ] && {
        say "VMs from an earlier up in $state: stopping them first"
        down
    }
    mkdir -p "$state"
    chmod 700 "$state"
    trap on_up_signal INT TERM HUP

    local tag ns link s
    tag=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    ns="faultline-vms-$tag"
    link="flv$tag"
    exec 8>/run/faultline-vms.lock
    flock 8
    s=$(free_subnet)
    printf 'ns=%s\nlink=%s\nsubnet=%s\nn=%s\nimage=%s\n' "$ns" "$link" "$s" "$n" "$img" \
        >"$state/vms.env"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add br0 type bridge
    ip -n "$ns" link set br0 up
    ip link add "$link" type veth peer name "${link}s"
    ip link set "${link}s" netns "$ns"
    ip -n "$ns" link set "${link}s" master br0 up
    ip addr add "198.19.$s.254/24" dev "$link"
    ip link set "$link" up
    exec 8>&-

    cp "$img/id_ed25519" "$state/id_ed25519"
    chmod 600 "$state/id_ed25519"
    local hostkey
    hostkey=$(cut -d' ' -f1,2 "$img/host_ed25519.pub")
    : >"$state/known_hosts"
    for k in $(seq "$n"); do
        echo "198.19.$s.$k $hostkey" >>"$state/known_hosts"
    done

    # No svm: the guest would load its KVM modules at boot for nothing. No la57: TCG's `max`
    # offers 5-level paging but reports 48 virtual address bits, so the guest kernel's
    # copy_from_kernel_nofault refuses its own 57-bit addresses and every path it prints
    # comes out as "xxx" (/proc/self/mountinfo, readlink): systemd's mounts, udevd and
    # networkd then fail and the VM never reaches SSH.
    local cpu=max,-svm,-la57 accel_opt="tcg,tb-size=256"
    if [ "$accel" = kvm ]; then
        cpu="host,-arch-capabilities"
        accel_opt=kvm
    fi
    local t0 started
    t0=$(ms_now)
    for k in $(seq "$n"); do
        ip -n "$ns" tuntap add "tap$k" mode tap
        ip -n "$ns" link set "tap$k" master br0 up
        started[k]=$(ms_now)
        # TMPDIR: where snapshot=on keeps the VM's copy-on-write overlay.
        TMPDIR="$state" ip netns exec "$ns" qemu-system-x86_64 \
            -name "n$k" -accel "$accel_opt" -cpu "$cpu" -smp 1 -m "$mem" \
            -nodefaults -display none -no-reboot \
            -serial "file:$state/n$k.console" \
            -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
            -append "root=/dev/vda rw console=ttyS0 quiet mitigations=off net.ifnames=0 ip=198.19.$s.$k::198.19.$s.254:255.255.255.0::eth0:off systemd.hostname=n$k" \
            -drive "file=$img/disk.img,format=raw,if=virtio,snapshot=on" \
            -netdev "tap,id=net0,ifname=tap$k,script=no,downscript=no" \
            -device "virtio-net-pci,netdev=net0,mac=52:54:00:fa:$(printf %02x "$s"):$(printf %02x "$k")" \
            -device virtio-rng-pci \
            -daemonize -pidfile "$state/n$k.pid" ||
            die "qemu failed to start n$k"
    done
    say "$n VMs started (qemu -accel $accel, $mem MiB each); waiting for SSH (up to $boot_timeout s)"

    local ready=() left=$n pid ip
    while [ "$left" -gt 0 ]; do
        for k in $(seq "$n"); do
            [ -n "${ready[k]:-}" ] && continue
            pid=$(tr -dc '0-9' <"$state/n$k.pid" 2>/dev/null || true)
            if ! is_our_qemu "$pid"; then
                tail -n 20 "$state/n$k.console" >&2 || true
                down
                die "VM n$k exited during boot (its console is above)"
            fi
            ip="198.19.$s.$k"
            if ssh_vm "$ip" sudo -n true 2>/dev/null; then
                ready[k]=$(($(ms_now) - started[k]))
                say "n$k ($ip) accepts SSH after $(secs "${ready[k]}") s"
                left=$((left - 1))
            fi
        done
        if [ "$left" -gt 0 ]; then
            if [ $(($(ms_now) - t0)) -gt $((boot_timeout * 1000)) ]; then
                for k in $(seq "$n"); do
                    [ -n "${ready[k]:-}" ] || { say "n$k console:"; tail -n 20 "$state/n$k.console" >&2 || true; }
                done
                down
                die "not every VM accepted SSH within $boot_timeout s"
            fi
            sleep 2
        fi
    done

    {
        echo "# $n Debian 12 VMs on this machine (harness/scripts/vms.sh up $n; qemu -accel $accel)."
        echo "# Clock faults move each VM's own system clock."
        echo "user = \"faultline\""
        echo "key = \"$state/id_ed25519\""
        echo "sudo = true"
        echo "clock = \"system\""
        echo "dir = \"/tmp/faultline\""
        echo "known_hosts = \"$state/known_hosts\""
        for k in $(seq "$n"); do
            printf '\n[[host]]\naddress = "198.19.%s.%s"\n' "$s" "$k"
        done
    } >"$state/hosts.toml"
    trap - INT TERM HUP
    say "all $n VMs up in $(secs $(($(ms_now) - t0))) s"
    echo "$state/hosts.toml"
}

case "${1:-}" in
    up) up "${2:-3}" ;;
    down) down ;;
    image) image ;;
    *) usage ;;
esac
