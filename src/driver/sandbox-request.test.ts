import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../common/errors.js";
import { type DriverSandbox, DriverSandboxSchema } from "../gen/openshell/compute/v1/compute_driver_pb.js";
import { planFromDriverSandbox, requestId, sandboxNameFor } from "./sandbox-request.js";

const defaults = { defaultImage: "nix:default" };
const STORE_PATH = "/nix/store/r4whns0fxsmy509fq3ys1yy42f6qp4lj-env";

/** The plain-object (not Message) forms of the init shapes, so they can be spread. */
type Plain<T> = Exclude<T, { $typeName: string } | undefined>;
type SandboxInit = Plain<MessageInitShape<typeof DriverSandboxSchema>>;
type SpecInit = Plain<SandboxInit["spec"]>;
type TemplateInit = Plain<SpecInit["template"]>;

/** A valid sandbox; `spec` and `template` are shallow-merged over the defaults. */
function sandbox(
  over: Omit<SandboxInit, "spec"> = {},
  spec: Omit<SpecInit, "template"> = {},
  template: TemplateInit = {},
): DriverSandbox {
  return create(DriverSandboxSchema, {
    id: "abc-123",
    name: "my-sandbox",
    namespace: "default",
    workspace: "ws",
    ...over,
    spec: {
      logLevel: "debug",
      sandboxToken: "tok.en.value",
      command: ["python3", "-c", "print(1)"],
      tty: false,
      environment: {},
      ...spec,
      template: {
        image: "nix:demo",
        environment: {},
        labels: {},
        ...template,
      },
    },
  });
}

const invalidArgument = expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT });
const unsupported = expect.objectContaining({ code: ErrorCode.UNSUPPORTED });

