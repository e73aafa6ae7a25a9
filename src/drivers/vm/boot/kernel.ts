import { existsSync, readdirSync } from "node:fs";
import { basename } from "node:path";
import { ErrorCode, OsnError } from "../../../common/errors.js";

export interface GuestKernel {
  /** The kernel image as shipped (a bzImage, or already an ELF vmlinux). */
  image: string;
  /** Kernel release, e.g. 6.1.0-57-amd64. */
  release: string;
  /** Its modules directory (modules.dep lives there). */
  modulesDir: string;
}

/**
 * The guest kernel: the configured image, or the newest /boot/vmlinuz-* whose modules are
 * installed (Debian's linux-image-amd64). The release is taken from the file name.
 */
export function findGuestKernel(
  configured?: string,
  modulesRoot = "/lib/modules",
  /** The kernel's modules directory when it is not <modulesRoot>/<release> (NixOS). */
  modulesDir?: string,
): GuestKernel {
  if (configured && modulesDir) {
    if (!existsSync(configured))
      throw new OsnError(ErrorCode.HOST_FEATURE_MISSING, `guest kernel ${configured} does not exist`, {
        hint: "set vm.kernel to a kernel image (NixOS: the module sets it from boot.kernelPackages)",
      });
    if (!existsSync(`${modulesDir}/modules.dep`))
      throw new OsnError(ErrorCode.HOST_FEATURE_MISSING, `no modules.dep in ${modulesDir}`, {
        hint: "set vm.modules to the kernel's lib/modules/<release> directory",
      });
    return { image: configured, release: basename(modulesDir), modulesDir };
  }
  const candidates = configured
    ? [configured]
    : listBoot()
        .filter((f) => f.startsWith("vmlinuz-"))
        .map((f) => `/boot/${f}`)
        .sort()
        .reverse();
  for (const image of candidates) {
    if (!existsSync(image)) {
      throw new OsnError(ErrorCode.HOST_FEATURE_MISSING, `guest kernel ${image} does not exist`, {
        hint: "set vm.kernel in the config to a kernel image, or apt-get install linux-image-amd64",
      });
    }
    const release = basename(image).replace(/^vmlinu[xz]-?/, "");
    const modulesDir = `${modulesRoot}/${release}`;
    if (existsSync(`${modulesDir}/modules.dep`)) return { image, release, modulesDir };
    if (configured) {
      throw new OsnError(
        ErrorCode.HOST_FEATURE_MISSING,
        `no modules for guest kernel ${release} in ${modulesDir}`,
        {
          hint: "name the kernel vmlinuz-<release> with its modules in /lib/modules/<release>",
        },
      );
    }
  }
  throw new OsnError(
    ErrorCode.HOST_FEATURE_MISSING,
    "no guest kernel found (no /boot/vmlinuz-* with modules)",
    {
      hint: "apt-get install linux-image-amd64 (NixOS: set vm.kernel)",
    },
  );
}

function listBoot(): string[] {
  try {
    return readdirSync("/boot");
  } catch {
    return [];
  }
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/** Offset of the xz stream holding the uncompressed kernel inside a bzImage, or -1. */
export function findXzPayload(bzImage: Buffer): number {
  return bzImage.indexOf(XZ_MAGIC);
}

export function isElf(data: Buffer): boolean {
  return data.subarray(0, 4).equals(ELF_MAGIC);
}
