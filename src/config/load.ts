import { readFileSync } from "node:fs";
import { ErrorCode, OsnError } from "../common/errors.js";
import { validateName } from "../common/names.js";
import type { Config } from "./schema.js";

export const DEFAULT_CONFIG_FILE = "/etc/openshell-nix/config.json";

/**
 * Read and validate the config. A missing file at the default location is an empty config (a
 * Debian host with no NixOS module); a missing file that was named explicitly is an error.
 */
export async function loadConfig(file: string | undefined): Promise<Config> {
  const path = file ?? process.env.OPENSHELL_NIX_CONFIG ?? DEFAULT_CONFIG_FILE;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && path === DEFAULT_CONFIG_FILE) return {};
    throw new OsnError(ErrorCode.CONFIG_INVALID, `cannot read config ${path}: ${(err as Error).message}`);
  }
  return parseConfig(text, path);
}

/**
 * Parse and validate config text. The schema (and zod with it) is loaded only here: a host
 * without a config file does not pay ~40 ms of module loading on every CLI call.
 */
export async function parseConfig(text: string, origin = "config"): Promise<Config> {
  const { ConfigSchema } = await import("./schema.js");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new OsnError(ErrorCode.CONFIG_INVALID, `${origin} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `  ${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new OsnError(
      ErrorCode.CONFIG_INVALID,
      `${origin} does not match the schema:\n${issues.join("\n")}`,
    );
  }
  for (const name of Object.keys(parsed.data.bundles ?? {})) validateName("bundle", name);
  return parsed.data;
}
