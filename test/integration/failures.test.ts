import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App, openApp } from "../../src/app.js";
import { ErrorCode } from "../../src/common/errors.js";
import {
  CLI,
  disposeApp,
  EMPTY_FOOTPRINT,
  execCollect,
  hostFootprint,
  missingHostFeature,
  runCollect,
  tempApp,
} from "../helpers/host.js";

const skip = missingHostFeature();

describe.skipIf(skip)(`bad input, failures and crash recovery${skip ? ` (skipped: ${skip})` : ""}`, () => {
  let app: App;
  let demo: string;

  beforeAll(async () => {
    app = await tempApp();
    demo = (await app.bundles.resolve({ bundle: "demo" })).toplevels[0] as string;
    await app.images.ensure([demo]);
  });

  afterAll(async () => {
    if (app) await disposeApp(app);
  });

  const snapshot = () => ({
    host: hostFootprint(app),
    sandboxes: app.service.list().map((s) => `${s.name}:${s.state}`),
    images: app.images.list().map((i) => i.key),
  });

  it.each([
    ["a sandbox name with a slash", { name: "a/b", bundle: "demo" }, ErrorCode.INVALID_NAME],
    ["path traversal in a sandbox name", { name: "../../etc", bundle: "demo" }, ErrorCode.INVALID_NAME],
    ["an empty sandbox name", { name: "", bundle: "demo" }, ErrorCode.INVALID_NAME],
    ["path traversal in a bundle name", { bundle: "../../etc/passwd" }, ErrorCode.INVALID_NAME],
    ["an unknown bundle", { bundle: "nope" }, ErrorCode.NOT_FOUND],
    [
      "a missing store path",
      { storePaths: ["/nix/store/00000000000000000000000000000000-missing"] },
      ErrorCode.STORE_PATH_MISSING,
    ],
    ["a non-store path", { storePaths: ["/etc"] }, ErrorCode.NOT_A_STORE_PATH],
    ["a path below a store path", { storePaths: ["/nix/store/x/../../etc"] }, ErrorCode.NOT_A_STORE_PATH],
    ["a relative non-store path", { storePaths: ["./nothing-here"] }, ErrorCode.NOT_A_STORE_PATH],
    ["an absurd memory limit", { bundle: "demo", limits: { memory: "1Ki" } }, ErrorCode.INVALID_ARGUMENT],
    ["a malformed memory limit", { bundle: "demo", limits: { memory: "lots" } }, ErrorCode.INVALID_ARGUMENT],
    ["a bad environment name", { bundle: "demo", env: { "A=B": "x" } }, ErrorCode.INVALID_ARGUMENT],
  ])("rejects %s with a clear error and changes nothing", async (_what, req, code) => {
    const before = snapshot();
    await expect(app.service.create({ ...req, command: ["true"] })).rejects.toMatchObject({ code });
    expect(snapshot()).toEqual(before);
  });

  it("refuses a duplicate name and leaves the first sandbox alone", async () => {
    await app.service.create({ name: "dup", bundle: "demo", command: ["true"] });
    const before = snapshot();
    await expect(
      app.service.create({ name: "dup", bundle: "demo", command: ["true"] }),
    ).rejects.toMatchObject({
      code: ErrorCode.ALREADY_EXISTS,
    });
    expect(snapshot()).toEqual(before);
    await app.service.remove("dup");
  });

  it("reports unknown sandboxes as NOT_FOUND", async () => {
    await expect(app.service.start("ghost")).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    await expect(app.service.remove("ghost")).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
  });

  it("cleans up completely after a failed create (corrupt image)", async () => {
    const image = app.images.list()[0];
    if (!image) throw new Error("no image");
    const good = await import("node:fs").then((fs) => fs.readFileSync(image.path));
    writeFileSync(image.path, Buffer.alloc(good.length));
    try {
      await expect(
        app.service.create({ name: "broken", bundle: "demo", command: ["true"] }),
      ).rejects.toMatchObject({
        code: ErrorCode.COMMAND_FAILED,
      });
      expect(app.service.list()).toEqual([]);
      expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
    } finally {
      writeFileSync(image.path, good);
    }
  });

  it("a start that crun refuses reports it as ours, leaves the sandbox as it was and nothing running", async () => {
    await app.service.create({ name: "refused", bundle: "demo", command: ["true"] });
    writeFileSync(`${app.layout.sandbox("refused")}/bundle/config.json`, "{ not json");
    await expect(app.service.start("refused")).rejects.toMatchObject({ code: ErrorCode.RUNTIME_FAILED });
    expect(app.service.get("refused").state).toBe("created");
    const attached = await app.service.driver("container").startAttached(app.service.get("refused"));
    await expect(attached.exit).rejects.toMatchObject({ code: ErrorCode.RUNTIME_FAILED });
    const left = hostFootprint(app);
    expect([left.crun, left.procs, left.cgroups]).toEqual([[], [], []]);
    await app.service.remove("refused");
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("starts a stopped sandbox after a host reboot took its image mount away", async () => {
    await app.service.create({ name: "reboot", bundle: "demo" });
    await app.service.start("reboot");
    await app.service.stop("reboot", 0);
    // A reboot: the loop mount is gone, the rows (and the mount reference) are not.
    execFileSync("umount", [app.layout.mount(app.service.get("reboot").imageKey)]);
    await app.service.start("reboot");
    const r = await execCollect(app, "reboot", ["python3", "-c", "print(6*7)"]);
    expect(r.stdout).toBe("42\n");
    await app.service.remove("reboot");
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("reports a workload that cannot start (no such program) clearly, and cleans up", async () => {
    await expect(runCollect(app, { bundle: "demo", command: ["no-such-program"] })).rejects.toMatchObject({
      code: ErrorCode.RUNTIME_FAILED,
      message: expect.stringMatching(/no-such-program.*not found/),
    });
    expect(app.service.list()).toEqual([]);
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("finishes a create whose process died: the half-made sandbox is removed", async () => {
    await app.service.create({ name: "half", bundle: "demo", command: ["true"] });
    // A pid that existed once and is gone now stands for the crashed CLI.
    const dead = spawn("true");
    await new Promise((r) => dead.on("close", r));
    app.db
      .prepare(
        "UPDATE sandboxes SET state = 'creating', owner_pid = ?, owner_start = '1' WHERE name = 'half'",
      )
      .run(dead.pid);
    expect(app.service.needsReconcile()).toBe(true);
    const actions = await app.service.reconcile();
    expect(actions.join("\n")).toMatch(/removed sandbox half/);
    expect(app.service.list()).toEqual([]);
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("cleans up after the CLI running a sandbox is killed", async () => {
    const cli = spawn(
      "node",
      [CLI, "--state-dir", app.layout.root, "--quiet", "run", "--name", "crashy", "--", "sleep", "60"],
      {
        stdio: "ignore",
      },
    );
    for (let i = 0; i < 200 && app.service.list().find((s) => s.name === "crashy")?.state !== "running"; i++)
      await sleep(25);
    expect(app.service.get("crashy").state).toBe("running");
    // Running is recorded as crun starts; wait for its container to exist before the crash.
    for (let i = 0; i < 200 && !hostFootprint(app).crun?.includes("crashy"); i++) await sleep(25);
    cli.kill("SIGKILL");
    await new Promise((r) => cli.on("close", r));
    // The workload still runs; the next process to open the state notices and cleans up.
    expect(hostFootprint(app).crun).toEqual(["crashy"]);
    const next = await openApp({ stateDir: app.layout.root, config: {} });
    try {
      expect(next.service.needsReconcile()).toBe(true);
      await next.service.reconcile();
    } finally {
      next.close();
    }
    expect(app.service.list()).toEqual([]);
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("re-adopts a running sandbox and keeps a stopped one stopped across a restart", async () => {
    await app.service.create({ name: "alive", bundle: "demo" });
    await app.service.start("alive");
    await app.service.create({ name: "resting", bundle: "demo" });
    await app.service.start("resting");
    await app.service.stop("resting", 0);
    const next = await openApp({ stateDir: app.layout.root, config: {} });
    try {
      expect(next.service.needsReconcile()).toBe(false);
      expect(await next.service.reconcile()).toEqual([]);
      expect(next.service.get("alive").state).toBe("running");
      expect(next.service.get("resting").state).toBe("stopped");
      expect(
        await next.service
          .exec("alive", ["true"], { stdio: "pipe" })
          .then((p) => (typeof p === "number" ? p : p.exit)),
      ).toBe(0);
    } finally {
      next.close();
    }
    await app.service.remove("alive");
    await app.service.remove("resting");
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("removes resources no row accounts for (orphans)", async () => {
    await app.service.create({ name: "orphan", bundle: "demo" });
    await app.service.start("orphan");
    // Lose the row, as if the database had been restored from an older copy.
    app.db.prepare("DELETE FROM sandboxes WHERE name = 'orphan'").run();
    const actions = await app.service.reconcile();
    expect(actions.join("\n")).toMatch(/orphan crun container orphan/);
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
  });

  it("removes a half-written image and the GC roots of a crashed build", async () => {
    // What a build killed during mkfs leaves: a temporary image of a dead pid, a staging dir,
    // and GC roots for an image that was never recorded.
    const dead = spawn("true");
    await new Promise((r) => dead.on("close", r));
    const key = "0123456789abcdef0123456789abcdef";
    const stale = `${app.layout.imagesDir}/${key}.erofs.tmp-${dead.pid}`;
    const stage = `${app.layout.tmpDir}/image-${key}-${dead.pid}`;
    const roots = `${app.layout.gcrootsDir}/${key}`;
    writeFileSync(stale, "partial");
    mkdirSync(`${stage}/stage`, { recursive: true });
    mkdirSync(roots);
    symlinkSync(demo, `${roots}/0`);
    expect(app.service.needsReconcile()).toBe(true);
    const actions = (await app.service.reconcile()).join("\n");
    expect(actions).toMatch(/stale temporary/);
    expect(actions).toMatch(/GC roots of unfinished image/);
    for (const p of [stale, stage, roots]) expect(existsSync(p)).toBe(false);
    expect(app.service.needsReconcile()).toBe(false);
  });
});
