import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { cgroupDirs, detectCgroupLayout } from "../../src/host/cgroups.js";
import {
  disposeApp,
  EMPTY_FOOTPRINT,
  execCollect,
  fileSha256,
  hostFootprint,
  missingHostFeature,
  runCollect,
  tempApp,
  treeHash,
} from "../helpers/host.js";

const skip = missingHostFeature();

describe.skipIf(skip)(`container sandboxes from the demo bundle${skip ? ` (skipped: ${skip})` : ""}`, () => {
  let app: App;
  let closure: string[];

  beforeAll(async () => {
    app = await tempApp();
    const bundle = await app.bundles.resolve({ bundle: "demo" });
    closure = execFileSync("nix-store", ["-qR", ...bundle.toplevels])
      .toString()
      .trim()
      .split("\n")
      .sort();
    await app.images.ensure(bundle.toplevels);
  });

  afterAll(async () => {
    if (app) await disposeApp(app);
  });

  it("runs the store python inside a container sandbox", async () => {
    const r = await runCollect(app, { bundle: "demo", command: ["python3", "-c", "print(6*7)"] });
    expect(r.stdout).toBe("42\n");
    expect(r.status).toBe(0);
  });

  it("returns the workload's exit status", async () => {
    const r = await runCollect(app, {
      bundle: "demo",
      command: ["python3", "-c", "import sys; sys.exit(7)"],
    });
    expect(r.status).toBe(7);
  });

  it("shows exactly the closure under /nix/store, and nothing else of the host", async () => {
    const r = await runCollect(app, {
      bundle: "demo",
      command: [
        "sh",
        "-c",
        "ls /nix/store; echo ---; ls /nix/var/nix/daemon-socket 2>&1; ls /etc/nix 2>&1; ls /home /var/lib 2>&1; echo done",
      ],
    });
    const [store, rest] = r.stdout.split("---\n");
    expect(store?.trim().split("\n").sort()).toEqual(closure.map((p) => p.slice("/nix/store/".length)));
    expect(rest).toMatch(/daemon-socket: No such file/);
    expect(rest).toMatch(/\/etc\/nix: No such file/);
    expect(rest).toMatch(/\/home: No such file/);
  });

  it("keeps hostile writes to /nix/store inside the sandbox", async () => {
    const python = closure.find((p) => p.includes("python3-host"));
    const before = { store: treeHash(closure), image: fileSha256(app.images.list()[0]?.path ?? "") };
    const hostile = [
      `echo pwned > ${python}/bin/python3.11`,
      `chmod 777 ${python}/lib`,
      `rm -f ${closure.find((p) => p.includes("glibc"))}/lib/libc.so.6`,
      "rm -rf /nix/store/*",
      "ls /nix/store | wc -l",
    ].join("; ");
    const r = await runCollect(app, { bundle: "demo", command: ["/bin/sh", "-c", hostile] });
    expect(r.stdout.trim()).toBe("0");
    expect(treeHash(closure)).toBe(before.store);
    expect(fileSha256(app.images.list()[0]?.path ?? "")).toBe(before.image);
    execFileSync("nix-store", ["--verify-path", ...closure]);
    const again = await runCollect(app, { bundle: "demo", command: ["python3", "-c", "print(6*7)"] });
    expect(again.stdout).toBe("42\n");
  });

  it("keeps written files across stop and start, and exec streams output and status", async () => {
    const sb = await app.service.create({ name: "keeper", bundle: "demo" });
    expect(sb.state).toBe("created");
    await app.service.start("keeper");
    const w = await execCollect(app, "keeper", [
      "sh",
      "-c",
      "echo home > /root/f; echo store > /nix/store/f; exit 3",
    ]);
    expect(w.status).toBe(3);
    expect((await app.service.stop("keeper", 2000)).state).toBe("stopped");
    await expect(app.service.exec("keeper", ["true"], { stdio: "pipe" })).rejects.toMatchObject({
      code: "INVALID_STATE",
    });
    expect((await app.service.start("keeper")).state).toBe("running");
    const r = await execCollect(app, "keeper", ["cat", "/root/f", "/nix/store/f"]);
    expect(r.stdout).toBe("home\nstore\n");
    await app.service.remove("keeper");
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("isolates: own pid, net, uts namespaces; no capabilities to mount; no new privileges", async () => {
    const script = [
      "echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' ')",
      "echo host=$(hostname)",
      "echo ifaces=$(ls /sys/class/net | tr '\\n' ' ')",
      "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr '\\t' ' '",
      "mount -t tmpfs x /tmp 2>/dev/null && echo mount=yes || echo mount=no",
      "mount -o remount,rw /nix/store 2>/dev/null && echo remount=yes || echo remount=no",
      "unshare -U true 2>/dev/null && echo userns=yes || echo userns=no",
      "mknod /tmp/sda b 8 0 2>/dev/null && echo mknod=yes || echo mknod=no",
    ].join("; ");
    const r = await runCollect(app, { name: "iso", bundle: "demo", command: ["sh", "-c", script] });
    expect(r.stdout).toMatch(/^pid1=sh -c /m);
    expect(r.stdout).toMatch(/^host=iso$/m);
    expect(r.stdout).toMatch(/^ifaces=lo\s*$/m);
    expect(r.stdout).toMatch(/^NoNewPrivs: 1$/m);
    expect(r.stdout).toMatch(/^Seccomp: 2$/m);
    const capEff = BigInt(`0x${/^CapEff: ([0-9a-f]+)$/m.exec(r.stdout)?.[1]}`);
    expect((capEff >> 21n) & 1n).toBe(0n); // CAP_SYS_ADMIN
    expect(r.stdout).toMatch(/^mount=no$/m);
    expect(r.stdout).toMatch(/^remount=no$/m);
    expect(r.stdout).toMatch(/^userns=no$/m);
    expect(r.stdout).toMatch(/^mknod=no$/m);
  });

  it("enforces the memory limit: a 200 MiB allocation under 64 MiB is killed", async () => {
    const r = await runCollect(app, {
      bundle: "demo",
      limits: { memory: "64Mi" },
      command: [
        "python3",
        "-c",
        "b = bytearray(200 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print('survived')",
      ],
    });
    expect(r.stdout).not.toContain("survived");
    expect(r.status).not.toBe(0);
  });

  it("contains a fork bomb with the pids limit", async () => {
    await app.service.create({ name: "bomb", bundle: "demo", limits: { pids: 40 } });
    await app.service.start("bomb");
    const p = await app.service.exec("bomb", ["sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 30"], {
      stdio: "pipe",
    });
    if (typeof p === "number") throw new Error("expected streams");
    p.stdout.resume();
    p.stderr.resume();
    const layout = detectCgroupLayout();
    const dirs = cgroupDirs(layout, `/openshell-nix/${app.layout.tag}/bomb`);
    const pidsDir = layout.mode === "unified" ? dirs[0] : dirs.find((d) => d.includes("/pids/"));
    const read = (file: string) => readFileSync(`${pidsDir}/${file}`, "utf8");
    // pids.events counts forks refused at the limit: the bomb really hit the wall.
    const refused = () => Number(/^max (\d+)$/m.exec(read("pids.events"))?.[1] ?? 0);
    let peak = 0;
    for (let i = 0; i < 100 && refused() === 0; i++) {
      peak = Math.max(peak, Number(read("pids.current")));
      await sleep(20);
    }
    expect(refused()).toBeGreaterThan(0);
    if (existsSync(`${pidsDir}/pids.peak`)) peak = Number(read("pids.peak"));
    expect(peak).toBeLessThanOrEqual(40);
    expect(execFileSync("sh", ["-c", "echo ok"]).toString()).toBe("ok\n");
    await app.service.remove("bomb");
    await p.exit;
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("long-lived runtime processes hold no copies of other images' mounts", async () => {
    // A second image: busybox alone is another closure.
    const busybox = closure.find((p) => p.includes("busybox")) as string;
    await app.service.create({ name: "other", bundle: "demo" });
    await app.service.start("other");
    await app.service.create({ name: "small", storePaths: [busybox], command: ["sleep", "600"] });
    await app.service.start("small");
    const p = await app.service.exec("other", ["sleep", "600"], { stdio: "pipe" });
    // The erofs mounts seen by the crun process (not its wrapper shell, still busy with its
    // prelude for a moment) whose command line contains `needle`.
    const erofsMountsOf = async (needle: string) => {
      let pid: string | undefined;
      for (let i = 0; i < 200 && !pid; i++) {
        pid = (hostFootprint(app).procs ?? [])
          .map((l) => l.split(" "))
          .find((w) => w[1] === "crun" && w.join(" ").includes(needle))?.[0];
        if (!pid) await sleep(10);
      }
      return readFileSync(`/proc/${pid}/mountinfo`, "utf8")
        .split("\n")
        .filter((l) => l.includes(" - erofs "))
        .map((l) => l.split(" ")[4] ?? "");
    };
    if (detectCgroupLayout().mode === "hybrid") {
      // On a hybrid host every crun call runs in a private mount namespace; a copy of another
      // image's mount there would pin that image (its loop device, a deleted file) for as long
      // as the workload runs. Only the hybrid layout has these namespaces.
      // "small" started after "other"'s image was mounted: its namespace keeps its own only.
      expect(await erofsMountsOf("sandboxes/small/bundle --pid-file")).toEqual([
        app.layout.mount(app.service.get("small").imageKey),
      ]);
      // The exec into "other" needs no image mount at all (it joins the running container).
      expect(await erofsMountsOf(" exec --process ")).toEqual([]);
    }
    await app.service.remove("small");
    expect(hostFootprint(app).loops).toHaveLength(1);
    await app.service.remove("other");
    if (typeof p !== "number") await p.exit;
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("leaves nothing on the host after run and rm", () => {
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });
});
