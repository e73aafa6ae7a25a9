import { connect } from "node:net";

/**
 * Send one QMP command after the capabilities handshake, and resolve when qemu has answered
 * (or the connection ends, as it does for `quit`). Errors resolve to false: QMP is a last
 * resort here, used when the guest does not answer on its own control port.
 */
export function qmpCommand(socketPath: string, command: string, timeoutMs = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    let buffer = "";
    let stage: "greeting" | "capabilities" | "command" = "greeting";
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.on("error", () => finish(false));
    socket.on("close", () => resolve(stage === "command"));
    socket.on("data", (d: Buffer) => {
      buffer += d.toString();
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        if (!line) continue;
        const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: unknown; event?: string };
        if (msg.event) continue;
        if (stage === "greeting" && msg.QMP) {
          stage = "capabilities";
          socket.write('{"execute":"qmp_capabilities"}\n');
        } else if (stage === "capabilities" && "return" in msg) {
          stage = "command";
          socket.write(`${JSON.stringify({ execute: command })}\n`);
        } else if (stage === "command") {
          finish(!msg.error);
        }
      }
    });
  });
}
