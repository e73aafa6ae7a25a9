import type { ErrorCode } from "../common/errors.js";

/**
 * Exit statuses of openshell-nix's own failures (docs/errors.md). `run` and `exec` exit with the
 * workload's status instead, and use 125 for a failure of openshell-nix itself, as podman and
 * docker do, so a script can tell "the sandbox failed" from "the program in it failed".
 */
export const EXIT_FOR_CODE: Record<ErrorCode, number> = {
  INVALID_NAME: 2,
  INVALID_ARGUMENT: 2,
  NOT_A_STORE_PATH: 2,
  CONFIG_INVALID: 2,
  STORE_PATH_MISSING: 3,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  INVALID_STATE: 4,
  HOST_FEATURE_MISSING: 5,
  UNSUPPORTED: 5,
  COMMAND_FAILED: 6,
  IMAGE_BUILD_FAILED: 6,
  RUNTIME_FAILED: 6,
  TIMEOUT: 7,
  INTERNAL: 1,
};

/** Exit status of `run`/`exec` when openshell-nix itself failed. */
export const EXIT_SANDBOX_FAILED = 125;
