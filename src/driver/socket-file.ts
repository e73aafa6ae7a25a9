import { statSync } from "node:fs";
import { connect } from "node:net";

/** Whether something accepts connections on the unix socket at `path`. */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

/**
 * Why `dir` may not hold the driver's socket, or undefined when it may: the socket's directory
 * is its only protection, so it must be ours, closed to others and not group-writable (a group
 * may read it: the NixOS module's socket group). Kept apart from the server so `doctor` can
 * apply the same rule without loading the gRPC stack.
 */
export function socketDirProblem(dir: string, uid = process.geteuid?.() ?? 0): string | undefined {
  const st = statSync(dir);
  if (st.isDirectory() && st.uid === uid && (st.mode & 0o007) === 0 && (st.mode & 0o020) === 0)
    return undefined;
  return `socket directory ${dir} must be a directory owned by uid ${uid}, closed to others and not group-writable (mode ${(st.mode & 0o777).toString(8)})`;
}
