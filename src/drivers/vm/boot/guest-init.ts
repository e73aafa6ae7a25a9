import type { SandboxFile } from "../../../sandbox/types.js";

/**
 * PID 1 of the guest, from the initramfs (busybox sh). It mounts the bundle image (/dev/vda,
 * read-only erofs), the sandbox's writable layer (/dev/vdb ext4 when the sandbox keeps its
 * files, else a tmpfs), builds the /nix/store overlay and runs the workload chrooted into a
 * minimal root. The workload's spec (a shell fragment written by guestSpec()) comes from fw_cfg:
 * no size limit, unlike the kernel command line. Its stdout, stderr and exit status leave
 * through virtio-serial ports that the host connects to files. Lines starting with OSN- on the
 * console mark progress for the host.
 */
export const GUEST_INIT = String.raw`#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
fail() { echo "OSN-FAIL $*"; sync; reboot -f; }
# Without a PCI bus (microvm, pci=off) the virtio-pci modules would only cost boot time.
case " $(cat /proc/cmdline) " in *" pci=off "*) nopci=1 ;; *) nopci= ;; esac
while read -r m; do
  case "$nopci$m" in 1virtio_pci*) continue ;; esac
  insmod "/lib/modules/$m.ko" || echo "OSN-WARN insmod $m failed"
done < /modules.order
i=0; while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do usleep 10000; i=$((i+1)); done
[ -b /dev/vda ] || fail "no image disk"
spec=/sys/firmware/qemu_fw_cfg/by_name/opt/openshell/spec/raw
[ -r $spec ] || fail "no spec in fw_cfg"
. $spec
# Read once; then gone, so nothing in the guest can read the spec (a token) from fw_cfg again.
rmmod qemu_fw_cfg 2>/dev/null || echo "OSN-WARN fw_cfg stays readable"
mkdir -p /image /rw /root
mount -t erofs -o ro /dev/vda /image || fail "cannot mount the bundle image"
# noinit_itable: the kernel would otherwise zero the lazily-made inode tables in the background,
# turning the host's sparse disk file into allocated blocks for nothing.
if [ -b /dev/vdb ]; then mount -t ext4 -o noinit_itable /dev/vdb /rw || fail "cannot mount the writable disk"; else mount -t tmpfs -o mode=0755 rw /rw; fi
mkdir -p /rw/upper /rw/work /rw/home /rw/sandbox /newroot
mount -t tmpfs -o mode=0755 root /newroot
cd /newroot
# An FHS view of the bundle (merged /usr): one ln for all links, each named after its target.
if [ -n "$OSN_LINK_TARGETS" ]; then
  # set -f: store names may hold glob characters such as '?'.
  set -f
  mkdir -p usr/bin && ln -s usr/bin bin && ln -s usr/bin sbin && ln -s bin usr/sbin && ln -s $OSN_LINK_TARGETS usr/bin/
  set +f
fi
mkdir -p nix/store proc sys dev tmp root sandbox etc bin usr/bin run
mount -t overlay overlay -o "lowerdir=/image/nix/store,upperdir=/rw/upper,workdir=/rw/work" /newroot/nix/store || fail "cannot mount the store overlay"
mount --bind /rw/home /newroot/root
mount --bind /rw/sandbox /newroot/sandbox
# Files for the workload (the supervisor's token): path, octal mode, base64 content per line.
[ -n "$OSN_FILES" ] && echo "$OSN_FILES" | ( umask 077; while read -r f m c; do
  mkdir -p ".$(dirname "$f")" && echo "$c" | base64 -d > ".$f" && chmod "$m" ".$f" || fail "cannot write $f"
done )
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs -o mode=1777 tmp /newroot/tmp
printf 'root:x:0:0:root:/root:/bin/sh\nsandbox:x:10001:10001:sandbox:/sandbox:/bin/sh\n' > etc/passwd
printf 'root:x:0:\nsandbox:x:10001:\n' > etc/group
chown 10001:10001 /rw/sandbox
mkdir -p var && ln -s ../run var/run
printf '127.0.0.1 localhost %s\n' "$OSN_HOSTNAME" > etc/hosts
ip link set lo up
# User-mode networking (slirp): the guest is 10.0.2.15, the host is reachable as 10.0.2.2
# (host.openshell.internal), DNS at 10.0.2.3; nothing outside can connect in.
if ip link set eth0 up 2>/dev/null; then
  ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
  printf '10.0.2.2 host.openshell.internal\n' >> etc/hosts
  printf 'nameserver 10.0.2.3\n' > etc/resolv.conf
fi
hostname "$OSN_HOSTNAME"
[ -z "$OSN_LINK_TARGETS" ] && [ -n "$OSN_SHELL" ] && ln -s "$OSN_SHELL" bin/sh
[ -z "$OSN_LINK_TARGETS" ] && [ -n "$OSN_ENVTOOL" ] && ln -s "$OSN_ENVTOOL" usr/bin/env
port() { for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name 2>/dev/null)" = "$1" ] && echo /dev/$(basename "$p"); done; }
out=$(port org.openshell.stdout); err=$(port org.openshell.stderr); st=$(port org.openshell.status); ctl=$(port org.openshell.control)
[ -n "$out" ] && [ -n "$err" ] && [ -n "$st" ] && [ -n "$ctl" ] || fail "virtio-serial ports missing"
mkdir -p /tmp
# qemu tells the guest that a port's host side is open only a moment after the port appears;
# what is written before that is discarded. Wait until the output ports are connected.
mkdir -p /sys/kernel/debug && mount -t debugfs debugfs /sys/kernel/debug
for p in "$out" "$err" "$st"; do
  i=0; while ! grep -q "host_connected: 1" "/sys/kernel/debug/virtio-ports/$(basename "$p")" 2>/dev/null && [ $i -lt 500 ]; do usleep 10000; i=$((i+1)); done
done
# The spec set the positional parameters to: NAME=value… chroot /newroot command args…
env -i "$@" > "$out" 2> "$err" < /dev/null &
wpid=$!
echo "OSN-READY"
# The host asks for a stop on the control port: "stop" is SIGTERM, "kill" is SIGKILL. A port
# whose host side is not connected reads as EOF, hence the outer loop.
( while :; do
    while read -r cmd; do
      case "$cmd" in stop) kill -TERM $wpid ;; kill) kill -KILL $wpid ;; esac
    done < "$ctl"
    usleep 200000
  done ) &
ctlpid=$!
# The exec agent: one request at a time on the exec port (a base64 spec like the workload's),
# its output on two ports of its own, then "EXIT <id> <status>" back on the exec port. The id
# ties a status to its request: a host that gave up on one exec never takes its status for
# the next one's.
xctl=$(port org.openshell.exec); xout=$(port org.openshell.exec-out); xerr=$(port org.openshell.exec-err)
[ -n "$xctl" ] && [ -n "$xout" ] && [ -n "$xerr" ] && ( while :; do
    while read -r id req <&3; do
      echo "$req" | base64 -d > /tmp/exec.sh
      ( . /tmp/exec.sh; env -i "$@" ) > "$xout" 2> "$xerr" < /dev/null
      echo "EXIT $id $?" >&3
    done 3<> "$xctl"
    usleep 100000
  done ) &
xpid=$!
wait $wpid
rc=$?
kill $ctlpid $xpid 2>/dev/null
echo "$rc" > "$st"
echo "OSN-EXIT $rc"
# Whatever the workload or an exec left running goes first, so the disk can be unmounted.
kill -KILL -1 2>/dev/null
sync
umount /newroot/root /newroot/sandbox /newroot/nix/store 2>/dev/null
umount /rw 2>/dev/null
reboot -f
`;

