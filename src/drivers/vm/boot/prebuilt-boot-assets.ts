import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, OsnError } from "../../../common/errors.js";
import { BootAssetCache, type BootAssets } from "./boot-assets.js";
import { findGuestKernel } from "./kernel.js";

/** The file in a prebuilt boot-assets directory that names its parts. */
const MANIFEST = "boot-assets.json";

interface Manifest {
  vmlinux: string;
  initrd: string;
  release: string;
}

export interface BootInputs {
  kernel?: string;
  modules?: string;
  busybox?: string;
  extraModules?: string[];
}

/**
 * Write the guest's boot assets into `out` as the daemon would make them at first use (same
 * builder, same format): vmlinux, initrd.cpio and boot-assets.json. The NixOS module runs this
 * in a derivation, so VM sandboxes need no build at their first start.
 */
export async function writeBootAssets(inputs: BootInputs, out: string): Promise<BootAssets> {
  const work = mkdtempSync(join(tmpdir(), "osn-boot-"));
  try {
    // One process, no contention: a lock that only runs the function.
    const noLock = { with: <T>(_name: string, fn: () => Promise<T>) => fn() };
    const built = await new BootAssetCache(work, noLock, inputs.busybox, inputs.extraModules).ensure(
      findGuestKernel(inputs.kernel, undefined, inputs.modules),
    );
    mkdirSync(out, { recursive: true });
    copyFileSync(built.vmlinux, join(out, "vmlinux"));
    copyFileSync(built.initrd, join(out, "initrd.cpio"));
    const manifest: Manifest = { vmlinux: "vmlinux", initrd: "initrd.cpio", release: built.release };
    writeFileSync(join(out, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    return readBootAssets(out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Boot assets from a directory writeBootAssets made (vm.bootAssets in the config). */
export function readBootAssets(dir: string): BootAssets {
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(join(dir, MANIFEST), "utf8")) as Manifest;
  } catch (err) {
    throw new OsnError(ErrorCode.HOST_FEATURE_MISSING, `vm.bootAssets ${dir} has no readable ${MANIFEST}`, {
      cause: err,
      hint: "build it with `openshell-nix vm boot-assets --out DIR` (the NixOS module does)",
    });
  }
  return { vmlinux: join(dir, m.vmlinux), initrd: join(dir, m.initrd), release: m.release };
}
