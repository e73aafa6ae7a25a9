import { randomUUID } from "node:crypto";
import { connect, type Socket } from "node:net";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCode, OsnError } from "../../common/errors.js";
import type { AttachedProcess } from "../../sandbox/driver.js";

export interface ExecSockets {
  control: string;
  stdout: string;
  stderr: string;
}

function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => resolve(s));
    s.once("error", (e) =>
      reject(
        new OsnError(ErrorCode.RUNTIME_FAILED, `cannot reach the VM's exec agent: ${e.message}`, {
          cause: e,
        }),
      ),
    );
  });
}

/** Resolves once `sockets` have been quiet for `quietMs` (or after `maxMs`). */
async function drained(sockets: Socket[], quietMs: number, maxMs: number): Promise<void> {
  let last = Date.now();
  const touch = () => {
    last = Date.now();
  };
  for (const s of sockets) s.on("data", touch);
  const deadline = Date.now() + maxMs;
  while (Date.now() - last < quietMs && Date.now() < deadline) await sleep(10);
  for (const s of sockets) s.off("data", touch);
}

/**
 * Run one command through the guest's exec agent. The output ports are connected before the
 * request is sent, so nothing the command writes is lost; the status comes back on the request
 * port as "EXIT <id> <n>". The two output ports and the status port are separate virtio-serial
 * queues, so the status can overtake the last output bytes: the streams end only once the
 * output has been quiet for a moment.
 */
export async function vmExec(sockets: ExecSockets, spec: string): Promise<AttachedProcess> {
  const [out, err] = await Promise.all([open(sockets.stdout), open(sockets.stderr)]);
  let ctl: Socket;
  try {
    ctl = await open(sockets.control);
  } catch (e) {
    out.destroy();
    err.destroy();
    throw e;
  }
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  out.pipe(stdout, { end: false });
  err.pipe(stderr, { end: false });
  const id = randomUUID().slice(0, 8);
  const exit = new Promise<number>((resolve, reject) => {
    let buffer = "";
    ctl.on("data", (d: Buffer) => {
      buffer += d.toString();
      // Statuses of requests that an earlier, interrupted client gave up on are skipped.
      const m = new RegExp(`EXIT ${id} (\\d+)\n`).exec(buffer);
      if (!m) return;
      const status = Number(m[1]);
      void drained([out, err], 150, 2_000).then(() => {
        for (const s of [ctl, out, err]) s.destroy();
        stdout.end();
        stderr.end();
        resolve(status);
      });
    });
    ctl.on("close", () => reject(new OsnError(ErrorCode.RUNTIME_FAILED, "the VM's exec agent went away")));
  });
  ctl.write(`${id} ${Buffer.from(spec).toString("base64")}\n`);
  return {
    stdout,
    stderr,
    exit,
    kill: () => {
      for (const s of [ctl, out, err]) s.destroy();
    },
  };
}
