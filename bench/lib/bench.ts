import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type App, openApp } from "../../src/app.js";
import { type CgroupLayout, detectCgroupLayout } from "../../src/host/cgroups.js";
import type { ImageInfo } from "../../src/image/image-cache.js";
import type { CleanupStack } from "../../src/process/cleanup-stack.js";
import { removeAutoRoots } from "./remove-auto-roots.js";
import { removeTree } from "./remove-tree.js";
import { CONFIG } from "./workload.js";

/** The bench environment: what every variant shares. */
export interface Bench {
  /** Temporary directory holding everything this run creates. */
  root: string;
  app: App;
  toplevels: string[];
  image: ImageInfo;
  /** The workload's environment, as the service builds it: PATH from the bundle, HOME, LANG. */
  env: Record<string, string>;
  cgroups: CgroupLayout;
  cleanup: CleanupStack;
}

function bundleBins(toplevels: readonly string[]): string[] {
  return toplevels.map((p) => `${p}/bin`).filter((d) => existsSync(d));
}

/** The first bin/`tool` among the bundle's toplevels. */
export function findTool(toplevels: readonly string[], tool: string): string | undefined {
  return bundleBins(toplevels)
    .map((d) => `${d}/${tool}`)
    .find((f) => existsSync(f));
}

function sandboxEnv(toplevels: readonly string[]): Record<string, string> {
  return { PATH: bundleBins(toplevels).join(":") || "/bin", HOME: "/root", LANG: "C.UTF-8" };
}

/**
 * A temporary directory with a state directory in it, the demo bundle resolved and its image
 * built (so it is warm). Everything is registered on `cleanup` as soon as it exists.
 */
export async function setUpBench(cleanup: CleanupStack): Promise<Bench> {
  const root = mkdtempSync(join(tmpdir(), "osn-bench-"));
  cleanup.push("temporary directory", () => removeTree(root));
  cleanup.push("Nix auto GC roots", () => void removeAutoRoots(root));
  const app = await openApp({ stateDir: join(root, "state"), config: CONFIG });
  cleanup.push("leftover sandboxes", async () => {
    for (const sb of app.service.list()) await app.service.remove(sb.name);
    app.close();
  });
  const bundle = await app.bundles.resolve({ bundle: "demo" });
  const { image } = await app.images.ensure(bundle.toplevels);
  const cgroups = detectCgroupLayout();
  return {
    root,
    app,
    toplevels: bundle.toplevels,
    image,
    env: sandboxEnv(bundle.toplevels),
    cgroups,
    cleanup,
  };
}
