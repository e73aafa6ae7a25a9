import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { disposeApp, missingHostFeature, runCli, runCollect, tempApp } from "../helpers/host.js";

const skip = missingHostFeature({
  tools: ["qemu-system-x86_64", "mkfs.ext4", "xz"],
  install: "apt-get install qemu-system-x86 e2fsprogs xz-utils",
});

describe.skipIf(skip)(`VM boot assets prebuilt (vm.bootAssets)${skip ? ` (skipped: ${skip})` : ""}`, () => {
  it("`boot-assets` writes them once; a VM then boots from them and builds none", async () => {
    const dir = mkdtempSync("/var/tmp/osn-boot-");
    const out = join(dir, "assets");
    try {
      const made = await runCli(join(dir, "unused-state"), ["boot-assets", "--out", out]);
      expect(made.status).toBe(0);
      const assets = JSON.parse(made.stdout) as { vmlinux: string; initrd: string; release: string };
      expect(assets.vmlinux).toBe(join(out, "vmlinux"));
      expect(existsSync(join(out, "boot-assets.json"))).toBe(true);
      const app = await tempApp({ vm: { accel: "tcg", bootAssets: out } });
      try {
        const r = await runCollect(app, { kind: "vm", command: ["python3", "-c", "print(6*7)"] });
        expect(r.stdout).toBe("42\n");
        // Nothing was extracted or packed for this state directory.
        expect(existsSync(join(app.layout.root, "boot"))).toBe(false);
      } finally {
        await disposeApp(app);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it("vm.extraModules are loaded at boot (the supervisor's veth), and an unknown one is refused clearly", async () => {
    const app = await tempApp({ vm: { accel: "tcg", extraModules: ["veth", "dummy"] } });
    try {
      const r = await runCollect(app, {
        kind: "vm",
        command: ["sh", "-c", "test -d /sys/module/veth && test -d /sys/module/dummy && echo loaded"],
      });
      expect(r.stdout).toBe("loaded\n");
    } finally {
      await disposeApp(app);
    }
    const bad = await tempApp({ vm: { accel: "tcg", extraModules: ["no_such_module"] } });
    try {
      await expect(runCollect(bad, { kind: "vm", command: ["true"] })).rejects.toThrow(
        /no module no_such_module/,
      );
      expect(bad.service.list()).toEqual([]);
    } finally {
      await disposeApp(bad);
    }
  }, 180_000);

  it("says clearly when the prebuilt directory is not one", async () => {
    const app = await tempApp({ vm: { accel: "tcg", bootAssets: "/nonexistent/boot-assets" } });
    try {
      await expect(runCollect(app, { kind: "vm", command: ["true"] })).rejects.toThrow(/boot-assets\.json/);
      expect(app.service.list()).toEqual([]);
    } finally {
      await disposeApp(app);
    }
  }, 60_000);
});
