{
  description = "openshell-nix: sandboxes for NVIDIA OpenShell made from the Nix store (erofs bundle images, crun containers, microVMs)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      # qemu-system-x86_64 and the x86 boot path are what the VM sandboxes use today.
      systems = [ "x86_64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: _prev: { openshell-nix = final.callPackage ./nix/package.nix { }; };

      packages = forAllSystems (pkgs: rec {
        openshell-nix = pkgs.callPackage ./nix/package.nix { };
        default = openshell-nix;
      });

      # No nixpkgs.overlays here: a read-only nixpkgs (runNixOSTest, readOnlyPkgs) refuses them.
      # The package comes from this flake unless the user sets services.openshell-nix.package.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.openshell-nix.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          # Node for the build and the tests; the host tools the integration tests drive.
          packages = with pkgs; [
            nodejs
            python3
            crun
            erofs-utils
            qemu_kvm
            nix
            slirp4netns
            e2fsprogs
            xz
            util-linux
            patchelf
            pkgsStatic.busybox
          ];
        };
      });

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        nixos = pkgs.testers.runNixOSTest (import ./nix/tests/basic.nix { inherit self; });
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
