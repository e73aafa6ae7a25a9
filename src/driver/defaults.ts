/** Where `serve` listens unless the config or --socket says otherwise. */
export const DEFAULT_SOCKET = "/run/openshell-nix/compute-driver.sock";
