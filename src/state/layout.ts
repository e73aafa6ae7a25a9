import { createHash } from "node:crypto";
import { join } from "node:path";

export const DEFAULT_STATE_DIR = "/var/lib/openshell-nix";

/**
 * Where everything lives under the state directory (docs/state-layout.md is the table).
 * Every path openshell-nix creates on the host is below `root`, so reconcile can find orphans
 * by listing these directories alone.
 */
export class StateLayout {
  constructor(readonly root: string) {}

  get db(): string {
    return join(this.root, "state.db");
  }
  get imagesDir(): string {
    return join(this.root, "images");
  }
  image(key: string): string {
    return join(this.imagesDir, `${key}.erofs`);
  }
  get mountsDir(): string {
    return join(this.root, "mounts");
  }
  mount(key: string): string {
    return join(this.mountsDir, key);
  }
  get gcrootsDir(): string {
    return join(this.root, "gcroots");
  }
  get sandboxesDir(): string {
    return join(this.root, "sandboxes");
  }
  sandbox(name: string): string {
    return join(this.sandboxesDir, name);
  }
  get tmpDir(): string {
    return join(this.root, "tmp");
  }
  get crunRoot(): string {
    return join(this.root, "crun");
  }
  /**
   * A short tag unique to this state directory: it keeps cgroups of two state directories
   * (a test's and the system's) apart when sandbox names coincide.
   */
  get tag(): string {
    return createHash("sha256").update(this.root).digest("hex").slice(0, 8);
  }
}