describe("planFromDriverSandbox", () => {
  it("maps a valid sandbox to the expected plan", () => {
    const plan = planFromDriverSandbox(
      sandbox(
        {},
        {
          environment: {
            SHARED: "from-spec",
            SPEC_ONLY: "s",
            OPENSHELL_SANDBOX_TOKEN: "evil",
            OPENSHELL_GATEWAY_TLS_SERVER_NAME: "evil.example",
          },
        },
        {
          environment: {
            SHARED: "from-template",
            TEMPLATE_ONLY: "t",
            OPENSHELL_SANDBOX_TOKEN_FILE: "/tmp/evil",
          },
          labels: { team: "infra", "app.kubernetes.io/name": "demo" },
          resources: { cpuRequest: "250m", cpuLimit: "500m", memoryRequest: "128Mi", memoryLimit: "256Mi" },
        },
      ),
      defaults,
    );
    expect(plan).toEqual({
      id: "abc-123",
      gatewayName: "my-sandbox",
      namespace: "default",
      workspace: "ws",
      sandboxName: "os-abc-123",
      image: "nix:demo",
      bundle: { bundle: "nix:demo" },
      kind: undefined,
      limits: { cpus: 0.5, memory: 256 * 2 ** 20 },
      userEnv: { SHARED: "from-spec", SPEC_ONLY: "s", TEMPLATE_ONLY: "t" },
      labels: { team: "infra", "app.kubernetes.io/name": "demo" },
      command: ["python3", "-c", "print(1)"],
      tty: false,
      logLevel: "debug",
      token: "tok.en.value",
    });
  });

  it("echoes the id as the gateway name when the name is empty", () => {
    expect(planFromDriverSandbox(sandbox({ name: "" }), defaults).gatewayName).toBe("abc-123");
  });

  it("asks for store paths when the image is a /nix/store path", () => {
    const plan = planFromDriverSandbox(sandbox({}, {}, { image: STORE_PATH }), defaults);
    expect(plan.image).toBe(STORE_PATH);
    expect(plan.bundle).toEqual({ storePaths: [STORE_PATH] });
  });

  it("uses the default image when the template's image is empty", () => {
    const plan = planFromDriverSandbox(sandbox({}, {}, { image: "" }), defaults);
    expect(plan.image).toBe("nix:default");
    expect(plan.bundle).toEqual({ bundle: "nix:default" });
  });

  it("accepts a bare bundle name", () => {
    expect(planFromDriverSandbox(sandbox({}, {}, { image: "python" }), defaults).bundle).toEqual({
      bundle: "python",
    });
  });

  it("falls back from limits to requests", () => {
    const plan = planFromDriverSandbox(
      sandbox({}, {}, { resources: { cpuRequest: "1500m", memoryRequest: "1Gi" } }),
      defaults,
    );
    expect(plan.limits).toEqual({ cpus: 1.5, memory: 2 ** 30 });
  });

  it("has no limits when no resources are given", () => {
    expect(planFromDriverSandbox(sandbox(), defaults).limits).toEqual({});
  });

  it("carries an empty token, command and log level as they are", () => {
    const plan = planFromDriverSandbox(
      sandbox({}, { sandboxToken: "", command: [], tty: true, logLevel: "" }),
      defaults,
    );
    expect(plan.token).toBe("");
    expect(plan.command).toEqual([]);
    expect(plan.tty).toBe(true);
    expect(plan.logLevel).toBe("");
  });

  it("accepts a valid driver_config", () => {
    const plan = planFromDriverSandbox(
      sandbox({}, {}, { driverConfig: { kind: "vm", pids: 64 }, resources: { memoryLimit: "1G" } }),
      defaults,
    );
    expect(plan.kind).toBe("vm");
    expect(plan.limits).toEqual({ memory: 1e9, pids: 64 });
  });

  it("accepts driver_config kind container", () => {
    expect(
      planFromDriverSandbox(sandbox({}, {}, { driverConfig: { kind: "container" } }), defaults).kind,
    ).toBe("container");
  });

  it("accepts an empty platform_config", () => {
    expect(() => planFromDriverSandbox(sandbox({}, {}, { platformConfig: {} }), defaults)).not.toThrow();
  });

  describe("rejects malformed input with INVALID_ARGUMENT", () => {
    it("a missing sandbox", () => {
      expect(() => planFromDriverSandbox(undefined, defaults)).toThrow(invalidArgument);
    });
    it("a missing spec", () => {
      const s = sandbox();
      s.spec = undefined;
      expect(() => planFromDriverSandbox(s, defaults)).toThrow(invalidArgument);
    });
    it("a missing template", () => {
      const s = sandbox();
      if (!s.spec) throw new Error("no spec");
      s.spec.template = undefined;
      expect(() => planFromDriverSandbox(s, defaults)).toThrow(invalidArgument);
    });
    it.each(["a/b", "", "x".repeat(129), "a b", "a\u0000"])("the id %j", (id) => {
      expect(() => planFromDriverSandbox(sandbox({ id }), defaults)).toThrow(invalidArgument);
    });
    it("accepts a 128-character id", () => {
      expect(planFromDriverSandbox(sandbox({ id: "x".repeat(128) }), defaults).id).toBe("x".repeat(128));
    });
    it.each(["bad\u0001name", "bad\u007fname", "has space", "n".repeat(254)])("the name %j", (name) => {
      expect(() => planFromDriverSandbox(sandbox({ name }), defaults)).toThrow(invalidArgument);
    });
    it("control characters in the namespace", () => {
      expect(() => planFromDriverSandbox(sandbox({ namespace: "ns\u001b[31m" }), defaults)).toThrow(
        invalidArgument,
      );
    });
    it("control characters in an environment value (spec or template)", () => {
      expect(() => planFromDriverSandbox(sandbox({}, { environment: { A: "x\u0007y" } }), defaults)).toThrow(
        invalidArgument,
      );
      expect(() =>
        planFromDriverSandbox(sandbox({}, {}, { environment: { A: "x\u0000y" } }), defaults),
      ).toThrow(invalidArgument);
    });
    it("allows tabs and newlines in an environment value", () => {
      const plan = planFromDriverSandbox(sandbox({}, { environment: { A: "x\ty\nz" } }), defaults);
      expect(plan.userEnv).toEqual({ A: "x\ty\nz" });
    });
    it.each(["1ABC", "A-B", "", "A=B", "A B"])("the environment variable name %j", (name) => {
      expect(() => planFromDriverSandbox(sandbox({}, { environment: { [name]: "v" } }), defaults)).toThrow(
        invalidArgument,
      );
    });
    it("control characters in a label key or value", () => {
      expect(() => planFromDriverSandbox(sandbox({}, {}, { labels: { a: "b\u0002" } }), defaults)).toThrow(
        invalidArgument,
      );
      expect(() => planFromDriverSandbox(sandbox({}, {}, { labels: { "a\u0002": "b" } }), defaults)).toThrow(
        invalidArgument,
      );
    });
    it("an empty label key", () => {
      expect(() => planFromDriverSandbox(sandbox({}, {}, { labels: { "": "b" } }), defaults)).toThrow(
        invalidArgument,
      );
    });
    it("a bad cpu quantity", () => {
      expect(() =>
        planFromDriverSandbox(sandbox({}, {}, { resources: { cpuLimit: "abc" } }), defaults),
      ).toThrow(invalidArgument);
    });
    it("a bad memory quantity", () => {
      expect(() =>
        planFromDriverSandbox(sandbox({}, {}, { resources: { memoryRequest: "4Gx" } }), defaults),
      ).toThrow(invalidArgument);
    });
    it("an unknown driver_config key", () => {
      expect(() =>
        planFromDriverSandbox(sandbox({}, {}, { driverConfig: { memory: "1G" } }), defaults),
      ).toThrow(invalidArgument);
    });
    it.each(["docker", "", 1, true, null])("driver_config.kind %j", (kind) => {
      expect(() => planFromDriverSandbox(sandbox({}, {}, { driverConfig: { kind } }), defaults)).toThrow(
        invalidArgument,
      );
    });
    it.each([7, 1.5, "x", "64", 4_194_305, null])("driver_config.pids %j", (pids) => {
      expect(() => planFromDriverSandbox(sandbox({}, {}, { driverConfig: { pids } }), defaults)).toThrow(
        invalidArgument,
      );
    });
    it("a NUL byte in the command", () => {
      expect(() =>
        planFromDriverSandbox(sandbox({}, { command: ["sh", "-c", "a\u0000b"] }), defaults),
      ).toThrow(invalidArgument);
    });
    it("control characters in the image", () => {
      expect(() => planFromDriverSandbox(sandbox({}, {}, { image: "nix:de\u0001mo" }), defaults)).toThrow(
        invalidArgument,
      );
    });
  });

  describe("rejects what the driver cannot do with UNSUPPORTED", () => {
    it("a GPU request", () => {
      expect(() =>
        planFromDriverSandbox(sandbox({}, { resourceRequirements: { gpu: { count: 1 } } }), defaults),
      ).toThrow(unsupported);
    });
    it("a GPU request without a count", () => {
      expect(() =>
        planFromDriverSandbox(sandbox({}, { resourceRequirements: { gpu: {} } }), defaults),
      ).toThrow(unsupported);
    });
    it("accepts resource requirements without a GPU", () => {
      expect(() => planFromDriverSandbox(sandbox({}, { resourceRequirements: {} }), defaults)).not.toThrow();
    });
    it("an agent socket path", () => {
      expect(() =>
        planFromDriverSandbox(sandbox({}, {}, { agentSocketPath: "/run/agent.sock" }), defaults),
      ).toThrow(unsupported);
    });
    it("a non-empty platform_config", () => {
      expect(() =>
        planFromDriverSandbox(sandbox({}, {}, { platformConfig: { runtimeClass: "gvisor" } }), defaults),
      ).toThrow(unsupported);
    });
    it.each(["ghcr.io/x/y:1", "ubuntu:22.04", "nix:foo/bar", "alpine@sha256:abcd"])(
      "the OCI image %j",
      (image) => {
        expect(() => planFromDriverSandbox(sandbox({}, {}, { image }), defaults)).toThrow(unsupported);
      },
    );
  });
});

