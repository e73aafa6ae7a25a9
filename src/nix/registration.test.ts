import { describe, expect, it } from "vitest";
import { ErrorCode } from "../common/errors.js";
import { canonicalRegistration, nixBase32, normaliseNarHash, parseDumpDb } from "./registration.js";

const HEX = "76db48042c1f67351987839921aeff0a2947178169fda2311f0318bcecfae86a";
const A = "/nix/store/6li804zmyzpvqq1kcj47cvi1376vnr3w-a";
const B = "/nix/store/kdr47a6dihvwv9yag7g87ib0gc94z9m4-b";

describe("nixBase32", () => {
  it("encodes like Nix (bytes from the end, Nix's alphabet)", () => {
    expect(nixBase32(Buffer.from([0]))).toBe("00");
    expect(nixBase32(Buffer.from([0xff]))).toBe("7z");
    expect(normaliseNarHash("e2c6a1fbbb4a0b4e6ee5c6d3d8b1e46cc9c1eaabb0b0d60e0b0ca63c7e55cf9c")).toMatch(
      /^sha256:[0-9a-df-np-sv-z]{52}$/,
    );
  });
  it("agrees with nix-store -q --hash on a real path", () => {
    // python3.11-libs-host of the demo bundle: dump-db printed the hex, -q --hash the base 32.
    expect(normaliseNarHash("c5a8adf7234d222aade87b22a06e9bbe72f8883fb7fea48fa38f7b892843b932")).toBe(
      "sha256:0cmr8cl8jywglf7s9zmp7y4ghwmykdpa08kvx2njl8jd4gvsva65",
    );
    expect(normaliseNarHash(`sha256:${"0".repeat(52)}`)).toBe(`sha256:${"0".repeat(52)}`);
  });
  it("refuses what is not a sha256", () => {
    expect(() => normaliseNarHash("md5:abc")).toThrow(
      expect.objectContaining({ code: ErrorCode.COMMAND_FAILED }),
    );
  });
});

describe("parseDumpDb + canonicalRegistration", () => {
  const dump = [B, HEX, "100", "/nix/store/x.drv", "2", B, A, A, HEX, "50", "", "0", ""].join("\n");
  it("parses every entry, drops derivers, sorts paths and references", () => {
    const entries = parseDumpDb(dump);
    expect(entries.map((e) => e.path)).toEqual([B, A]);
    expect(entries[0]?.references).toEqual([B, A]);
    expect(canonicalRegistration(entries)).toBe(
      [A, normaliseNarHash(HEX), "50", "", "0", B, normaliseNarHash(HEX), "100", "", "2", A, B, ""].join(
        "\n",
      ),
    );
  });
  it("is the same whatever order the entries come in", () => {
    const entries = parseDumpDb(dump);
    expect(canonicalRegistration([...entries].reverse())).toBe(canonicalRegistration(entries));
  });
  it("refuses truncated output", () => {
    expect(() => parseDumpDb([A, HEX, "50", "", "3", B].join("\n"))).toThrow(/truncated|malformed/);
  });
});
