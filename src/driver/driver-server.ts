import { chmodSync, existsSync, lstatSync, mkdirSync, rmSync } from "node:fs";
import http2 from "node:http2";
import { dirname } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ErrorCode, OsnError } from "../common/errors.js";
import { ComputeDriver } from "../gen/openshell/compute/v1/compute_driver_pb.js";
import type { NixComputeDriver } from "./compute-driver.js";
import { socketAnswers, socketDirProblem } from "./socket-file.js";

export { DEFAULT_SOCKET } from "./defaults.js";

export interface DriverServer {
  socketPath: string;
  /** Stop taking connections, let operations in flight finish (bounded), close the rest. */
  close(deadlineMs?: number): Promise<void>;
}

/**
 * Serve the driver as gRPC over HTTP/2 cleartext on a unix socket, which is what the gateway's
 * tonic client speaks (prior knowledge, no TLS). The socket file's permissions are the only
 * authentication the contract has, so the directory must be ours and closed to others, and the
 * socket 0600.
 */
export async function serveDriver(
  driver: NixComputeDriver,
  socketPath: string,
  /** 0o600, or 0o660 to let the daemon's group in. */
  socketMode = 0o600,
): Promise<DriverServer> {
  await prepareSocket(socketPath);
  const handler = connectNodeAdapter({
    routes: (router) => router.service(ComputeDriver, driver.impl()),
    grpc: true,
    grpcWeb: false,
    connect: false,
  });
  // The gateway sends `:authority [::]:50051`, which connect-node cannot parse into a URL (it
  // threw, and the throw took the daemon down). On a unix socket the authority means nothing:
  // give every request the same plain one, and never let a handler's throw escape.
  const server = http2.createServer((req, res) => {
    try {
      Object.defineProperty(req, "authority", { value: "localhost", configurable: true });
      handler(req, res);
    } catch (err) {
      process.stderr.write(`openshell-nix serve: bad request ${req.url}: ${(err as Error).message}\n`);
      if (!res.headersSent) res.writeHead(400);
      res.end();
    }
  });
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  // Its mode once bound. No one else could connect in between: the directory is closed to
  // others (checked above). A process-wide umask would also hit files made concurrently.
  chmodSync(socketPath, socketMode);
  return {
    socketPath,
    async close(deadlineMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await driver.drain(deadlineMs);
      for (const s of sessions) s.close();
      const timer = setTimeout(() => {
        for (const s of sessions) s.destroy();
      }, 1_000);
      await closed;
      clearTimeout(timer);
      rmSync(socketPath, { force: true });
    },
  };
}

/**
 * Check the socket's directory and clear a stale socket; refuses when a live daemon answers.
 * Called before the daemon touches any state, so a second `serve` changes nothing.
 */
export async function prepareSocket(socketPath: string): Promise<void> {
  prepareSocketDir(dirname(socketPath));
  await removeStaleSocket(socketPath);
}

function prepareSocketDir(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const problem = socketDirProblem(dir);
  if (problem) {
    throw new OsnError(ErrorCode.HOST_FEATURE_MISSING, problem, {
      hint: "use a directory of its own, e.g. /run/openshell-nix (mode 0700)",
    });
  }
}

/** A socket file nobody listens on is a previous daemon's; one that answers is a live daemon. */
async function removeStaleSocket(path: string): Promise<void> {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new OsnError(ErrorCode.INVALID_ARGUMENT, `${path} exists and is not a socket; not replacing it`);
  }
  if (await socketAnswers(path))
    throw new OsnError(ErrorCode.ALREADY_EXISTS, `another driver is serving on ${path}`);
  rmSync(path, { force: true });
}