describe("sandboxNameFor", () => {
  it("prefixes a lowercase id", () => {
    expect(sandboxNameFor("abc-123")).toBe("os-abc-123");
  });
  it.each(["ABC-123", "x".repeat(100)])("hashes %j, which does not fit", (id) => {
    const name = sandboxNameFor(id);
    expect(name).toMatch(/^os-[0-9a-f]{24}$/);
    expect(sandboxNameFor(id)).toBe(name);
  });
  it("hashes with sha256, so different ids get different names", () => {
    // sha256("ABC-123"), first 24 hex digits.
    expect(sandboxNameFor("ABC-123")).toBe("os-4d156d7bc9c38c000aa1e5b0");
    expect(sandboxNameFor("ABC-124")).not.toBe(sandboxNameFor("ABC-123"));
  });
  it("keeps a 60-character id readable and hashes a 61-character one", () => {
    expect(sandboxNameFor("a".repeat(60))).toBe(`os-${"a".repeat(60)}`);
    expect(sandboxNameFor("a".repeat(61))).toMatch(/^os-[0-9a-f]{24}$/);
  });
});

describe("requestId", () => {
  it("rejects a request with neither id nor name", () => {
    expect(() => requestId({ sandboxId: "", sandboxName: "" })).toThrow(invalidArgument);
  });
  it("rejects a request with only a name", () => {
    expect(() => requestId({ sandboxId: "", sandboxName: "my-sandbox" })).toThrow(invalidArgument);
  });
  it("rejects a malformed id", () => {
    expect(() => requestId({ sandboxId: "../etc", sandboxName: "" })).toThrow(invalidArgument);
  });
  it("returns a valid id", () => {
    expect(requestId({ sandboxId: "abc-123", sandboxName: "ignored" })).toBe("abc-123");
  });
});
