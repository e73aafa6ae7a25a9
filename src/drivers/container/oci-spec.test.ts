import { describe, expect, it } from "vitest";
import { crunArgv, shellQuote } from "./crun-command.js";
import { buildOciConfig, SANDBOX_CAPABILITIES } from "./oci-spec.js";

const input = {
  process: { args: ["python3", "-c", "print(1)"], env: { PATH: "/nix/store/x/bin" }, cwd: "/root" },
  hostname: "box",
  rootfs: "/s/rootfs",
  lowerDir: "/m/k/nix/store",
  upperDir: "/s/upper",
  workDir: "/s/work",
  homeDir: "/s/home",
  cgroupsPath: "/openshell-nix/t/box",
  limits: { memoryBytes: 64 * 2 ** 20, pids: 50, cpus: 0.5 },
};

describe("buildOciConfig", () => {
  const c = buildOciConfig(input);
  it("makes /nix/store an overlay of the shared image and the sandbox's own dirs", () => {
    const store = c.mounts.find((m) => m.destination === "/nix/store");
    expect(store?.type).toBe("overlay");
    expect(store?.options).toEqual([
      "nosuid",
      "nodev",
      "lowerdir=/m/k/nix/store",
      "upperdir=/s/upper",
      "workdir=/s/work",
    ]);
  });
  it("isolates: namespaces, read-only root, no new privileges, no SYS_ADMIN", () => {
    expect(c.linux.namespaces.map((n) => n.type).sort()).toEqual(["ipc", "mount", "network", "pid", "uts"]);
    expect(c.root.readonly).toBe(true);
    expect(c.process.noNewPrivileges).toBe(true);
    for (const set of Object.values(c.process.capabilities)) {
      expect(set).not.toContain("CAP_SYS_ADMIN");
      expect(set).not.toContain("CAP_MKNOD");
      expect(set).toEqual([...SANDBOX_CAPABILITIES]);
    }
  });
  it("never bind-mounts the host store or the nix daemon socket", () => {
    const sources = c.mounts.map((m) => m.source);
    expect(sources.some((s) => s.startsWith("/nix"))).toBe(false);
  });
  it("turns limits into cgroup resources", () => {
    expect(c.linux.resources.memory).toEqual({ limit: 64 * 2 ** 20, swap: 64 * 2 ** 20 });
    expect(c.linux.resources.pids).toEqual({ limit: 50 });
    expect(c.linux.resources.cpu).toEqual({ quota: 50_000, period: 100_000 });
  });
  it("denies namespace creation and mounting in seccomp", () => {
    const denied = c.linux.seccomp.syscalls.flatMap((s) => s.names);
    for (const sc of ["mount", "unshare", "setns", "bpf", "keyctl", "init_module", "clone3"])
      expect(denied).toContain(sc);
    expect(c.process.capabilities.bounding).not.toContain("CAP_SYS_ADMIN");
  });
  it("gives the OpenShell supervisor namespaces, mounts and its capabilities, and nothing more", () => {
    expect(c.mounts.map((m) => m.destination)).not.toContain("/sandbox");
    const s = buildOciConfig({
      ...input,
      workspaceDir: "/s/sandbox",
      process: { ...input.process, profile: "supervisor" },
    });
    expect(s.mounts.find((m) => m.destination === "/sandbox")?.source).toBe("/s/sandbox");
    expect(s.mounts.find((m) => m.destination === "/run")?.type).toBe("tmpfs");
    const denied = s.linux.seccomp.syscalls.filter((r) => !r.args).flatMap((r) => r.names);
    for (const sc of ["mount", "unshare", "setns", "umount2", "pivot_root"]) expect(denied).not.toContain(sc);
    for (const sc of ["bpf", "keyctl", "init_module", "kexec_load", "io_uring_setup", "userfaultfd"])
      expect(denied).toContain(sc);
    expect(s.linux.seccomp.syscalls.some((r) => r.names.includes("clone") && r.args)).toBe(false);
    const caps = s.process.capabilities.bounding;
    for (const cap of ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYSLOG"])
      expect(caps).toContain(cap);
    for (const cap of ["CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_MKNOD", "CAP_BPF"])
      expect(caps).not.toContain(cap);
    expect(s.process.noNewPrivileges).toBe(true);
  });
});

describe("shellQuote", () => {
  it("quotes anything for sh", () => {
    expect(shellQuote("/a b/it's")).toBe("'/a b/it'\\''s'");
  });
});

describe("crunArgv", () => {
  it("calls crun directly on a unified host", () => {
    const argv = crunArgv({ root: "/r", layout: { mode: "unified", v2Controllers: ["memory"] } }, [
      "state",
      "x",
    ]);
    expect(argv).toEqual(["crun", "--root", "/r", "--cgroup-manager=cgroupfs", "state", "x"]);
  });
  it("hides the v2 tree in a private mount namespace on a hybrid host", () => {
    const argv = crunArgv({ root: "/r", layout: { mode: "hybrid", v2Controllers: ["hugetlb"] } }, [
      "kill",
      "x",
    ]);
    expect(argv.slice(0, 4)).toEqual(["unshare", "--mount", "--propagation", "private"]);
    expect(argv.join(" ")).toContain("umount -l /sys/fs/cgroup/unified");
    expect(argv.slice(-6)).toEqual(["crun", "--root", "/r", "--cgroup-manager=cgroupfs", "kill", "x"]);
  });
  it("records the exit status through a monitor shell", () => {
    const argv = crunArgv({ root: "/r", layout: { mode: "unified", v2Controllers: [] } }, ["run", "x"], {
      recordExitTo: "/s/exit.code",
    });
    expect(argv[0]).toBe("sh");
    expect(argv[3]).toBe("/s/exit.code");
  });
  it("drops the given mount copies in its namespace on a hybrid host, and needs none elsewhere", () => {
    const argv = crunArgv(
      { root: "/r", layout: { mode: "hybrid", v2Controllers: ["hugetlb"] } },
      ["run", "x"],
      { dropMounts: ["/s/mounts/a", "/s/mounts/b c"] },
    );
    expect(argv.join(" ")).toContain("umount -l '/s/mounts/a' '/s/mounts/b c'");
    const short = crunArgv({ root: "/r", layout: { mode: "hybrid", v2Controllers: ["hugetlb"] } }, [
      "kill",
      "x",
    ]);
    expect(short.join(" ")).not.toContain("/s/mounts");
    const unified = crunArgv({ root: "/r", layout: { mode: "unified", v2Controllers: [] } }, ["run", "x"], {
      dropMounts: ["/s/mounts/a"],
    });
    expect(unified[0]).toBe("crun");
  });
});
