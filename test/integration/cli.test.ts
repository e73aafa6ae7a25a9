import { mkdtempSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { openApp } from "../../src/app.js";
import { EMPTY_FOOTPRINT, hostFootprint, missingHostFeature, runCli } from "../helpers/host.js";

const skip = missingHostFeature();

describe.skipIf(skip)(`the openshell-nix CLI${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const stateDir = mkdtempSync("/var/tmp/osn-test-");

  const cli = (...args: string[]) => runCli(stateDir, args);

  afterAll(async () => {
    const app = await openApp({ stateDir, config: {} });
    for (const sb of app.service.list()) await app.service.remove(sb.name);
    await app.service.reconcile();
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
    app.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("demo: builds what is missing, runs python, prints 42 and the timing", async () => {
    const r = await cli("demo");
    expect(r.stdout).toBe("42\n");
    expect(r.stderr).toMatch(/create → first output \d+ ms/);
    expect(r.status).toBe(0);
  });

  it("run: streams output and exits with the workload's status", async () => {
    const r = await cli("run", "--", "sh", "-c", "echo out; echo err >&2; exit 7");
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toContain("err\n");
    expect(r.status).toBe(7);
  });

  it("run: a failure of openshell-nix itself exits 125, with the reason", async () => {
    const r = await cli("run", "--store-path", "/etc", "--", "true");
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/not a store path/);
  });

  it("exit codes mean something: 2 bad input, 3 not found, 4 conflict", async () => {
    expect((await cli("create", "--name", "Bad/Name", "--", "true")).status).toBe(2);
    expect((await cli("start", "ghost")).status).toBe(3);
    expect((await cli("rm", "ghost")).status).toBe(3);
    expect((await cli("stop", "--time", "soon", "ghost")).status).toBe(2);
    expect((await cli("create", "--name", "twice", "--", "true")).status).toBe(0);
    const again = await cli("create", "--name", "twice", "--", "true");
    expect(again.status).toBe(4);
    expect(again.stderr).toMatch(/already exists/);
    expect((await cli("rm", "twice")).status).toBe(0);
  });

  it("two CLI processes creating at once both succeed, and keep their own sandboxes", async () => {
    const [a, b] = await Promise.all([
      cli("create", "--name", "one", "--start"),
      cli("create", "--name", "two", "--start"),
    ]);
    expect([a.status, b.status]).toEqual([0, 0]);
    const ls = JSON.parse((await cli("ls", "--json")).stdout) as { name: string; state: string }[];
    expect(ls.map((s) => `${s.name}:${s.state}`).sort()).toEqual(["one:running", "two:running"]);
    const [ra, rb] = await Promise.all([cli("rm", "--force", "one"), cli("rm", "--force", "two")]);
    expect([ra.status, rb.status]).toEqual([0, 0]);
  });

  it("create, exec, logs, stop, start, inspect --json, rm", async () => {
    expect((await cli("create", "--name", "life", "--", "sh", "-c", "echo started; sleep 600")).status).toBe(
      0,
    );
    expect((await cli("start", "life")).status).toBe(0);
    const ex = await cli("exec", "life", "--", "sh", "-c", "echo inside; exit 5");
    expect(ex.stdout).toBe("inside\n");
    expect(ex.status).toBe(5);
    expect((await cli("logs", "life")).stdout).toBe("started\n");
    expect((await cli("stop", "--time", "0", "life")).status).toBe(0);
    const info = JSON.parse((await cli("inspect", "--json", "life")).stdout) as Record<string, unknown>;
    expect(info.state).toBe("stopped");
    expect(info.closure).toHaveLength(5);
    expect((await cli("start", "life")).status).toBe(0);
    expect((await cli("logs", "life")).stdout).toBe("started\nstarted\n");
    expect((await cli("rm", "life")).status).toBe(4);
    expect((await cli("rm", "--force", "life")).status).toBe(0);
  });

  it("stop of a `run` sandbox from another process ends the run, which then removes it", async () => {
    const running = cli("run", "--name", "stopme", "--", "sleep", "60");
    for (let i = 0; i < 200; i++) {
      const ls = JSON.parse((await cli("ls", "--json")).stdout) as { name: string; state: string }[];
      if (ls.some((s) => s.name === "stopme" && s.state === "running")) break;
      await sleep(25);
    }
    expect((await cli("stop", "--time", "1", "stopme")).status).toBe(0);
    const r = await running;
    expect(r.status).toBe(137); // sleep as pid 1 ignores SIGTERM: killed after the grace period
    expect((await cli("ls", "-q")).stdout).toBe("");
  });

  it("doctor: every required feature is present on a CI host, as JSON", async () => {
    const r = await cli("doctor", "--json");
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: { name: string; level: string }[] };
    expect(report.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        "privileges",
        "overlay filesystem",
        "erofs filesystem",
        "crun",
        "cgroups",
        "nix store",
      ]),
    );
    expect(report.ok).toBe(true);
    expect(r.status).toBe(0);
  });
});
