import { describe, expect, it } from "vitest";
import { parseMountinfo } from "../host/mounts.js";
import { imageKey, mkfsErofsArgv } from "./image-format.js";

describe("imageKey", () => {
  const closure = ["/nix/store/b-x", "/nix/store/a-y"];
  it("depends on the closure as a set, not its order", () => {
    expect(imageKey(closure, "lz4")).toBe(imageKey([...closure].reverse(), "lz4"));
  });
  it("changes with the closure and with the compression", () => {
    expect(imageKey(closure, "lz4")).not.toBe(imageKey(["/nix/store/a-y"], "lz4"));
    expect(imageKey(closure, "lz4")).not.toBe(imageKey(closure, "lz4hc"));
  });
});

describe("mkfsErofsArgv", () => {
  it("pins time, owner and UUID so the image is a function of its input", () => {
    const argv = mkfsErofsArgv("/o.img", "/stage", "lz4");
    expect(argv).toContain("-T0");
    expect(argv).toContain("--all-root");
    expect(argv.some((a) => a.startsWith("-U"))).toBe(true);
    expect(argv.slice(-3)).toEqual(["-zlz4", "/o.img", "/stage"]);
    expect(mkfsErofsArgv("/o", "/s", "none").some((a) => a.startsWith("-z"))).toBe(false);
  });
});

describe("parseMountinfo", () => {
  it("reads mountpoints with escaped spaces", () => {
    const line =
      "36 35 98:0 / /mnt/my\\040dir rw,noatime master:1 - erofs /dev/loop3 ro\n" +
      "37 35 0:31 / /sys/fs/cgroup/memory rw shared:9 - cgroup cgroup rw,memory\n";
    const m = parseMountinfo(line);
    expect(m[0]).toMatchObject({ mountpoint: "/mnt/my dir", fstype: "erofs", source: "/dev/loop3" });
    expect(m[1]?.superOptions).toBe("rw,memory");
  });
});
