import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type App, openApp } from "../../src/app.js";
import { type AccelChoice, type AccelSetting, chooseAccel } from "../../src/drivers/vm/accel.js";
import type { BootAssets } from "../../src/drivers/vm/boot/boot-assets.js";
import { QemuVmDriver } from "../../src/drivers/vm/qemu-vm-driver.js";
import type { ImageInfo } from "../../src/image/image-cache.js";
import type { CleanupStack } from "../../src/process/cleanup-stack.js";
import { removeAutoRoots } from "./remove-auto-roots.js";
import { removeTree } from "./remove-tree.js";
import { QemuTracker } from "./vm-qemu.js";
import { CONFIG } from "./workload.js";

/** What every VM variant shares. */
export interface VmBench {
  /** Temporary directory holding everything this run creates. */
  root: string;
  app: App;
  driver: QemuVmDriver;
  image: ImageInfo;
  assets: BootAssets;
  /** The accelerator every variant runs under, and why. */
  accel: AccelChoice;
  /** qemu processes the benchmark spawned itself (the floor and QCOW2 variants). */
  qemus: QemuTracker;
  cleanup: CleanupStack;
}

/**
 * A temporary state directory opened with `vm.accel` set to `setting`, the demo bundle's image
 * built and the boot assets made (so both are warm), and the accelerator chosen by chooseAccel
 * with the same setting and cache directory as the driver's (so both choose alike; checked).
 */
export async function setUpVmBench(cleanup: CleanupStack, setting: AccelSetting): Promise<VmBench> {
  const root = mkdtempSync(join(tmpdir(), "osn-vmbench-"));
  cleanup.push("temporary directory", () => removeTree(root));
  cleanup.push("Nix auto GC roots", () => void removeAutoRoots(root));
  const qemus = new QemuTracker();
  cleanup.push("qemu processes", () => {
    const killed = qemus.killAll();
    if (killed > 0) process.stderr.write(`killed ${killed} leftover qemu process(es)\n`);
  });
  const app = await openApp({ stateDir: join(root, "state"), config: { ...CONFIG, vm: { accel: setting } } });
  cleanup.push("leftover sandboxes", async () => {
    for (const sb of app.service.list()) await app.service.remove(sb.name);
    app.close();
  });
  const driver = app.service.driver("vm");
  if (!(driver instanceof QemuVmDriver)) throw new Error("the vm driver is not the qemu driver");
  const bundle = await app.bundles.resolve({ bundle: "demo" });
  const { image } = await app.images.ensure(bundle.toplevels);
  const progress = (m: string) => process.stderr.write(`  ${m}\n`);
  const { assets, accel: driverChoice } = await driver.bootAssets(progress);
  const accel = await chooseAccel(setting, assets, join(app.layout.root, "boot"));
  if (accel.accel !== driverChoice.accel || accel.cpu !== driverChoice.cpu) {
    throw new Error(
      `chooseAccel chose ${accel.accel} (${accel.reason}) but the driver ${driverChoice.accel} (${driverChoice.reason})`,
    );
  }
  return { root, app, driver, image, assets, accel, qemus, cleanup };
}
