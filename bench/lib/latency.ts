import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { Readable } from "node:stream";
import type { App } from "../../src/app.js";
import { lastLines } from "../../src/process/run-command.js";
import type { CreateRequest } from "../../src/sandbox/sandbox-service.js";
import { EXPECTED_OUTPUT } from "./workload.js";

/** Notes when the first complete line appears on a stream, and keeps what it carried. */
export class LineWatch {
  firstLineAt: number | undefined;
  private readonly chunks: Buffer[] = [];

  constructor(stream: Readable) {
    stream.on("data", (chunk: Buffer | string) => {
      const buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      if (this.firstLineAt === undefined && buf.includes(0x0a)) this.firstLineAt = performance.now();
      this.chunks.push(buf);
    });
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

/** A spawned child whose stdout and stderr are being watched. */
export interface Watched {
  out: LineWatch;
  err: LineWatch;
  exit: Promise<number>;
}

/** Spawn `argv` with both output streams watched; `exit` resolves to the status (128 + signal if killed). */
export function spawnWatched(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Watched {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error("empty argv");
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env });
  const out = new LineWatch(child.stdout);
  const err = new LineWatch(child.stderr);
  const exit = new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  return { out, err, exit };
}

/** Milliseconds from t0 to the first output line, once the run has ended and printed the right thing. */
export function checkedLatency(
  label: string,
  t0: number,
  status: number,
  out: LineWatch,
  err: LineWatch,
): number {
  if (status !== 0 || out.text.trim() !== EXPECTED_OUTPUT || out.firstLineAt === undefined) {
    const stderr = lastLines(err.text, 5);
    throw new Error(
      `${label}: exit ${status}, stdout ${JSON.stringify(out.text.slice(0, 200))}, stderr: ${stderr}`,
    );
  }
  return out.firstLineAt - t0;
}

/** Wait for a watched run to end, then check it and time it from t0 to its first stdout line. */
export async function latencySince(label: string, t0: number, run: Watched): Promise<number> {
  return checkedLatency(label, t0, await run.exit, run.out, run.err);
}

/** Spawn a command and time it from just before spawn() to its first stdout line. */
export function timeSpawn(label: string, argv: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  return latencySince(label, t0, spawnWatched(argv, env));
}

/** Time SandboxService.run from the call (or an earlier t0) to the first stdout chunk. */
export async function timeServiceRun(app: App, req: CreateRequest, t0 = performance.now()): Promise<number> {
  const io: { out?: LineWatch; err?: LineWatch } = {};
  const status = await app.service.run(req, (p) => {
    io.out = new LineWatch(p.stdout);
    io.err = new LineWatch(p.stderr);
  });
  if (!io.out || !io.err) throw new Error("the service never reported the started workload");
  return checkedLatency("openshell-nix", t0, status, io.out, io.err);
}
