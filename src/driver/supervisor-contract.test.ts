import { describe, expect, it } from "vitest";
import { ErrorCode } from "../common/errors.js";
import type { DriverPlan } from "./sandbox-request.js";
import { SSH_SOCKET_PATH, sandboxEndpoint, supervisorLaunch, TOKEN_PATH } from "./supervisor-contract.js";

const TOKEN = "eyJhbGciOi.secret-token.sig";
const SUPERVISOR = "/nix/store/r4whns0fxsmy509fq3ys1yy42f6qp4lj-openshell/bin/openshell-sandbox";

function plan(over: Partial<DriverPlan> = {}): DriverPlan {
  return {
    id: "abc-123",
    gatewayName: "my-sandbox",
    namespace: "default",
    workspace: "ws",
    sandboxName: "os-abc-123",
    image: "nix:demo",
    bundle: { bundle: "nix:demo" },
    kind: undefined,
    limits: {},
    userEnv: { FOO: "bar", LANG: "C.UTF-8" },
    labels: {},
    command: ["python3", "-c", "print(1)"],
    tty: false,
    logLevel: "debug",
    token: TOKEN,
    ...over,
  };
}

const ctx = { supervisor: SUPERVISOR, gatewayEndpoint: "http://127.0.0.1:8080/", defaultLogLevel: "info" };

describe("supervisorLaunch", () => {
  it("runs the supervisor in /sandbox", () => {
    expect(supervisorLaunch(plan(), ctx).command).toEqual([SUPERVISOR, "--workdir", "/sandbox"]);
  });

  it("sets the environment the supervisor reads", () => {
    const { env } = supervisorLaunch(plan(), ctx);
    expect(env.OPENSHELL_ENDPOINT).toBe("http://host.openshell.internal:8080");
    expect(env.OPENSHELL_SANDBOX_ID).toBe("abc-123");
    expect(env.OPENSHELL_SANDBOX).toBe("my-sandbox");
    expect(env.OPENSHELL_SSH_SOCKET_PATH).toBe(SSH_SOCKET_PATH);
    expect(env.OPENSHELL_SSH_SOCKET_PATH).toBe("/run/openshell/ssh.sock");
    expect(JSON.parse(env.OPENSHELL_MAIN_PROCESS_SPEC ?? "")).toEqual({
      version: 1,
      command: ["python3", "-c", "print(1)"],
      tty: false,
    });
    expect(env.OPENSHELL_LOG_LEVEL).toBe("debug");
    expect(JSON.parse(env.OPENSHELL_USER_ENVIRONMENT ?? "")).toEqual({ FOO: "bar", LANG: "C.UTF-8" });
    expect(env.FOO).toBe("bar");
    expect(env.LANG).toBe("C.UTF-8");
  });

  it("carries the plan's tty for a given command", () => {
    const { env } = supervisorLaunch(plan({ command: ["top"], tty: true }), ctx);
    expect(JSON.parse(env.OPENSHELL_MAIN_PROCESS_SPEC ?? "")).toEqual({
      version: 1,
      command: ["top"],
      tty: true,
    });
  });

  it("runs a login shell on a tty when the command is empty", () => {
    const { env } = supervisorLaunch(plan({ command: [], tty: false }), ctx);
    expect(JSON.parse(env.OPENSHELL_MAIN_PROCESS_SPEC ?? "")).toEqual({
      version: 1,
      command: ["/bin/bash", "-l"],
      tty: true,
    });
  });

  it("uses the default log level when the plan has none", () => {
    expect(supervisorLaunch(plan({ logLevel: "" }), ctx).env.OPENSHELL_LOG_LEVEL).toBe("info");
  });

  it("writes the token to a 0600 file and names the file, not the token", () => {
    const { env, files } = supervisorLaunch(plan(), ctx);
    expect(TOKEN_PATH).toBe("/etc/openshell/auth/sandbox.jwt");
    expect(files).toEqual([{ path: TOKEN_PATH, mode: 0o600, content: `${TOKEN}\n` }]);
    expect(env.OPENSHELL_SANDBOX_TOKEN_FILE).toBe(TOKEN_PATH);
    expect(env).not.toHaveProperty("OPENSHELL_SANDBOX_TOKEN");
  });

  it("never puts the token in the environment", () => {
    const { env } = supervisorLaunch(plan(), ctx);
    for (const [key, value] of Object.entries(env)) {
      expect(value, key).not.toContain(TOKEN);
    }
  });

  it("writes no token file when there is no token", () => {
    const { env, files } = supervisorLaunch(plan({ token: "" }), ctx);
    expect(files).toEqual([]);
    expect(env).not.toHaveProperty("OPENSHELL_SANDBOX_TOKEN_FILE");
  });

  it("does not let the user environment override what the driver sets", () => {
    const { env } = supervisorLaunch(
      plan({
        userEnv: {
          OPENSHELL_ENDPOINT: "http://evil.example:1",
          OPENSHELL_SANDBOX_ID: "other",
          OPENSHELL_SANDBOX: "other",
          OPENSHELL_SSH_SOCKET_PATH: "/tmp/evil.sock",
          OPENSHELL_MAIN_PROCESS_SPEC: "{}",
        },
      }),
      ctx,
    );
    expect(env.OPENSHELL_ENDPOINT).toBe("http://host.openshell.internal:8080");
    expect(env.OPENSHELL_SANDBOX_ID).toBe("abc-123");
    expect(env.OPENSHELL_SANDBOX).toBe("my-sandbox");
    expect(env.OPENSHELL_SSH_SOCKET_PATH).toBe(SSH_SOCKET_PATH);
    expect(JSON.parse(env.OPENSHELL_MAIN_PROCESS_SPEC ?? "").version).toBe(1);
  });

  it("lets the user environment override the defaults for PATH and HOME", () => {
    const { env } = supervisorLaunch(plan({ userEnv: { PATH: "/opt/bin", HOME: "/home/u" } }), ctx);
    expect(env.PATH).toBe("/opt/bin");
    expect(env.HOME).toBe("/home/u");
  });
});

describe("sandboxEndpoint", () => {
  it.each([
    ["http://127.0.0.1:8080", "http://host.openshell.internal:8080"],
    ["http://127.0.0.1:8080/", "http://host.openshell.internal:8080"],
    ["http://127.1.2.3:9", "http://host.openshell.internal:9"],
    ["http://localhost:50051", "http://host.openshell.internal:50051"],
    ["http://[::1]:8080", "http://host.openshell.internal:8080"],
    ["http://0.0.0.0:8080", "http://host.openshell.internal:8080"],
    ["http://localhost", "http://host.openshell.internal"],
  ])("rewrites the loopback %j to %j", (input, output) => {
    expect(sandboxEndpoint(input)).toBe(output);
  });

  it.each([
    ["http://10.1.2.3:8080", "http://10.1.2.3:8080"],
    ["http://10.1.2.3:8080/", "http://10.1.2.3:8080"],
    ["http://gw.example:17670", "http://gw.example:17670"],
  ])("keeps the host of %j", (input, output) => {
    expect(sandboxEndpoint(input)).toBe(output);
  });

  // https would need TLS client files in the sandbox, which the driver does not write yet.
  it.each(["ftp://x", "not a url", "", "https://localhost:8443", "https://gw.example"])(
    "rejects %j",
    (input) => {
      expect(() => sandboxEndpoint(input)).toThrow(
        expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }),
      );
    },
  );
});
