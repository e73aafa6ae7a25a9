import { connect } from "node:net";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type ErrorCode as Codes, ErrorCode, OsnError } from "../common/errors.js";
import { ComputeDriver } from "../gen/openshell/compute/v1/compute_driver_pb.js";

export type DriverClient = Client<typeof ComputeDriver>;

/**
 * A client that talks to the driver the way the gateway does: gRPC over HTTP/2 with prior
 * knowledge on the unix socket; the authority is a placeholder, as the gateway's is.
 */
export function driverClient(socketPath: string): DriverClient {
  const transport = createGrpcTransport({
    baseUrl: "http://[::]:50051",
    nodeOptions: { createConnection: () => connect(socketPath) },
  });
  return createClient(ComputeDriver, transport);
}

const FROM_GRPC: Partial<Record<Code, Codes>> = {
  [Code.InvalidArgument]: ErrorCode.INVALID_ARGUMENT,
  [Code.NotFound]: ErrorCode.NOT_FOUND,
  [Code.AlreadyExists]: ErrorCode.ALREADY_EXISTS,
  [Code.FailedPrecondition]: ErrorCode.UNSUPPORTED,
  [Code.DeadlineExceeded]: ErrorCode.TIMEOUT,
};

/** A failed call as our error, with a hint when the daemon is not there at all. */
export function fromDriverError(err: unknown, socketPath: string): OsnError {
  const e = ConnectError.from(err);
  if (e.code === Code.Unavailable || /ENOENT|ECONNREFUSED/.test(e.message)) {
    return new OsnError(
      ErrorCode.HOST_FEATURE_MISSING,
      `no driver answers on ${socketPath}: ${e.rawMessage}`,
      {
        hint: "start it with `openshell-nix serve` (or systemctl start openshell-nix), or pass --socket",
      },
    );
  }
  return new OsnError(FROM_GRPC[e.code] ?? ErrorCode.INTERNAL, e.rawMessage, { cause: e });
}
