import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { findGuestKernel } from "../drivers/vm/boot/kernel.js";
import { detectCgroupLayout } from "../host/cgroups.js";
import { runCommandStatus } from "../process/run-command.js";

export type CheckLevel = "ok" | "warn" | "fail";

export interface CheckResult {
  name: string;
  level: CheckLevel;
  detail: string;
  /** How to fix it, when it is not ok. */
  fix?: string;
  /** Needed for container sandboxes (fail) or only for an extra (warn). */
  required: boolean;
}

const APT = "apt-get install -y";
const CAP_SYS_ADMIN = 21;

function effectiveCaps(): bigint {
  const status = readFileSync("/proc/self/status", "utf8");
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? "0";
  return BigInt(`0x${hex}`);
}

function filesystems(): string {
  try {
    return readFileSync("/proc/filesystems", "utf8");
  } catch {
    return "";
  }
}

async function version(argv: string[]): Promise<string | undefined> {
  try {
    const r = await runCommandStatus(argv, { timeoutMs: 10_000 });
    return r.status === 0 ? (r.stdout || r.stderr).trim().split("\n")[0] : undefined;
  } catch {
    return undefined;
  }
}

async function tool(name: string, argv: string[], pkg: string, required = true): Promise<CheckResult> {
  const v = await version(argv);
  return v
    ? { name, level: "ok", detail: v, required }
    : { name, level: required ? "fail" : "warn", detail: "not found", fix: `${APT} ${pkg}`, required };
}

function fsCheck(fs: string, module: string): CheckResult {
  const has = new RegExp(`\\b${fs}$`, "m").test(filesystems());
  return has
    ? { name: `${fs} filesystem`, level: "ok", detail: "supported by the running kernel", required: true }
    : {
        name: `${fs} filesystem`,
        level: "fail",
        detail: "not in /proc/filesystems",
        fix: `modprobe ${module} (NixOS: boot.kernelModules = [ "${module}" ])`,
        required: true,
      };
}

/** Every host feature container sandboxes need, each with how to fix it. */
export async function runChecks(): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const root = process.geteuid?.() === 0;
  const sysAdmin = (effectiveCaps() >> BigInt(CAP_SYS_ADMIN)) & 1n;
  results.push(
    root || sysAdmin === 1n
      ? {
          name: "privileges",
          level: "ok",
          detail: root ? "running as root" : "CAP_SYS_ADMIN",
          required: true,
        }
      : {
          name: "privileges",
          level: "fail",
          detail: "not root and no CAP_SYS_ADMIN: cannot mount images or run crun",
          fix: "run as root (sudo), or through the openshell-nix daemon",
          required: true,
        },
  );
  results.push(fsCheck("overlay", "overlay"), fsCheck("erofs", "erofs"));
  results.push(
    existsSync("/dev/loop-control")
      ? { name: "loop devices", level: "ok", detail: "/dev/loop-control present", required: true }
      : {
          name: "loop devices",
          level: "fail",
          detail: "/dev/loop-control missing",
          fix: 'modprobe loop (NixOS: boot.kernelModules = [ "loop" ])',
          required: true,
        },
  );
  const [crun, mkfs, nixStore, nixBuild, unshare, losetup] = await Promise.all([
    tool("crun", ["crun", "--version"], "crun"),
    tool("mkfs.erofs", ["mkfs.erofs", "--help"], "erofs-utils").then((r) =>
      r.level === "ok" ? { ...r, detail: "erofs-utils present" } : r,
    ),
    tool("nix-store", ["nix-store", "--version"], "nix-bin"),
    tool("nix-build", ["nix-build", "--version"], "nix-bin", false),
    tool("unshare", ["unshare", "--version"], "util-linux"),
    tool("losetup", ["losetup", "--version"], "mount"),
  ]);
  if (crun.level === "ok") {
    const full = (await runCommandStatus(["crun", "--version"])).stdout;
    if (!full.includes("+SECCOMP")) {
      crun.level = "fail";
      crun.detail += " (built without seccomp)";
      crun.fix = "install a crun built with libseccomp";
    }
  }
  results.push(crun, mkfs, nixStore, nixBuild, unshare, losetup);
  results.push(storeCheck());
  results.push(cgroupCheck());
  results.push(demoInputsCheck());
  results.push(...(await vmChecks()));
  results.push(
    await tool(
      "slirp4netns (driver containers' network)",
      ["slirp4netns", "--version"],
      "slirp4netns",
      false,
    ),
  );
  return results;
}

