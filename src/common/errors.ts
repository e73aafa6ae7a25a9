/**
 * The one error class of openshell-nix. Every failure a caller may want to branch on carries a
 * stable `code`; messages are for people and may change. The CLI maps codes to exit statuses
 * (`cli/exit-codes.ts`) and the daemon maps them to gRPC statuses (`driver/grpc-status.ts`).
 */
export const ErrorCode = {
  /** A name (sandbox, bundle) is not of the allowed form; nothing was changed. */
  INVALID_NAME: "INVALID_NAME",
  /** A request is malformed: bad flag value, bad limit, unknown config key. */
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  /** A path given as a store path is not of the form /nix/store/<hash>-<name>. */
  NOT_A_STORE_PATH: "NOT_A_STORE_PATH",
  /** A well-formed store path is not present (or not valid) in the host's Nix store. */
  STORE_PATH_MISSING: "STORE_PATH_MISSING",
  /** No sandbox, bundle or image of that name. */
  NOT_FOUND: "NOT_FOUND",
  /** A sandbox of that name exists already. */
  ALREADY_EXISTS: "ALREADY_EXISTS",
  /** The operation does not apply to the sandbox's current state (exec into a stopped one…). */
  INVALID_STATE: "INVALID_STATE",
  /** Well-formed, but asks for what this host or driver does not offer (GPUs, platform config). */
  UNSUPPORTED: "UNSUPPORTED",
  /** The config file is unreadable or does not match the schema. */
  CONFIG_INVALID: "CONFIG_INVALID",
  /** The host lacks something we need (a binary, a filesystem, root); `doctor` explains. */
  HOST_FEATURE_MISSING: "HOST_FEATURE_MISSING",
  /** An external command (nix-store, mkfs.erofs, mount…) failed. */
  COMMAND_FAILED: "COMMAND_FAILED",
  /** Building a bundle image failed. */
  IMAGE_BUILD_FAILED: "IMAGE_BUILD_FAILED",
  /** The OCI runtime refused or failed to run the sandbox. */
  RUNTIME_FAILED: "RUNTIME_FAILED",
  /** A deadline passed. */
  TIMEOUT: "TIMEOUT",
  /** A bug or an unexpected condition. */
  INTERNAL: "INTERNAL",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface OsnErrorOptions {
  cause?: unknown;
  /** A hint for the person reading the message: what to do about it. */
  hint?: string;
}

export class OsnError extends Error {
  override readonly name = "OsnError";
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: OsnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
  }

  /** Normalise anything caught into an OsnError, keeping OsnErrors as they are. */
  static from(err: unknown, code: ErrorCode = ErrorCode.INTERNAL): OsnError {
    if (err instanceof OsnError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new OsnError(code, message, { cause: err });
  }
}

export function isOsnError(err: unknown, code?: ErrorCode): err is OsnError {
  return err instanceof OsnError && (code === undefined || err.code === code);
}
