import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { SandboxFile } from "../../sandbox/types.js";

export interface RootfsInput {
  hostname: string;
  /** Store path of a shell (…/bin/sh), linked at /bin/sh. */
  shell?: string;
  /** Store path of env (…/bin/env), linked at /usr/bin/env. */
  envTool?: string;
  /** Merged-/usr FHS links (SandboxSpec.links); they replace the /bin/sh and /usr/bin/env links. */
  links?: [string, string][];
  files?: SandboxFile[];
  /** Extra /etc/hosts lines (host.openshell.internal when the sandbox has a network). */
  hosts?: string[];
  /** resolv.conf; default: the host's (a loopback-only sandbox cannot use it anyway). */
  resolvConf?: string;
}

/** Directories the OCI mounts land on; crun could create them, but the root is read-only. */
const MOUNTPOINTS = [
  "nix/store",
  "proc",
  "dev",
  "sys",
  "tmp",
  "root",
  "sandbox",
  "etc",
  "usr/bin",
  "run",
  "var/tmp",
];

/** The few /etc files a process expects; pure, unit-tested. */
export function etcFiles(hostname: string, resolvConf: string, hosts: string[] = []): Record<string, string> {
  return {
    // `sandbox` (10001) is the user the OpenShell supervisor runs the agent as.
    passwd:
      "root:x:0:0:root:/root:/bin/sh\nsandbox:x:10001:10001:sandbox:/sandbox:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    group: "root:x:0:\nsandbox:x:10001:\nnogroup:x:65534:\n",
    hosts: `127.0.0.1 localhost ${hostname}\n::1 localhost ip6-localhost\n${hosts.map((h) => `${h}\n`).join("")}`,
    hostname: `${hostname}\n`,
    "resolv.conf": resolvConf,
    "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
  };
}

function hostResolvConf(): string {
  try {
    return readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    return "";
  }
}

/**
 * Write the tiny, read-only root of a container sandbox: mountpoints, /etc essentials and the
 * FHS links into the store. A few KiB per sandbox; the software itself comes from the image.
 */
export function writeRootfs(dir: string, input: RootfsInput): void {
  for (const d of MOUNTPOINTS) mkdirSync(join(dir, d), { recursive: true });
  // /var/run is /run, where `ip netns add` binds namespaces (the supervisor does that).
  mkdirSync(join(dir, "var"), { recursive: true });
  symlinkSync("../run", join(dir, "var", "run"));
  const resolv = input.resolvConf ?? hostResolvConf();
  for (const [name, text] of Object.entries(etcFiles(input.hostname, resolv, input.hosts))) {
    writeFileSync(join(dir, "etc", name), text, { mode: 0o644 });
  }
  if (input.links) {
    // Merged /usr: every FHS bin directory is /usr/bin.
    symlinkSync("usr/bin", join(dir, "bin"));
    symlinkSync("usr/bin", join(dir, "sbin"));
    symlinkSync("bin", join(dir, "usr", "sbin"));
    for (const [link, target] of input.links) symlinkSync(target, join(dir, link));
  } else {
    mkdirSync(join(dir, "bin"));
    if (input.shell) symlinkSync(input.shell, join(dir, "bin", "sh"));
    if (input.envTool) symlinkSync(input.envTool, join(dir, "usr", "bin", "env"));
  }
  for (const f of input.files ?? []) {
    mkdirSync(join(dir, dirname(f.path)), { recursive: true, mode: 0o755 });
    writeFileSync(join(dir, f.path), f.content, { mode: f.mode });
  }
}