function storeCheck(): CheckResult {
  try {
    accessSync("/nix/store", constants.R_OK);
    return { name: "nix store", level: "ok", detail: "/nix/store readable", required: true };
  } catch {
    return {
      name: "nix store",
      level: "fail",
      detail: "/nix/store missing",
      fix: `${APT} nix-bin, then nix-store --init`,
      required: true,
    };
  }
}

function cgroupCheck(): CheckResult {
  const layout = detectCgroupLayout();
  const controllers = filesystems().includes("cgroup") ? "" : " (no cgroup filesystem!)";
  const needed = ["memory", "pids", "cpu"];
  const missing =
    layout.mode === "unified"
      ? needed.filter((c) => !layout.v2Controllers.includes(c))
      : needed.filter((c) => !existsSync(`/sys/fs/cgroup/${c}`));
  if (missing.length > 0) {
    return {
      name: "cgroups",
      level: "fail",
      detail: `${layout.mode} layout without the ${missing.join(", ")} controller(s)${controllers}`,
      fix: "enable the controllers (cgroup v2: systemd Delegate=yes; v1: mount them under /sys/fs/cgroup)",
      required: true,
    };
  }
  const note =
    layout.mode === "hybrid"
      ? `hybrid v1+v2 (v2 holds ${layout.v2Controllers.join(",")}); crun runs in a private mount namespace without the v2 tree, limits enforced through v1`
      : `${layout.mode}; memory, pids and cpu controllers available`;
  return { name: "cgroups", level: "ok", detail: note, required: true };
}

function demoInputsCheck(): CheckResult {
  const inputs = ["/bin/busybox", "/usr/bin/python3.11", "/usr/bin/patchelf"];
  const missing = inputs.filter((p) => !existsSync(p));
  return missing.length === 0
    ? {
        name: "demo bundle inputs",
        level: "ok",
        detail: "busybox, python3.11, patchelf present",
        required: false,
      }
    : {
        name: "demo bundle inputs",
        level: "warn",
        detail: `missing ${missing.join(", ")} (only the embedded demo bundle needs them)`,
        fix: `${APT} busybox-static python3.11 patchelf`,
        required: false,
      };
}

/** VM sandboxes are optional: what they lack is a warning, not a failure. */
async function vmChecks(): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  results.push(
    await tool("qemu (VM sandboxes)", ["qemu-system-x86_64", "--version"], "qemu-system-x86", false),
  );
  results.push(await tool("mkfs.ext4 (VM disks)", ["mkfs.ext4", "-V"], "e2fsprogs", false));
  try {
    const kernel = findGuestKernel();
    results.push({
      name: "guest kernel",
      level: "ok",
      detail: `${kernel.image} (${kernel.release})`,
      required: false,
    });
  } catch (err) {
    results.push({
      name: "guest kernel",
      level: "warn",
      detail: (err as Error).message,
      fix: "apt-get install linux-image-amd64 xz-utils (or set vm.kernel)",
      required: false,
    });
  }
  const kvm = existsSync("/dev/kvm");
  results.push({
    name: "KVM",
    level: kvm ? "ok" : "warn",
    detail: kvm
      ? "/dev/kvm present; the first VM start probes whether guests really boot under it (else TCG)"
      : "no /dev/kvm: VMs run under TCG emulation (slow boots)",
    fix: kvm ? undefined : "enable virtualisation (modprobe kvm_intel / kvm_amd), or accept TCG",
    required: false,
  });
  return results;
}
