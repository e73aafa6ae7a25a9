# The options of services.openshell-nix. What they turn into is in ./service.nix.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption mkEnableOption mkPackageOption types;
  cfg = config.services.openshell-nix;
  settingsFormat = pkgs.formats.json { };

  limitsOptions = {
    memory = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "2Gi";
      description = "Memory limit (containers) or guest memory (VMs), as a quantity such as `512Mi` or `2G`.";
    };
    cpus = mkOption {
      type = types.nullOr (types.either types.ints.positive types.float);
      default = null;
      example = 2;
      description = "CPU limit in cores (containers; `0.5` is half a core) or vCPUs (VMs).";
    };
    pids = mkOption {
      type = types.nullOr (types.ints.between 8 4194304);
      default = null;
      example = 1024;
      description = "Maximum number of processes and threads in a container sandbox.";
    };
  };
in
{
  options.services.openshell-nix = {
    enable = mkEnableOption "openshell-nix, sandboxes for NVIDIA OpenShell made from the Nix store";

    package = mkPackageOption pkgs "openshell-nix" { };

    group = mkOption {
      type = types.str;
      default = "openshell-nix";
      description = ''
        Members of this group may use the compute driver's socket (the OpenShell gateway's user,
        when it does not run as root). The socket is 0660 and its directory 0750, both of this group.
      '';
    };

    bundles = mkOption {
      default = { };
      example = lib.literalExpression ''
        {
          python = {
            packages = [ pkgs.python3 pkgs.git ];
            limits.memory = "4Gi";
          };
        }
      '';
      description = ''
        Named sets of packages a sandbox is made from (`openshell-nix run --bundle <name>`, or the
        image `nix:<name>` through OpenShell). The closure of each becomes one read-only erofs image,
        built by `nixos-rebuild` (so the first sandbox needs no build) and kept with its closure
        as long as the system generation refers to it.
      '';
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              packages = mkOption {
                type = types.listOf types.package;
                description = "The bundle's packages; their `bin` and `sbin` are on PATH and in the sandbox's /usr/bin.";
              };
              kind = mkOption {
                type = types.nullOr (
                  types.enum [
                    "container"
                    "vm"
                  ]
                );
                default = null;
                description = "The sandbox kind for this bundle when a request does not say; default: `settings.defaultKind`.";
              };
              limits = limitsOptions;
              description = mkOption {
                type = types.nullOr types.str;
                default = null;
                description = "What the bundle is for (shown by `openshell-nix bundle ls`).";
              };
              prebuild = mkOption {
                type = types.bool;
                default = true;
                description = "Build the bundle's image with the system (a Nix derivation) rather than at first use.";
              };
            };
          }
        )
      );
    };

    sandboxTools = mkOption {
      type = types.listOf types.package;
      default = with pkgs; [
        bashInteractive
        coreutils
        iproute2
        util-linux
        nftables
      ];
      defaultText = lib.literalExpression "with pkgs; [ bashInteractive coreutils iproute2 util-linux nftables ]";
      description = ''
        Added to every bundle when `supervisorPackage` is set: the helpers the OpenShell supervisor
        looks up at fixed paths (`/bin/bash`, `/usr/bin/env`, `ip`, `nsenter`, `nft`).
      '';
    };

    supervisorPackage = mkOption {
      type = types.nullOr types.package;
      default = null;
      description = ''
        The OpenShell supervisor (a package with `bin/openshell-sandbox`), version-matched to the
        gateway. It joins every bundle (so driver and CLI sandboxes share one image) and is the
        entrypoint of the compute driver's sandboxes.
      '';
    };

    vm = {
      kernelPackages = mkOption {
        type = types.raw;
        default = pkgs.linuxPackages;
        defaultText = lib.literalExpression "pkgs.linuxPackages";
        description = "The guest kernel of VM sandboxes (its uncompressed `vmlinux` and modules are used).";
      };
      busybox = mkPackageOption pkgs.pkgsStatic "busybox" {
        pkgsText = "pkgs.pkgsStatic";
        extraDescription = "It must be static: it runs in the guests' initramfs, where no libraries are.";
      };
      extraModules = mkOption {
        type = types.listOf (types.strMatching "[A-Za-z0-9_-]+");
        default = [ ];
        example = [
          "veth"
          "nf_tables"
          "nft_chain_nat"
        ];
        description = ''
          Kernel modules the guests load at boot besides their own (they cannot load modules on
          demand). The OpenShell supervisor in a VM needs at least `veth` and `nf_tables`.
        '';
      };
      prebuildBootAssets = mkOption {
        type = types.bool;
        default = true;
        description = "Build the guests' kernel and initramfs with the system rather than at the first VM start.";
      };
    };

    gateway = {
      driverName = mkOption {
        type = types.strMatching "[a-z0-9_-]+";
        default = "nix";
        description = "The name the OpenShell gateway knows this driver by (`compute_drivers`).";
      };
      configFragment = mkOption {
        type = types.lines;
        readOnly = true;
        description = ''
          The gateway configuration that points an OpenShell gateway at this driver; also written to
          /etc/openshell-nix/gateway-driver.toml.
        '';
      };
      package = mkOption {
        type = types.nullOr types.package;
        default = null;
        description = ''
          An OpenShell gateway package (with `bin/openshell-gateway`). When set, the gateway runs as
          the `openshell-gateway` service, wired to this driver, started after its socket exists.
        '';
      };
      extraArgs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "--disable-tls"
        ];
        description = "More arguments for `openshell-gateway`.";
      };
    };

    settings = mkOption {
      default = { };
      description = ''
        The daemon's configuration (/etc/openshell-nix/config.json), checked at build time by the
        daemon's own schema (`openshell-nix config-check`). Keys not declared here are passed on as
        they are; see docs/driver.md and README.md of openshell-nix.
      '';
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          stateDir = mkOption {
            type = types.str;
            default = "/var/lib/openshell-nix";
            description = "Where images, sandboxes and the state database live (root-only).";
          };
          defaultKind = mkOption {
            type = types.enum [
              "container"
              "vm"
            ];
            default = "container";
            description = "The sandbox kind when neither the request nor the bundle says.";
          };
          limits = limitsOptions;
          image.compression = mkOption {
            type = types.enum [
              "none"
              "lz4"
              "lz4hc"
            ];
            default = "lz4";
            description = "How bundle images are compressed (lz4: fast to build; lz4hc: smaller).";
          };
          driver = {
            socketPath = mkOption {
              type = types.str;
              default = "/run/openshell-nix/compute-driver.sock";
              description = "The compute driver's unix socket, for the gateway's `socket_path`.";
            };
            gatewayEndpoint = mkOption {
              type = types.nullOr types.str;
              default = null;
              example = "http://127.0.0.1:17670";
              description = ''
                The OpenShell gateway as this host reaches it (http:// only for now). Sandboxes reach
                a loopback address through user-mode networking as host.openshell.internal.
              '';
            };
            defaultImage = mkOption {
              type = types.nullOr types.str;
              default = null;
              example = "nix:python";
              description = "The image the gateway uses when a request names none; default `nix:demo`.";
            };
          };
          vm = {
            accel = mkOption {
              type = types.enum [
                "auto"
                "kvm"
                "tcg"
              ];
              default = "auto";
              description = "KVM when a probe boot shows it works (auto), always (kvm) or never (tcg).";
            };
            memory = mkOption {
              type = types.str;
              default = "512Mi";
              description = "Guest memory when a sandbox's limits do not say.";
            };
            cpus = mkOption {
              type = types.ints.between 1 64;
              default = 1;
              description = "vCPUs when a sandbox's limits do not say.";
            };
          };
        };
      };
    };
  };
}
