/**
 * Create → ready-to-run through the OpenShell compute driver, beside the paths without it. For
 * container and VM sandboxes of the demo bundle plus a stand-in supervisor, interleaved:
 *
 *   API create+start      SandboxService in this process: create, then start detached, until the
 *                         start returns (the sandbox runs). The work the daemon does, no RPC.
 *   CLI create --start    the CLI as a user types it (Node start-up included), same bundle.
 *   driver → Ready        the gateway's path: CreateSandbox over the socket of a `serve` daemon
 *                         (its own process), until the watch reports Ready=True.
 *   driver → supervisor   the same runs, until the stand-in supervisor inside the sandbox has
 *                         called the (fake) gateway back: the sandbox is ready for work.
 *
 * Images and boot assets are warm (built before the clock starts), as they are for a bundle the
 * NixOS module prebuilt. VMs run under TCG unless --accel says otherwise: TCG figures are not
 * KVM figures.
 *
 * Run as root: node dist/bench/driver.js [--runs N] [--accel tcg|kvm|auto].
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { openApp } from "../src/app.js";
import type { Config } from "../src/config/schema.js";
import { driverClient } from "../src/driver/driver-client.js";
import type { AccelSetting } from "../src/drivers/vm/accel.js";
import { detectCgroupLayout } from "../src/host/cgroups.js";
import { CleanupStack } from "../src/process/cleanup-stack.js";
import { CgroupSweeper } from "./lib/cgroup-sweeper.js";
import { latencyTable } from "./lib/latency-table.js";
import { standInSupervisor } from "./lib/nix-fixtures.js";
import { removeTree } from "./lib/remove-tree.js";
import { finishBench, interruptOnSigint, runBench } from "./lib/run-bench.js";
import { type Outcome, runInterleaved, type Variant } from "./lib/run-interleaved.js";

const CLI = fileURLToPath(new URL("../src/bin/cli.js", import.meta.url));
const KINDS = ["container", "vm"] as const;

function options(): { runs: number; accel: AccelSetting } {
  const { values } = parseArgs({
    options: { runs: { type: "string", default: "10" }, accel: { type: "string", default: "tcg" } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs wants a positive integer, not ${values.runs}`);
  const accel = values.accel as AccelSetting;
  if (!["tcg", "kvm", "auto"].includes(accel))
    throw new Error(`--accel is tcg, kvm or auto, not ${values.accel}`);
  return { runs, accel };
}

function run(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr?.on("data", (d) => {
      err += d;
    });
    p.on("close", (code) =>
      code === 0 ? resolve(0) : reject(new Error(`${argv.join(" ")}: ${err.slice(-500)}`)),
    );
  });
}

async function main(): Promise<void> {
  const { runs, accel } = options();
  const interrupt = interruptOnSigint();
  const cleanup = new CleanupStack();
  const sweeper = new CgroupSweeper(detectCgroupLayout());
  try {
    const root = mkdtempSync(join(tmpdir(), "osn-bench-driver-"));
    cleanup.push("temporary directory", () => removeTree(root));
    const stateDir = join(root, "state");
    // The fake gateway: stand-in supervisors report here, by sandbox id.
    const reported = new Map<string, () => void>();
    const gateway = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        const id = (JSON.parse(body || "{}") as { env?: Record<string, string> }).env?.OPENSHELL_SANDBOX_ID;
        if (id) reported.get(id)?.();
        res.end("ok");
      });
    });
    await new Promise<void>((r) => gateway.listen(0, "127.0.0.1", r));
    cleanup.push("fake gateway", () => void gateway.close());
    const port = (gateway.address() as AddressInfo).port;

    process.stderr.write("setting up: demo bundle, stand-in supervisor, warm images and boot assets…\n");
    const setup = await openApp({ stateDir, config: {} });
    const demo = (await setup.bundles.resolve({ bundle: "demo" })).toplevels;
    const supervisor = standInSupervisor(demo[0] as string, join(root, "stand-in"));
    setup.close();
    const config: Config = {
      vm: { accel },
      driver: { gatewayEndpoint: `http://127.0.0.1:${port}`, supervisor },
    };
    const configFile = join(root, "config.json");
    writeFileSync(configFile, JSON.stringify(config));
    const app = await openApp({ stateDir, config });
    cleanup.push("leftover sandboxes", async () => {
      for (const sb of app.service.list()) await app.service.remove(sb.name);
      app.close();
    });
    sweeper.track(`/openshell-nix/${app.layout.tag}`);

    const socket = join(root, "run", "driver.sock");
    const daemon: ChildProcess = spawn(
      "node",
      [CLI, "--state-dir", stateDir, "--config", configFile, "serve", "--socket", socket],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    cleanup.push("driver daemon", async () => {
      daemon.kill("SIGTERM");
      await new Promise((r) => daemon.once("exit", r));
    });
    let daemonLog = "";
    daemon.stderr?.on("data", (d) => {
      daemonLog += d;
    });
    while (!daemonLog.includes("serving ComputeDriver")) {
      if (daemon.exitCode !== null) throw new Error(`serve exited: ${daemonLog}`);
      await sleep(20);
    }
    const client = driverClient(socket);

    const afterReady: Record<string, number[]> = { container: [], vm: [] };
    const variants: Variant[] = KINDS.flatMap((kind): Variant[] => [
      {
        name: `API create+start (${kind})`,
        async sample() {
          const t0 = performance.now();
          const sb = await app.service.create({ storePaths: demo, kind });
          await app.service.start(sb.name);
          const t = performance.now() - t0;
          await app.service.remove(sb.name);
          return t;
        },
      },
      {
        name: `CLI create --start (${kind})`,
        async sample() {
          const name = `cli-${randomUUID().slice(0, 8)}`;
          const t0 = performance.now();
          await run([
            "node",
            CLI,
            "--state-dir",
            stateDir,
            "--quiet",
            "create",
            "--start",
            "-k",
            kind,
            "-n",
            name,
            "-s",
            demo[0] as string,
          ]);
          const t = performance.now() - t0;
          await app.service.remove(name);
          return t;
        },
      },
      {
        name: `driver → Ready (${kind})`,
        async sample() {
          const id = randomUUID();
          const abort = new AbortController();
          const events = client.watchSandboxes({}, { signal: abort.signal });
          const supervisorUp = new Promise<number>((resolve) =>
            reported.set(id, () => resolve(performance.now())),
          );
          const t0 = performance.now();
          await client.createSandbox({
            sandbox: {
              id,
              name: id.slice(0, 8),
              spec: { sandboxToken: "bench", template: { image: "nix:demo", driverConfig: { kind } } },
            },
          });
          let readyAt = 0;
          try {
            for await (const e of events) {
              if (e.payload.case !== "sandbox" || e.payload.value.sandbox?.id !== id) continue;
              const ready = e.payload.value.sandbox.status?.conditions.find((c) => c.type === "Ready");
              if (ready?.status === "True") {
                readyAt = performance.now();
                break;
              }
              if (ready && ready.reason !== "Starting") throw new Error(`${ready.reason}: ${ready.message}`);
            }
          } finally {
            abort.abort();
          }
          const upAt = await Promise.race([supervisorUp, sleep(60_000).then(() => Number.NaN)]);
          reported.delete(id);
          await client.deleteSandbox({ sandboxId: id });
          if (!readyAt) throw new Error("the watch ended before Ready");
          afterReady[kind]?.push(upAt - t0);
          return readyAt - t0;
        },
      },
    ]);
    process.stderr.write(`${runs} interleaved rounds (VM accel: ${accel})…\n`);
    const outcomes = await runInterleaved(variants, runs, 1, interrupt.signal);
    for (const kind of KINDS) {
      outcomes.set(`driver → supervisor (${kind})`, {
        samples: afterReady[kind]?.slice(-runs) ?? [],
      } satisfies Outcome);
    }
    const lines = [
      `# Create → ready through the compute driver (${runs} runs, VMs on ${accel.toUpperCase()})`,
      "",
    ];
    for (const kind of KINDS) {
      lines.push(`## ${kind}`, "");
      lines.push(
        ...latencyTable(
          [
            `API create+start (${kind})`,
            `CLI create --start (${kind})`,
            `driver → Ready (${kind})`,
            `driver → supervisor (${kind})`,
          ],
          outcomes,
          `API create+start (${kind})`,
        ),
        "",
      );
    }
    lines.push(
      "driver → Ready: CreateSandbox until the watch says Ready=True. driver → supervisor: until the",
      "supervisor in the sandbox reached the gateway. The ratio column is over the in-process API.",
    );
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await finishBench(cleanup, sweeper);
  }
}

runBench(main);
