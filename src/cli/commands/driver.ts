import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { JsonObject } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { ErrorCode, OsnError } from "../../common/errors.js";
import { loadConfig } from "../../config/load.js";
import { DEFAULT_SOCKET } from "../../driver/defaults.js";
import type { DriverClient } from "../../driver/driver-client.js";
import type { DriverSandbox, WatchSandboxesEvent } from "../../gen/openshell/compute/v1/compute_driver_pb.js";
import type { GlobalFlags } from "../context.js";
import { printJson, style, table } from "../output.js";
import { collect } from "../sandbox-options.js";

interface DriverFlags {
  socket?: string;
}

const runtime = () => import("./driver-runtime.js");

/**
 * `openshell-nix driver …`: a small gateway stand-in that drives sandboxes through a running
 * `serve` daemon over its socket, for operators and for checking a deployment by hand.
 */
export function registerDriver(program: Command, globals: () => GlobalFlags): void {
  const group = program
    .command("driver")
    .description("talk to a running `openshell-nix serve` over its socket, as the OpenShell gateway does")
    .option("--socket <path>", `socket (default: driver.socketPath in the config, else ${DEFAULT_SOCKET})`);

  const session = async (): Promise<{ client: DriverClient; socket: string }> => {
    const flags = group.opts<DriverFlags>();
    const config = await loadConfig(globals().config);
    const socket = flags.socket ?? config.driver?.socketPath ?? DEFAULT_SOCKET;
    return { client: (await runtime()).driverClient(socket), socket };
  };
  const call = async <T>(fn: (c: DriverClient) => Promise<T>): Promise<T> => {
    const { client, socket } = await session();
    try {
      return await fn(client);
    } catch (err) {
      throw (await runtime()).fromDriverError(err, socket);
    }
  };

  group
    .command("caps")
    .description("GetCapabilities and GetGatewayListenerRequirements")
    .action(async () => {
      const caps = await call((c) => c.getCapabilities({}));
      const req = await call((c) => c.getGatewayListenerRequirements({}));
      printJson({
        driverName: caps.driverName,
        driverVersion: caps.driverVersion,
        defaultImage: caps.defaultImage,
        gatewayManagesLifecycle: caps.gatewayManagesLifecycle,
        listenerRequirements: req.requirements.map((r) => ({ reason: r.reason, selector: r.selector.case })),
      });
    });

  group
    .command("ls")
    .description("the driver's sandboxes (ListSandboxes)")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const { sandboxes } = await call((c) => c.listSandboxes({}));
      if (flags.json) return printJson(sandboxes.map(view));
      process.stdout.write(
        `${table(
          ["id", "name", "state", "sandbox", "message"],
          sandboxes.map((s) => {
            const v = view(s);
            return [v.id, v.name, v.state, v.sandbox, v.message];
          }),
        )}\n`,
      );
    });

  group
    .command("get")
    .description("one sandbox (GetSandbox)")
    .argument("<id>")
    .action(async (id: string) => {
      const { sandbox } = await call((c) => c.getSandbox({ sandboxId: id }));
      printJson(sandbox ? view(sandbox) : null);
    });

  group
    .command("create")
    .description("CreateSandbox, then follow the watch until it runs or fails")
    .argument("[command...]", "the main process the supervisor runs (after --)")
    .option("--id <id>", "sandbox id (default: a fresh UUID)")
    .option("-n, --name <name>", "the gateway's name for it (default: the id)")
    .option("-i, --image <image>", "nix:<bundle> or a /nix/store path (default: the driver's)")
    .option("-k, --kind <kind>", "container or vm")
    .option("--cpu <quantity>", "cpu limit, e.g. 500m or 2")
    .option("--memory <quantity>", "memory limit, e.g. 512Mi")
    .option("-e, --env <KEY=VALUE>", "environment variable (repeatable)", collect)
    .option("--token-file <file>", "the sandbox token to hand the supervisor (read from a file, not argv)")
    .option("--no-wait", "return once the driver accepted the request")
    .action(
      async (
        command: string[],
        flags: {
          id?: string;
          name?: string;
          image?: string;
          kind?: string;
          cpu?: string;
          memory?: string;
          env?: string[];
          tokenFile?: string;
          wait: boolean;
        },
      ) => {
        const id = flags.id ?? randomUUID();
        const environment: Record<string, string> = {};
        for (const pair of flags.env ?? []) {
          const eq = pair.indexOf("=");
          if (eq <= 0) throw new OsnError(ErrorCode.INVALID_ARGUMENT, `--env needs KEY=VALUE, got ${pair}`);
          environment[pair.slice(0, eq)] = pair.slice(eq + 1);
        }
        const driverConfig: JsonObject = flags.kind ? { kind: flags.kind } : {};
        const { create, DriverSandboxSchema, fromDriverError } = await runtime();
        const sandbox = create(DriverSandboxSchema, {
          id,
          name: flags.name ?? id,
          spec: {
            command,
            environment,
            sandboxToken: flags.tokenFile ? readFileSync(flags.tokenFile, "utf8").trim() : "",
            template: {
              image: flags.image ?? "",
              resources: { cpuLimit: flags.cpu ?? "", memoryLimit: flags.memory ?? "" },
              driverConfig,
            },
          },
        });
        const started = performance.now();
        const { client, socket } = await session();
        const abort = new AbortController();
        const events = flags.wait ? client.watchSandboxes({}, { signal: abort.signal }) : undefined;
        try {
          await client.validateSandboxCreate({ sandbox });
          await client.createSandbox({ sandbox });
          process.stdout.write(`${id}\n`);
          if (!events) return;
          const outcome = await follow(events, id, (line) => process.stderr.write(`${line}\n`));
          const ms = Math.round(performance.now() - started);
          if (outcome.ok) process.stderr.write(`${style.green("running")} ${id} in ${ms} ms\n`);
          else throw new OsnError(ErrorCode.RUNTIME_FAILED, `sandbox ${id} failed: ${outcome.message}`);
        } catch (err) {
          throw err instanceof OsnError ? err : fromDriverError(err, socket);
        } finally {
          abort.abort();
        }
      },
    );

  for (const [verb, rpc, what] of [
    ["stop", "stopSandbox", "StopSandbox (keeps its files)"],
    ["start", "startSandbox", "StartSandbox"],
  ] as const) {
    group
      .command(verb)
      .description(what)
      .argument("<id>")
      .action(async (id: string) => {
        await call(async (c) => {
          await (rpc === "stopSandbox"
            ? c.stopSandbox({ sandboxId: id })
            : c.startSandbox({ sandboxId: id }));
        });
        process.stdout.write(`${id}\n`);
      });
  }

  group
    .command("rm")
    .description("DeleteSandbox")
    .argument("<id>")
    .action(async (id: string) => {
      const { deleted } = await call((c) => c.deleteSandbox({ sandboxId: id }));
      if (!deleted) throw new OsnError(ErrorCode.NOT_FOUND, `no sandbox with id ${id}`);
      process.stdout.write(`${id}\n`);
    });

  group
    .command("watch")
    .description("WatchSandboxes: the snapshot, then every change, one JSON object per line")
    .action(async () => {
      const { client, socket } = await session();
      try {
        for await (const e of client.watchSandboxes({}))
          process.stdout.write(`${JSON.stringify(eventView(e))}\n`);
      } catch (err) {
        throw (await runtime()).fromDriverError(err, socket);
      }
    });
}

