import { cpus, release, totalmem } from "node:os";
import { runCommandStatus } from "../../src/process/run-command.js";
import type { Bench } from "./bench.js";
import { podmanRuntime } from "./podman-store.js";

/** The first line a command prints (its version, usually), or "not installed". */
export async function firstLine(argv: string[]): Promise<string> {
  try {
    const r = await runCommandStatus(argv);
    return (r.stdout || r.stderr).trim().split("\n")[0] ?? "?";
  } catch {
    return "not installed";
  }
}

/** The report's header: what the figures were measured on, as markdown list items. */
export async function machineFacts(bench: Bench): Promise<string[]> {
  const cpu = cpus();
  const fsType = await firstLine(["stat", "-f", "-c", "%T", bench.root]);
  const controllers = bench.cgroups.v2Controllers.join(" ") || "none";
  return [
    `- kernel ${release()}, ${cpu.length} CPUs (${cpu[0]?.model.trim() ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM`,
    `- ${await firstLine(["crun", "--version"])}; ${await firstLine(["runc", "--version"])}; ${await firstLine(["podman", "--version"])}; node ${process.version}`,
    `- cgroups: ${bench.cgroups.mode} (v2 controllers: ${controllers}); podman runtime: ${podmanRuntime(bench.cgroups)}`,
    `- temporary state on ${fsType} at ${bench.root}`,
  ];
}
