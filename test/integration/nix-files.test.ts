import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/load.js";
import { missingHostFeature } from "../helpers/host.js";

const ROOT = new URL("../..", import.meta.url).pathname;
const GOLDEN = join(ROOT, "test/fixtures/module-settings.golden.json");
const skip = missingHostFeature({ tools: ["nix-instantiate"], install: "apt-get install nix-bin" });

function nixFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    if (e === "node_modules" || e === ".git" || e === "dist") return [];
    const p = join(dir, e);
    if (statSync(p).isDirectory()) return nixFiles(p);
    return e.endsWith(".nix") ? [p] : [];
  });
}

describe.skipIf(skip)(`the Nix files${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const files = nixFiles(ROOT);

  it("include the flake, the package, the module and its test", () => {
    const rel = files.map((f) => relative(ROOT, f));
    for (const f of [
      "flake.nix",
      "nix/package.nix",
      "nix/module.nix",
      "nix/tests/basic.nix",
      "nix/bundle-image.nix",
    ])
      expect(rel).toContain(f);
  });

  it("README's configuration.nix example parses", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const example = /```nix\n(\{ inputs, pkgs, \.\.\. \}:[\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const r = spawnSync("nix-instantiate", ["--parse", "-E", example ?? ""], { encoding: "utf8" });
    expect(r.stderr).toBe("");
  });

  it.each(files.map((f) => [relative(ROOT, f), f]))("%s parses", (_rel, file) => {
    const r = spawnSync("nix-instantiate", ["--parse", file], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("package-lock.json, for nixpkgs' importNpmLock", () => {
  it("names a download URL and an integrity hash for every package", () => {
    const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
      packages: Record<string, { resolved?: string; integrity?: string; link?: boolean }>;
    };
    const missing = Object.entries(lock.packages)
      .filter(([path, p]) => path !== "" && !p.link && !(p.resolved?.startsWith("https://") && p.integrity))
      .map(([path]) => path);
    // npm omits `resolved` where omit-lockfile-registry-resolved is set; the project's .npmrc
    // turns that off, since importNpmLock fetches every package from its `resolved` URL.
    expect(missing).toEqual([]);
  });
});

describe("the settings the NixOS module renders (test/fixtures/module-settings.golden.json)", () => {
  it("are accepted by the daemon's schema", async () => {
    const config = await parseConfig(readFileSync(GOLDEN, "utf8"), GOLDEN);
    expect(config.driver?.socketMode).toBe("0660");
    expect(config.bundles?.python?.image).toMatch(/^\/nix\/store\/.*-openshell-nix-image-python$/);
    expect(config.vm?.bootAssets).toMatch(/^\/nix\/store\//);
  });

  it("would be refused by a schema that changed under them (the check can fail)", async () => {
    const golden = JSON.parse(readFileSync(GOLDEN, "utf8"));
    golden.driver.socketPermissions = golden.driver.socketMode;
    delete golden.driver.socketMode;
    await expect(parseConfig(JSON.stringify(golden))).rejects.toThrow(/socketPermissions/);
  });

  // CI has no nixpkgs: this part runs where NIXPKGS_LIB names a nixpkgs (or nixpkgs.lib) checkout.
  it.skipIf(!process.env.NIXPKGS_LIB)(
    `are what the module renders today${process.env.NIXPKGS_LIB ? "" : " (skipped: set NIXPKGS_LIB to a nixpkgs.lib checkout)"}`,
    () => {
      const out = execFileSync(join(ROOT, "scripts/eval-module.sh"), { encoding: "utf8" });
      expect(out).toMatch(/the module renders/);
    },
  );
});
