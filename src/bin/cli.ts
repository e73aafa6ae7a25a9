#!/usr/bin/env node
import { main } from "../cli/main.js";

main(process.argv).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    process.stderr.write(`openshell-nix: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
