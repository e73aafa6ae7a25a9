const MiB = 2 ** 20;

/** Milliseconds with one decimal; "n/a" where there is no figure. */
export const ms = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v) ? "n/a" : v.toFixed(1);

/** Bytes as MiB with two decimals. */
export const mib = (bytes: number): string => `${(bytes / MiB).toFixed(2)} MiB`;
