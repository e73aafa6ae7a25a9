import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { OsnError } from "../common/errors.js";
import { loadConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { DEFAULT_SOCKET } from "../driver/defaults.js";
import { socketAnswers, socketDirProblem } from "../driver/socket-file.js";
import { sandboxEndpoint } from "../driver/supervisor-contract.js";
import type { CheckResult } from "./checks.js";

/**
 * What the OpenShell compute driver (`serve`) needs beyond the sandboxes themselves: a valid
 * config, a gateway endpoint sandboxes can reach, a supervisor, and a usable socket directory.
 * All optional (warn): the CLI works without a driver.
 */
export async function driverChecks(configFile: string | undefined): Promise<CheckResult[]> {
  let config: Config;
  try {
    config = await loadConfig(configFile);
  } catch (err) {
    return [
      {
        name: "config",
        level: "fail",
        detail: OsnError.from(err).message,
        fix: "fix the file (openshell-nix config-check FILE shows every problem)",
        required: true,
      },
    ];
  }
  const results: CheckResult[] = [{ name: "config", level: "ok", detail: "valid", required: true }];
  const endpoint = config.driver?.gatewayEndpoint;
  if (!endpoint) {
    results.push({
      name: "driver: gateway endpoint",
      level: "warn",
      detail: "driver.gatewayEndpoint is not set: the compute driver refuses to create sandboxes",
      fix: 'set "driver": { "gatewayEndpoint": "http://127.0.0.1:17670" } (the gateway as this host reaches it)',
      required: false,
    });
  } else {
    try {
      results.push({
        name: "driver: gateway endpoint",
        level: "ok",
        detail: `${endpoint} (inside sandboxes: ${sandboxEndpoint(endpoint)})`,
        required: false,
      });
    } catch (err) {
      results.push({
        name: "driver: gateway endpoint",
        level: "warn",
        detail: OsnError.from(err).message,
        fix: "use an http:// endpoint",
        required: false,
      });
    }
  }
  const supervisor = config.driver?.supervisor;
  if (!supervisor) {
    results.push({
      name: "driver: supervisor",
      level: "warn",
      detail: "driver.supervisor is not set: only bundles with bin/openshell-sandbox can serve the gateway",
      fix: "set driver.supervisor to the openshell-sandbox package (NixOS: services.openshell-nix.supervisorPackage)",
      required: false,
    });
  } else {
    const bin = existsSync(join(supervisor, "bin/openshell-sandbox"))
      ? join(supervisor, "bin/openshell-sandbox")
      : supervisor;
    results.push(
      existsSync(bin) && statSync(bin).isFile()
        ? { name: "driver: supervisor", level: "ok", detail: bin, required: false }
        : {
            name: "driver: supervisor",
            level: "warn",
            detail: `${supervisor} has no openshell-sandbox`,
            fix: "build or realise the supervisor package, or correct driver.supervisor",
            required: false,
          },
    );
  }
  results.push(await socketCheck(config.driver?.socketPath ?? DEFAULT_SOCKET));
  return results;
}

async function socketCheck(socket: string): Promise<CheckResult> {
  const name = "driver: socket";
  const dir = dirname(socket);
  if (!existsSync(dir)) {
    return { name, level: "ok", detail: `${dir} does not exist yet; serve makes it (0700)`, required: false };
  }
  const problem = socketDirProblem(dir);
  if (problem) {
    return {
      name,
      level: "warn",
      detail: `${problem}: serve refuses it`,
      fix: `chmod 0700 ${dir} (or 0750 with a group for the gateway)`,
      required: false,
    };
  }
  const live = existsSync(socket) && (await socketAnswers(socket));
  return {
    name,
    level: "ok",
    detail: live ? `${socket}: a driver is serving` : `${socket}: no driver serving (openshell-nix serve)`,
    required: false,
  };
}
