import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { nixBuildOptions } from "../../src/nix/nix-store.js";

// The project root: two levels up from the source (tests), three from dist/ (benchmarks).
const ROOT =
  ["../..", "../../.."]
    .map((up) => fileURLToPath(new URL(up, import.meta.url)))
    .find((dir) => existsSync(join(dir, "nix", "bundle-image.nix"))) ?? ".";
const RECIPE = join(ROOT, "nix", "bundle-image.nix");
const STAND_IN = join(ROOT, "test", "fixtures", "stand-in-supervisor.nix");

/**
 * nix-build as the tests and benchmarks run it: offline, and without Nix's build sandbox (the
 * recipes take the host's tools). The out path; on failure an error with nix-build's stderr.
 */
export function hostNixBuild(args: string[], outLink?: string): string {
  try {
    return execFileSync(
      "nix-build",
      [
        ...args,
        ...nixBuildOptions(),
        "--option",
        "sandbox",
        "false",
        ...(outLink ? ["-o", outLink] : ["--no-out-link"]),
      ],
      { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 2 ** 20 },
    )
      .toString()
      .trim();
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? String(err);
    throw new Error(`nix-build ${args[0]} failed: ${stderr.slice(-2000)}`);
  }
}

/**
 * nix/bundle-image.nix with the host's tools, as CI has no nixpkgs (the NixOS module passes
 * nixpkgs' bash, coreutils, erofs-utils and python3 instead).
 */
export function hostBundleImage(name: string, rootPaths: readonly string[], outLink?: string): string {
  const roots = rootPaths.map((p) => `(builtins.storePath ${p})`).join(" ");
  const expr = `import ${RECIPE} { name = "${name}"; rootPaths = [ ${roots} ]; bash = "/bin/bash"; toolPath = "/usr/bin:/bin:/usr/sbin:/sbin"; }`;
  return hostNixBuild(["-E", expr], outLink);
}

/** The stand-in OpenShell supervisor (test/fixtures/stand-in-supervisor.nix) on the demo bundle's python. */
export function standInSupervisor(demoEnv: string, outLink?: string): string {
  return hostNixBuild([STAND_IN, "--argstr", "env", demoEnv], outLink);
}
