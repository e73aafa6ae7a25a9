import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseConfig } from "../../config/load.js";
import { writeBootAssets } from "../../drivers/vm/boot/prebuilt-boot-assets.js";
import type { GlobalFlags } from "../context.js";
import { printJson } from "../output.js";
import { collect } from "../sandbox-options.js";

/**
 * Verbs for builds rather than for sandboxes; the NixOS module runs them in derivations:
 * `config check` validates the rendered settings with the daemon's own schema, and
 * `vm boot-assets` prebuilds the guest's kernel and initramfs.
 */
export function registerBuildTools(program: Command, globals: () => GlobalFlags): void {
  program
    .command("config-check")
    .description(
      "validate a config file with the daemon's schema (exit 2 and the reasons if it does not match)",
    )
    .argument("[file]", "default: --config, $OPENSHELL_NIX_CONFIG or /etc/openshell-nix/config.json")
    .action(async (file: string | undefined) => {
      const path =
        file ?? globals().config ?? process.env.OPENSHELL_NIX_CONFIG ?? "/etc/openshell-nix/config.json";
      await parseConfig(readFileSync(path, "utf8"), path);
      process.stdout.write(`${path}: valid\n`);
    });

  program
    .command("boot-assets")
    .description("write the VM guest's boot assets (vmlinux, initramfs) to a directory, for vm.bootAssets")
    .requiredOption("--out <dir>", "where to write them")
    .option("--kernel <image>", "guest kernel (bzImage or vmlinux); default: the newest /boot/vmlinuz-*")
    .option("--modules <dir>", "the kernel's lib/modules/<release> directory")
    .option("--busybox <file>", "a static busybox (default /bin/busybox)")
    .option("--module <name>", "also load this kernel module at boot (repeatable)", collect)
    .action(
      async (flags: {
        out: string;
        kernel?: string;
        modules?: string;
        busybox?: string;
        module?: string[];
      }) => {
        const assets = await writeBootAssets(
          {
            kernel: flags.kernel,
            modules: flags.modules,
            busybox: flags.busybox,
            extraModules: flags.module,
          },
          flags.out,
        );
        printJson(assets);
      },
    );
}