export interface SandboxView {
  id: string;
  name: string;
  sandbox: string;
  state: string;
  reason: string;
  message: string;
}

/** A snapshot in a line: the state the gateway would derive from the conditions. */
export function view(s: DriverSandbox): SandboxView {
  const ready = s.status?.conditions.find((c) => c.type === "Ready");
  const suspended = s.status?.conditions.some((c) => c.type === "Suspended" && c.status === "True");
  const state = s.status?.deleting
    ? "deleting"
    : suspended
      ? "stopped"
      : ready?.status === "True"
        ? "running"
        : ready?.reason === "Starting"
          ? "provisioning"
          : "error";
  return {
    id: s.id,
    name: s.name,
    sandbox: s.status?.sandboxName ?? "",
    state,
    reason: ready?.reason ?? "",
    message: ready?.message ?? "",
  };
}

function eventView(e: WatchSandboxesEvent): unknown {
  switch (e.payload.case) {
    case "sandbox":
      return { sandbox: e.payload.value.sandbox ? view(e.payload.value.sandbox) : null };
    case "deleted":
      return { deleted: e.payload.value.sandboxId };
    case "platformEvent": {
      const ev = e.payload.value.event;
      return {
        event: {
          id: e.payload.value.sandboxId,
          reason: ev?.reason,
          message: ev?.message,
          metadata: ev?.metadata,
        },
      };
    }
    default:
      return {};
  }
}

/** Follow a watch until the sandbox runs (ok) or reaches a state it will not leave by itself. */
export async function follow(
  events: AsyncIterable<WatchSandboxesEvent>,
  id: string,
  log: (line: string) => void = () => {},
): Promise<{ ok: boolean; message: string }> {
  for await (const e of events) {
    if (e.payload.case === "platformEvent" && e.payload.value.sandboxId === id) {
      log(`${style.dim(`[${e.payload.value.event?.reason}]`)} ${e.payload.value.event?.message}`);
    } else if (e.payload.case === "sandbox" && e.payload.value.sandbox?.id === id) {
      const v = view(e.payload.value.sandbox);
      if (v.state === "running") return { ok: true, message: v.message };
      if (v.state === "error" || v.state === "stopped")
        return { ok: false, message: `${v.reason}: ${v.message}` };
    } else if (e.payload.case === "deleted" && e.payload.value.sandboxId === id) {
      return { ok: false, message: "deleted" };
    }
  }
  return { ok: false, message: "the watch ended" };
}
