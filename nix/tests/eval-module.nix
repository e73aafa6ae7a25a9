# Evaluate the NixOS module with nixpkgs' lib alone (lib.evalModules), with stubs for the few
# NixOS options it sets and the packages it refers to: enough to check the options, the
# rendered settings and the unit without a nixpkgs checkout. scripts/eval-module.sh runs it.
#
#   nix-instantiate --eval --strict --json nix/tests/eval-module.nix --arg lib 'import <nixpkgs.lib>/lib'
{ lib }:
let
  # A package is a derivation-looking attrset with a store path; nothing is built.
  fake =
    name:
    {
      type = "derivation";
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      meta.mainProgram = name;
    };
  pkgs = {
    system = "x86_64-linux";
    stdenv.hostPlatform.system = "x86_64-linux";
    formats.json = _: {
      type = lib.types.attrsOf lib.types.anything;
      generate = name: value: fake name;
    };
    runCommand = name: _: _: fake name;
    openshell-nix = fake "openshell-nix";
    python3 = fake "python3";
    git = fake "git";
    bash = fake "bash";
    bashInteractive = fake "bash-interactive";
    coreutils = fake "coreutils";
    findutils = fake "findutils";
    erofs-utils = fake "erofs-utils";
    python3Minimal = fake "python3-minimal";
    iproute2 = fake "iproute2";
    util-linux = fake "util-linux";
    nftables = fake "nftables";
    linuxPackages.kernel = fake "linux-6.6.63" // {
      dev = fake "linux-6.6.63-dev";
      modDirVersion = "6.6.63";
    };
    pkgsStatic.busybox = fake "busybox-static";
  };
  # The NixOS options the module sets, as plain sinks.
  nixosStubs = {
    options = {
      assertions = lib.mkOption { type = lib.types.listOf lib.types.unspecified; default = [ ]; };
      environment.etc = lib.mkOption { type = lib.types.attrsOf lib.types.unspecified; default = { }; };
      environment.systemPackages = lib.mkOption { type = lib.types.listOf lib.types.unspecified; default = [ ]; };
      users.groups = lib.mkOption { type = lib.types.attrsOf lib.types.unspecified; default = { }; };
      boot.kernelModules = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
      systemd.services = lib.mkOption { type = lib.types.attrsOf lib.types.unspecified; default = { }; };
      systemd.tmpfiles.rules = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
    };
  };
  # What a user writes: the README's example, with a supervisor and a gateway endpoint.
  example = {
    services.openshell-nix = {
      enable = true;
      supervisorPackage = fake "openshell-sandbox";
      bundles.python = {
        packages = [ pkgs.python3 pkgs.git ];
        limits.memory = "4Gi";
        description = "python for agents";
      };
      bundles.tools = {
        packages = [ pkgs.coreutils ];
        kind = "vm";
        prebuild = false;
      };
      settings = {
        limits.pids = 1024;
        driver.gatewayEndpoint = "http://127.0.0.1:17670";
        driver.defaultImage = "nix:python";
      };
    };
  };
  evalWith =
    extra:
    lib.evalModules {
      modules = [
        nixosStubs
        ../module.nix
        example
        extra
        {
        _module.args = {
          inherit pkgs;
          # NixOS's utils, as far as the module uses it.
          utils.escapeSystemdExecArgs = args: lib.concatMapStringsSep " " (a: ''"${a}"'') args;
        };
        }
      ];
    };
  cfg = (evalWith { }).config;
  # Behaviours checked by scripts/eval-module.sh: each must be true.
  probes =
    let
      withUser = (evalWith { services.openshell-nix.settings.vm.kernel = "/my/vmlinux"; }).config;
      emptyBundle = (evalWith { services.openshell-nix.bundles.empty.packages = [ ]; }).config;
      withModules = (evalWith { services.openshell-nix.vm.extraModules = [ "veth" ]; }).config;
    in
    {
      userSettingsWin = withUser.services.openshell-nix.renderedSettings.vm.kernel == "/my/vmlinux";
      emptyBundleIsRefused = lib.any (a: !a.assertion) emptyBundle.assertions;
      noNullsRendered = !(lib.hasInfix "null" (builtins.toJSON cfg.services.openshell-nix.renderedSettings));
      socketGroupMode = cfg.services.openshell-nix.renderedSettings.driver.socketMode == "0660";
      extraModulesRendered = withModules.services.openshell-nix.renderedSettings.vm.extraModules == [ "veth" ];
      noExtraModulesByDefault = !(cfg.services.openshell-nix.renderedSettings.vm ? extraModules);
    };
in
{
  inherit probes;
  settings = cfg.services.openshell-nix.renderedSettings;
  gatewayFragment = cfg.services.openshell-nix.gateway.configFragment;
  kernelModules = cfg.boot.kernelModules;
  assertionsFailing = map (a: a.message) (lib.filter (a: !a.assertion) cfg.assertions);
  unit = {
    inherit (cfg.systemd.services.openshell-nix.serviceConfig)
      ExecStart
      KillMode
      StateDirectoryMode
      RuntimeDirectoryMode
      Group
      ;
  };
  etc = builtins.attrNames cfg.environment.etc;
}
