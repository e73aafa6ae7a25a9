import { ErrorCode, OsnError } from "./errors.js";

/**
 * Names become directory names, crun container ids and hostnames, so they are kept to a small,
 * boring alphabet: no slashes, no dots at the start (no `.`/`..`), no whitespace, at most 63
 * characters (a DNS label, as OpenShell sandbox names are).
 */
const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** An environment variable's name (what a shell accepts as one). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type NameKind = "sandbox" | "bundle";

export function validateName(kind: NameKind, name: string): string {
  if (!NAME.test(name)) {
    throw new OsnError(
      ErrorCode.INVALID_NAME,
      `invalid ${kind} name ${JSON.stringify(name)}: use 1-63 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit`,
    );
  }
  return name;
}

/** A fresh sandbox name for `run` and for `create` without a name. */
export function generateName(prefix = "sb"): string {
  const rand = Math.random().toString(36).slice(2, 8).padEnd(6, "0");
  return `${prefix}-${rand}`;
}
