import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, OsnError } from "../common/errors.js";
import { runCommand } from "../process/run-command.js";
import { nixBuildOptions } from "./nix-store.js";

/** The recipe ships with the package: <package root>/nix/demo-bundle.nix. */
export function demoRecipePath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/nix (tests, tsx) and dist/src/nix (built) both sit below the package root.
  for (const up of ["../..", "../../.."]) {
    const candidate = join(here, up, "nix", "demo-bundle.nix");
    if (existsSync(candidate)) return candidate;
  }
  throw new OsnError(ErrorCode.INTERNAL, "nix/demo-bundle.nix is missing from the installation");
}

export const DEMO_BUNDLE = "demo";

/** Host files the recipe copies into the store; checked first for a clear error. */
const DEMO_INPUTS = ["/bin/busybox", "/usr/bin/python3.11", "/usr/lib/python3.11", "/usr/bin/patchelf"];

/**
 * Build the demo bundle into the real /nix/store and return its top-level store path. The
 * result symlink under `rootsDir` is a GC root of its own, named after the recipe's hash: while
 * it resolves, the bundle is known to be built from this very recipe and no nix-build is needed.
 */
export async function buildDemoBundle(
  rootsDir: string,
  force = false,
  progress: (message: string) => void = () => {},
): Promise<string> {
  const recipe = demoRecipePath();
  const recipeHash = createHash("sha256").update(readFileSync(recipe)).digest("hex").slice(0, 12);
  const out = join(rootsDir, `demo-env-${recipeHash}`);
  if (!force) {
    try {
      return realpathSync(out);
    } catch {
      // not built yet (or collected): build it
    }
  }
  const missing = DEMO_INPUTS.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new OsnError(ErrorCode.HOST_FEATURE_MISSING, `the demo bundle needs ${missing.join(", ")}`, {
      hint: "apt-get install busybox-static python3.11 patchelf",
    });
  }
  mkdirSync(rootsDir, { recursive: true });
  progress("building the demo bundle (python + busybox) into /nix/store with nix-build");
  // The recipe copies host binaries in, so it cannot run in Nix's build sandbox (on by default
  // on NixOS); root may turn it off for this build.
  const result = await runCommand(
    [
      "nix-build",
      recipe,
      "-A",
      "env",
      ...nixBuildOptions(),
      "--option",
      "sandbox",
      "false",
      "--out-link",
      out,
    ],
    {
      errorCode: ErrorCode.IMAGE_BUILD_FAILED,
    },
  );
  const path = result.stdout.trim().split("\n").pop();
  if (!path?.startsWith("/nix/store/")) {
    throw new OsnError(ErrorCode.IMAGE_BUILD_FAILED, `nix-build printed no store path: ${result.stdout}`);
  }
  return path;
}
