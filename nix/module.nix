# services.openshell-nix: declarative bundles (prebuilt erofs images), the compute driver
# daemon under systemd, and the wiring of an OpenShell gateway to it.
#
#   imports = [ openshell-nix.nixosModules.default ];
#   services.openshell-nix = {
#     enable = true;
#     bundles.python.packages = [ pkgs.python3 ];
#   };
{
  imports = [
    ./module/options.nix
    ./module/service.nix
  ];
}
