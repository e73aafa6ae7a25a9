/**
 * The qemu command line of a microVM sandbox; pure, unit-tested.
 *
 * `-M microvm` with direct PVH boot of an uncompressed vmlinux: no firmware, no PCI, virtio
 * over MMIO discovered through ACPI (Debian's kernel lacks virtio_mmio command-line devices, so
 * ACPI stays on). Under TCG the kernel command line carries the host TSC frequency: microvm
 * has neither HPET nor a PM timer, and without `tsc_early_khz` the TSC calibration against the
 * PIT sometimes fails and the boot hangs (1–2 boots in 5 in our probes; none in 120 with it).
 */

export type Accel = "kvm" | "tcg";

/**
 * microvm: no PCI, virtio over MMIO, the fastest boot. q35: the fallback for a qemu built
 * without microvm (virtio over PCI; slower to boot, same guest).
 */
export type Machine = "microvm" | "q35";

export interface QemuVmConfig {
  accel: Accel;
  /** Machine type; default microvm. */
  machine?: Machine;
  /** CPU model under KVM (default host); TCG always uses max. */
  cpu?: string;
  memoryMiB: number;
  cpus: number;
  vmlinux: string;
  initrd: string;
  /** Host TSC frequency in kHz (TCG boot reliability). */
  tscKhz?: number;
  /** The bundle image: attached read-only, shared by every VM of the bundle. */
  image: string;
  /** The sandbox's writable disk (ext4), or none for a tmpfs upper layer. */
  upperDisk?: string;
  /** The workload spec, handed over through fw_cfg. */
  specFile: string;
  consoleLog: string;
  stdoutFile: string;
  stderrFile: string;
  statusFile: string;
  qmpSocket: string;
  /** Host end of the control port (stop/kill requests to the guest init). */
  controlSocket: string;
  /** Host ends of the exec agent's ports (requests and status, stdout, stderr); none: no exec. */
  execSockets?: { control: string; stdout: string; stderr: string };
  /** User-mode networking (slirp): outbound only, no root setup. */
  network: boolean;
}

export const TCG_KERNEL_TUNING = [
  "tsc=reliable",
  "no_timer_check",
  "mitigations=off",
  "cryptomgr.notests",
  "nowatchdog",
  "audit=0",
  "8250.nr_uarts=1",
];

export function kernelCommandLine(config: Pick<QemuVmConfig, "accel" | "tscKhz" | "machine">): string {
  const base = ["console=ttyS0", "quiet", "panic=-1", "rdinit=/init"];
  const tsc = config.accel === "tcg" && config.tscKhz ? [`tsc_early_khz=${config.tscKhz}`] : [];
  // No PCI bus on microvm: skip probing for one. q35's devices are on PCI.
  const pci = (config.machine ?? "microvm") === "microvm" ? ["pci=off"] : [];
  return [...base, ...tsc, ...TCG_KERNEL_TUNING, ...pci].join(" ");
}

/** Escape a value for qemu's comma-separated option syntax. */
function opt(value: string): string {
  return value.replaceAll(",", ",,");
}

export function qemuArgv(config: QemuVmConfig): string[] {
  const machine = config.machine ?? "microvm";
  // The same virtio devices, on MMIO (microvm) or on PCI (q35).
  const dev = (name: string) => `virtio-${name}-${machine === "microvm" ? "device" : "pci"}`;
  const argv = [
    "qemu-system-x86_64",
    "-accel",
    // TCG's translation cache would otherwise grow to 1 GiB, past qemu's cgroup allowance.
    config.accel === "tcg" ? "tcg,tb-size=256" : config.accel,
    "-M",
    machine,
    "-cpu",
    // max under TCG gives the guest RDRAND, which seeds its RNG at once (saves ~1 s under TCG).
    config.accel === "kvm" ? (config.cpu ?? "host") : "max",
    "-m",
    `${config.memoryMiB}M`,
    "-smp",
    String(config.cpus),
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-no-reboot",
    // qemu's own seccomp filter: no exec, no privilege changes, no obsolete syscalls.
    "-sandbox",
    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-kernel",
    config.vmlinux,
    "-initrd",
    config.initrd,
    "-append",
    kernelCommandLine(config),
    "-chardev",
    `file,id=console,path=${opt(config.consoleLog)}`,
    "-serial",
    "chardev:console",
    "-qmp",
    `unix:${opt(config.qmpSocket)},server=on,wait=off`,
    "-fw_cfg",
    `name=opt/openshell/spec,file=${opt(config.specFile)}`,
    "-drive",
    `id=image,file=${opt(config.image)},format=raw,if=none,readonly=on`,
    "-device",
    `${dev("blk")},drive=image`,
  ];
  if (config.upperDisk) {
    argv.push(
      "-drive",
      `id=upper,file=${opt(config.upperDisk)},format=raw,if=none,discard=unmap`,
      "-device",
      `${dev("blk")},drive=upper`,
    );
  }
  argv.push("-device", dev("serial"));
  for (const [name, path] of [
    ["stdout", config.stdoutFile],
    ["stderr", config.stderrFile],
    ["status", config.statusFile],
  ] as const) {
    argv.push(
      "-chardev",
      `file,id=${name},path=${opt(path)},append=on`,
      "-device",
      `virtserialport,chardev=${name},name=org.openshell.${name}`,
    );
  }
  const exec = config.execSockets;
  const sockets: [string, string, string][] = [["control", config.controlSocket, "control"]];
  if (exec) {
    sockets.push(
      ["exec", exec.control, "exec"],
      ["execout", exec.stdout, "exec-out"],
      ["execerr", exec.stderr, "exec-err"],
    );
  }
  for (const [id, path, name] of sockets) {
    argv.push(
      "-chardev",
      `socket,id=${id},path=${opt(path)},server=on,wait=off`,
      "-device",
      `virtserialport,chardev=${id},name=org.openshell.${name}`,
    );
  }
  if (config.network) {
    argv.push("-netdev", "user,id=net", "-device", `${dev("net")},netdev=net`);
  }
  return argv;
}
