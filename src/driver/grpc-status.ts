import { Code, ConnectError } from "@connectrpc/connect";
import { type ErrorCode, OsnError } from "../common/errors.js";

/**
 * The one table from our error codes to gRPC statuses. The gateway acts on a few of them
 * (docs/driver.md): ALREADY_EXISTS and FAILED_PRECONDITION from CreateSandbox reach the API
 * caller as they are, anything else becomes INTERNAL; NOT_FOUND from GetSandbox means "gone".
 */
export const GRPC_FOR_CODE: Record<ErrorCode, Code> = {
  INVALID_NAME: Code.InvalidArgument,
  INVALID_ARGUMENT: Code.InvalidArgument,
  NOT_A_STORE_PATH: Code.InvalidArgument,
  CONFIG_INVALID: Code.FailedPrecondition,
  STORE_PATH_MISSING: Code.FailedPrecondition,
  NOT_FOUND: Code.NotFound,
  ALREADY_EXISTS: Code.AlreadyExists,
  INVALID_STATE: Code.FailedPrecondition,
  UNSUPPORTED: Code.FailedPrecondition,
  HOST_FEATURE_MISSING: Code.FailedPrecondition,
  COMMAND_FAILED: Code.Internal,
  IMAGE_BUILD_FAILED: Code.Internal,
  RUNTIME_FAILED: Code.Internal,
  TIMEOUT: Code.DeadlineExceeded,
  INTERNAL: Code.Internal,
};

/** Any failure as the ConnectError a handler throws; hints ride along in the message. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const e = OsnError.from(err);
  const message = e.hint ? `${e.message} (${e.hint})` : e.message;
  return new ConnectError(message, GRPC_FOR_CODE[e.code], undefined, undefined, e);
}
