/** One way of starting the workload, sampled by runInterleaved. */
export interface Variant {
  name: string;
  /** One sample in ms. Untimed preparation and cleanup happen inside, outside the clock. */
  sample(): Promise<number>;
}

/** The samples of one variant. */
export interface Outcome {
  samples: number[];
  /** Why the variant stopped (or never ran); its samples so far are kept. */
  error?: string;
}

/**
 * `warmups` untimed runs of each variant, then `runs` rounds in which every variant runs once,
 * starting each round one variant further along. A variant that fails is dropped, with the reason.
 * Once `interrupt` is aborted, the next run throws instead of starting.
 */
export async function runInterleaved(
  variants: Variant[],
  runs: number,
  warmups: number,
  interrupt: AbortSignal,
): Promise<Map<string, Outcome>> {
  const outcomes = new Map<string, Outcome>(variants.map((v) => [v.name, { samples: [] }]));
  const attempt = async (v: Variant, keep: boolean): Promise<void> => {
    const outcome = outcomes.get(v.name);
    if (!outcome || outcome.error !== undefined) return;
    if (interrupt.aborted) throw new Error("interrupted");
    try {
      const ms = await v.sample();
      if (keep) outcome.samples.push(ms);
    } catch (err) {
      outcome.error = err instanceof Error ? err.message : String(err);
      process.stderr.write(`  ${v.name} failed, dropped: ${outcome.error}\n`);
    }
  };
  for (let w = 0; w < warmups; w++) for (const v of variants) await attempt(v, false);
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(round + k) % variants.length];
      if (v) await attempt(v, true);
    }
    process.stderr.write(`  round ${round + 1}/${runs} done\n`);
  }
  return outcomes;
}
