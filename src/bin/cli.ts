#!/usr/bin/env node
import { main } from "../cli/main.js";

// Whatever the caller's umask: what openshell-nix writes under its 0700 state directory is
// private already, and a sandbox's root must be readable by its unprivileged users (the agent
// the OpenShell supervisor starts), as the image's files must be the same bytes everywhere.
process.umask(0o022);

main(process.argv).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    process.stderr.write(`openshell-nix: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
