import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type GuestSpecInput, guestSpec } from "./boot/guest-init.js";

const base: GuestSpecInput = { hostname: "box", env: { PATH: "/bin" }, command: ["sh", "-c", "true"] };
const TOOL = "/nix/store/r4whns0fxsmy509fq3ys1yy42f6qp4lj-env";

/** The single-quoted value of `NAME=…` in a spec (it may span lines), unquoted. */
function variable(spec: string, name: string): string {
  const m = new RegExp(`^${name}='((?:[^']|'\\\\'')*)'$`, "m").exec(spec);
  if (!m) throw new Error(`${name} is not set to a single-quoted value`);
  return (m[1] ?? "").replaceAll(`'\\''`, "'");
}

const dir = mkdtempSync(join(tmpdir(), "osn-guest-spec-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** Sources the spec in sh and prints one of its variables. */
function sourced(spec: string, name: string): string {
  const file = join(dir, `spec-${n++}`);
  writeFileSync(file, spec);
  return execFileSync("sh", ["-c", `. ${file}; printf '%s' "$${name}"`], { encoding: "utf8" });
}

describe("guestSpec links", () => {
  it("puts the targets, space-separated, in OSN_LINK_TARGETS", () => {
    const spec = guestSpec({
      ...base,
      links: [
        ["/usr/bin/env", `${TOOL}/bin/env`],
        ["/usr/bin/ip", `${TOOL}/sbin/ip`],
        ["/usr/bin/python3.12", `${TOOL}/bin/python3.12`],
      ],
    });
    expect(variable(spec, "OSN_LINK_TARGETS")).toBe(`${TOOL}/bin/env ${TOOL}/sbin/ip ${TOOL}/bin/python3.12`);
    expect(sourced(spec, "OSN_LINK_TARGETS")).toBe(`${TOOL}/bin/env ${TOOL}/sbin/ip ${TOOL}/bin/python3.12`);
  });

  it.each([
    ["/usr/bin/sh", `${TOOL}/bin/bash`],
    ["/bin/env", `${TOOL}/bin/env`],
    ["/usr/sbin/ip", `${TOOL}/sbin/ip`],
    ["/usr/bin/sub/env", `${TOOL}/bin/env`],
    ["/usr/bin/my tool", `${TOOL}/bin/my tool`],
  ])("refuses %s -> %s", (link, target) => {
    expect(() => guestSpec({ ...base, links: [[link, target]] })).toThrow(/not of the form/);
  });
});

describe("guestSpec files", () => {
  it("writes one `path octal-mode base64` line per file", () => {
    const spec = guestSpec({
      ...base,
      files: [
        { path: "/etc/openshell/token", mode: 0o600, content: "tok.en.value" },
        { path: "/opt/openshell/bin/hook", mode: 0o755, content: "#!/bin/sh\necho hi\n" },
      ],
    });
    const lines = variable(spec, "OSN_FILES").split("\n");
    expect(lines).toHaveLength(2);
    const parsed = lines.map((l) => l.split(" "));
    expect(parsed.map((p) => p.length)).toEqual([3, 3]);
    expect(parsed[0]?.slice(0, 2)).toEqual(["/etc/openshell/token", "600"]);
    expect(Buffer.from(parsed[0]?.[2] ?? "", "base64").toString()).toBe("tok.en.value");
    expect(parsed[1]?.slice(0, 2)).toEqual(["/opt/openshell/bin/hook", "755"]);
    expect(Buffer.from(parsed[1]?.[2] ?? "", "base64").toString()).toBe("#!/bin/sh\necho hi\n");
  });

  it.each(["/etc/openshell/my token", "/etc/openshell/tok\nen", "/etc/openshell/tok\ten"])(
    "refuses a path with whitespace: %j",
    (path) => {
      expect(() => guestSpec({ ...base, files: [{ path, mode: 0o600, content: "x" }] })).toThrow(
        /whitespace/,
      );
    },
  );

  it("leaves both variables empty without links or files", () => {
    const spec = guestSpec(base);
    expect(variable(spec, "OSN_LINK_TARGETS")).toBe("");
    expect(variable(spec, "OSN_FILES")).toBe("");
    expect(spec).toContain("OSN_LINK_TARGETS=''\n");
    expect(spec).toContain("OSN_FILES=''\n");
    expect(sourced(spec, "OSN_FILES")).toBe("");
    expect(sourced(spec, "OSN_LINK_TARGETS")).toBe("");
    expect(guestSpec({ ...base, links: [], files: [] })).toBe(spec);
  });

  it("round-trips contents with quotes, newlines and $ through sh", () => {
    const contents = [
      `it's "quoted" \`cmd\` $HOME $(id) \${x}\n`,
      "line one\nline two\n\n'\\'\n",
      "$'\\n' \\ end without newline",
    ];
    const files = contents.map((content, i) => ({ path: `/etc/openshell/f${i}`, mode: 0o600 + i, content }));
    const spec = guestSpec({
      ...base,
      hostname: "it's-a-box",
      files,
      links: [["/usr/bin/env", `${TOOL}/bin/env`]],
    });
    const out = sourced(spec, "OSN_FILES");
    const lines = out.split("\n");
    expect(lines).toHaveLength(contents.length);
    lines.forEach((line, i) => {
      const [path, mode, b64, ...rest] = line.split(" ");
      expect(rest).toEqual([]);
      expect(path).toBe(`/etc/openshell/f${i}`);
      expect(mode).toBe((0o600 + i).toString(8));
      expect(Buffer.from(b64 ?? "", "base64").toString()).toBe(contents[i]);
    });
    expect(sourced(spec, "OSN_HOSTNAME")).toBe("it's-a-box");
    expect(sourced(spec, "OSN_LINK_TARGETS")).toBe(`${TOOL}/bin/env`);
  });

  it("round-trips the guest's own decode: sh reads each line and base64 -d gives the content back", () => {
    const content = `a'b"c$d\`e\nf\n`;
    const spec = guestSpec({ ...base, files: [{ path: "/etc/openshell/t", mode: 0o640, content }] });
    const file = join(dir, `spec-${n++}`);
    writeFileSync(file, spec);
    // The same loop as GUEST_INIT, minus the writes: print what each line decodes to.
    const out = execFileSync(
      "sh",
      [
        "-c",
        `. ${file}; echo "$OSN_FILES" | while read -r f m c; do printf '%s %s\\n' "$f" "$m"; echo "$c" | base64 -d; done`,
      ],
      { encoding: "utf8" },
    );
    expect(out).toBe(`/etc/openshell/t 640\n${content}`);
  });
});
