import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../common/errors.js";
import { readModule } from "./boot/boot-assets.js";
import { writeCpio } from "./boot/cpio.js";
import { guestSpec } from "./boot/guest-init.js";
import { findXzPayload, isElf } from "./boot/kernel.js";
import { parseModulesDep, resolveModules } from "./boot/modules.js";
import { kernelCommandLine, qemuArgv } from "./qemu/qemu-argv.js";

describe("writeCpio", () => {
  const archive = writeCpio([
    { path: "bin", type: "dir" },
    { path: "bin/hello", type: "file", mode: 0o755, data: Buffer.from("hi!") },
    { path: "bin/sh", type: "symlink", target: "busybox" },
  ]);
  it("writes newc records, 4-byte aligned, with a trailer", () => {
    const text = archive.toString("latin1");
    expect(text.startsWith("070701")).toBe(true);
    expect(text.match(/070701/g)).toHaveLength(4);
    expect(text).toContain("bin/hello\0");
    expect(text).toContain("TRAILER!!!\0");
    expect(archive.length % 4).toBe(0);
  });
  it("is a pure function of its entries (no mtimes, owners or host inode numbers)", () => {
    expect(
      writeCpio([
        { path: "bin", type: "dir" },
        { path: "bin/hello", type: "file", mode: 0o755, data: Buffer.from("hi!") },
        { path: "bin/sh", type: "symlink", target: "busybox" },
      ]),
    ).toEqual(archive);
  });
});

describe("resolveModules", () => {
  const index = parseModulesDep(
    [
      "kernel/fs/erofs/erofs.ko: kernel/lib/libcrc32c.ko",
      "kernel/lib/libcrc32c.ko:",
      "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
      "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko",
      "kernel/drivers/virtio/virtio_ring.ko:",
      "kernel/crypto/crc32c_generic.ko:",
    ].join("\n"),
    "kernel/fs/overlayfs/overlay.ko\n",
  );
  it("orders dependencies first, each module once, and skips built-in ones", () => {
    expect(resolveModules(index, ["virtio_blk", "erofs", "overlay", "crc32c-generic"])).toEqual([
      "virtio_ring",
      "virtio",
      "virtio_blk",
      "libcrc32c",
      "erofs",
      "crc32c_generic",
    ]);
  });
  it("names a missing module and who needs it", () => {
    expect(() => resolveModules(index, ["ext4"])).toThrow(
      expect.objectContaining({ code: ErrorCode.HOST_FEATURE_MISSING }),
    );
  });
});

describe("guestSpec", () => {
  it("quotes every value, so the spec cannot inject shell code", () => {
    const spec = guestSpec({
      hostname: "vm1",
      env: { PATH: "/nix/store/x/bin", Q: "it's $(reboot)" },
      command: ["sh", "-c", "echo 'a b'; exit 3"],
    });
    expect(spec).toContain("OSN_HOSTNAME='vm1'");
    expect(spec).toContain(`'Q=it'\\''s $(reboot)'`);
    expect(spec).toContain("'chroot' '/newroot' 'sh' '-c' 'echo '\\''a b'\\''; exit 3'");
  });
});

describe("qemuArgv", () => {
  const base = {
    memoryMiB: 512,
    cpus: 1,
    vmlinux: "/b/vmlinux",
    initrd: "/b/initrd",
    image: "/s/images/k.erofs",
    specFile: "/s/spec",
    consoleLog: "/s/console.log",
    stdoutFile: "/s/out",
    stderrFile: "/s/err",
    statusFile: "/s/status",
    qmpSocket: "/s/qmp.sock",
    controlSocket: "/s/control.sock",
    network: false,
  };
  it("boots a microvm directly, the image read-only on virtio-blk", () => {
    const argv = qemuArgv({ ...base, accel: "tcg", tscKhz: 2_000_000 });
    expect(argv.join(" ")).toContain("-M microvm");
    expect(argv.join(" ")).toContain("-cpu max");
    expect(argv).toContain("id=image,file=/s/images/k.erofs,format=raw,if=none,readonly=on");
    expect(argv).not.toContain("-bios");
    expect(argv[argv.indexOf("-sandbox") + 1]).toMatch(/^on,.*spawn=deny/);
    for (const port of ["stdout", "stderr", "status", "control"]) {
      expect(argv.join(" ")).toContain(`name=org.openshell.${port}`);
    }
  });
  it("pins the TSC frequency under TCG only (the microvm boot hang)", () => {
    expect(kernelCommandLine({ accel: "tcg", tscKhz: 2_000_000 })).toContain("tsc_early_khz=2000000");
    expect(kernelCommandLine({ accel: "kvm", tscKhz: 2_000_000 })).not.toContain("tsc_early_khz");
  });
  it("falls back to q35 with the same devices on PCI, and keeps PCI probing on", () => {
    const argv = qemuArgv({ ...base, accel: "tcg", machine: "q35", network: true }).join(" ");
    expect(argv).toContain("-M q35");
    expect(argv).toContain("virtio-blk-pci,drive=image");
    expect(argv).toContain("virtio-serial-pci");
    expect(argv).toContain("virtio-net-pci,netdev=net");
    expect(argv).not.toContain("-device virtio-blk-device");
    expect(kernelCommandLine({ accel: "tcg", machine: "q35" })).not.toContain("pci=off");
    expect(kernelCommandLine({ accel: "tcg" })).toContain("pci=off");
  });
  it("escapes commas in paths for qemu's option syntax", () => {
    expect(qemuArgv({ ...base, accel: "kvm", image: "/a,b.erofs" }).join(" ")).toContain("file=/a,,b.erofs");
  });
  it("attaches a writable disk only when the sandbox keeps files", () => {
    expect(qemuArgv({ ...base, accel: "tcg" }).join(" ")).not.toContain("id=upper");
    expect(qemuArgv({ ...base, accel: "tcg", upperDisk: "/s/upper.img" }).join(" ")).toContain("id=upper");
  });
});

describe("kernel image", () => {
  it("finds the xz payload of a bzImage and recognises ELF", () => {
    const fake = Buffer.concat([
      Buffer.alloc(100, 1),
      Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
      Buffer.alloc(8),
    ]);
    expect(findXzPayload(fake)).toBe(100);
    expect(isElf(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0]))).toBe(true);
    expect(isElf(fake)).toBe(false);
  });
});

describe("readModule", () => {
  const dir = mkdtempSync(join(tmpdir(), "kmod-"));
  const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46]), Buffer.alloc(4096, 7)]);
  writeFileSync(join(dir, "m.ko"), elf);
  writeFileSync(join(dir, "m.ko.gz"), gzipSync(elf));
  it("reads plain and gzip-compressed modules", () => {
    expect(readModule(join(dir, "m.ko"))).toEqual(elf);
    expect(readModule(join(dir, "m.ko.gz"))).toEqual(elf);
  });
  it.skipIf(spawnSync("xz", ["--version"]).status !== 0)(
    "reads xz-compressed modules (NixOS kernels)",
    () => {
      spawnSync("xz", ["-k", join(dir, "m.ko")]);
      expect(readModule(join(dir, "m.ko.xz"))).toEqual(elf);
    },
  );
});
