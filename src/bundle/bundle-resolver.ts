import { ErrorCode, OsnError } from "../common/errors.js";
import { validateName } from "../common/names.js";
import type { BundleConfig, Config } from "../config/schema.js";
import type { ProgressFn } from "../image/image-cache.js";
import { buildDemoBundle, DEMO_BUNDLE } from "../nix/demo-bundle.js";
import type { NixStore } from "../nix/nix-store.js";

export interface BundleRequest {
  /** A bundle name from the config (or `demo`); a `nix:` prefix, as OpenShell images carry, is allowed. */
  bundle?: string;
  /** Ad hoc bundle: top-level store paths (or symlinks to them). */
  storePaths?: string[];
}

export interface ResolvedBundle {
  /** The bundle's name, or `adhoc` for --store-path bundles. */
  name: string;
  toplevels: string[];
  config?: BundleConfig;
}

/** Turns a bundle request into top-level store paths; all input validation happens here. */
export class BundleResolver {
  constructor(
    private readonly config: Config,
    private readonly nix: NixStore,
    private readonly rootsDir: string,
  ) {}

  names(): string[] {
    return [...new Set([DEMO_BUNDLE, ...Object.keys(this.config.bundles ?? {})])].sort();
  }

  configured(name: string): BundleConfig | undefined {
    return this.config.bundles?.[name];
  }

  async resolve(req: BundleRequest, progress: ProgressFn = () => {}): Promise<ResolvedBundle> {
    if (req.storePaths && req.storePaths.length > 0) {
      if (req.bundle !== undefined) {
        throw new OsnError(ErrorCode.INVALID_ARGUMENT, "give either a bundle name or store paths, not both");
      }
      return { name: "adhoc", toplevels: req.storePaths.map((p) => this.nix.resolve(p)) };
    }
    const requested = req.bundle ?? this.config.defaultBundle ?? DEMO_BUNDLE;
    const name = validateName("bundle", requested.startsWith("nix:") ? requested.slice(4) : requested);
    const configured = this.config.bundles?.[name];
    if (configured) {
      return { name, toplevels: configured.storePaths.map((p) => this.nix.resolve(p)), config: configured };
    }
    if (name === DEMO_BUNDLE) {
      return { name, toplevels: [await buildDemoBundle(this.rootsDir, false, progress)] };
    }
    throw new OsnError(ErrorCode.NOT_FOUND, `no bundle named ${name}`, {
      hint: `known bundles: ${this.names().join(", ")}; or pass --store-path /nix/store/…`,
    });
  }
}
