import type { Command } from "commander";
import { formatBytes } from "../../config/quantity.js";
import { buildDemoBundle } from "../../nix/demo-bundle.js";
import type { CliContext } from "../context.js";
import { ago, printJson, progressPrinter, style, table } from "../output.js";

export function registerBundle(program: Command, ctx: CliContext): void {
  const bundle = program.command("bundle").description("bundles and their images");

  bundle
    .command("ls")
    .description("list known bundles and built images")
    .option("--json", "print JSON")
    .action(async (flags: { json?: boolean }) => {
      const app = await ctx.app();
      const images = app.images.list();
      const sandboxes = app.service.list();
      const imageRows = images.map((i) => ({
        key: i.key,
        bytes: i.bytes,
        storePaths: i.closure.length,
        toplevels: i.toplevels,
        buildMs: i.buildMs,
        createdAt: i.createdAt,
        sandboxes: sandboxes.filter((s) => s.imageKey === i.key).map((s) => s.name),
      }));
      const bundles = app.bundles
        .names()
        .map((name) => ({ name, storePaths: app.bundles.configured(name)?.storePaths ?? [] }));
      if (flags.json) return printJson({ bundles, images: imageRows });
      process.stdout.write(
        `${table(
          ["bundle", "store paths"],
          bundles.map((b) => [
            b.name,
            b.storePaths.join(" ") || (b.name === "demo" ? "(built on demand)" : ""),
          ]),
        )}\n\n`,
      );
      process.stdout.write(
        `${table(
          ["image", "size", "paths", "built in", "sandboxes", "created"],
          imageRows.map((i) => [
            i.key.slice(0, 12),
            formatBytes(i.bytes),
            String(i.storePaths),
            `${i.buildMs} ms`,
            String(i.sandboxes.length),
            ago(i.createdAt),
          ]),
        )}\n`,
      );
    });

  bundle
    .command("build")
    .description("build (or find cached) the image of a bundle")
    .argument("[name]", "bundle name (default: the configured default, or demo)")
    .option(
      "-s, --store-path <path>",
      "ad hoc bundle from store paths (repeatable)",
      (v: string, p: string[] = []) => [...p, v],
    )
    .option("--json", "print JSON")
    .action(async (name: string | undefined, flags: { storePath?: string[]; json?: boolean }) => {
      const app = await ctx.app();
      const progress = progressPrinter(ctx.quiet || flags.json === true);
      const t0 = performance.now();
      const resolved = await app.bundles.resolve({ bundle: name, storePaths: flags.storePath }, progress);
      const { image, built } = await app.images.ensure(resolved.toplevels, progress);
      const ms = Math.round(performance.now() - t0);
      if (flags.json) return printJson({ bundle: resolved.name, built, ms, ...image });
      process.stdout.write(`${image.path}\n`);
      process.stderr.write(
        `${built ? style.green("built") : "cached"} image ${image.key.slice(0, 12)}: ${formatBytes(image.bytes)}, ` +
          `${image.closure.length} store paths, ${ms} ms\n`,
      );
    });

  bundle
    .command("gc")
    .description("remove images (and their GC roots) that no sandbox uses")
    .action(async () => {
      const removed = await (await ctx.app()).service.gcImages();
      for (const i of removed)
        process.stdout.write(`removed ${i.key.slice(0, 12)} (${formatBytes(i.bytes)})\n`);
      if (removed.length === 0) process.stdout.write("no unused images\n");
    });

  bundle
    .command("demo")
    .description("build the embedded demo bundle (python + busybox) into /nix/store")
    .option("--rebuild", "run nix-build even when the bundle is known to be built")
    .action(async (flags: { rebuild?: boolean }) => {
      const app = await ctx.app();
      const path = await buildDemoBundle(
        `${app.layout.gcrootsDir}/bundles`,
        flags.rebuild,
        progressPrinter(ctx.quiet),
      );
      process.stdout.write(`${path}\n`);
    });
}
