import { describe, expect, it } from "vitest";
import { ErrorCode } from "../common/errors.js";
import { parseConfig } from "./load.js";
import { parseBytes } from "./quantity.js";

describe("parseBytes", () => {
  it.each([
    [1024, 1024],
    ["512Mi", 512 * 2 ** 20],
    ["2G", 2e9],
    ["1.5Gi", 1.5 * 2 ** 30],
    ["64Ki", 65536],
  ])("%j is %d bytes", (input, bytes) => expect(parseBytes(input)).toBe(bytes));
  it.each(["", "abc", "-1", "12XB", 0, -5, 1.5])("rejects %j", (input) => {
    expect(() => parseBytes(input)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });
});

describe("parseConfig", () => {
  it("accepts bundles and limits", async () => {
    const c = await parseConfig(
      JSON.stringify({
        stateDir: "/var/lib/x",
        limits: { memory: "1Gi", pids: 512 },
        bundles: { python: { storePaths: ["/nix/store/r4whns0fxsmy509fq3ys1yy42f6qp4lj-env"] } },
      }),
    );
    expect(c.bundles?.python?.storePaths).toHaveLength(1);
  });
  it("rejects unknown keys, naming them", async () => {
    await expect(parseConfig('{"bundels": {}}')).rejects.toThrow(/bundels/);
  });
  it("rejects a bundle name that is a path", async () => {
    await expect(
      parseConfig(JSON.stringify({ bundles: { "../x": { storePaths: ["/nix/store/a"] } } })),
    ).rejects.toMatchObject({ code: ErrorCode.INVALID_NAME });
  });
  it("rejects invalid JSON clearly", async () => {
    await expect(parseConfig("{")).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
  });
});
