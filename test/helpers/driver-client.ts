import { connect } from "node:net";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ComputeDriver } from "../../src/gen/openshell/compute/v1/compute_driver_pb.js";

export type DriverClient = Client<typeof ComputeDriver>;

/**
 * A client that talks to the driver the way the gateway does: gRPC, HTTP/2 with prior
 * knowledge, over the unix socket (the authority is a placeholder, as the gateway's is).
 */
export function driverClient(socketPath: string): DriverClient {
  const transport = createGrpcTransport({
    baseUrl: "http://[::]:50051",
    nodeOptions: { createConnection: () => connect(socketPath) },
  });
  return createClient(ComputeDriver, transport);
}
