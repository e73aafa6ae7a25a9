/** Tables, progress lines and JSON for the CLI; stdout carries results, stderr everything else. */

const tty = process.stderr.isTTY === true;
const color = tty && process.env.NO_COLOR === undefined;

export const style = {
  bold: (s: string) => (color ? `\x1b[1m${s}\x1b[0m` : s),
  dim: (s: string) => (color ? `\x1b[2m${s}\x1b[0m` : s),
  red: (s: string) => (color ? `\x1b[31m${s}\x1b[0m` : s),
  green: (s: string) => (color ? `\x1b[32m${s}\x1b[0m` : s),
  yellow: (s: string) => (color ? `\x1b[33m${s}\x1b[0m` : s),
};

/** A plain aligned table; the header is upper-cased like `ps` and `docker ps`. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join("\n");
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Progress of long steps on stderr, with elapsed time, so stdout stays clean for results. */
export function progressPrinter(quiet = false): (message: string) => void {
  const start = performance.now();
  return (message: string) => {
    if (quiet) return;
    const t = ((performance.now() - start) / 1000).toFixed(1).padStart(5);
    process.stderr.write(`${style.dim(`[${t}s]`)} ${message}\n`);
  };
}

export function ago(iso: string | null): string {
  if (!iso) return "-";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}
