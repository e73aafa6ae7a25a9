import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { CgroupLayout } from "../../host/cgroups.js";
import { crunArgv, shellQuote } from "./crun-command.js";

const unified: CgroupLayout = { mode: "unified", v2Controllers: ["memory", "pids"] };
const hybrid: CgroupLayout = { mode: "hybrid", v2Controllers: ["hugetlb"] };
const CRUN = ["crun", "--root", "/r", "--cgroup-manager=cgroupfs", "run", "x"];
const slirp = { netns: "/s/box/netns", log: "/s/box/slirp.log" };

/** The monitor shell's script and its $0 (the exit file) in a monitor call's argv. */
function monitor(argv: string[]): { script: string; exitFile: string; lines: string[] } {
  const sh = argv.indexOf("sh");
  expect(sh).toBeGreaterThanOrEqual(0);
  expect(argv[sh + 1]).toBe("-c");
  const script = argv[sh + 2] ?? "";
  return { script, exitFile: argv[sh + 3] ?? "", lines: script.split("\n") };
}

function lineIndex(lines: string[], pred: (l: string) => boolean, what: string): number {
  const i = lines.findIndex(pred);
  expect(i, `no line ${what}`).toBeGreaterThanOrEqual(0);
  return i;
}

describe("crunArgv with slirp", () => {
  const argv = crunArgv({ root: "/r", layout: unified }, ["run", "x"], {
    recordExitTo: "/s/box/exit",
    slirp,
  });
  const { script, exitFile, lines } = monitor(argv);

  it("runs in a private mount namespace even on a unified host", () => {
    expect(argv.slice(0, 4)).toEqual(["unshare", "--mount", "--propagation", "private"]);
    expect(argv.slice(4, 6)).toEqual(["sh", "-c"]);
    expect(exitFile).toBe("/s/box/exit");
    expect(argv.slice(-CRUN.length)).toEqual(CRUN);
  });

  it("binds a fresh network namespace at the netns path", () => {
    expect(script).toContain(`unshare --net=${shellQuote(slirp.netns)}`);
  });

  it("starts slirp4netns on the netns path with a ready fd, logging to the log file", () => {
    const line = lines[lineIndex(lines, (l) => l.startsWith("slirp4netns "), "starting slirp4netns")] ?? "";
    expect(line).toContain("slirp4netns --configure");
    expect(line).toContain(`--netns-type=path ${shellQuote(slirp.netns)}`);
    expect(line).toMatch(/--ready-fd=\d+/);
    expect(line).toContain(`>${shellQuote(slirp.log)}`);
    expect(line.trimEnd().endsWith("&")).toBe(true);
    expect(script).toContain("slirp=$!");
  });

  it("waits for slirp4netns to be ready before crun runs", () => {
    const ready = lineIndex(lines, (l) => l.startsWith("read "), "waiting for ready");
    const crun = lines.indexOf('"$@"');
    expect(crun).toBeGreaterThan(ready);
    expect(lines.slice(0, crun).every((l) => !l.includes('"$@"'))).toBe(true);
  });

  it("kills slirp4netns after crun returns, before writing the exit file", () => {
    const crun = lines.indexOf('"$@"');
    const kill = lineIndex(lines, (l) => l.includes('kill "$slirp"'), "killing slirp4netns");
    const write = lineIndex(lines, (l) => l.includes('"$0.tmp"'), "writing the exit file");
    expect(crun).toBeGreaterThanOrEqual(0);
    expect(lines[crun + 1]).toBe("rc=$?");
    expect(kill).toBeGreaterThan(crun);
    expect(write).toBeGreaterThan(kill);
    expect(lines.at(-1)).toBe("exit $rc");
  });

  it("does not touch the cgroup tree on a unified host", () => {
    expect(script).not.toContain("umount");
  });

  it("is a valid shell script", () => {
    // -n: parse only, nothing runs.
    const r = spawnSync("sh", ["-n", "-c", script], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("quotes paths that hold a single quote", () => {
    const odd = { netns: "/s/it's box/netns", log: "/s/it's box/slirp.log" };
    const a = crunArgv({ root: "/r", layout: unified }, ["run", "x"], {
      recordExitTo: "/s/exit",
      slirp: odd,
    });
    const s = monitor(a).script;
    expect(s).toContain(`--net='/s/it'\\''s box/netns'`);
    expect(s).toContain(`--netns-type=path '/s/it'\\''s box/netns' tap0`);
    expect(s).toContain(`>'/s/it'\\''s box/slirp.log'`);
    expect(s).toContain(`'/s/it'\\''s box/netns.ready'`);
    // Every quote of a path is closed: the script holds no bare occurrence of the raw path.
    expect(s.replaceAll(`'\\''`, "")).not.toContain("it's");
    const r = spawnSync("sh", ["-n", "-c", s], { encoding: "utf8" });
    expect(r.status).toBe(0);
  });

  it("ignores slirp without recordExitTo", () => {
    const plain = crunArgv({ root: "/r", layout: unified }, ["exec", "x", "true"], { slirp });
    expect(plain).toEqual(["crun", "--root", "/r", "--cgroup-manager=cgroupfs", "exec", "x", "true"]);
    expect(plain.join(" ")).not.toContain("slirp4netns");
    const onHybrid = crunArgv({ root: "/r", layout: hybrid }, ["exec", "x", "true"], { slirp });
    expect(onHybrid.join(" ")).not.toContain("slirp4netns");
    expect(onHybrid.join(" ")).not.toContain("--net=");
  });

  it("on a hybrid host both hides the v2 tree and sets up slirp", () => {
    const a = crunArgv({ root: "/r", layout: hybrid }, ["run", "x"], {
      recordExitTo: "/s/box/exit",
      dropMounts: ["/s/mounts/a"],
      slirp,
    });
    expect(a.slice(0, 4)).toEqual(["unshare", "--mount", "--propagation", "private"]);
    const m = monitor(a);
    expect(m.lines[0]).toBe("umount -l /sys/fs/cgroup/unified || exit 125");
    expect(m.script).toContain("umount -l '/s/mounts/a'");
    expect(m.script).toContain("slirp4netns --configure");
    expect(m.script).toContain(`unshare --net=${shellQuote(slirp.netns)}`);
    expect(m.script).toContain('kill "$slirp"');
    // The unmounts come first: the netns binding then lives only in the cleaned namespace.
    const umount = lineIndex(m.lines, (l) => l.startsWith("umount -l /sys/fs/cgroup/unified"), "umount");
    const netns = lineIndex(m.lines, (l) => l.includes("unshare --net="), "netns");
    expect(netns).toBeGreaterThan(umount);
    expect(m.exitFile).toBe("/s/box/exit");
    expect(a.slice(-CRUN.length)).toEqual(CRUN);
  });
});
