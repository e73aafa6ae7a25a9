import type { Command } from "commander";
import { ErrorCode, OsnError } from "../../common/errors.js";
import type { AttachedProcess } from "../../sandbox/driver.js";
import type { CliContext } from "../context.js";
import { progressPrinter, style } from "../output.js";
import { addSandboxOptions, type SandboxFlags, toCreateRequest } from "../sandbox-options.js";

/** Forward Ctrl-C and SIGTERM to the workload while it runs, so `run` cleans up properly. */
function forwardSignals(p: AttachedProcess): () => void {
  const handler = (signal: NodeJS.Signals) => p.kill(signal);
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

export function registerRun(program: Command, ctx: CliContext): void {
  addSandboxOptions(
    program
      .command("run")
      .description("create, start, wait for and remove a sandbox; exits with the workload's status")
      .argument("<command...>", "workload (after --)"),
  ).action(async (command: string[], flags: SandboxFlags) => {
    const { service } = await ctx.app();
    let unhook = () => {};
    const status = await service.run(
      toCreateRequest(flags, command),
      (p) => {
        p.stdout.pipe(process.stdout, { end: false });
        p.stderr.pipe(process.stderr, { end: false });
        unhook = forwardSignals(p);
      },
      progressPrinter(ctx.quiet),
      process.stdin.isTTY ? "ignore" : "inherit",
    );
    unhook();
    process.exitCode = status;
  });

  program
    .command("exec")
    .description("run a command in a running sandbox; streams output, exits with its status")
    .argument("<name>")
    .argument("<command...>", "command (after --)")
    .action(async (name: string, command: string[]) => {
      const { service } = await ctx.app();
      const result = await service.exec(name, command, { stdio: "inherit" });
      if (typeof result !== "number") throw new OsnError(ErrorCode.INTERNAL, "exec returned streams");
      process.exitCode = result;
    });

  program
    .command("demo")
    .description("build the demo bundle if missing, run python in a container sandbox, and time it")
    .option("--command <code>", "python code to run", "print(6*7)")
    .action(async (flags: { command: string }) => {
      const { service } = await ctx.app();
      const print = progressPrinter(ctx.quiet);
      let built = false;
      const progress = (message: string) => {
        built ||= message.startsWith("building");
        print(message);
      };
      const t0 = performance.now();
      let firstOutput: number | undefined;
      let startedAt = 0;
      let output = "";
      const status = await service.run(
        { bundle: "demo", command: ["python3", "-c", flags.command] },
        (p, sb) => {
          startedAt = performance.now();
          progress(`sandbox ${sb.name} started (image ${sb.imageKey.slice(0, 12)})`);
          p.stdout.on("data", (chunk: Buffer) => {
            firstOutput ??= performance.now();
            output += chunk.toString();
          });
          p.stderr.pipe(process.stderr, { end: false });
        },
        progress,
      );
      const total = performance.now() - t0;
      process.stdout.write(output);
      const ms = (t: number | undefined) => (t === undefined ? "-" : `${Math.round(t)} ms`);
      process.stderr.write(
        `${style.bold("demo")}: python printed ${JSON.stringify(output.trim())} (exit ${status})\n` +
          `  total ${ms(total)}; sandbox start → first output ${ms(firstOutput === undefined ? undefined : firstOutput - startedAt)}` +
          `; create → first output ${ms(firstOutput === undefined ? undefined : firstOutput - t0)}\n` +
          (built
            ? "  run it again: the bundle and its image are built now, so only the sandbox start remains\n"
            : ""),
      );
      process.exitCode = status;
    });
}
