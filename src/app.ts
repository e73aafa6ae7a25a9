import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { BundleResolver } from "./bundle/bundle-resolver.js";
import { loadConfig } from "./config/load.js";
import { parseBytes } from "./config/quantity.js";
import type { Config } from "./config/schema.js";
import { CrunContainerDriver } from "./drivers/container/container-driver.js";
import type { AccelSetting } from "./drivers/vm/accel.js";
import { QemuVmDriver } from "./drivers/vm/qemu-vm-driver.js";
import { detectCgroupLayout } from "./host/cgroups.js";
import { ImageCache } from "./image/image-cache.js";
import { LowerMounts } from "./image/lower-mounts.js";
import { NixStore } from "./nix/nix-store.js";
import { SandboxService } from "./sandbox/sandbox-service.js";
import { type Db, openDb } from "./state/db.js";
import { DEFAULT_STATE_DIR, StateLayout } from "./state/layout.js";
import { Locks } from "./state/locks.js";
import { SandboxRepo } from "./state/sandbox-repo.js";

export interface AppOptions {
  stateDir?: string;
  configFile?: string;
  config?: Config;
}

export interface App {
  config: Config;
  layout: StateLayout;
  db: Db;
  service: SandboxService;
  bundles: BundleResolver;
  images: ImageCache;
  locks: Locks;
  close(): void;
}

/** Wire the concrete classes together; the only place that knows them all. */
export async function openApp(options: AppOptions = {}): Promise<App> {
  const config = options.config ?? (await loadConfig(options.configFile));
  const stateDir =
    options.stateDir ?? process.env.OPENSHELL_NIX_STATE_DIR ?? config.stateDir ?? DEFAULT_STATE_DIR;
  const layout = new StateLayout(stateDir);
  for (const dir of [
    layout.root,
    layout.imagesDir,
    layout.mountsDir,
    layout.gcrootsDir,
    layout.sandboxesDir,
    layout.tmpDir,
  ]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  // Root inside a sandbox can make setuid files in its upper and home directories, which live
  // below here: only root may traverse the state directory, whatever mode it had before.
  chmodSync(layout.root, 0o700);
  const db = openDb(layout.db);
  const locks = new Locks(db);
  const nix = new NixStore();
  const prebuilt = Object.values(config.bundles ?? {}).flatMap((b) => (b.image ? [b.image] : []));
  const images = new ImageCache(db, layout, locks, nix, config.image?.compression ?? "lz4", prebuilt);
  const lowers = new LowerMounts(db, layout, locks);
  const bundles = new BundleResolver(config, nix, join(layout.gcrootsDir, "bundles"));
  const repo = new SandboxRepo(db);
  const cgroups = detectCgroupLayout();
  const container = new CrunContainerDriver(layout, lowers, cgroups);
  const vm = new QemuVmDriver(
    layout,
    locks,
    {
      kernel: config.vm?.kernel,
      modules: config.vm?.modules,
      busybox: config.vm?.busybox,
      extraModules: config.vm?.extraModules,
      prebuiltBootAssets: config.vm?.bootAssets,
      accel: config.vm?.accel ?? accelFromEnv() ?? "auto",
      machine: config.vm?.machine ?? "auto",
      memoryMiB: Math.floor(parseBytes(config.vm?.memory ?? "512Mi", "vm.memory") / 2 ** 20),
      cpus: config.vm?.cpus ?? 1,
      diskBytes: parseBytes(config.vm?.diskSize ?? "4Gi", "vm.diskSize"),
    },
    cgroups,
  );
  // VMs first: reconcile kills orphan qemu processes before any directory is removed.
  const drivers = [vm, container];
  const service = new SandboxService({ config, layout, locks, repo, images, lowers, bundles, drivers });
  return { config, layout, db, service, bundles, images, locks, close: () => db.close() };
}

/** OPENSHELL_NIX_ACCEL=kvm|tcg|auto overrides the config (tests pin TCG with it). */
function accelFromEnv(): AccelSetting | undefined {
  const v = process.env.OPENSHELL_NIX_ACCEL;
  return v === "kvm" || v === "tcg" || v === "auto" ? v : undefined;
}
