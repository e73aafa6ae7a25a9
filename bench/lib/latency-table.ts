import { ms } from "./format.js";
import type { Outcome } from "./run-interleaved.js";
import { summarize } from "./summarize.js";

/**
 * A markdown table of the variants `names`, one row each, with the reason under any that failed.
 * With a `baseline`, a last column gives each median over the baseline's.
 */
export function latencyTable(names: string[], outcomes: Map<string, Outcome>, baseline?: string): string[] {
  const base = baseline ? summarize(outcomes.get(baseline)?.samples ?? []) : undefined;
  const head = baseline ? ` median ÷ ${baseline} |` : "";
  const lines = [
    `| variant | runs | min ms | median ms | p90 ms |${head}`,
    `|---|--:|--:|--:|--:|${baseline ? "--:|" : ""}`,
  ];
  for (const name of names) {
    const o = outcomes.get(name);
    const s = summarize(o?.samples ?? []);
    const ratio = baseline ? ` ${s && base ? `${(s.median / base.median).toFixed(2)}×` : "n/a"} |` : "";
    lines.push(`| ${name} | ${s?.n ?? 0} | ${ms(s?.min)} | ${ms(s?.median)} | ${ms(s?.p90)} |${ratio}`);
    if (o?.error !== undefined) {
      const why = o.error.replace(/\s+/g, " ").slice(0, 300);
      lines.push(`|   ↳ ${why} | | | | |${baseline ? " |" : ""}`);
    }
  }
  return lines;
}
