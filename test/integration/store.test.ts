import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { nixBuildOptions } from "../../src/nix/nix-store.js";
import { disposeApp, fileSha256, missingHostFeature, runCli, tempApp } from "../helpers/host.js";

const skip = missingHostFeature();
const GC_PROBE = new URL("../fixtures/gc-probe.nix", import.meta.url).pathname;

async function cliJson(stateDir: string, args: string[]): Promise<Record<string, unknown>> {
  const r = await runCli(stateDir, args);
  if (r.status !== 0) throw new Error(`exit ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe.skipIf(skip)(`bundle images and the Nix store${skip ? ` (skipped: ${skip})` : ""}`, () => {
  let app: App;
  let demo: string;
  let closure: string[];

  beforeAll(async () => {
    app = await tempApp();
    demo = (await app.bundles.resolve({ bundle: "demo" })).toplevels[0] as string;
    closure = execFileSync("nix-store", ["-qR", demo]).toString().trim().split("\n").sort();
  });

  afterAll(async () => {
    if (app) await disposeApp(app);
  });

  it("builds one image per closure, holding exactly the closure, and hits the cache after", async () => {
    const first = await app.images.ensure([demo]);
    expect(first.built).toBe(true);
    const again = await app.images.ensure([demo]);
    expect(again.built).toBe(false);
    expect(again.image.key).toBe(first.image.key);
    const mnt = mkdtempSync("/var/tmp/osn-img-");
    execFileSync("mount", ["-t", "erofs", "-o", "ro,loop", first.image.path, mnt]);
    try {
      expect(readdirSync(`${mnt}/nix/store`).sort()).toEqual(closure.map((p) => p.slice(11)));
      expect(readFileSync(`${mnt}/closure`, "utf8").trim().split("\n")).toEqual(closure);
      expect(readFileSync(`${mnt}/registration`, "utf8")).toContain(demo);
      expect(readdirSync(mnt).sort()).toEqual(["closure", "nix", "registration"]);
    } finally {
      execFileSync("umount", [mnt]);
      rmSync(mnt, { recursive: true });
    }
  });

  it("is reproducible: another state dir builds a byte-identical image", async () => {
    const other = await tempApp();
    try {
      const a = (await app.images.ensure([demo])).image;
      const b = (await other.images.ensure([demo])).image;
      expect(b.key).toBe(a.key);
      expect(fileSha256(b.path)).toBe(fileSha256(a.path));
    } finally {
      await disposeApp(other);
    }
  });

  it("coalesces concurrent builds of the same image, in one process and across processes", async () => {
    const fresh = await tempApp();
    try {
      const results = await Promise.all([fresh.images.ensure([demo]), fresh.images.ensure([demo])]);
      expect(results.filter((r) => r.built)).toHaveLength(1);
    } finally {
      await disposeApp(fresh);
    }
    const dir = mkdtempSync("/var/tmp/osn-test-");
    try {
      const both = await Promise.all([
        cliJson(dir, ["bundle", "build", "demo", "--json"]),
        cliJson(dir, ["bundle", "build", "demo", "--json"]),
      ]);
      expect(both.map((r) => r.built).sort()).toEqual([false, true]);
      expect(both[0]?.key).toBe(both[1]?.key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("holds GC roots while the image exists: nix-store --gc keeps a live sandbox's closure", async () => {
    const tag = `t${Date.now()}`;
    const top = execFileSync("nix-build", [
      GC_PROBE,
      "--argstr",
      "tag",
      tag,
      "--no-out-link",
      ...nixBuildOptions(),
    ])
      .toString()
      .trim();
    const paths = execFileSync("nix-store", ["-qR", top]).toString().trim().split("\n");
    expect(paths).toHaveLength(2);
    await app.service.create({ name: "rooted", storePaths: [top], command: ["true"] });
    execFileSync("nix-store", ["--gc"], { stdio: "ignore" });
    for (const p of paths) expect(existsSync(p)).toBe(true);
    // The last user goes: the sandbox, then its image; then the paths are collectable again.
    await app.service.remove("rooted");
    const removed = await app.service.gcImages();
    expect(removed.map((i) => i.toplevels)).toContainEqual([top]);
    execFileSync("nix-store", ["--delete", top, ...paths.filter((p) => p !== top)], { stdio: "ignore" });
    for (const p of paths) expect(existsSync(p)).toBe(false);
  });

  it("bundle gc keeps images that sandboxes use", async () => {
    await app.service.create({ name: "user", bundle: "demo", command: ["true"] });
    const removed = await app.service.gcImages();
    expect(removed.map((i) => i.toplevels[0])).not.toContain(demo);
    expect(app.images.list().map((i) => i.toplevels[0])).toContain(demo);
    await app.service.remove("user");
    await app.service.gcImages();
    expect(app.images.list()).toEqual([]);
    expect(readdirSync(app.layout.imagesDir)).toEqual([]);
  });
});