export interface GuestSpecInput {
  hostname: string;
  env: Record<string, string>;
  command: string[];
  shell?: string;
  envTool?: string;
  links?: [string, string][];
  files?: SandboxFile[];
}

function q(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** The spec the guest init sources; pure, unit-tested. Every value is single-quoted. */
export function guestSpec(input: GuestSpecInput): string {
  const args = [
    ...Object.entries(input.env).map(([k, v]) => `${k}=${v}`),
    "chroot",
    "/newroot",
    ...input.command,
  ];
  const targets = (input.links ?? []).map(([link, target]) => {
    // The guest makes every link with one `ln -s TARGET… usr/bin/`, which names it after its target.
    if (link !== `/usr/bin/${target.slice(target.lastIndexOf("/") + 1)}` || /\s/.test(target))
      throw new Error(`guest link ${link} -> ${target} is not of the form /usr/bin/<name> -> …/<name>`);
    return target;
  });
  const files = (input.files ?? []).map((f) => {
    if (/\s/.test(f.path)) throw new Error(`guest file path ${JSON.stringify(f.path)} has whitespace`);
    return `${f.path} ${f.mode.toString(8)} ${Buffer.from(f.content).toString("base64")}`;
  });
  return [
    `OSN_HOSTNAME=${q(input.hostname)}`,
    `OSN_SHELL=${q(input.shell ?? "")}`,
    `OSN_ENVTOOL=${q(input.envTool ?? "")}`,
    `OSN_LINK_TARGETS=${q(targets.join(" "))}`,
    `OSN_FILES=${q(files.join("\n"))}`,
    `set -- ${args.map(q).join(" ")}`,
    "",
  ].join("\n");
}
