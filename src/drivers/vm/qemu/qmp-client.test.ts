import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { qmpCommand } from "./qmp-client.js";

/** A stand-in for qemu's QMP socket: greeting, capabilities handshake, then one command. */
function fakeQmp(path: string, seen: string[], answer: (cmd: string) => string | undefined) {
  const server = createServer((socket) => {
    socket.write('{"QMP": {"version": {}, "capabilities": []}}\r\n');
    socket.on("data", (d: Buffer) => {
      for (const line of d.toString().split("\n").filter(Boolean)) {
        const cmd = (JSON.parse(line) as { execute: string }).execute;
        seen.push(cmd);
        if (cmd === "qmp_capabilities") socket.write('{"return": {}}\r\n');
        else {
          const reply = answer(cmd);
          if (reply) socket.write(`{"event": "SHUTDOWN"}\r\n${reply}\r\n`);
          else socket.end();
        }
      }
    });
  });
  return new Promise<typeof server>((resolve) => server.listen(path, () => resolve(server)));
}

describe("qmpCommand", () => {
  const dir = mkdtempSync(join(tmpdir(), "qmp-"));
  const path = join(dir, "qmp.sock");
  afterEach(() => rmSync(path, { force: true }));

  it("does the capabilities handshake, then sends the command", async () => {
    const seen: string[] = [];
    const server = await fakeQmp(path, seen, () => '{"return": {}}');
    expect(await qmpCommand(path, "system_powerdown")).toBe(true);
    expect(seen).toEqual(["qmp_capabilities", "system_powerdown"]);
    server.close();
  });

  it("counts a connection closed by `quit` as done, and an error reply as not", async () => {
    const seen: string[] = [];
    const quitting = await fakeQmp(path, seen, () => undefined);
    expect(await qmpCommand(path, "quit")).toBe(true);
    quitting.close();
    rmSync(path, { force: true });
    const failing = await fakeQmp(path, [], () => '{"error": {"class": "GenericError", "desc": "no"}}');
    expect(await qmpCommand(path, "quit")).toBe(false);
    failing.close();
  });

  it("is false when there is no qemu", async () => {
    expect(await qmpCommand(join(dir, "nothing.sock"), "quit")).toBe(false);
  });
});
