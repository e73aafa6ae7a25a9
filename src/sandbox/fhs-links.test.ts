import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { fhsLinks } from "./sandbox-service.js";

const root = mkdtempSync(join(tmpdir(), "osn-fhs-links-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A directory imitating a store path: `entries` maps "bin/name" or "sbin/name" to a file. */
function toplevel(name: string, entries: string[]): string {
  const top = join(root, name);
  mkdirSync(top, { recursive: true });
  for (const e of entries) {
    const file = join(top, e);
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, "#!/bin/sh\n");
  }
  return top;
}

describe("fhsLinks", () => {
  const a = toplevel("aaa-coreutils", ["bin/ls", "bin/env", "bin/cat", "sbin/chroot"]);
  const b = toplevel("bbb-busybox", ["bin/ls", "bin/sh", "sbin/ip", "sbin/chroot", "bin/env"]);
  const empty = toplevel("ccc-data", ["share/doc/README"]);
  const bare = join(root, "ddd-missing");

  it("links every program of bin and sbin under /usr/bin, the first toplevel winning", () => {
    const links = fhsLinks([a, b]);
    expect(new Map(links)).toEqual(
      new Map([
        ["/usr/bin/cat", `${a}/bin/cat`],
        ["/usr/bin/env", `${a}/bin/env`],
        ["/usr/bin/ls", `${a}/bin/ls`],
        ["/usr/bin/chroot", `${a}/sbin/chroot`],
        ["/usr/bin/sh", `${b}/bin/sh`],
        ["/usr/bin/ip", `${b}/sbin/ip`],
      ]),
    );
    expect(links).toHaveLength(6);
    for (const pair of links) expect(pair).toHaveLength(2);
  });

  it("the order of toplevels decides a clash", () => {
    const links = new Map(fhsLinks([b, a]));
    expect(links.get("/usr/bin/ls")).toBe(`${b}/bin/ls`);
    expect(links.get("/usr/bin/env")).toBe(`${b}/bin/env`);
    expect(links.get("/usr/bin/chroot")).toBe(`${b}/sbin/chroot`);
    expect(links.get("/usr/bin/cat")).toBe(`${a}/bin/cat`);
  });

  it("prefers a toplevel's bin over its own sbin", () => {
    const t = toplevel("eee-both", ["bin/tool", "sbin/tool"]);
    expect(fhsLinks([t])).toEqual([["/usr/bin/tool", `${t}/bin/tool`]]);
  });

  it("takes symlinks in bin as they are", () => {
    const t = toplevel("fff-links", ["bin/python3.12"]);
    symlinkSync("python3.12", join(t, "bin/python3"));
    expect(new Map(fhsLinks([t])).get("/usr/bin/python3")).toBe(`${t}/bin/python3`);
  });

  it("skips names with odd characters", () => {
    const t = toplevel("ggg-odd", [
      "bin/my tool",
      "bin/a..b",
      "bin/x;y",
      "bin/tab\tname",
      "bin/new\nline",
      "bin/ok-1.0_x+y",
      "sbin/$HOME",
      "sbin/quote'd",
    ]);
    expect(fhsLinks([t])).toEqual([
      ["/usr/bin/a..b", `${t}/bin/a..b`],
      ["/usr/bin/ok-1.0_x+y", `${t}/bin/ok-1.0_x+y`],
    ]);
  });

  it("is fine with toplevels without bin or sbin, or missing altogether", () => {
    expect(fhsLinks([empty])).toEqual([]);
    expect(fhsLinks([bare])).toEqual([]);
    expect(fhsLinks([])).toEqual([]);
    expect(new Map(fhsLinks([empty, bare, a]))).toEqual(new Map(fhsLinks([a])));
  });

  it("gives /usr/bin/<name> -> <top>/<dir>/<name> pairs in a stable order", () => {
    const links = fhsLinks([a, b]);
    for (const [link, target] of links) {
      const name = link.slice("/usr/bin/".length);
      expect(link).toBe(`/usr/bin/${name}`);
      expect(target.endsWith(`/bin/${name}`) || target.endsWith(`/sbin/${name}`)).toBe(true);
      expect(target.startsWith(`${a}/`) || target.startsWith(`${b}/`)).toBe(true);
    }
    expect(fhsLinks([a, b])).toEqual(links);
  });
});
