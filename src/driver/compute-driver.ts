import { existsSync, statSync } from "node:fs";
import { totalmem } from "node:os";
import { delimiter, join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { App } from "../app.js";
import { ErrorCode, OsnError } from "../common/errors.js";
import { VERSION } from "../common/version.js";
import { formatBytes, parseBytes } from "../config/quantity.js";
import {
  type ComputeDriver,
  type DriverSandbox,
  DriverSandboxSchema,
  type WatchSandboxesEvent,
  WatchSandboxesEventSchema,
} from "../gen/openshell/compute/v1/compute_driver_pb.js";
import { isStorePath } from "../nix/store-path.js";
import type { CreateRequest } from "../sandbox/sandbox-service.js";
import type { Sandbox } from "../sandbox/types.js";
import { type DriverRecord, DriverRepo } from "../state/driver-repo.js";
import { driverStatus } from "./conditions.js";
import { toConnectError } from "./grpc-status.js";
import { type DriverPlan, planFromDriverSandbox, requestId } from "./sandbox-request.js";
import { supervisorLaunch } from "./supervisor-contract.js";
import { WatchHub } from "./watch-hub.js";

export const DEFAULT_IMAGE = "nix:demo";
const SUPERVISOR = "bin/openshell-sandbox";
/** How often sandboxes are looked at for changes nobody announced (a workload that ended). */
const POLL_MS = 1_000;
const STOP_GRACE_MS = 10_000;

type Step = "requesting_sandbox" | "pulling_image" | "starting_sandbox";

/**
 * openshell.compute.v1.ComputeDriver over the sandbox service: the gateway's ids and intents
 * in the driver_sandboxes table, the sandboxes themselves in the service, and a watch stream
 * fed by every change this daemon makes plus a poll for the changes it does not (a workload
 * that exits, a CLI that stops a sandbox). Operations on one id run one at a time.
 */
export class NixComputeDriver {
  readonly repo: DriverRepo;
  private readonly hub = new WatchHub<WatchSandboxesEvent>();
  private readonly ops = new Map<string, Promise<unknown>>();
  private readonly published = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  /** Set by drain: new requests are refused (UNAVAILABLE), so the drain has an end. */
  private draining = false;
  private readonly log = (line: string) => process.stderr.write(`openshell-nix serve: ${line}\n`);

  constructor(private readonly app: App) {
    this.repo = new DriverRepo(app.db);
  }

  get name(): string {
    return this.app.config.driver?.name ?? "nix";
  }

  /** Finish what a previous daemon left half-done, then watch for changes. */
  async startBackground(): Promise<string[]> {
    const actions: string[] = [];
    if (this.app.service.needsReconcile()) actions.push(...(await this.app.service.reconcile()));
    for (const rec of this.repo.list()) {
      if (rec.phase === "deleting") {
        void this.serial(rec.id, () => this.finishDelete(rec.id));
        actions.push(`finishing the delete of ${rec.id}`);
      } else if (rec.phase === "provisioning") {
        void this.serial(rec.id, () => this.provision(rec.id));
        actions.push(`resuming the provisioning of ${rec.id}`);
      } else if (rec.phase === "active" && rec.intent === "running") {
        // Stopped with no exit status: its monitor was killed (a service manager that killed
        // the old daemon's cgroup, a host reboot), not ended by its workload. Bring it back.
        const sb = this.app.service.find(rec.sandbox);
        if (sb?.state === "stopped" && sb.exitCode === null) {
          void this.serial(rec.id, () => this.start(rec.id)).catch((err) =>
            this.log(`restarting ${rec.id} failed: ${OsnError.from(err).message}`),
          );
          actions.push(`restarting ${rec.id}, whose monitor was killed`);
        }
      }
    }
    for (const rec of this.repo.list()) this.published.set(rec.id, JSON.stringify(this.snapshot(rec)));
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
    return actions;
  }

  /** Stop watching and wait (bounded) for operations in flight; sandboxes keep running. */
  async drain(deadlineMs: number): Promise<boolean> {
    this.draining = true;
    if (this.timer) clearInterval(this.timer);
    this.hub.closeAll();
    const pending = Promise.allSettled([...this.ops.values()]).then(() => true);
    const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), deadlineMs).unref());
    return Promise.race([pending, timeout]);
  }

  get inFlight(): number {
    return this.ops.size;
  }

  impl(): ServiceImpl<typeof ComputeDriver> {
    const wrap =
      <Req, Res>(fn: (req: Req, ctx: HandlerContext) => Promise<Res> | Res) =>
      async (req: Req, ctx: HandlerContext): Promise<Res> => {
        if (this.draining) throw new ConnectError("the driver is shutting down", Code.Unavailable);
        try {
          return await fn(req, ctx);
        } catch (err) {
          throw toConnectError(err);
        }
      };
    return {
      getCapabilities: wrap(() => ({
        driverName: this.name,
        driverVersion: VERSION,
        defaultImage: this.defaultImage(),
        gatewayManagesLifecycle: true,
      })),
      // Sandboxes reach the host's loopback through slirp (qemu's, or slirp4netns for
      // containers): the gateway must listen there.
      getGatewayListenerRequirements: wrap(() => ({
        requirements: [
          {
            reason: "nix sandboxes reach the gateway through user-mode networking on the host's loopback",
            selector: { case: "loopbackInterface" as const, value: {} },
          },
        ],
      })),
      validateSandboxCreate: wrap(async (req) => {
        const plan = this.plan(req.sandbox);
        await this.createRequest(plan);
        return {};
      }),
      createSandbox: wrap(async (req) => {
        const plan = this.plan(req.sandbox);
        // Validation again (the gateway's Validate and its Create are separate calls): what
        // cannot be provisioned is refused now, not reported as a failure later.
        await this.createRequest(plan);
        if (this.repo.get(plan.id) || this.app.service.exists(plan.sandboxName) || !this.repo.insert(plan)) {
          throw new OsnError(ErrorCode.ALREADY_EXISTS, `sandbox ${plan.id} already exists`);
        }
        this.publishSnapshot(plan.id);
        this.platformEvent(plan.id, "Scheduled", "accepted; provisioning", { active: "requesting_sandbox" });
        void this.serial(plan.id, () => this.provision(plan.id));
        return {};
      }),
      getSandbox: wrap((req) => ({ sandbox: this.snapshot(this.mustGet(requestId(req))) })),
      listSandboxes: wrap(() => ({ sandboxes: this.repo.list().map((r) => this.snapshot(r)) })),
      stopSandbox: wrap(async (req) => {
        const id = requestId(req);
        this.mustGet(id);
        // At once, not behind a provisioning in flight: it then skips the start.
        this.repo.setIntent(id, "stopped");
        await this.serial(id, () => this.stop(id));
        return {};
      }),
      startSandbox: wrap(async (req) => {
        const id = requestId(req);
        this.mustGet(id);
        await this.serial(id, () => this.start(id));
        return {};
      }),
      deleteSandbox: wrap(async (req) => {
        const id = requestId(req);
        if (!this.repo.get(id)) return { deleted: false };
        // At once: the gateway sees `deleting` now, and a provisioning in flight gives up at
        // its next step instead of finishing a sandbox nobody wants.
        this.repo.setPhase(id, "deleting");
        this.publishSnapshot(id);
        const deleted = await this.serial(id, async () => {
          if (!this.repo.get(id)) return false;
          await this.finishDelete(id);
          return true;
        });
        return { deleted };
      }),
      watchSandboxes: (_req, ctx) => this.watch(ctx),
      // Workspaces need nothing on this host: every sandbox has its own state directory.
      ensureWorkspace: wrap(() => ({})),
      deleteWorkspace: wrap(() => ({})),
    };
  }

  private async *watch(ctx: HandlerContext): AsyncGenerator<WatchSandboxesEvent> {
    const sub = this.hub.subscribe(ctx.signal);
    for (const rec of this.repo.list()) {
      yield create(WatchSandboxesEventSchema, {
        payload: { case: "sandbox", value: { sandbox: this.snapshot(rec) } },
      });
    }
    yield* sub;
  }

  private defaultImage(): string {
    return this.app.config.driver?.defaultImage ?? DEFAULT_IMAGE;
  }

  private plan(sandbox: DriverSandbox | undefined): DriverPlan {
    return planFromDriverSandbox(sandbox, { defaultImage: this.defaultImage() });
  }

  private mustGet(id: string): DriverRecord {
    const rec = this.repo.get(id);
    if (!rec) throw new OsnError(ErrorCode.NOT_FOUND, `no sandbox with id ${id}`);
    return rec;
  }

  /**
   * The sandbox service's request for a plan: the bundle plus the supervisor, started as the
   * entrypoint with its environment and token file. Checks everything a create would need.
   */
  private async createRequest(plan: DriverPlan): Promise<CreateRequest> {
    const endpoint = this.app.config.driver?.gatewayEndpoint;
    if (!endpoint) {
      throw new OsnError(ErrorCode.CONFIG_INVALID, "driver.gatewayEndpoint is not configured", {
        hint: "set it in the openshell-nix config to the gateway's address on this host, e.g. http://127.0.0.1:17670",
      });
    }
    const kind =
      plan.kind ?? this.app.config.driver?.defaultKind ?? this.app.config.defaultKind ?? "container";
    try {
      this.app.service.driver(kind);
    } catch (err) {
      throw new OsnError(ErrorCode.UNSUPPORTED, OsnError.from(err).message);
    }
    // What provisioning would otherwise find missing, after the gateway has stored the sandbox.
    for (const tool of kind === "vm" ? ["qemu-system-x86_64"] : ["crun", "slirp4netns"]) {
      if (!onPath(tool))
        throw new OsnError(ErrorCode.UNSUPPORTED, `${kind} sandboxes need ${tool}, which this host lacks`, {
          hint: "openshell-nix doctor says how to install it",
        });
    }
    const memory = plan.limits.memory === undefined ? undefined : parseBytes(plan.limits.memory);
    if (kind === "vm" && memory !== undefined && memory > totalmem()) {
      throw new OsnError(
        ErrorCode.UNSUPPORTED,
        `a VM with ${formatBytes(memory)} of memory cannot start on this host (${formatBytes(totalmem())} in all)`,
      );
    }
    let bundle: Awaited<ReturnType<App["bundles"]["resolve"]>>;
    try {
      bundle = await this.app.bundles.resolve(plan.bundle);
    } catch (err) {
      // An unknown image is the caller's unsatisfiable request, not a missing sandbox.
      if (err instanceof OsnError && err.code === ErrorCode.NOT_FOUND)
        throw new OsnError(ErrorCode.UNSUPPORTED, err.message, { hint: err.hint });
      throw err;
    }
    const supervisor = this.supervisor(bundle.toplevels, bundle.name);
    const launch = supervisorLaunch(plan, {
      supervisor: supervisor.path,
      gatewayEndpoint: endpoint,
      defaultLogLevel: this.app.config.driver?.logLevel ?? "info",
    });
    this.app.service.checkLimits(bundle.name, plan.limits);
    return {
      ...plan.bundle,
      name: plan.sandboxName,
      kind,
      command: launch.command,
      env: launch.env,
      files: launch.files,
      limits: plan.limits,
      network: "slirp",
      fhs: true,
      extraToplevels: supervisor.toplevel ? [supervisor.toplevel] : [],
      managedBy: plan.id,
      privileges: "supervisor",
    };
  }

  /** The configured supervisor, else the bundle's own bin/openshell-sandbox. */
  private supervisor(toplevels: string[], bundle: string): { path: string; toplevel?: string } {
    const configured = this.app.config.driver?.supervisor;
    if (configured) {
      const toplevel = configured.split("/").slice(0, 4).join("/");
      const path = existsSync(join(configured, SUPERVISOR)) ? join(configured, SUPERVISOR) : configured;
      if (!isStorePath(toplevel) || !existsSync(path) || !statSync(path).isFile()) {
        throw new OsnError(
          ErrorCode.STORE_PATH_MISSING,
          `the configured supervisor ${configured} is not in the store`,
          {
            hint: "driver.supervisor must be the openshell-sandbox binary or a package with bin/openshell-sandbox",
          },
        );
      }
      return { path, toplevel };
    }
    for (const top of toplevels) {
      if (existsSync(join(top, SUPERVISOR))) return { path: join(top, SUPERVISOR) };
    }
    throw new OsnError(
      ErrorCode.UNSUPPORTED,
      `bundle ${bundle} has no OpenShell supervisor (${SUPERVISOR})`,
      {
        hint: "set driver.supervisor in the openshell-nix config, or add the openshell-sandbox package to the bundle",
      },
    );
  }

  /** Create and start the sandbox of a record in the provisioning phase. */
  private async provision(id: string): Promise<void> {
    const rec = this.repo.get(id);
    if (rec?.phase !== "provisioning") return;
    const name = rec.sandbox;
    // A delete between two steps ends the provisioning there (the delete removes what exists).
    const wanted = () => this.repo.get(id)?.phase === "provisioning";
    try {
      let sb = this.app.service.find(name);
      if (sb && sb.spec.managedBy !== id) {
        throw new OsnError(ErrorCode.ALREADY_EXISTS, `a sandbox named ${name} exists and is not this one's`);
      }
      if (!sb) {
        const req = await this.createRequest(rec.plan);
        if (!wanted()) return;
        this.platformEvent(id, "Provisioning", `making ${req.kind} sandbox ${name} from ${rec.plan.image}`, {
          complete: "requesting_sandbox",
          active: "pulling_image",
        });
        sb = await this.app.service.create(req, (message) =>
          this.platformEvent(id, "BuildingImage", message, { active: "pulling_image", detail: message }),
        );
      }
      if (!wanted()) return;
      this.platformEvent(id, "Starting", `starting ${sb.kind} sandbox ${name}`, {
        complete: "pulling_image",
        active: "starting_sandbox",
      });
      // Still "provisioning" while it starts: a daemon that dies now resumes with the start
      // (the sandbox exists), where an "active" record would leave it created and never started.
      if (this.repo.get(id)?.intent === "running") await this.app.service.start(name);
      if (this.repo.setPhaseIf(id, "provisioning", "active")) {
        this.platformEvent(id, "Started", `sandbox ${name} is running`, { complete: "starting_sandbox" });
      }
    } catch (err) {
      const e = OsnError.from(err);
      // Nothing half-made stays behind; the gateway deletes the sandbox when it sees the error.
      const sb = this.app.service.find(name);
      if (sb?.spec.managedBy === id) await this.app.service.remove(name).catch(() => {});
      if (this.repo.setPhaseIf(id, "provisioning", "failed", "ProvisioningFailed", e.message)) {
        this.platformEvent(id, "ProvisioningFailed", e.message, {}, "Warning");
      }
    } finally {
      this.publishSnapshot(id);
    }
  }

  private async stop(id: string): Promise<void> {
    // The intent first (the RPC set it already; a restart's stop comes here too): the end of
    // the workload is then a stop, never mistaken for a crash.
    this.repo.setIntent(id, "stopped");
    const rec = this.mustGet(id);
    try {
      const sb = this.app.service.find(rec.sandbox);
      if (rec.phase === "active" && sb?.state === "running")
        await this.app.service.stop(rec.sandbox, STOP_GRACE_MS);
    } finally {
      this.publishSnapshot(id);
    }
  }

  private async start(id: string): Promise<void> {
    const rec = this.mustGet(id);
    if (rec.phase === "failed")
      throw new OsnError(ErrorCode.INVALID_STATE, `sandbox ${id} failed (${rec.reason}): ${rec.message}`);
    if (rec.phase === "deleting")
      throw new OsnError(ErrorCode.INVALID_STATE, `sandbox ${id} is being deleted`);
    const sb = this.app.service.find(rec.sandbox);
    if (!sb)
      throw new OsnError(ErrorCode.NOT_FOUND, `sandbox ${id} has no backing sandbox ${rec.sandbox} any more`);
    try {
      if (sb.state !== "running") await this.app.service.start(rec.sandbox);
      this.repo.setIntent(id, "running");
    } finally {
      this.publishSnapshot(id);
    }
  }

  private async finishDelete(id: string): Promise<void> {
    const rec = this.repo.get(id);
    if (!rec) return;
    const sb = this.app.service.find(rec.sandbox);
    if (sb?.spec.managedBy === id) await this.app.service.remove(rec.sandbox);
    this.repo.delete(id);
    this.published.delete(id);
    this.hub.publish(
      create(WatchSandboxesEventSchema, { payload: { case: "deleted", value: { sandboxId: id } } }),
    );
  }

  /** Run operations on one id one after the other, whatever their outcome. */
  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const before = this.ops.get(id) ?? Promise.resolve();
    const next = before.then(fn, fn);
    const settled = next.then(
      () => {},
      () => {},
    );
    this.ops.set(id, settled);
    void settled.then(() => {
      if (this.ops.get(id) === settled) this.ops.delete(id);
    });
    return next;
  }

  snapshot(rec: DriverRecord): DriverSandbox {
    let sb: Sandbox | undefined;
    let detail: string | undefined;
    if (rec.phase === "active") {
      sb = this.app.service.find(rec.sandbox);
      if (sb) detail = this.app.service.driver(sb.kind).describe?.(sb);
    }
    return create(DriverSandboxSchema, {
      id: rec.id,
      name: rec.gatewayName,
      namespace: rec.plan.namespace,
      workspace: rec.plan.workspace,
      status: driverStatus(rec, sb, detail),
    });
  }

  private publishSnapshot(id: string): void {
    const rec = this.repo.get(id);
    if (!rec) return;
    const sandbox = this.snapshot(rec);
    this.published.set(id, JSON.stringify(sandbox));
    this.hub.publish(create(WatchSandboxesEventSchema, { payload: { case: "sandbox", value: { sandbox } } }));
  }

  /** Publish what changed without this daemon doing it. Cheap: rows and liveness checks. */
  private poll(): void {
    try {
      for (const rec of this.repo.list()) {
        if (this.ops.has(rec.id)) continue;
        if (rec.phase === "deleting") {
          // A delete whose removal failed (or was interrupted): try again.
          void this.serial(rec.id, () => this.finishDelete(rec.id)).catch((err) =>
            this.log(`deleting ${rec.id} failed again: ${OsnError.from(err).message}`),
          );
          continue;
        }
        const sandbox = this.snapshot(rec);
        const json = JSON.stringify(sandbox);
        if (this.published.get(rec.id) === json) continue;
        this.published.set(rec.id, json);
        this.hub.publish(
          create(WatchSandboxesEventSchema, { payload: { case: "sandbox", value: { sandbox } } }),
        );
      }
    } catch (err) {
      this.log(`watch poll failed: ${OsnError.from(err).message}`);
    }
  }

  private platformEvent(
    id: string,
    reason: string,
    message: string,
    progress: { active?: Step; complete?: Step; detail?: string },
    type: "Normal" | "Warning" = "Normal",
  ): void {
    const metadata: Record<string, string> = {};
    if (progress.complete) metadata["openshell.progress.complete_step"] = progress.complete;
    if (progress.active) metadata["openshell.progress.active_step"] = progress.active;
    if (progress.detail) metadata["openshell.progress.active_detail"] = progress.detail;
    this.hub.publish(
      create(WatchSandboxesEventSchema, {
        payload: {
          case: "platformEvent",
          value: {
            sandboxId: id,
            event: { timestampMs: BigInt(Date.now()), source: "nix", type, reason, message, metadata },
          },
        },
      }),
    );
  }
}

const found = new Map<string, boolean>();
/** Whether a program is on PATH; remembered, since Validate runs for every create. */
function onPath(bin: string): boolean {
  let hit = found.get(bin);
  if (hit === undefined) {
    hit = (process.env.PATH ?? "").split(delimiter).some((d) => d !== "" && existsSync(join(d, bin)));
    found.set(bin, hit);
  }
  return hit;
}
