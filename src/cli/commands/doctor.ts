import type { Command } from "commander";
import { runChecks } from "../../doctor/checks.js";
import { driverChecks } from "../../doctor/driver-checks.js";
import type { GlobalFlags } from "../context.js";
import { printJson, style } from "../output.js";

export function registerDoctor(program: Command, globals: () => GlobalFlags): void {
  program
    .command("doctor")
    .description("check the host features sandboxes need, and say how to fix what is missing")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const results = [...(await runChecks()), ...(await driverChecks(globals().config))];
      const failed = results.some((r) => r.level === "fail");
      process.exitCode = failed ? 5 : 0;
      if (flags.json) return printJson({ ok: !failed, checks: results });
      const mark = { ok: style.green("ok  "), warn: style.yellow("warn"), fail: style.red("FAIL") };
      const w = Math.max(...results.map((r) => r.name.length));
      for (const r of results) {
        process.stdout.write(`${mark[r.level]}  ${r.name.padEnd(w)}  ${r.detail}\n`);
        if (r.fix && r.level !== "ok") process.stdout.write(`      ${" ".repeat(w)}  fix: ${r.fix}\n`);
      }
      process.stdout.write(
        failed
          ? `\n${style.red("Some required features are missing.")}\n`
          : "\nAll required host features are present.\n",
      );
    });
}
