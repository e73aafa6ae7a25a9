import type { CleanupStack } from "../../src/process/cleanup-stack.js";
import type { CgroupSweeper } from "./cgroup-sweeper.js";

/** Undo what a benchmark made, report what could not be undone and the cgroups swept. */
export async function finishBench(cleanup: CleanupStack, sweeper: CgroupSweeper): Promise<void> {
  const errors = await cleanup.run();
  const cgroups = sweeper.sweep();
  for (const e of errors) process.stderr.write(`cleanup: ${e.message}\n`);
  process.stderr.write(`cleaned up (${cgroups} empty cgroups removed)\n`);
}

/** Run a benchmark's main, turning a failure into a message and exit status 1. */
export function runBench(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  });
}

/** First ^C: stop after the current run and clean up; second ^C: leave at once. */
export function interruptOnSigint(): AbortController {
  const interrupt = new AbortController();
  process.on("SIGINT", () => {
    if (interrupt.signal.aborted) process.exit(130); // a second ^C: leave now, cleanup or not
    interrupt.abort();
    process.stderr.write("interrupted: stopping after the current run, then cleaning up\n");
  });
  return interrupt;
}
