/**
 * What `openshell-nix driver …` needs at run time (protobuf, the gRPC client, the generated
 * messages), in one module loaded by its actions only: the other verbs do not pay ~80 ms of
 * module loading for a client they never use.
 */
export { create } from "@bufbuild/protobuf";
export { driverClient, fromDriverError } from "../../driver/driver-client.js";
export { DriverSandboxSchema } from "../../gen/openshell/compute/v1/compute_driver_pb.js";
