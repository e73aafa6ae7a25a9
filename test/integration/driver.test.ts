import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { standInSupervisor } from "../../bench/lib/nix-fixtures.js";
import { openApp } from "../../src/app.js";
import type { Config } from "../../src/config/schema.js";
import {
  type DriverSandbox,
  DriverSandboxSchema,
  type WatchSandboxesEvent,
} from "../../src/gen/openshell/compute/v1/compute_driver_pb.js";
import { type DriverClient, driverClient } from "../helpers/driver-client.js";
import { DriverDaemon } from "../helpers/driver-daemon.js";
import { EMPTY_FOOTPRINT, hostFootprint, missingHostFeature, runCli } from "../helpers/host.js";

interface Extra {
  name?: string;
  spec?: {
    environment?: Record<string, string>;
    resourceRequirements?: { gpu?: { count?: number } };
    template?: {
      image?: string;
      agentSocketPath?: string;
      resources?: { cpuLimit?: string; memoryLimit?: string };
      driverConfig?: JsonObject;
      platformConfig?: JsonObject;
    };
  };
}

const skip = missingHostFeature({
  tools: ["slirp4netns", "qemu-system-x86_64", "mkfs.ext4"],
  install: "apt-get install slirp4netns qemu-system-x86 e2fsprogs",
});

interface Report {
  auth: string;
  body: {
    argv: string[];
    cwd_arg: string;
    env: Record<string, string>;
    path: string;
    token: string | null;
    token_mode: string | null;
    token_in_environ: boolean;
    fhs: Record<string, boolean>;
    boots: number;
    hostname: string;
    uid: number;
    netns_ok: boolean;
    var_run_netns_ok: boolean;
    sandbox_owner: number;
    passwd_sandbox: boolean;
    resolv: string;
    fw_cfg_visible: boolean;
  };
}

/** The gateway's side of the contract: reports from stand-in supervisors, by sandbox id. */
class FakeGateway {
  readonly reports: Report[] = [];
  private server: Server | undefined;
  port = 0;

  async listen(): Promise<void> {
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        if (req.url === "/stand-in/report") {
          this.reports.push({ auth: req.headers.authorization ?? "", body: JSON.parse(body) });
        }
        res.end("ok");
      });
    });
    this.server = server;
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    this.port = (server.address() as AddressInfo).port;
  }

  reportsFor(id: string): Report[] {
    return this.reports.filter((r) => r.body.env.OPENSHELL_SANDBOX_ID === id);
  }

  close(): void {
    this.server?.close();
  }
}

/** One WatchSandboxes stream, its events kept in order. */
class Watch {
  readonly events: WatchSandboxesEvent[] = [];
  private readonly abort = new AbortController();
  ended = false;

  constructor(client: DriverClient) {
    void (async () => {
      try {
        for await (const e of client.watchSandboxes({}, { signal: this.abort.signal })) this.events.push(e);
      } catch {
        // aborted, or the daemon went away
      }
      this.ended = true;
    })();
  }

  snapshots(id: string): DriverSandbox[] {
    return this.events.flatMap((e) =>
      e.payload.case === "sandbox" && e.payload.value.sandbox?.id === id ? [e.payload.value.sandbox] : [],
    );
  }

  async until<T>(what: string, find: () => T | undefined, timeoutMs = 120_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = find();
      if (found !== undefined) return found;
      await sleep(25);
    }
    throw new Error(
      `timed out waiting for ${what}; events: ${JSON.stringify(this.events.slice(-5), jsonBig)}`,
    );
  }

  close(): void {
    this.abort.abort();
  }
}

function jsonBig(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? Number(v) : v;
}

function ready(sb: DriverSandbox | undefined): { status: string; reason: string } | undefined {
  const c = sb?.status?.conditions.find((x) => x.type === "Ready");
  return c ? { status: c.status, reason: c.reason } : undefined;
}

