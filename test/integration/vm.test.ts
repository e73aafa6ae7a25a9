import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App, openApp } from "../../src/app.js";
import { ErrorCode } from "../../src/common/errors.js";
import { chooseAccel } from "../../src/drivers/vm/accel.js";
import type { QemuVmDriver } from "../../src/drivers/vm/qemu-vm-driver.js";
import {
  CLI,
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

const skip = missingHostFeature({
  tools: ["qemu-system-x86_64", "mkfs.ext4", "xz"],
  install: "apt-get install qemu-system-x86 e2fsprogs xz-utils",
});

// TCG: these machines have /dev/kvm, but nested KVM guests hang (see the probe test below).
describe.skipIf(skip)(`microVM sandboxes (TCG)${skip ? ` (skipped: ${skip})` : ""}`, () => {
  let app: App;
  let closure: string[];

  beforeAll(async () => {
    app = await tempApp({ vm: { accel: "tcg" } });
    const bundle = await app.bundles.resolve({ bundle: "demo" });
    closure = execFileSync("nix-store", ["-qR", ...bundle.toplevels])
      .toString()
      .trim()
      .split("\n")
      .sort();
    await app.images.ensure(bundle.toplevels);
  }, 120_000);

  afterAll(async () => {
    if (app) await disposeApp(app);
  });

  it("runs python in a VM, returns its status, and shows exactly the closure", async () => {
    const r = await runCollect(app, {
      kind: "vm",
      bundle: "demo",
      command: ["sh", "-c", "python3 -c 'print(6*7)'; echo ---; ls /nix/store; echo oops >&2; exit 3"],
    });
    const [answer, store] = r.stdout.split("---\n");
    expect(answer).toBe("42\n");
    expect(store?.trim().split("\n").sort()).toEqual(closure.map((p) => p.slice("/nix/store/".length)));
    expect(r.stderr).toBe("oops\n");
    expect(r.status).toBe(3);
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("reaches a host service through user-mode networking (host.openshell.internal)", async () => {
    const server = createServer((_req, res) => res.end("hello from the host"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const fetch = `import urllib.request; print(urllib.request.urlopen("http://host.openshell.internal:${port}/").read().decode())`;
      const r = await runCollect(app, { kind: "vm", bundle: "demo", command: ["python3", "-c", fetch] });
      expect(r.stdout).toBe("hello from the host\n");
      expect(r.status).toBe(0);
    } finally {
      server.close();
    }
  });

  it("keeps hostile writes inside the VM: the host store and the image do not change", async () => {
    const before = { store: treeHash(closure), image: fileSha256(app.images.list()[0]?.path ?? "") };
    const python = closure.find((p) => p.includes("python3-host"));
    const hostile = [
      `echo pwned > ${python}/bin/python3.11`,
      `chmod 777 ${python}/lib`,
      "rm -rf /nix/store/*",
      "echo left=$(ls /nix/store | wc -l)",
      "dd if=/dev/zero of=/dev/vda bs=512 count=1 2>/dev/null && echo raw=yes || echo raw=no",
    ].join("; ");
    const r = await runCollect(app, { kind: "vm", bundle: "demo", command: ["/bin/sh", "-c", hostile] });
    expect(r.stdout).toMatch(/^left=0$/m);
    expect(r.stdout).toMatch(/^raw=no$/m);
    expect(treeHash(closure)).toBe(before.store);
    expect(fileSha256(app.images.list()[0]?.path ?? "")).toBe(before.image);
  });

  it("keeps written files across stop and start on a sparse disk of its own; exec works", async () => {
    const script =
      "cat /root/f /nix/store/f 2>/dev/null; echo home > /root/f; echo store > /nix/store/f; echo up; exec sleep 600";
    await app.service.create({ name: "keeper", kind: "vm", bundle: "demo", command: ["sh", "-c", script] });
    await app.service.start("keeper");
    const logs = app.service.logPaths("keeper");
    // Ready means the workload was started, not that it has written yet: wait for it.
    for (let i = 0; i < 1200 && readFileSync(logs.stdout, "utf8") !== "up\n"; i++) await sleep(50);
    expect((await app.service.stop("keeper", 5_000)).state).toBe("stopped");
    await app.service.start("keeper");
    // start returns once the guest init reports ready; the workload's output follows.
    for (let i = 0; i < 1200 && !readFileSync(logs.stdout, "utf8").endsWith("up\nhome\nstore\nup\n"); i++) {
      await sleep(50);
    }
    const console = readFileSync(`${app.layout.sandbox("keeper")}/console.log`, "utf8").slice(-800);
    expect(readFileSync(logs.stdout, "utf8"), `guest console:\n${console}`).toBe("up\nhome\nstore\nup\n");
    const disk = `${app.layout.sandbox("keeper")}/upper.img`;
    const allocated = Number(execFileSync("du", ["-k", disk]).toString().split("\t")[0]) * 1024;
    expect(allocated).toBeLessThan(256 * 2 ** 20); // of a 4 GiB disk
    // qemu runs in the sandbox's cgroup, limited to guest memory plus its own overhead.
    const qemu = (hostFootprint(app).procs ?? []).find((l) => l.split(" ")[1] === "qemu-system-x86_64");
    const cgroupLines = readFileSync(`/proc/${qemu?.split(" ")[0]}/cgroup`, "utf8");
    const memoryCgroup = /^\d+:memory:(.*)$/m.exec(cgroupLines)?.[1] ?? /^0::(.*)$/m.exec(cgroupLines)?.[1];
    expect(memoryCgroup).toBe(`/openshell-nix/${app.layout.tag}/keeper`);
    const limitFile = cgroupLines.includes(":memory:")
      ? `/sys/fs/cgroup/memory${memoryCgroup}/memory.limit_in_bytes`
      : `/sys/fs/cgroup${memoryCgroup}/memory.max`;
    expect(Number(readFileSync(limitFile, "utf8"))).toBe((512 + 512) * 2 ** 20);
    // exec into the running VM: streamed output, its own exit status, the sandbox's files.
    const ex = await execCollect(app, "keeper", ["sh", "-c", "cat /root/f; echo oops >&2; exit 6"]);
    expect(ex).toEqual({ status: 6, stdout: "home\n", stderr: "oops\n" });
    // An exec whose client gives up (Ctrl-C) must not hand its status to the next one.
    const abandoned = await app.service.exec("keeper", ["sleep", "1"], { stdio: "pipe" });
    if (typeof abandoned === "number") throw new Error("expected streams");
    abandoned.exit.catch(() => undefined);
    abandoned.kill();
    const next = await execCollect(app, "keeper", ["sh", "-c", "exit 5"]);
    expect(next.status).toBe(5);
    await app.service.stop("keeper", 0);
    await expect(app.service.exec("keeper", ["true"], { stdio: "pipe" })).rejects.toMatchObject({
      code: ErrorCode.INVALID_STATE,
    });
    await app.service.remove("keeper");
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("cleans up after the CLI running a VM is killed", async () => {
    const cli = spawn(
      "node",
      [
        CLI,
        "--state-dir",
        app.layout.root,
        "--quiet",
        "run",
        "--kind",
        "vm",
        "--name",
        "crashy",
        "--",
        "sleep",
        "600",
      ],
      { stdio: "ignore", env: { ...process.env, OPENSHELL_NIX_ACCEL: "tcg" } },
    );
    for (
      let i = 0;
      i < 400 && app.service.list().find((s) => s.name === "crashy")?.state !== "running";
      i++
    ) {
      await sleep(25);
    }
    expect(app.service.get("crashy").state).toBe("running");
    cli.kill("SIGKILL");
    await new Promise((r) => cli.on("close", r));
    expect(hostFootprint(app).procs?.length).toBeGreaterThan(0); // qemu outlived its CLI
    const next = await openApp({ stateDir: app.layout.root, config: { vm: { accel: "tcg" } } });
    try {
      expect(next.service.needsReconcile()).toBe(true);
      await next.service.reconcile();
    } finally {
      next.close();
    }
    expect(app.service.list()).toEqual([]);
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("re-adopts a running VM after a restart, and kills a VM no row accounts for", async () => {
    await app.service.create({ name: "adopted", kind: "vm", bundle: "demo" });
    await app.service.start("adopted");
    const next = await openApp({ stateDir: app.layout.root, config: { vm: { accel: "tcg" } } });
    try {
      expect(next.service.needsReconcile()).toBe(false);
      expect(next.service.get("adopted").state).toBe("running");
      const ex = await execCollect(next, "adopted", ["hostname"]);
      expect(ex.stdout).toBe("adopted\n");
    } finally {
      next.close();
    }
    app.db.prepare("DELETE FROM sandboxes WHERE name = 'adopted'").run();
    const actions = await app.service.reconcile();
    expect(actions.join("\n")).toMatch(/killed orphan qemu of adopted/);
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("reports a corrupt image clearly and leaves nothing behind", async () => {
    const image = app.images.list()[0];
    if (!image) throw new Error("no image");
    const good = readFileSync(image.path);
    writeFileSync(image.path, Buffer.alloc(good.length));
    try {
      await expect(runCollect(app, { kind: "vm", bundle: "demo", command: ["true"] })).rejects.toMatchObject({
        code: ErrorCode.RUNTIME_FAILED,
        message: expect.stringMatching(/cannot mount the bundle image/),
      });
    } finally {
      writeFileSync(image.path, good);
    }
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("rejects an absurd memory size and a missing kernel with clear errors", async () => {
    await expect(
      runCollect(app, { kind: "vm", bundle: "demo", limits: { memory: "64Ti" }, command: ["true"] }),
    ).rejects.toMatchObject({
      code: ErrorCode.RUNTIME_FAILED,
      message: expect.stringMatching(/qemu: .*memory/i),
    });
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
    const other = await tempApp({ vm: { accel: "tcg", kernel: "/nonexistent/vmlinuz" } });
    try {
      await expect(
        other.service.create({ kind: "vm", bundle: "demo", command: ["true"] }),
      ).rejects.toMatchObject({
        code: ErrorCode.HOST_FEATURE_MISSING,
        message: expect.stringMatching(/nonexistent/),
      });
      expect(other.service.list()).toEqual([]);
      expect(hostFootprint(other)).toEqual(EMPTY_FOOTPRINT);
    } finally {
      await disposeApp(other);
    }
  });

  it("boots the same guest on q35 when microvm is not used, and says which machine it ran", async () => {
    const q35 = await tempApp({ vm: { accel: "tcg", machine: "q35" } });
    try {
      const r = await runCollect(q35, {
        kind: "vm",
        bundle: "demo",
        command: ["python3", "-c", "print(6*7)"],
      });
      expect(r.stdout).toBe("42\n");
      await q35.service.create({ name: "which", kind: "vm", bundle: "demo", command: ["true"] });
      await q35.service.start("which").catch(() => undefined); // "true" may end before ready
      expect(q35.service.driver("vm").describe?.(q35.service.get("which"))).toMatch(
        /^tcg .*, q35 \(configured\)/,
      );
      await q35.service.remove("which");
    } finally {
      await disposeApp(q35);
    }
  });

  it("probes KVM for real and caches the verdict (TCG when nested KVM hangs)", async () => {
    const driver = app.service.driver("vm") as QemuVmDriver;
    const { assets } = await driver.bootAssets();
    const dir = `${app.layout.root}/boot`;
    const first = await chooseAccel("auto", assets, dir);
    expect(["kvm", "tcg"]).toContain(first.accel);
    expect(first.reason).not.toBe("");
    if (existsSync("/dev/kvm")) {
      const t0 = performance.now();
      expect(await chooseAccel("auto", assets, dir)).toEqual(first);
      expect(performance.now() - t0).toBeLessThan(1000); // cached, not probed again
    }
    expect(hostFootprint(app).procs).toEqual([]);
  }, 60_000);
});
