import { runCommand } from "../../src/process/run-command.js";
import { walkSizes } from "./disk-use.js";

/** How big the closure both runtimes start from is. */
export interface ClosureFacts {
  paths: number;
  narBytes: number;
  apparentBytes: number;
}

/** Count the closure's store paths and size it as Nix sees it (NAR) and as it lies on disk. */
export async function closureFacts(closure: readonly string[]): Promise<ClosureFacts> {
  const sizes = (await runCommand(["nix-store", "--query", "--size", ...closure])).stdout
    .split("\n")
    .filter(Boolean);
  return {
    paths: closure.length,
    narBytes: sizes.reduce((a, s) => a + Number(s), 0),
    apparentBytes: walkSizes(closure).apparent,
  };
}
