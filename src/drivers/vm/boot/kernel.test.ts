import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../common/errors.js";
import { findGuestKernel } from "./kernel.js";
import { readBootAssets } from "./prebuilt-boot-assets.js";

describe("findGuestKernel with a modules directory (NixOS: kernel.dev/vmlinux + kernel/lib/modules/<release>)", () => {
  const dir = mkdtempSync(join(tmpdir(), "osn-kernel-"));
  const image = join(dir, "vmlinux");
  const modules = join(dir, "lib", "modules", "6.6.63");
  writeFileSync(image, "ELF");
  mkdirSync(modules, { recursive: true });
  writeFileSync(join(modules, "modules.dep"), "");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("takes the release from the modules directory, not the file name", () => {
    expect(findGuestKernel(image, undefined, modules)).toEqual({
      image,
      release: "6.6.63",
      modulesDir: modules,
    });
  });
  it("refuses a modules directory without modules.dep, and a missing kernel", () => {
    expect(() => findGuestKernel(image, undefined, dir)).toThrow(
      expect.objectContaining({ code: ErrorCode.HOST_FEATURE_MISSING }),
    );
    expect(() => findGuestKernel(join(dir, "nope"), undefined, modules)).toThrow(/does not exist/);
  });
  it("readBootAssets resolves the manifest's files and explains a directory without one", () => {
    writeFileSync(
      join(dir, "boot-assets.json"),
      JSON.stringify({ vmlinux: "vmlinux", initrd: "initrd.cpio", release: "6.6.63" }),
    );
    expect(readBootAssets(dir)).toEqual({
      vmlinux: image,
      initrd: join(dir, "initrd.cpio"),
      release: "6.6.63",
    });
    expect(() => readBootAssets(modules)).toThrow(/boot-assets\.json/);
  });
});
