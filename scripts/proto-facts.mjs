#!/usr/bin/env node
// Print the protocol facts (src/driver/proto-facts.ts) of one file in a binary
// FileDescriptorSet, as made by `buf build -o x.binpb`. Used by scripts/proto-drift.sh.
// usage: node scripts/proto-facts.mjs SET.binpb FILE.proto
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { protoFacts } from "../dist/src/driver/proto-facts.js";

const [setPath, fileName] = process.argv.slice(2);
if (!setPath || !fileName) {
  console.error("usage: proto-facts.mjs SET.binpb FILE.proto");
  process.exit(2);
}
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(setPath)));
const file = registry.getFile(fileName);
if (!file) {
  console.error(`${fileName} is not in ${setPath}`);
  process.exit(2);
}
console.log(JSON.stringify(protoFacts(file), null, 2));
