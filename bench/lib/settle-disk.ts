import { runCommand } from "../../src/process/run-command.js";

/**
 * Each first-use sample writes tens of MiB and the cleanup deletes them again: write all of that
 * back before the next sample starts, so neither kind pays for the other's writeback.
 */
export async function settleDisk(): Promise<void> {
  await runCommand(["sync"]);
}
