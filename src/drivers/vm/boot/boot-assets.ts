import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { ErrorCode, OsnError } from "../../../common/errors.js";
import { readText } from "../../../common/fs.js";
import { runCommandStatus } from "../../../process/run-command.js";
import type { Locks } from "../../../state/locks.js";
import { type CpioEntry, writeCpio } from "./cpio.js";
import { FileDigests } from "./file-digest.js";
import { GUEST_INIT } from "./guest-init.js";
import { findXzPayload, type GuestKernel, isElf } from "./kernel.js";
import { parseModulesDep, resolveModules } from "./modules.js";

/** What the guest needs beyond the bundle image: virtio over MMIO, disks, net, fw_cfg, filesystems. */
export const GUEST_MODULES = [
  "virtio_mmio",
  "virtio_pci",
  "virtio_blk",
  "virtio_net",
  "virtio_console",
  "qemu_fw_cfg",
  "crc32c_generic",
  "erofs",
  "overlay",
  "ext4",
];

export const GUEST_BUSYBOX = "/bin/busybox";

export interface BootAssets {
  /** Uncompressed ELF kernel, booted directly (PVH): no in-guest decompression. */
  vmlinux: string;
  initrd: string;
  release: string;
}

/**
 * Boot assets made by openshell-nix and cached by content under <state>/boot: the vmlinux
 * extracted from the distribution's bzImage (decompressing xz under TCG costs seconds per boot)
 * and a tiny initramfs: static busybox, exactly the modules GUEST_MODULES needs in load order,
 * and the guest init.
 */
export class BootAssetCache {
  constructor(
    private readonly dir: string,
    private readonly locks: Pick<Locks, "with">,
    /** A static busybox for the initramfs (NixOS: pkgsStatic.busybox). */
    private readonly busybox: string = GUEST_BUSYBOX,
    /**
     * More modules to load at boot (vm.extraModules): the guest has no modprobe to load them
     * on demand, and the OpenShell supervisor needs veth and nf_tables.
     */
    private readonly extraModules: readonly string[] = [],
  ) {}

  async ensure(kernel: GuestKernel, progress: (m: string) => void = () => {}): Promise<BootAssets> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const digests = new FileDigests(join(this.dir, "digests.json"));
    const vmlinux = await this.vmlinux(kernel, digests, progress);
    const initrd = await this.initrd(kernel, digests, progress);
    digests.save();
    return { vmlinux, initrd, release: kernel.release };
  }

  /** Keyed by the content of the kernel image. */
  private async vmlinux(
    kernel: GuestKernel,
    digests: FileDigests,
    progress: (m: string) => void,
  ): Promise<string> {
    const key = digests.digest(kernel.image).slice(0, 16);
    const out = join(this.dir, `vmlinux-${kernel.release}-${key}`);
    if (existsSync(out)) return out;
    return this.locks.with(`boot:${out}`, async () => {
      if (existsSync(out)) return out;
      const image = readFileSync(kernel.image);
      if (isElf(image)) {
        writeAtomically(out, image);
        return out;
      }
      const offset = findXzPayload(image);
      if (offset < 0) {
        throw new OsnError(
          ErrorCode.HOST_FEATURE_MISSING,
          `${kernel.image} is neither an ELF nor an xz-compressed bzImage`,
          {
            hint: "set vm.kernel to an uncompressed vmlinux (NixOS: the kernel's `dev` output has one)",
          },
        );
      }
      progress(`extracting the uncompressed kernel from ${kernel.image}`);
      const tmp = `${out}.tmp-${process.pid}`;
      // xz stops with an error at the bzImage's trailing bytes after the stream; what it wrote
      // before that is the whole kernel, checked below.
      await runCommandStatus([
        "sh",
        "-c",
        'tail -c +$(( $1 + 1 )) "$2" | xz -dc > "$3"',
        "xz",
        String(offset),
        kernel.image,
        tmp,
      ]);
      const head = Buffer.alloc(4);
      const data = readFileSync(tmp);
      data.copy(head, 0, 0, 4);
      if (!isElf(head)) {
        throw new OsnError(
          ErrorCode.HOST_FEATURE_MISSING,
          `could not extract an ELF kernel from ${kernel.image}`,
          {
            hint: "apt-get install xz-utils; or set vm.kernel to an uncompressed vmlinux",
          },
        );
      }
      renameSync(tmp, out);
      return out;
    });
  }

  /** Keyed by the content of everything that goes in: busybox, each module, the init. */
  private async initrd(
    kernel: GuestKernel,
    digests: FileDigests,
    progress: (m: string) => void,
  ): Promise<string> {
    const index = parseModulesDep(
      readFileSync(join(kernel.modulesDir, "modules.dep"), "utf8"),
      readText(join(kernel.modulesDir, "modules.builtin")),
    );
    const modules = resolveModules(index, [...GUEST_MODULES, ...this.extraModules]);
    const key = hash(
      [
        GUEST_INIT,
        digests.digest(this.busybox),
        ...modules.map(
          (m) => `${m}:${digests.digest(join(kernel.modulesDir, index.paths.get(m) as string))}`,
        ),
      ].join("\0"),
    );
    const out = join(this.dir, `initrd-${kernel.release}-${key}.cpio`);
    if (existsSync(out)) return out;
    return this.locks.with(`boot:${out}`, async () => {
      if (existsSync(out)) return out;
      progress(`building the guest initramfs (${modules.length} modules)`);
      const entries: CpioEntry[] = [
        ...["bin", "lib", "lib/modules", "proc", "sys", "dev", "tmp"].map((d) => ({
          path: d,
          type: "dir" as const,
        })),
        { path: "bin/busybox", type: "file", mode: 0o755, data: readFileSync(this.busybox) },
        { path: "init", type: "file", mode: 0o755, data: Buffer.from(GUEST_INIT) },
        { path: "modules.order", type: "file", data: Buffer.from(`${modules.join("\n")}\n`) },
        ...modules.map((m) => ({
          path: `lib/modules/${m}.ko`,
          type: "file" as const,
          data: readModule(join(kernel.modulesDir, index.paths.get(m) as string)),
        })),
      ];
      writeAtomically(out, writeCpio(entries));
      return out;
    });
  }
}

/**
 * A module's ELF bytes. Busybox's insmod loads plain .ko files only, while some distributions
 * (NixOS among them) ship modules compressed: decompress those here, once, at build time.
 */
export function readModule(path: string): Buffer {
  if (path.endsWith(".gz")) return gunzipSync(readFileSync(path));
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : undefined;
  if (!tool) return readFileSync(path);
  const r = spawnSync(tool, ["-dc", path], { maxBuffer: 256 * 2 ** 20 });
  if (r.status !== 0 || !isElf(r.stdout)) {
    throw new OsnError(
      ErrorCode.HOST_FEATURE_MISSING,
      `cannot decompress the kernel module ${path} with ${tool}`,
      {
        hint: `install ${tool === "xz" ? "xz-utils" : "zstd"}`,
      },
    );
  }
  return r.stdout;
}

function hash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

function writeAtomically(path: string, data: Buffer): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}
