import { ROW } from "./rows.js";
import type { Outcome } from "./run-interleaved.js";
import { summarize } from "./summarize.js";

/** The targets of the issue: warm start near the floor, well ahead of podman, first use even more so. */
const TARGET = { warmOverFloor: 1.3, podmanOverWarm: 3, podmanOverFirstUse: 4 };

/** One line of the ratios table: what is divided by what, the quotient, and PASS/MISS/info. */
export type Check = [label: string, value: number | undefined, verdict: string];

/** The ratios of medians the report states, each against its target where it has one. */
export function ratioChecks(warm: Map<string, Outcome>, first: Map<string, Outcome>): Check[] {
  const med = (m: Map<string, Outcome>, name: string): number | undefined =>
    summarize(m.get(name)?.samples ?? [])?.median;
  const div = (a: number | undefined, b: number | undefined): number | undefined =>
    a === undefined || b === undefined ? undefined : a / b;
  const atMost = (v: number | undefined, t: number): string =>
    v === undefined ? "n/a" : v <= t ? "PASS" : "MISS";
  const atLeast = (v: number | undefined, t: number): string =>
    v === undefined ? "n/a" : v >= t ? "PASS" : "MISS";
  const api = med(warm, ROW.api);
  const cli = med(warm, ROW.cli);
  const floor = med(warm, ROW.floor);
  const podman = med(warm, ROW.podman);
  const apiOverFloor = div(api, floor);
  const podmanOverApi = div(podman, api);
  const firstRatio = div(med(first, ROW.podmanFirst), med(first, ROW.oursFirst));
  return [
    [
      `ours (API) / bare crun — target ≤ ${TARGET.warmOverFloor}×`,
      apiOverFloor,
      atMost(apiOverFloor, TARGET.warmOverFloor),
    ],
    [`ours (API, image already mounted) / bare crun`, div(med(warm, ROW.apiHeld), floor), "info"],
    [`ours (CLI) / bare crun`, div(cli, floor), cli === undefined ? "CLI not built" : "info"],
    [
      `podman / ours (API) — target ≥ ${TARGET.podmanOverWarm}×`,
      podmanOverApi,
      atLeast(podmanOverApi, TARGET.podmanOverWarm),
    ],
    [`podman / ours (CLI)`, div(podman, cli), "info"],
    [
      `podman first use / ours first use — target ≥ ${TARGET.podmanOverFirstUse}×`,
      firstRatio,
      atLeast(firstRatio, TARGET.podmanOverFirstUse),
    ],
  ];
}
