import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostBundleImage, hostNixBuild } from "../../bench/lib/nix-fixtures.js";
import type { App } from "../../src/app.js";
import { mountErofs, unmount } from "../../src/host/mounts.js";
import { FORMAT_VERSION } from "../../src/image/image-format.js";
import {
  disposeApp,
  EMPTY_FOOTPRINT,
  fileSha256,
  hostFootprint,
  missingHostFeature,
  runCollect,
  tempApp,
  treeHash,
} from "../helpers/host.js";

const skip = missingHostFeature({ tools: ["python3", "bash"], install: "apt-get install python3 bash" });
const GC_PROBE = new URL("../fixtures/gc-probe.nix", import.meta.url).pathname;

/** The trees of two images, mounted one after the other at the same place (treeHash has paths). */
async function mountedTreeHashes(a: string, b: string): Promise<[string, string]> {
  const mnt = mkdtempSync("/var/tmp/osn-nix-img-");
  const hash = async (image: string) => {
    await mountErofs(image, mnt);
    try {
      return treeHash([mnt]);
    } finally {
      await unmount(mnt);
    }
  };
  try {
    return [await hash(a), await hash(b)];
  } finally {
    rmSync(mnt, { recursive: true, force: true });
  }
}

describe.skipIf(skip)(
  `images prebuilt by Nix (nix/bundle-image.nix)${skip ? ` (skipped: ${skip})` : ""}`,
  () => {
    let app: App;
    let demo: string;

    beforeAll(async () => {
      app = await tempApp();
      demo = (await app.bundles.resolve({ bundle: "demo" })).toplevels[0] as string;
    });

    afterAll(async () => {
      if (app) await disposeApp(app);
    });

    it.each([
      ["the demo bundle", () => [demo]],
      ["a fresh two-path closure", () => [hostNixBuild([GC_PROBE, "--argstr", "tag", `img-${process.pid}`])]],
    ])(
      "agrees with the runtime builder for %s: same key, same tree, same bytes",
      async (_what, roots) => {
        const tops = roots();
        const out = hostBundleImage("probe", tops);
        const meta = JSON.parse(readFileSync(join(out, "image.json"), "utf8"));
        const { image } = await app.images.ensure(tops);
        expect(meta.formatVersion).toBe(FORMAT_VERSION);
        expect(meta.key).toBe(image.key);
        expect(meta.closure).toEqual(image.closure);
        const [nixTree, ourTree] = await mountedTreeHashes(join(out, "image.erofs"), image.path);
        expect(nixTree).toBe(ourTree);
        // Same tool, same tree, fixed UUID, times and owners: the very same bytes.
        expect(fileSha256(join(out, "image.erofs"))).toBe(fileSha256(image.path));
        // The output keeps the closure alive (compressed erofs hides it from Nix's scanner).
        const refs = execFileSync("nix-store", ["-qR", out]).toString();
        for (const p of image.closure) expect(refs).toContain(p);
      },
      120_000,
    );

    it("is used as it is when a bundle names it: no build, a link and a GC root, and sandboxes run from it", async () => {
      const out = hostBundleImage("demo", [demo]);
      const prebuiltApp = await tempApp({ bundles: { py: { storePaths: [demo], image: out } } });
      try {
        const progress: string[] = [];
        const { image, built } = await prebuiltApp.images.ensure([demo], (m) => progress.push(m));
        expect(built).toBe(false);
        expect(image.buildMs).toBe(0);
        expect(progress.join("\n")).toMatch(/prebuilt by Nix/);
        expect(lstatSync(image.path).isSymbolicLink()).toBe(true);
        expect(readlinkSync(image.path)).toBe(join(out, "image.erofs"));
        const root = join(prebuiltApp.layout.gcrootsDir, image.key, "image");
        expect(readlinkSync(root)).toBe(out);
        const r = await runCollect(prebuiltApp, { bundle: "py", command: ["python3", "-c", "print(6*7)"] });
        expect(r.stdout).toBe("42\n");
        expect(r.status).toBe(0);
        await prebuiltApp.service.reconcile();
        expect(hostFootprint(prebuiltApp)).toEqual(EMPTY_FOOTPRINT);
      } finally {
        await disposeApp(prebuiltApp);
      }
    }, 120_000);

    it("is ignored when it does not match (another compression): the image is built", async () => {
      const out = hostBundleImage("demo", [demo]);
      const other = await tempApp({
        image: { compression: "none" },
        bundles: { py: { storePaths: [demo], image: out } },
      });
      try {
        const { image, built } = await other.images.ensure([demo]);
        expect(built).toBe(true);
        expect(lstatSync(image.path).isSymbolicLink()).toBe(false);
      } finally {
        await disposeApp(other);
      }
    }, 120_000);
  },
);
