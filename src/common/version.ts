/** The version of openshell-nix (CLI --version, GetCapabilities). */
export const VERSION = "0.1.0";
