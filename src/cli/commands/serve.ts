import type { Command } from "commander";
import { ErrorCode, OsnError } from "../../common/errors.js";
import { DEFAULT_SOCKET } from "../../driver/defaults.js";
import type { CliContext } from "../context.js";

export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command("serve")
    .description("serve the OpenShell compute driver (openshell.compute.v1.ComputeDriver) on a unix socket")
    .option(
      "--socket <path>",
      `socket path (default: driver.socketPath in the config, else ${DEFAULT_SOCKET})`,
    )
    .option("--drain-timeout <seconds>", "on SIGTERM, how long operations in flight may take", "30")
    .action(async (flags: { socket?: string; drainTimeout: string }) => {
      // Loaded here: the gRPC server stack is for this verb only.
      const { NixComputeDriver } = await import("../../driver/compute-driver.js");
      const { prepareSocket, serveDriver } = await import("../../driver/driver-server.js");
      const app = await ctx.app();
      const socketPath = flags.socket ?? app.config.driver?.socketPath ?? DEFAULT_SOCKET;
      const log = (line: string) => process.stderr.write(`openshell-nix serve: ${line}\n`);
      // Nothing changes before both checks: the socket is free, and no other daemon serves
      // this state directory (two would provision and poll the same sandboxes).
      await prepareSocket(socketPath);
      const releaseState = await app.locks.acquire("serve", 0).catch(() => {
        throw new OsnError(ErrorCode.ALREADY_EXISTS, `another openshell-nix serve uses ${app.layout.root}`);
      });
      const driver = new NixComputeDriver(app);
      for (const action of await driver.startBackground()) log(action);
      const mode = app.config.driver?.socketMode === "0660" ? 0o660 : 0o600;
      const server = await serveDriver(driver, socketPath, mode);
      log(`serving ComputeDriver "${driver.name}" on ${server.socketPath} (state ${app.layout.root})`);
      // Sandboxes outlive the daemon: a stop only ends the serving, and a restart re-adopts them.
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          log(`${signal}: draining (${driver.inFlight} operations in flight)`);
          void server.close(Number(flags.drainTimeout) * 1000).then(resolve);
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
      releaseState();
      log("stopped; sandboxes keep running");
    });
}
