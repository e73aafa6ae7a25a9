import { ErrorCode, OsnError } from "../common/errors.js";

const UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** Parse a byte quantity: a number of bytes, or Kubernetes-style "512Mi", "2G", "1.5Gi". */
export function parseBytes(value: number | string, what = "memory"): number {
  if (typeof value === "number") {
    if (Number.isInteger(value) && value > 0) return value;
  } else {
    const m = /^(\d+(?:\.\d+)?)([kKMGT]i?|)$/.exec(value.trim());
    const unit = m ? UNITS[m[2] ?? ""] : undefined;
    if (m && unit !== undefined) {
      const bytes = Math.round(Number(m[1]) * unit);
      if (bytes > 0) return bytes;
    }
  }
  throw new OsnError(
    ErrorCode.INVALID_ARGUMENT,
    `invalid ${what} ${JSON.stringify(value)}: use bytes or a quantity such as 512Mi or 2G`,
  );
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Parse a Kubernetes CPU quantity: cores ("2", "1.5") or millicores ("500m"). */
export function parseCpu(value: string, what = "cpu"): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(value.trim());
  const cores = m ? Number(m[1]) / (m[2] === "m" ? 1000 : 1) : Number.NaN;
  if (!(cores > 0 && cores <= 1024)) {
    throw new OsnError(
      ErrorCode.INVALID_ARGUMENT,
      `invalid ${what} ${JSON.stringify(value)}: use cores ("2", "0.5") or millicores ("500m"), at most 1024`,
    );
  }
  return cores;
}
