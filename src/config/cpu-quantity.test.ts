import { describe, expect, it } from "vitest";
import { ErrorCode } from "../common/errors.js";
import { parseCpu } from "./quantity.js";

describe("parseCpu", () => {
  it.each([
    ["2", 2],
    ["0.5", 0.5],
    ["500m", 0.5],
    ["1500m", 1.5],
    [" 1 ", 1],
    ["1", 1],
    ["1024", 1024],
    ["250m", 0.25],
  ])("%j is %d cores", (input, cores) => expect(parseCpu(input)).toBe(cores));

  it.each(["0", "0m", "-1", "abc", "1.5x", "2000", "1025", "", " ", "m", "1e3", "500M"])(
    "rejects %j",
    (input) => {
      expect(() => parseCpu(input)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    },
  );

  it("names what it was parsing in the message", () => {
    expect(() => parseCpu("abc", "cpu quantity")).toThrow(/invalid cpu quantity "abc"/);
  });
});
