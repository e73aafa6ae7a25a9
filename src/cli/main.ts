import { Command, CommanderError } from "commander";
import { isOsnError, OsnError } from "../common/errors.js";
import { VERSION } from "../common/version.js";
import { registerBuildTools } from "./commands/build-tools.js";
import { registerBundle } from "./commands/bundle.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerDriver } from "./commands/driver.js";
import { registerInspect } from "./commands/inspect.js";
import { registerLifecycle } from "./commands/lifecycle.js";
import { registerRun } from "./commands/run.js";
import { registerServe } from "./commands/serve.js";
import { CliContext, type GlobalFlags } from "./context.js";
import { EXIT_FOR_CODE, EXIT_SANDBOX_FAILED } from "./exit-codes.js";
import { style } from "./output.js";

export async function main(argv: string[]): Promise<number> {
  const program = new Command("openshell-nix")
    .description("Sandboxes for OpenShell made from the host's /nix/store")
    .version(VERSION)
    .option(
      "--state-dir <dir>",
      "state directory (default: $OPENSHELL_NIX_STATE_DIR or /var/lib/openshell-nix)",
    )
    .option(
      "--config <file>",
      "config file (default: $OPENSHELL_NIX_CONFIG or /etc/openshell-nix/config.json)",
    )
    .option("--quiet", "no progress output")
    .showHelpAfterError()
    .exitOverride();
  const ctx = new CliContext(() => program.opts<GlobalFlags>());
  registerRun(program, ctx);
  registerLifecycle(program, ctx);
  registerInspect(program, ctx);
  registerBundle(program, ctx);
  registerDoctor(program, () => program.opts<GlobalFlags>());
  registerServe(program, ctx);
  registerDriver(program, () => program.opts<GlobalFlags>());
  registerBuildTools(program, () => program.opts<GlobalFlags>());

  const verb = verbOf(argv.slice(2));
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    const e = OsnError.from(err);
    process.stderr.write(`${style.red("error:")} ${e.message}\n`);
    if (e.hint) process.stderr.write(`${style.dim(`hint: ${e.hint}`)}\n`);
    if (!isOsnError(err)) process.stderr.write(`${style.dim(String((err as Error).stack ?? ""))}\n`);
    const workloadVerb = verb === "run" || verb === "exec" || verb === "demo";
    return workloadVerb ? EXIT_SANDBOX_FAILED : EXIT_FOR_CODE[e.code];
  } finally {
    ctx.close();
  }
}

/** The subcommand, skipping global options and their values. */
function verbOf(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "--state-dir" || a === "--config") i++;
    else if (!a.startsWith("-")) return a;
  }
  return undefined;
}
