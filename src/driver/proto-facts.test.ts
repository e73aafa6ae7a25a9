import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, createFileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, file_google_protobuf_struct } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { file_openshell_compute_v1_compute_driver as ours } from "../gen/openshell/compute/v1/compute_driver_pb.js";
import { protoFacts } from "./proto-facts.js";

const pinned = JSON.parse(readFileSync("proto/upstream-facts.json", "utf8"));

describe("compute_driver.proto", () => {
  it("matches the upstream facts pinned in proto/upstream-facts.json", () => {
    expect(pinned.upstream.commit).toMatch(/^2f7fb65591ee/);
    expect(protoFacts(ours)).toEqual(pinned.facts);
  });

  it("notices a renumbered field (the comparison can fail)", () => {
    const proto = create(FileDescriptorProtoSchema, ours.proto);
    const msg = proto.messageType.find((m) => m.name === "DriverSandboxSpec");
    const token = msg?.field.find((f) => f.name === "sandbox_token");
    if (!token) throw new Error("sandbox_token not found");
    token.number = 12_000;
    const registry = createFileRegistry(proto, () => file_google_protobuf_struct);
    const changed = registry.getFile(ours.proto.name);
    if (!changed) throw new Error("file not registered");
    expect(protoFacts(changed)).not.toEqual(pinned.facts);
  });

  it("has current generated code in src/gen (npm run gen)", () => {
    const out = mkdtempSync(join(tmpdir(), "osn-gen-"));
    try {
      execFileSync("node_modules/.bin/buf", ["generate", "-o", out], {
        env: { ...process.env, PATH: `${process.cwd()}/node_modules/.bin:${process.env.PATH}` },
      });
      const rel = "src/gen/openshell/compute/v1/compute_driver_pb.ts";
      expect(readFileSync(join(out, rel), "utf8")).toBe(readFileSync(rel, "utf8"));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