function suspended(sb: DriverSandbox | undefined): boolean {
  return sb?.status?.conditions.some((c) => c.type === "Suspended" && c.status === "True") === true;
}

async function grpcCode(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (e) {
    return ConnectError.from(e).code;
  }
}

describe.skipIf(skip)(`the ComputeDriver over its socket${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const dir = mkdtempSync("/var/tmp/osn-driver-");
  const stateDir = join(dir, "state");
  const gateway = new FakeGateway();
  let daemon: DriverDaemon;
  let client: DriverClient;
  let watch: Watch;
  let config: Config;

  beforeAll(async () => {
    await gateway.listen();
    // The demo bundle, and a stand-in supervisor built against its python.
    const app = await openApp({ stateDir, config: {} });
    const demo = await app.bundles.resolve({ bundle: "demo" });
    app.close();
    const supervisor = standInSupervisor(demo.toplevels[0] as string);
    config = {
      vm: { accel: "tcg" },
      driver: { gatewayEndpoint: `http://127.0.0.1:${gateway.port}`, supervisor },
    };
    daemon = new DriverDaemon(dir, stateDir, config);
    await daemon.start();
    client = driverClient(daemon.socket);
    watch = new Watch(client);
  }, 300_000);

  afterAll(async () => {
    watch?.close();
    if (client)
      for (const sb of (await client.listSandboxes({})).sandboxes)
        await client.deleteSandbox({ sandboxId: sb.id });
    await daemon?.stop();
    gateway.close();
    const app = await openApp({ stateDir, config: {} });
    await app.service.reconcile();
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
    app.close();
    rmSync(dir, { recursive: true, force: true });
  }, 300_000);

  const request = (id: string, kind: "container" | "vm", extra: Extra = {}) =>
    create(DriverSandboxSchema, {
      id,
      name: extra.name ?? `gw-${kind}`,
      workspace: "default",
      spec: {
        command: ["python3", "-c", "print(6*7)"],
        tty: false,
        sandboxToken: `token-for-${id}`,
        environment: { USER_VAR: "from spec" },
        ...(extra.spec?.environment ? { environment: extra.spec.environment } : {}),
        ...(extra.spec?.resourceRequirements
          ? { resourceRequirements: extra.spec.resourceRequirements }
          : {}),
        template: {
          image: "nix:demo",
          labels: { team: "nix" },
          environment: { TEMPLATE_VAR: "from template" },
          resources: { cpuLimit: "1", memoryLimit: "256Mi" },
          driverConfig: { kind },
          ...extra.spec?.template,
        },
      },
    });

  it("listens on a 0600 socket in a 0700 directory", () => {
    expect(statSync(daemon.socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "run")).mode & 0o777).toBe(0o700);
  });

  it("GetCapabilities: name, version, default image, gateway-managed lifecycle", async () => {
    const caps = await client.getCapabilities({});
    expect(caps.driverName).toBe("nix");
    expect(caps.driverVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(caps.defaultImage).toBe("nix:demo");
    expect(caps.gatewayManagesLifecycle).toBe(true);
  });

  it("GetGatewayListenerRequirements: a loopback listener, with a reason", async () => {
    const { requirements } = await client.getGatewayListenerRequirements({});
    expect(requirements).toHaveLength(1);
    expect(requirements[0]?.selector.case).toBe("loopbackInterface");
    expect(requirements[0]?.reason).not.toBe("");
  });

  it("ValidateSandboxCreate: accepts a good request without side effects, rejects each kind of bad one", async () => {
    expect(await grpcCode(client.validateSandboxCreate({ sandbox: request("v-ok", "container") }))).toBe(
      "ok",
    );
    expect(await grpcCode(client.validateSandboxCreate({ sandbox: request("v-ok", "vm") }))).toBe("ok");
    expect((await client.listSandboxes({})).sandboxes).toEqual([]);
    const bad = async (sandbox: DriverSandbox | undefined) =>
      grpcCode(client.validateSandboxCreate({ sandbox }));
    expect(await bad(undefined)).toBe(Code.InvalidArgument);
    expect(await bad(create(DriverSandboxSchema, { id: "no-spec" }))).toBe(Code.InvalidArgument);
    expect(await bad(request("bad/id", "container"))).toBe(Code.InvalidArgument);
    expect(
      await bad(request("q", "container", { spec: { template: { resources: { memoryLimit: "4Gx" } } } })),
    ).toBe(Code.InvalidArgument);
    expect(
      await bad(request("q", "container", { spec: { template: { resources: { cpuLimit: "lots" } } } })),
    ).toBe(Code.InvalidArgument);
    expect(await bad(request("c", "container", { name: "bad\u0007name" }))).toBe(Code.InvalidArgument);
    expect(await bad(request("c", "container", { spec: { environment: { A: "bell\u0007" } } }))).toBe(
      Code.InvalidArgument,
    );
    expect(await bad(request("c", "container", { spec: { environment: { "BAD-NAME": "x" } } }))).toBe(
      Code.InvalidArgument,
    );
    expect(
      await bad(
        request("k", "container", { spec: { template: { driverConfig: { kind: "container", cpu: 1 } } } }),
      ),
    ).toBe(Code.InvalidArgument);
    expect(
      await bad(request("k", "container", { spec: { template: { driverConfig: { kind: "pod" } } } })),
    ).toBe(Code.InvalidArgument);
    expect(
      await bad(
        request("p", "container", { spec: { template: { platformConfig: { runtime_class_name: "x" } } } }),
      ),
    ).toBe(Code.FailedPrecondition);
    expect(
      await bad(request("a", "container", { spec: { template: { agentSocketPath: "/run/agent.sock" } } })),
    ).toBe(Code.FailedPrecondition);
    expect(
      await bad(request("g", "container", { spec: { resourceRequirements: { gpu: { count: 1 } } } })),
    ).toBe(Code.FailedPrecondition);
    expect(
      await bad(request("i", "container", { spec: { template: { image: "nix:no-such-bundle" } } })),
    ).toBe(Code.FailedPrecondition);
    expect(
      await bad(
        request("i", "container", { spec: { template: { image: "ghcr.io/nvidia/openshell/base:latest" } } }),
      ),
    ).toBe(Code.FailedPrecondition);
    expect(
      await bad(request("m", "container", { spec: { template: { resources: { memoryLimit: "1Mi" } } } })),
    ).toBe(Code.InvalidArgument);
    expect((await client.listSandboxes({})).sandboxes).toEqual([]);
  });

  it("unknown ids: Get/Stop/Start are NOT_FOUND, Delete says deleted=false; no id is INVALID_ARGUMENT", async () => {
    expect(await grpcCode(client.getSandbox({ sandboxId: "nope" }))).toBe(Code.NotFound);
    expect(await grpcCode(client.stopSandbox({ sandboxId: "nope" }))).toBe(Code.NotFound);
    expect(await grpcCode(client.startSandbox({ sandboxId: "nope" }))).toBe(Code.NotFound);
    expect((await client.deleteSandbox({ sandboxId: "nope" })).deleted).toBe(false);
    expect(await grpcCode(client.getSandbox({}))).toBe(Code.InvalidArgument);
    expect(await grpcCode(client.stopSandbox({ sandboxName: "only-a-name" }))).toBe(Code.InvalidArgument);
  });

  it("Ensure/DeleteWorkspace succeed (nothing to make on this host)", async () => {
    expect(await grpcCode(client.ensureWorkspace({ workspace: "team-a" }))).toBe("ok");
    expect(await grpcCode(client.deleteWorkspace({ workspace: "team-a" }))).toBe("ok");
  });

  describe.each(["container", "vm"] as const)("%s sandboxes", (kind) => {
    const id = `c0ffee00-0000-4000-8000-00000000000${kind === "vm" ? "2" : "1"}`;

    it("Create returns before the sandbox runs; the watch shows pending, progress, then Ready", async () => {
      const t0 = Date.now();
      await client.createSandbox({ sandbox: request(id, kind) });
      const createMs = Date.now() - t0;
      expect(await grpcCode(client.createSandbox({ sandbox: request(id, kind) }))).toBe(Code.AlreadyExists);
      const first = await watch.until("a first snapshot", () => watch.snapshots(id)[0]);
      expect(ready(first)).toEqual({ status: "False", reason: "Starting" });
      const up = await watch.until("Ready=True", () =>
        watch.snapshots(id).find((s) => ready(s)?.status === "True"),
      );
      expect(up.name).toBe(`gw-${kind}`);
      expect(up.status?.instanceId).toBe(`os-${id}`);
      // Every snapshot before Ready used a transient reason only.
      const before = watch.snapshots(id).slice(0, watch.snapshots(id).indexOf(up));
      expect(before.every((s) => ready(s)?.reason === "Starting")).toBe(true);
      const progress = watch.events.flatMap((e) =>
        e.payload.case === "platformEvent" && e.payload.value.sandboxId === id ? [e.payload.value.event] : [],
      );
      expect(progress.map((e) => e?.metadata["openshell.progress.complete_step"]).filter(Boolean)).toEqual([
        "requesting_sandbox",
        "pulling_image",
        "starting_sandbox",
      ]);
      expect(progress.every((e) => e?.source === "nix" && e.type === "Normal")).toBe(true);
      expect(createMs).toBeLessThan(Date.now() - t0);
    }, 180_000);

    it("inside: the supervisor runs with the contract's environment, a 0600 token file, FHS tools, and reaches the gateway", async () => {
      const [report] = await watch.until("the stand-in's report", () => {
        const r = gateway.reportsFor(id);
        return r.length > 0 ? r : undefined;
      });
      const { body } = report as Report;
      expect(report?.auth).toBe(`Bearer token-for-${id}`);
      expect(body.argv.slice(1)).toEqual(["--workdir", "/sandbox"]);
      expect(body.env).toMatchObject({
        OPENSHELL_ENDPOINT: `http://host.openshell.internal:${gateway.port}`,
        OPENSHELL_SANDBOX_ID: id,
        OPENSHELL_SANDBOX: `gw-${kind}`,
        OPENSHELL_SSH_SOCKET_PATH: "/run/openshell/ssh.sock",
        OPENSHELL_SANDBOX_TOKEN_FILE: "/etc/openshell/auth/sandbox.jwt",
        OPENSHELL_LOG_LEVEL: "info",
      });
      expect(JSON.parse(body.env.OPENSHELL_MAIN_PROCESS_SPEC as string)).toEqual({
        version: 1,
        command: ["python3", "-c", "print(6*7)"],
        tty: false,
      });
      expect(JSON.parse(body.env.OPENSHELL_USER_ENVIRONMENT as string)).toEqual({
        TEMPLATE_VAR: "from template",
        USER_VAR: "from spec",
      });
      expect(body.token).toBe(`token-for-${id}\n`);
      expect(body.token_mode).toBe("0o600");
      expect(body.token_in_environ).toBe(false);
      expect(body.fhs).toMatchObject({
        "/bin/sh": true,
        "/usr/bin/env": true,
        "/usr/sbin/ip": true,
        "/sbin/ip": true,
      });
      expect(body.uid).toBe(0);
      expect(body.netns_ok).toBe(true);
      expect(body.var_run_netns_ok).toBe(true);
      expect(body.sandbox_owner).toBe(10001);
      expect(body.passwd_sandbox).toBe(true);
      expect(body.resolv).toBe("nameserver 10.0.2.3\n");
      // A VM's spec (the token in it) is not readable from fw_cfg once the init has read it.
      expect(body.fw_cfg_visible).toBe(false);
      expect(body.env).toMatchObject({
        OPENSHELL_SANDBOX_UID: "10001",
        OPENSHELL_SANDBOX_GID: "10001",
        OPENSHELL_OCI_IMAGE_USER: "",
      });
      expect(body.boots).toBe(1);
    }, 60_000);

    it("Get echoes the id and the gateway's name; List has it", async () => {
      const got = (await client.getSandbox({ sandboxId: id, sandboxName: "ignored" })).sandbox;
      expect(got?.id).toBe(id);
      expect(got?.name).toBe(`gw-${kind}`);
      expect(got?.workspace).toBe("default");
      expect(ready(got)).toEqual({ status: "True", reason: "BackendReady" });
      expect((await client.listSandboxes({})).sandboxes.map((s) => s.id)).toContain(id);
    });

    it("Stop twice is fine and reports Suspended, never a terminal reason; List still has it", async () => {
      const before = watch.snapshots(id).length;
      await client.stopSandbox({ sandboxId: id });
      await client.stopSandbox({ sandboxId: id });
      const got = (await client.getSandbox({ sandboxId: id })).sandbox;
      expect(suspended(got)).toBe(true);
      expect(ready(got)).toEqual({ status: "False", reason: "ContainerStopped" });
      expect((await client.listSandboxes({})).sandboxes.map((s) => s.id)).toContain(id);
      await watch.until("a Suspended snapshot", () => watch.snapshots(id).find(suspended));
      await sleep(1_500); // a poll round: nothing it notices may turn the stop into an error
      const during = watch.snapshots(id).slice(before);
      expect(during.every((s) => ["BackendReady", "ContainerStopped"].includes(ready(s)?.reason ?? ""))).toBe(
        true,
      );
      expect(watch.events.some((e) => e.payload.case === "deleted" && e.payload.value.sandboxId === id)).toBe(
        false,
      );
    }, 60_000);

    it("Start twice is fine; the sandbox's files survived the stop", async () => {
      const reports = gateway.reportsFor(id).length;
      await client.startSandbox({ sandboxId: id });
      await client.startSandbox({ sandboxId: id });
      expect(ready((await client.getSandbox({ sandboxId: id })).sandbox)).toEqual({
        status: "True",
        reason: "BackendReady",
      });
      const again = await watch.until("a second report", () => gateway.reportsFor(id)[reports]);
      expect(again.body.boots).toBe(2);
    }, 120_000);

    it("a reopened watch replays a full snapshot", async () => {
      const second = new Watch(client);
      try {
        const replayed = await second.until("the replay", () => second.snapshots(id)[0]);
        expect(ready(replayed)?.status).toBe("True");
      } finally {
        second.close();
      }
    });
  });

  it("a supervisor that exits on its own is an Error (terminal reason), not a stop", async () => {
    const id = "exits-0001";
    await client.createSandbox({
      sandbox: request(id, "container", { spec: { environment: { STANDIN_EXIT: "3" } } }),
    });
    const gone = await watch.until("ProcessExited", () =>
      watch.snapshots(id).find((s) => ready(s)?.reason === "ProcessExited"),
    );
    expect(ready(gone)?.status).toBe("False");
    expect(suspended(gone)).toBe(false);
    expect((await client.deleteSandbox({ sandboxId: id })).deleted).toBe(true);
  }, 60_000);

  it("a VM asking for more memory than the host has is refused at validation", async () => {
    const huge = request("huge-0001", "vm", { spec: { template: { resources: { memoryLimit: "100Ti" } } } });
    expect(await grpcCode(client.validateSandboxCreate({ sandbox: huge }))).toBe(Code.FailedPrecondition);
    expect(await grpcCode(client.createSandbox({ sandbox: huge }))).toBe(Code.FailedPrecondition);
    expect(await grpcCode(client.getSandbox({ sandboxId: "huge-0001" }))).toBe(Code.NotFound);
  });

  it("a failed provisioning is reported with a terminal reason and leaves nothing behind", async () => {
    // A second daemon (own state and socket) whose guest kernel is missing: validation cannot
    // know, the VM's provisioning fails.
    const other = new DriverDaemon(join(dir, "broken"), join(dir, "broken", "state"), {
      ...config,
      vm: { accel: "tcg", kernel: "/nonexistent/vmlinuz" },
      // As the NixOS module configures it: the daemon's group may use the socket.
      driver: { ...config.driver, socketMode: "0660" },
    });
    await other.start();
    expect(statSync(other.socket).mode & 0o777).toBe(0o660);
    const c = driverClient(other.socket);
    const w = new Watch(c);
    try {
      await c.createSandbox({ sandbox: request("fails-0001", "vm") });
      const failed = await w.until("ProvisioningFailed", () =>
        w.snapshots("fails-0001").find((s) => ready(s)?.reason === "ProvisioningFailed"),
      );
      expect(ready(failed)?.status).toBe("False");
      expect(failed.status?.conditions[0]?.message).toMatch(/vmlinuz|kernel/);
      expect(
        w.events.some((e) => e.payload.case === "platformEvent" && e.payload.value.event?.type === "Warning"),
      ).toBe(true);
      expect((await c.deleteSandbox({ sandboxId: "fails-0001" })).deleted).toBe(true);
    } finally {
      w.close();
      await other.stop();
    }
    const app = await openApp({ stateDir: join(dir, "broken", "state"), config: {} });
    expect(app.service.list()).toEqual([]);
    expect(hostFootprint(app)).toEqual(EMPTY_FOOTPRINT);
    app.close();
  }, 60_000);

  it("a second daemon on the same state directory refuses to start and changes nothing", async () => {
    const second = new DriverDaemon(join(dir, "second"), stateDir, config);
    await expect(second.start()).rejects.toThrow(/another openshell-nix serve uses/);
    expect((await client.getCapabilities({})).driverName).toBe("nix");
  });

  it("Delete and Stop during provisioning do not wait for a sandbox nobody wants", async () => {
    await client.createSandbox({ sandbox: request("del-early", "vm") });
    expect((await client.deleteSandbox({ sandboxId: "del-early" })).deleted).toBe(true);
    const deletingAt = watch.snapshots("del-early").findIndex((s) => s.status?.deleting);
    expect(deletingAt).toBeGreaterThanOrEqual(0);
    expect(watch.snapshots("del-early").some((s) => ready(s)?.status === "True")).toBe(false);
    await watch.until("deleted", () =>
      watch.events.find((e) => e.payload.case === "deleted" && e.payload.value.sandboxId === "del-early"),
    );
    await client.createSandbox({ sandbox: request("stop-early", "vm") });
    await client.stopSandbox({ sandboxId: "stop-early" });
    // Depending on whether the stop arrived before the start began, it was never started or
    // started and stopped; either way it is stopped now, and nothing said it failed.
    const got = (await client.getSandbox({ sandboxId: "stop-early" })).sandbox;
    expect(suspended(got)).toBe(true);
    const reasons = watch.snapshots("stop-early").map((s) => ready(s)?.reason);
    expect(reasons.every((r) => r === "Starting" || r === "BackendReady" || r === "ContainerStopped")).toBe(
      true,
    );
    await client.startSandbox({ sandboxId: "stop-early" });
    expect(ready((await client.getSandbox({ sandboxId: "stop-early" })).sandbox)?.status).toBe("True");
    expect((await client.deleteSandbox({ sandboxId: "stop-early" })).deleted).toBe(true);
  }, 120_000);

  it("restart: running sandboxes are re-adopted, stopped ones stay stopped", async () => {
    const running = "c0ffee00-0000-4000-8000-000000000001";
    const stopped = "c0ffee00-0000-4000-8000-000000000002";
    await client.stopSandbox({ sandboxId: stopped });
    const reportsBefore = gateway.reports.length;
    watch.close();
    expect(await daemon.stop("SIGTERM")).toBe(0);
    await daemon.start();
    client = driverClient(daemon.socket);
    watch = new Watch(client);
    const list = (await client.listSandboxes({})).sandboxes;
    expect(ready(list.find((s) => s.id === running))).toEqual({ status: "True", reason: "BackendReady" });
    expect(suspended(list.find((s) => s.id === stopped))).toBe(true);
    await watch.until("the replay after restart", () => watch.snapshots(stopped)[0]);
    // The running supervisor was not restarted (it would have reported again).
    expect(gateway.reports.length).toBe(reportsBefore);
    // A crash (SIGKILL) of the daemon is no different.
    watch.close();
    await daemon.stop("SIGKILL");
    await daemon.start();
    client = driverClient(daemon.socket);
    watch = new Watch(client);
    expect(ready((await client.getSandbox({ sandboxId: running })).sandbox)?.status).toBe("True");
    expect(suspended((await client.getSandbox({ sandboxId: stopped })).sandbox)).toBe(true);
  }, 120_000);

  it("a sandbox whose monitor died with the old daemon (a service manager killing its cgroup) is started again", async () => {
    const id = "c0ffee00-0000-4000-8000-000000000001";
    const reports = gateway.reportsFor(id).length;
    watch.close();
    await daemon.stop("SIGKILL");
    const app = await openApp({ stateDir, config });
    const monitor = app.service.find(`os-${id}`)?.monitor;
    app.close();
    if (!monitor) throw new Error("no monitor recorded");
    process.kill(-monitor.pid, "SIGKILL"); // its whole process group: shell, crun, slirp4netns
    await daemon.start();
    expect(daemon.log).toContain(`restarting ${id}, whose monitor was killed`);
    client = driverClient(daemon.socket);
    watch = new Watch(client);
    await watch.until("Ready again", () => watch.snapshots(id).find((s) => ready(s)?.status === "True"));
    const again = await watch.until("a new report", () => gateway.reportsFor(id)[reports]);
    expect(again.body.boots).toBeGreaterThan(1);
  }, 120_000);

  it("a watch opened during provisioning replays the pending sandbox with the others; a dropped watch harms nothing", async () => {
    await client.createSandbox({ sandbox: request("replay-vm", "vm") });
    const late = new Watch(client);
    try {
      const pending = await late.until("the pending replay", () => late.snapshots("replay-vm")[0]);
      expect(ready(pending)).toEqual({ status: "False", reason: "Starting" });
      const replayedIds = late.events.flatMap((e) =>
        e.payload.case === "sandbox" ? [e.payload.value.sandbox?.id] : [],
      );
      expect(replayedIds).toContain("c0ffee00-0000-4000-8000-000000000001");
      expect(replayedIds).toContain("c0ffee00-0000-4000-8000-000000000002");
    } finally {
      late.close(); // a client that goes away mid-stream
    }
    expect((await client.getCapabilities({})).driverName).toBe("nix");
    await watch.until("replay-vm Ready", () =>
      watch.snapshots("replay-vm").find((s) => ready(s)?.status === "True"),
    );
    expect((await client.deleteSandbox({ sandboxId: "replay-vm" })).deleted).toBe(true);
  }, 120_000);

  it("concurrent creates all come up", async () => {
    const ids = ["many-1", "many-2", "many-3"];
    await Promise.all(ids.map((id) => client.createSandbox({ sandbox: request(id, "container") })));
    for (const id of ids) {
      await watch.until(`${id} Ready`, () => watch.snapshots(id).find((s) => ready(s)?.status === "True"));
    }
    await Promise.all(ids.map((id) => client.deleteSandbox({ sandboxId: id })));
    expect(
      (await client.listSandboxes({})).sandboxes.map((s) => s.id).filter((id) => ids.includes(id)),
    ).toEqual([]);
  }, 120_000);

  it("a daemon stopped (SIGTERM) or killed (SIGKILL) in the middle of a create finishes it after a restart", async () => {
    const restart = async (signal: "SIGTERM" | "SIGKILL") => {
      watch.close();
      const code = await daemon.stop(signal);
      await daemon.start();
      client = driverClient(daemon.socket);
      watch = new Watch(client);
      return code;
    };
    // SIGTERM: the daemon drains, i.e. the provisioning in flight completes before it exits.
    await client.createSandbox({ sandbox: request("drain-0001", "vm") });
    expect(await restart("SIGTERM")).toBe(0);
    expect(daemon.previousLogs).toMatch(/SIGTERM: draining \(1 operations in flight\)/);
    expect(ready((await client.getSandbox({ sandboxId: "drain-0001" })).sandbox)?.status).toBe("True");
    // SIGKILL: nothing drains; the next daemon resumes from the recorded request.
    // At once: the VM takes seconds to provision, so the kill lands in the middle of it.
    await client.createSandbox({ sandbox: request("crash-0001", "vm") });
    await restart("SIGKILL");
    expect(daemon.log).toContain("resuming the provisioning of crash-0001");
    await watch.until("crash-0001 Ready after the restart", () =>
      watch.snapshots("crash-0001").find((s) => ready(s)?.status === "True"),
    );
    for (const id of ["drain-0001", "crash-0001"])
      expect((await client.deleteSandbox({ sandboxId: id })).deleted).toBe(true);
  }, 240_000);

  it("the CLI drives sandboxes through the daemon, and leaves the gateway's sandboxes to the gateway", async () => {
    const cli = (...args: string[]) => runCli(stateDir, ["--config", daemon.configFile, ...args]);
    const drv = (...args: string[]) => cli("driver", "--socket", daemon.socket, ...args);
    const made = await drv("create", "--id", "cli-0001", "--kind", "container", "--", "true");
    expect(made.stdout).toBe("cli-0001\n");
    expect(made.stderr).toMatch(/running cli-0001 in \d+ ms/);
    expect(made.status).toBe(0);
    const listed = JSON.parse((await drv("ls", "--json")).stdout) as { id: string; state: string }[];
    expect(listed.find((s) => s.id === "cli-0001")?.state).toBe("running");
    // The plain lifecycle verbs refuse: a stop behind the gateway's back would look like a crash.
    const refused = await cli("stop", "os-cli-0001");
    expect(refused.status).toBe(4);
    expect(refused.stderr).toMatch(/belongs to the OpenShell gateway/);
    expect((await cli("ls")).stdout).toContain("os-cli-0001");
    expect((await drv("stop", "cli-0001")).status).toBe(0);
    expect(JSON.parse((await drv("get", "cli-0001")).stdout).state).toBe("stopped");
    expect((await drv("rm", "cli-0001")).status).toBe(0);
    expect((await drv("rm", "cli-0001")).status).toBe(3);
    const down = await cli("driver", "--socket", join(dir, "nobody.sock"), "ls");
    expect(down.status).toBe(5);
    expect(down.stderr).toMatch(/no driver answers/);
  }, 120_000);

  it("Delete removes everything, reports `deleted` on the watch, then Get is NOT_FOUND", async () => {
    for (const id of ["c0ffee00-0000-4000-8000-000000000001", "c0ffee00-0000-4000-8000-000000000002"]) {
      expect((await client.deleteSandbox({ sandboxId: id })).deleted).toBe(true);
      await watch.until("the deleted event", () =>
        watch.events.find((e) => e.payload.case === "deleted" && e.payload.value.sandboxId === id),
      );
      // `deleted` only once the sandbox is really gone from the host.
      expect(existsSync(join(stateDir, "sandboxes", `os-${id}`))).toBe(false);
      expect(await grpcCode(client.getSandbox({ sandboxId: id }))).toBe(Code.NotFound);
      expect((await client.deleteSandbox({ sandboxId: id })).deleted).toBe(false);
    }
    expect((await client.listSandboxes({})).sandboxes).toEqual([]);
  }, 60_000);
});
