# What services.openshell-nix turns into: the daemon's config (checked by its own schema),
# prebuilt bundle images and VM boot assets, the systemd unit, and the OpenShell gateway's side.
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  cfg = config.services.openshell-nix;
  settingsFormat = pkgs.formats.json { };
  kernel = cfg.vm.kernelPackages.kernel;

  bundlePackages =
    b: lib.unique (b.packages ++ lib.optionals (cfg.supervisorPackage != null) ([ cfg.supervisorPackage ] ++ cfg.sandboxTools));

  # The image in exactly the daemon's format (byte-identical: tested in CI against the runtime
  # builder), so the daemon adopts it instead of building one.
  bundleImage =
    name: b:
    import ../bundle-image.nix {
      inherit name;
      inherit (pkgs.stdenv.hostPlatform) system;
      rootPaths = bundlePackages b;
      compression = cfg.settings.image.compression;
      bash = "${pkgs.bash}/bin/bash";
      toolPath = lib.makeBinPath [
        pkgs.coreutils
        pkgs.findutils
        pkgs.erofs-utils
        pkgs.python3Minimal
      ];
    };

  bootAssets = pkgs.runCommand "openshell-nix-boot-assets-${kernel.modDirVersion}" { } ''
    ${lib.getExe cfg.package} boot-assets --out $out \
      --kernel ${kernel.dev}/vmlinux \
      --modules ${kernel}/lib/modules/${kernel.modDirVersion} \
      --busybox ${cfg.vm.busybox}/bin/busybox ${lib.concatMapStringsSep " " (m: "--module ${m}") cfg.vm.extraModules}
  '';

  # What the module computes; the user's settings win over it (set settings.vm.kernel to boot
  # another kernel, settings.driver.socketMode = "0600" to shut the group out).
  computed = {
    driver.socketMode = "0660";
    bundles = lib.mapAttrs (
      name: b:
      {
        storePaths = map toString (bundlePackages b);
        inherit (b) kind description;
        limits = b.limits;
      }
      // lib.optionalAttrs b.prebuild { image = "${bundleImage name b}"; }
    ) cfg.bundles;
    vm =
      {
        kernel = "${kernel.dev}/vmlinux";
        modules = "${kernel}/lib/modules/${kernel.modDirVersion}";
        busybox = "${cfg.vm.busybox}/bin/busybox";
      }
      // lib.optionalAttrs (cfg.vm.extraModules != [ ]) { inherit (cfg.vm) extraModules; }
      // lib.optionalAttrs cfg.vm.prebuildBootAssets { bootAssets = "${bootAssets}"; };
  };
  rendered = lib.recursiveUpdate computed cfg.settings;

  # zod's optional keys take absent, not null: nulls (unset options) are left out.
  withoutNulls = lib.filterAttrsRecursive (_: v: v != null);
  configJson = settingsFormat.generate "openshell-nix-config.json" (withoutNulls rendered);

  # A config the daemon would refuse never reaches the system: checked by the daemon's schema.
  checkedConfig = pkgs.runCommand "openshell-nix-config.json" { } ''
    ${lib.getExe cfg.package} config-check ${configJson}
    cp ${configJson} $out
  '';

  socket = cfg.settings.driver.socketPath;
  socketDir = builtins.dirOf socket;
