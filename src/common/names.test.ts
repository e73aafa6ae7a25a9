import { describe, expect, it } from "vitest";
import { isStorePath } from "../nix/store-path.js";
import { ErrorCode } from "./errors.js";
import { validateName } from "./names.js";

describe("validateName", () => {
  it.each(["a", "box-1", "py.3_11", "x".repeat(63)])("accepts %s", (n) => {
    expect(validateName("sandbox", n)).toBe(n);
  });
  it.each(["", "..", ".", "../etc", "a/b", "/abs", "-x", "Box", "a b", "x".repeat(64), "a\0b", "ä"])(
    "rejects %j",
    (n) => {
      expect(() => validateName("sandbox", n)).toThrow(
        expect.objectContaining({ code: ErrorCode.INVALID_NAME }),
      );
    },
  );
});

describe("isStorePath", () => {
  const h = "r4whns0fxsmy509fq3ys1yy42f6qp4lj";
  it("accepts a top-level store path", () => expect(isStorePath(`/nix/store/${h}-env`)).toBe(true));
  it.each([
    `/nix/store/${h}-env/bin/python3`,
    `/nix/store/${h}`,
    "/nix/store/short-env",
    `/nix/store/${h.replace("r", "e")}-env`,
    `/nix/store/../${h}-env`,
    "/etc/passwd",
    `nix/store/${h}-env`,
  ])("rejects %s", (p) => expect(isStorePath(p)).toBe(false));
});
