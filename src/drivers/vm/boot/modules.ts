import { ErrorCode, OsnError } from "../../../common/errors.js";

/** What modules.dep says: module name → its path (relative to the modules dir) and its deps. */
export interface ModuleIndex {
  paths: Map<string, string>;
  deps: Map<string, string[]>;
  builtin: Set<string>;
}

/** Module names use '_' and '-' interchangeably; the kernel itself normalises to '_'. */
export function moduleName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1).replace(/\.ko(\.(xz|zst|gz))?$/, "");
  return base.replaceAll("-", "_");
}

export function parseModulesDep(modulesDep: string, modulesBuiltin: string): ModuleIndex {
  const paths = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const path = line.slice(0, colon);
    const name = moduleName(path);
    paths.set(name, path);
    deps.set(
      name,
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(moduleName),
    );
  }
  const builtin = new Set(modulesBuiltin.split("\n").filter(Boolean).map(moduleName));
  return { paths, deps, builtin };
}

/**
 * The modules to load for `wanted`, dependencies first, each once; built-in ones are left out.
 * Pure; throws when a wanted module exists neither as a module nor built in.
 */
export function resolveModules(index: ModuleIndex, wanted: readonly string[]): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, chain: string[]) => {
    const n = name.replaceAll("-", "_");
    if (seen.has(n) || index.builtin.has(n)) return;
    if (!index.paths.has(n)) {
      throw new OsnError(
        ErrorCode.HOST_FEATURE_MISSING,
        `the guest kernel has no module ${n}${chain.length ? ` (needed by ${chain.join(" → ")})` : ""}`,
      );
    }
    seen.add(n);
    for (const dep of index.deps.get(n) ?? []) visit(dep, [...chain, n]);
    order.push(n);
  };
  for (const w of wanted) visit(w, []);
  return order;
}
