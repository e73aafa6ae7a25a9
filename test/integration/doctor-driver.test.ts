import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { missingHostFeature, runCli } from "../helpers/host.js";

const skip = missingHostFeature();

interface Check {
  name: string;
  level: string;
  detail: string;
  fix?: string;
}

describe.skipIf(skip)(`doctor on the compute driver's needs${skip ? ` (skipped: ${skip})` : ""}`, () => {
  const dir = mkdtempSync("/var/tmp/osn-doctor-");
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const doctor = async (config: unknown) => {
    const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, typeof config === "string" ? config : JSON.stringify(config));
    const r = await runCli(join(dir, "state"), ["--config", file, "doctor", "--json"]);
    return { status: r.status, checks: (JSON.parse(r.stdout) as { checks: Check[] }).checks };
  };
  const find = (checks: Check[], name: string) => checks.find((c) => c.name === name);

  it("warns, with a fix, when the driver lacks a gateway endpoint or a supervisor", async () => {
    const { checks } = await doctor({});
    expect(find(checks, "config")?.level).toBe("ok");
    expect(find(checks, "driver: gateway endpoint")).toMatchObject({ level: "warn" });
    expect(find(checks, "driver: gateway endpoint")?.fix).toMatch(/gatewayEndpoint/);
    expect(find(checks, "driver: supervisor")).toMatchObject({ level: "warn" });
  });

  it("shows the endpoint as sandboxes see it, and a missing supervisor package", async () => {
    const { checks } = await doctor({
      driver: {
        gatewayEndpoint: "http://127.0.0.1:17670",
        supervisor: "/nix/store/00000000000000000000000000000000-nope",
      },
    });
    expect(find(checks, "driver: gateway endpoint")?.detail).toContain(
      "http://host.openshell.internal:17670",
    );
    expect(find(checks, "driver: supervisor")).toMatchObject({ level: "warn" });
  });

  it("fails on a config the daemon would refuse, and says why", async () => {
    const { status, checks } = await doctor({ driver: { gatewayEndpoint: "http://x", typo: 1 } });
    expect(status).toBe(5);
    expect(find(checks, "config")).toMatchObject({ level: "fail" });
    expect(find(checks, "config")?.detail).toMatch(/typo/);
  });
});
