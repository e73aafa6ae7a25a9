import { ErrorCode, OsnError } from "../common/errors.js";

/** One path's registration: what `nix-store --load-db` needs to make it valid in a store. */
export interface PathRegistration {
  path: string;
  /** "sha256:" and Nix's base-32 form, as `nix-store -q --hash` prints it. */
  narHash: string;
  narSize: number;
  references: string[];
}

const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";

/** Nix's own base-32 (its alphabet, and the bytes taken from the end); pure, unit-tested. */
export function nixBase32(bytes: Uint8Array): string {
  const len = Math.ceil((bytes.length * 8) / 5);
  let out = "";
  for (let n = len - 1; n >= 0; n--) {
    const b = n * 5;
    const i = Math.floor(b / 8);
    const j = b % 8;
    const lo = (bytes[i] ?? 0) >> j;
    const hi = i + 1 < bytes.length ? (bytes[i + 1] ?? 0) << (8 - j) : 0;
    out += NIX_BASE32[(lo | hi) & 0x1f];
  }
  return out;
}

/** A narHash in any form Nix prints (`sha256:<base32>`, `<base16>`) as `sha256:<base32>`. */
export function normaliseNarHash(hash: string): string {
  const raw = hash.startsWith("sha256:") ? hash.slice(7) : hash;
  if (/^[0-9a-f]{64}$/.test(raw)) return `sha256:${nixBase32(Buffer.from(raw, "hex"))}`;
  if (/^[0-9a-df-np-sv-z]{52}$/.test(raw)) return `sha256:${raw}`;
  throw new OsnError(ErrorCode.COMMAND_FAILED, `unexpected narHash ${JSON.stringify(hash)}`);
}

/**
 * Parse `nix-store --dump-db` output: per path its name, narHash (base 16), narSize, deriver,
 * the number of references and the references.
 */
export function parseDumpDb(text: string): PathRegistration[] {
  const lines = text.split("\n");
  const out: PathRegistration[] = [];
  let i = 0;
  const next = (): string => {
    const line = lines[i++];
    if (line === undefined)
      throw new OsnError(ErrorCode.COMMAND_FAILED, "truncated nix-store --dump-db output");
    return line;
  };
  while (i < lines.length && lines[i] !== "") {
    const path = next();
    const narHash = normaliseNarHash(next());
    const narSize = Number(next());
    next(); // deriver: not part of the image (it differs between builders of the same path)
    const count = Number(next());
    if (!Number.isInteger(count) || !Number.isFinite(narSize))
      throw new OsnError(ErrorCode.COMMAND_FAILED, `malformed nix-store --dump-db entry for ${path}`);
    const references: string[] = [];
    for (let k = 0; k < count; k++) references.push(next());
    out.push({ path, narHash, narSize, references });
  }
  return out;
}

/**
 * The image's /registration: `nix-store --load-db` format, canonical so the runtime builder
 * and the Nix recipe (nix/bundle-image.nix) write the same bytes: paths and references sorted,
 * narHash as `sha256:<base32>`, no deriver.
 */
export function canonicalRegistration(entries: readonly PathRegistration[]): string {
  return [...entries]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => {
      const refs = [...e.references].sort();
      return [e.path, e.narHash, String(e.narSize), "", String(refs.length), ...refs].join("\n");
    })
    .map((block) => `${block}\n`)
    .join("");
}
