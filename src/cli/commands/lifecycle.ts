import type { Command } from "commander";
import { ErrorCode, OsnError } from "../../common/errors.js";
import type { Sandbox } from "../../sandbox/types.js";
import type { CliContext } from "../context.js";
import { EXIT_FOR_CODE } from "../exit-codes.js";
import { printJson, progressPrinter, style } from "../output.js";
import { addSandboxOptions, type SandboxFlags, toCreateRequest } from "../sandbox-options.js";
import { sandboxJson } from "./views.js";

/**
 * The compute driver's sandboxes follow the gateway's intent; a CLI that stopped or removed one
 * behind its back would turn it into an error on the gateway's side. Refused without --force.
 */
function assertNotManaged(sb: Sandbox, force: boolean | undefined, verb: string): void {
  if (!sb.spec.managedBy || force) return;
  throw new OsnError(
    ErrorCode.INVALID_STATE,
    `${sb.name} belongs to the OpenShell gateway (sandbox id ${sb.spec.managedBy}); ${verb} it through the gateway`,
    { hint: `openshell-nix driver ${verb === "remove" ? "rm" : verb} ${sb.spec.managedBy}, or --force` },
  );
}

export function registerLifecycle(program: Command, ctx: CliContext): void {
  addSandboxOptions(
    program
      .command("create")
      .description("create a sandbox (ready to start; returns as soon as it exists)")
      .argument("[command...]", "workload (after --); default: idle, for exec"),
  )
    .option("--start", "start it right away")
    .option("--json", "print the sandbox as JSON")
    .action(async (command: string[], flags: SandboxFlags & { start?: boolean; json?: boolean }) => {
      const { service } = await ctx.app();
      const started = performance.now();
      let sb = await service.create(toCreateRequest(flags, command), progressPrinter(ctx.quiet));
      if (flags.start) sb = await service.start(sb.name);
      if (flags.json) printJson(sandboxJson(sb));
      else {
        process.stdout.write(`${sb.name}\n`);
        if (!ctx.quiet) {
          const ms = Math.round(performance.now() - started);
          process.stderr.write(
            `${style.green(flags.start ? "started" : "created")} ${sb.name} in ${ms} ms\n`,
          );
        }
      }
    });

  program
    .command("start")
    .description("start a created or stopped sandbox (its files are kept)")
    .argument("<name>")
    .option("-f, --force", "also when the OpenShell gateway manages the sandbox")
    .action(async (name: string, flags: { force?: boolean }) => {
      const { service } = await ctx.app();
      assertNotManaged(service.get(name), flags.force, "start");
      const sb = await service.start(name);
      process.stdout.write(`${sb.name}\n`);
    });

  program
    .command("stop")
    .description("stop a sandbox: SIGTERM, then SIGKILL after the grace period; keeps its files")
    .argument("<name>")
    .option("-t, --time <seconds>", "grace period before SIGKILL", "10")
    .option("-f, --force", "also when the OpenShell gateway manages the sandbox")
    .action(async (name: string, flags: { time: string; force?: boolean }) => {
      const seconds = Number(flags.time);
      if (!Number.isFinite(seconds) || seconds < 0) {
        throw new OsnError(
          ErrorCode.INVALID_ARGUMENT,
          `--time needs seconds (0 or more), got ${JSON.stringify(flags.time)}`,
        );
      }
      const { service } = await ctx.app();
      assertNotManaged(service.get(name), flags.force, "stop");
      const sb = await service.stop(name, seconds * 1000);
      process.stdout.write(`${sb.name}\n`);
    });

  program
    .command("rm")
    .description("remove sandboxes and everything they made on the host")
    .argument("<names...>")
    .option(
      "-f, --force",
      "stop running sandboxes first, and remove sandboxes the OpenShell gateway manages (otherwise refused)",
    )
    .action(async (names: string[], flags: { force?: boolean }) => {
      const { service } = await ctx.app();
      // Every name is tried; the exit status is that of the last failure (3 not found, 4 running…).
      for (const name of names) {
        try {
          const sb = service.get(name);
          assertNotManaged(sb, flags.force, "remove");
          if (sb.state === "running" && !flags.force) {
            throw new OsnError(ErrorCode.INVALID_STATE, `${name} is running; stop it or use rm --force`);
          }
          await service.remove(name);
          process.stdout.write(`${name}\n`);
        } catch (err) {
          const e = OsnError.from(err);
          process.stderr.write(`${style.red("error:")} ${e.message}\n`);
          process.exitCode = EXIT_FOR_CODE[e.code];
        }
      }
    });

  program
    .command("reconcile")
    .description("clean up after crashed processes: orphaned containers, mounts, loop devices, dirs")
    .action(async () => {
      const { service } = await ctx.app();
      const actions = await service.reconcile();
      process.stdout.write(actions.length === 0 ? "nothing to do\n" : `${actions.join("\n")}\n`);
    });
}
