/** The variants' names, which are also the rows of the report's tables. */
export const ROW = {
  host: "host python",
  floor: "bare crun",
  api: "openshell-nix (API)",
  apiHeld: "openshell-nix (API, image already mounted)",
  cli: "openshell-nix (CLI)",
  podman: "podman run",
  oursFirst: "openshell-nix: image build + first run",
  oursPrebuilt: "openshell-nix: image prebuilt by Nix (NixOS) + first run",
  podmanFirst: "podman: import + first run",
} as const;
