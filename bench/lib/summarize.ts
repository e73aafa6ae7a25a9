/** The figures the report gives for a set of samples. */
export interface Stats {
  n: number;
  min: number;
  median: number;
  p90: number;
}

/** min, median (mean of the middle two for even n) and p90 (nearest rank). */
export function summarize(values: readonly number[]): Stats | undefined {
  const s = [...values].sort((a, b) => a - b);
  const at = (i: number): number => s[Math.min(Math.max(i, 0), s.length - 1)] ?? Number.NaN;
  if (s.length === 0) return undefined;
  const mid = s.length / 2;
  const median = s.length % 2 === 1 ? at(Math.floor(mid)) : (at(mid - 1) + at(mid)) / 2;
  return { n: s.length, min: at(0), median, p90: at(Math.ceil(0.9 * s.length) - 1) };
}
