import { realpathSync } from "node:fs";
import { ErrorCode, OsnError } from "../common/errors.js";
import { readText } from "../common/fs.js";
import { runCommand, runCommandStatus } from "../process/run-command.js";
import { canonicalRegistration, parseDumpDb } from "./registration.js";
import { assertStorePath, isStorePath } from "./store-path.js";

/** Options every nix invocation gets: no binary cache lookups (offline hosts retry for seconds). */
export const NIX_OFFLINE = ["--option", "substituters", ""] as const;

/**
 * Options for nix-build: offline, and, where the host has no `nixbld` build users (Debian's
 * nix-bin without nix-setup-systemd), builds run as the calling user instead of failing.
 */
export function nixBuildOptions(): string[] {
  const hasBuildUsers = /^nixbld:/m.test(readText("/etc/group"));
  return [...NIX_OFFLINE, ...(hasBuildUsers ? [] : ["--option", "build-users-group", ""])];
}

/**
 * The host's Nix store, through the real `nix-store` command. Store paths are immutable, so
 * everything asked here can be cached by callers.
 */
export class NixStore {
  /**
   * Turn what a user typed into a top-level store path: a store path itself, or a symlink to
   * one (./result). Checks the form and that the path exists; validity is checked by closure().
   */
  resolve(input: string): string {
    if (input.startsWith("/nix/store/")) {
      assertStorePath(input.replace(/\/+$/, ""));
    }
    let real: string;
    try {
      real = realpathSync(input);
    } catch (err) {
      if (input.startsWith("/nix/store/")) {
        throw new OsnError(ErrorCode.STORE_PATH_MISSING, `store path ${input} does not exist on this host`, {
          cause: err,
          hint: "build or realise it first (nix-build, nix-store -r)",
        });
      }
      throw new OsnError(
        ErrorCode.NOT_A_STORE_PATH,
        `${JSON.stringify(input)} is not a store path (it does not exist)`,
      );
    }
    if (!isStorePath(real)) {
      throw new OsnError(
        ErrorCode.NOT_A_STORE_PATH,
        `${JSON.stringify(input)} is not a store path${real !== input ? ` (it resolves to ${real})` : ""}`,
        { hint: "pass a top-level path /nix/store/<hash>-<name>, or a symlink to one such as ./result" },
      );
    }
    return real;
  }

  /** The closure of the given paths, sorted. Throws STORE_PATH_MISSING for invalid paths. */
  async closure(paths: readonly string[]): Promise<string[]> {
    for (const p of paths) assertStorePath(p);
    const r = await runCommandStatus(["nix-store", "--query", "--requisites", ...paths]);
    if (r.status !== 0) {
      const missing = /path '([^']+)' is not valid/.exec(r.stderr);
      if (missing) {
        throw new OsnError(
          ErrorCode.STORE_PATH_MISSING,
          `${missing[1]} is not a valid path in the Nix store`,
          {
            hint: "build or realise it first (nix-build, nix-store -r)",
          },
        );
      }
      throw new OsnError(
        ErrorCode.COMMAND_FAILED,
        `nix-store --query --requisites failed: ${r.stderr.trim()}`,
      );
    }
    return r.stdout.split("\n").filter(Boolean).sort();
  }

  /** Registration info (`nix-store --load-db` format, canonical) so a guest can register the closure. */
  async registration(paths: readonly string[]): Promise<string> {
    return canonicalRegistration(
      parseDumpDb((await runCommand(["nix-store", "--dump-db", ...paths])).stdout),
    );
  }

  /**
   * Make `link` an indirect GC root for `path`: while the symlink exists, `nix-store --gc` keeps
   * the path and its whole closure. Deleting the symlink drops the root.
   */
  async addRoot(link: string, path: string): Promise<void> {
    await runCommand(["nix-store", "--add-root", link, "--indirect", "--realise", path]);
  }
}
