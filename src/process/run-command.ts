import { spawn } from "node:child_process";
import { ErrorCode, OsnError } from "../common/errors.js";

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Error code when the command exits non-zero. */
  errorCode?: ErrorCode;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  status: number;
}

/** Run a command to completion and capture its output; never throws on a non-zero status. */
export function runCommandStatus(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new OsnError(ErrorCode.INTERNAL, "empty argv");
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    child.stderr?.on("data", (b: Buffer) => err.push(b));
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    }
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (e.code === "ENOENT") {
        reject(
          new OsnError(ErrorCode.HOST_FEATURE_MISSING, `${file} is not installed (not found on PATH)`, {
            cause: e,
            hint: "run `openshell-nix doctor` to see what is missing and how to install it",
          }),
        );
      } else {
        reject(new OsnError(ErrorCode.COMMAND_FAILED, `${file}: ${e.message}`, { cause: e }));
      }
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        status: code ?? (signal ? 128 + signalNumber(signal) : 1),
      });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Run a command to completion; throw an OsnError naming the command and its stderr on failure. */
export async function runCommand(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const result = await runCommandStatus(argv, options);
  if (result.status !== 0) {
    const tail = lastLines(result.stderr || result.stdout, 8);
    throw new OsnError(
      options.errorCode ?? ErrorCode.COMMAND_FAILED,
      `${argv.slice(0, 3).join(" ")} failed (exit ${result.status})${tail ? `: ${tail}` : ""}`,
    );
  }
  return result;
}

export function lastLines(text: string, n: number): string {
  return text.trim().split("\n").slice(-n).join("\n");
}

function signalNumber(signal: NodeJS.Signals): number {
  const table: Partial<Record<NodeJS.Signals, number>> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11 };
  return table[signal] ?? 0;
}
