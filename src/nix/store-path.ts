import { ErrorCode, OsnError } from "../common/errors.js";

export const STORE_DIR = "/nix/store";

/** Nix's base-32 alphabet (no e, o, u, t) and the name characters Nix allows. */
const STORE_PATH = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+\-._?=]+$/;

/** True when `path` names a top-level store object, /nix/store/<hash>-<name>, nothing below it. */
export function isStorePath(path: string): boolean {
  return STORE_PATH.test(path) && !path.endsWith("/.") && !path.includes("/..");
}

/** Check the form of a store path (not its existence); throws NOT_A_STORE_PATH. */
export function assertStorePath(path: string): string {
  if (!isStorePath(path)) {
    throw new OsnError(
      ErrorCode.NOT_A_STORE_PATH,
      `${JSON.stringify(path)} is not a store path: expected ${STORE_DIR}/<32-character hash>-<name>`,
      { hint: "pass a top-level store path (or a symlink to one, such as ./result)" },
    );
  }
  return path;
}

export function storeBaseName(path: string): string {
  return path.slice(STORE_DIR.length + 1);
}