in
{
  options.services.openshell-nix.renderedSettings = lib.mkOption {
    type = lib.types.raw;
    internal = true;
    readOnly = true;
    description = "The settings as the daemon gets them (before the JSON file): for tests and inspection.";
  };

  config = lib.mkIf cfg.enable {
    services.openshell-nix.renderedSettings = withoutNulls rendered;
    # The daemon's own default (nix:demo) is the Debian demo bundle; on NixOS a declared bundle
    # (the alphabetically first: attribute sets have no order) is the default image instead.
    services.openshell-nix.settings.driver.defaultImage = lib.mkIf (cfg.bundles != { }) (
      lib.mkDefault "nix:${lib.head (lib.attrNames cfg.bundles)}"
    );
    services.openshell-nix.gateway.configFragment = ''
      [openshell.gateway]
      compute_drivers = ["${cfg.gateway.driverName}"]

      [openshell.drivers.${cfg.gateway.driverName}]
      socket_path = "${socket}"
    '';

    assertions =
      lib.mapAttrsToList (name: b: {
        assertion = b.packages != [ ];
        message = "services.openshell-nix.bundles.${name}.packages is empty: a bundle needs at least one package";
      }) cfg.bundles
      ++ [
      {
        assertion = lib.hasPrefix "/run/openshell-nix/" socket;
        message = "services.openshell-nix.settings.driver.socketPath must be below /run/openshell-nix (the unit's RuntimeDirectory)";
      }
      ];

    environment.etc."openshell-nix/config.json".source = checkedConfig;
    environment.etc."openshell-nix/gateway-driver.toml".text = cfg.gateway.configFragment;
    environment.systemPackages = [ cfg.package ];

    users.groups.${cfg.group} = { };

    # erofs and overlay for the images, loop for their host mounts, tun for slirp4netns, kvm for
    # VM sandboxes (the CPU's own module, kvm-intel or kvm-amd, is loaded by NixOS's hardware
    # detection where it applies; without it VMs fall back to TCG, and `doctor` says so).
    boot.kernelModules = [
      "erofs"
      "overlay"
      "loop"
      "tun"
      "kvm"
    ];

    systemd.services.openshell-nix = {
      description = "openshell-nix: the OpenShell compute driver for Nix-store sandboxes";
      wantedBy = [ "multi-user.target" ];
      after = [
        "network.target"
        "nix-daemon.socket"
      ];
      wants = [ "nix-daemon.socket" ];
      restartTriggers = [ checkedConfig ];
      environment.OPENSHELL_NIX_CONFIG = "/etc/openshell-nix/config.json";
      serviceConfig = {
        ExecStart = "${lib.getExe cfg.package} serve";
        Group = cfg.group;
        StateDirectory = "openshell-nix";
        StateDirectoryMode = "0700";
        # The socket's directory: the group may enter (and use the 0660 socket), nobody else.
        RuntimeDirectory = "openshell-nix";
        RuntimeDirectoryMode = "0750";
        RuntimeDirectoryPreserve = true;
        # 0022, not 0077: the agent in a driver sandbox runs as an unprivileged user and must read
        # the sandbox's root, which the daemon writes; the state directory itself is 0700.
        UMask = "0022";
        # Sandboxes outlive the daemon: a restart (nixos-rebuild switch) stops only the daemon's
        # own process, and the next one re-adopts the running sandboxes. With the default
        # control-group mode every sandbox monitor would be killed (and then restarted).
        KillMode = "process";
        # SIGTERM drains operations in flight (up to 30 s) before exiting.
        TimeoutStopSec = 45;
        Restart = "on-failure";
        RestartSec = 2;

        # Hardening, and why not more (systemd-analyze security will list the rest as open):
        # - No ProtectSystem/ProtectHome/PrivateTmp/ReadWritePaths/PrivateDevices: each gives the
        #   unit a mount namespace of its own, and the image loop mounts the daemon makes must be
        #   the host's, shared with the CLI (a mount only the unit sees would be made again and
        #   lost track of). The state directory is 0700 instead.
        # - No SystemCallFilter, RestrictNamespaces, RestrictSUIDSGID, MemoryDenyWriteExecute,
        #   LockPersonality: seccomp filters are inherited by crun, qemu and every sandbox; crun
        #   needs namespaces and mounts, qemu's TCG and Node's JIT need W+X memory, and each
        #   sandbox has its own filter already.
        # - No DeviceAllow/ProtectClock/ProtectKernelModules: they close the device policy or add
        #   a mount namespace; loop devices, /dev/kvm and /dev/net/tun are needed.
        # - Kept: no new privileges (sandboxes set it too), no realtime scheduling, and the
        #   capabilities nothing here needs dropped from the bounding set (the sandboxes' sets are
        #   subsets of what is left).
        NoNewPrivileges = true;
        RestrictRealtime = true;
        CapabilityBoundingSet = [
          "~CAP_SYS_BOOT"
          "~CAP_SYS_TIME"
          "~CAP_WAKE_ALARM"
          "~CAP_SYS_MODULE"
          "~CAP_SYS_PACCT"
          "~CAP_SYS_TTY_CONFIG"
          "~CAP_LEASE"
          "~CAP_BLOCK_SUSPEND"
          "~CAP_MAC_ADMIN"
          "~CAP_MAC_OVERRIDE"
          "~CAP_AUDIT_CONTROL"
          "~CAP_AUDIT_READ"
        ];
      };
    };

    systemd.services.openshell-gateway = lib.mkIf (cfg.gateway.package != null) {
      description = "NVIDIA OpenShell gateway, with openshell-nix as its compute driver";
      wantedBy = [ "multi-user.target" ];
      # The driver's socket before the gateway: it connects once at start-up (retrying 30 s).
      requires = [ "openshell-nix.service" ];
      after = [ "openshell-nix.service" ];
      serviceConfig = {
        ExecStartPre = "${pkgs.bash}/bin/bash -c 'for i in $(seq 300); do [ -S ${socket} ] && exit 0; sleep 0.1; done; echo no driver socket at ${socket} >&2; exit 1'";
        ExecStart = utils.escapeSystemdExecArgs (
          [
            "${cfg.gateway.package}/bin/openshell-gateway"
            "--drivers"
            cfg.gateway.driverName
            "--compute-driver-socket"
            socket
          ]
          ++ cfg.gateway.extraArgs
        );
        Group = cfg.group;
        StateDirectory = "openshell-gateway";
        Restart = "on-failure";
      };
    };

    # The socket directory must exist, with its group, before the daemon checks it.
    systemd.tmpfiles.rules = [ "d ${socketDir} 0750 root ${cfg.group} -" ];
  };
}
