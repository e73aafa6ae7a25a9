import { createReadStream, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { formatBytes } from "../../config/quantity.js";
import type { SandboxService } from "../../sandbox/sandbox-service.js";
import type { Sandbox } from "../../sandbox/types.js";
import type { CliContext } from "../context.js";
import { ago, printJson, table } from "../output.js";
import { describeState, sandboxJson, shortCommand } from "./views.js";

export function registerInspect(program: Command, ctx: CliContext): void {
  program
    .command("ls")
    .alias("ps")
    .description("list sandboxes")
    .option("--json", "print JSON")
    .option("-q, --quiet", "names only")
    .action(async (flags: { json?: boolean; quiet?: boolean }) => {
      const { service } = await ctx.app();
      const all = service.list();
      if (flags.json) return printJson(all.map(sandboxJson));
      if (flags.quiet) return void process.stdout.write(all.map((s) => `${s.name}\n`).join(""));
      const rows = all.map((s) => [
        s.name,
        kindLabel(service, s),
        describeState(s),
        s.bundle,
        s.imageKey.slice(0, 12),
        shortCommand(s),
        ago(s.createdAt),
      ]);
      process.stdout.write(
        `${table(["name", "kind", "state", "bundle", "image", "command", "created"], rows)}\n`,
      );
    });

  program
    .command("inspect")
    .description("show one sandbox in detail")
    .argument("<name>")
    .option("--json", "print JSON")
    .action(async (name: string, flags: { json?: boolean }) => {
      const { service } = await ctx.app();
      const sb = service.get(name);
      const image = service.image(sb.imageKey);
      const logs = service.logPaths(name);
      const view = {
        ...sandboxJson(sb),
        imageBytes: image?.bytes ?? null,
        closure: image?.closure ?? [],
        logs,
      };
      if (flags.json) return printJson(view);
      const lines: [string, string][] = [
        ["name", sb.name],
        [
          "kind",
          sb.kind +
            (service.driver(sb.kind).describe?.(sb) ? ` — ${service.driver(sb.kind).describe?.(sb)}` : ""),
        ],
        ["state", describeState(sb)],
        ["bundle", sb.bundle],
        [
          "image",
          `${sb.imageKey}${image ? ` (${formatBytes(image.bytes)}, ${image.closure.length} store paths)` : ""}`,
        ],
        ["command", JSON.stringify(sb.spec.command)],
        ["limits", JSON.stringify(sb.spec.limits)],
        ["created", `${sb.createdAt} (${ago(sb.createdAt)})`],
        ["started", sb.startedAt ?? "-"],
        ["finished", sb.finishedAt ?? "-"],
        ["stdout log", logs.stdout],
        ["stderr log", logs.stderr],
      ];
      const w = Math.max(...lines.map(([k]) => k.length));
      process.stdout.write(`${lines.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n")}\n`);
    });

  program
    .command("logs")
    .description("print a sandbox's stdout and stderr (kept across restarts)")
    .argument("<name>")
    .option("-f, --follow", "keep printing while the sandbox runs")
    .action(async (name: string, flags: { follow?: boolean }) => {
      const { service } = await ctx.app();
      const paths = service.logPaths(name);
      const offsets = { stdout: 0, stderr: 0 };
      const pump = async () => {
        offsets.stdout = await copyFrom(paths.stdout, offsets.stdout, process.stdout);
        offsets.stderr = await copyFrom(paths.stderr, offsets.stderr, process.stderr);
      };
      await pump();
      while (flags.follow && service.get(name).state === "running") {
        await sleep(200);
        await pump();
      }
      await pump();
    });
}

/** Copy a file from `offset` to its current end; returns the new offset. */
async function copyFrom(file: string, offset: number, out: NodeJS.WritableStream): Promise<number> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return offset;
  }
  if (size <= offset) return offset;
  await new Promise<void>((resolve, reject) => {
    const s = createReadStream(file, { start: offset, end: size - 1 });
    s.on("data", (chunk) => out.write(chunk));
    s.on("end", resolve);
    s.on("error", reject);
  });
  return size;
}

function kindLabel(service: SandboxService, sb: Sandbox): string {
  const note = service.driver(sb.kind).describe?.(sb);
  return note ? `${sb.kind}/${note.split(" ")[0]}` : sb.kind;
}
