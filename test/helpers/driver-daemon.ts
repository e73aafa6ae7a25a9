import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../../src/config/schema.js";
import { CLI } from "./host.js";

/**
 * `openshell-nix serve` as its own process, the way a gateway meets it: a config file, a state
 * directory and a socket, started and stopped (gracefully or not) by the test.
 */
export class DriverDaemon {
  readonly socket: string;
  readonly configFile: string;
  private child: ChildProcess | undefined;
  log = "";
  previousLogs = "";

  constructor(
    readonly dir: string,
    readonly stateDir: string,
    config: Config,
  ) {
    this.socket = join(dir, "run", "driver.sock");
    this.configFile = join(dir, "config.json");
    mkdirSync(dir, { recursive: true });
    writeFileSync(this.configFile, JSON.stringify(config));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Start and wait for the socket (the gateway has no other readiness signal either). */
  async start(): Promise<void> {
    const child = spawn(
      "node",
      [CLI, "--state-dir", this.stateDir, "--config", this.configFile, "serve", "--socket", this.socket],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    // Only this run's output counts: the previous run's "serving" line must not satisfy the wait.
    this.previousLogs += this.log;
    this.log = "";
    const append = (d: Buffer) => {
      this.log += d.toString();
      if (process.env.DEBUG_DAEMON) process.stderr.write(`[daemon] ${d}`);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    const deadline = Date.now() + 30_000;
    while (!this.log.includes("serving ComputeDriver")) {
      if (child.exitCode !== null) throw new Error(`driver exited ${child.exitCode}:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`driver did not start:\n${this.log}`);
      await sleep(20);
    }
    if (!existsSync(this.socket)) throw new Error(`no socket at ${this.socket}`);
  }

  /** SIGTERM (graceful drain) or SIGKILL (a crash); resolves with the exit code. */
  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill(signal);
    const code = await exited;
    this.child = undefined;
    return code;
  }
}
