import { z } from "zod";

/**
 * The config file the daemon and the CLI read (the NixOS module renders it from
 * `services.openshell-nix.settings`). Unknown keys are errors: a typo must not be silently ignored.
 */
export const LimitsSchema = z
  .object({
    /** Memory limit in bytes, or a quantity such as "512Mi" / "2G". */
    memory: z.union([z.number().int().positive(), z.string()]).optional(),
    /** CPU limit in cores (0.5 = half a core). */
    cpus: z.number().positive().max(1024).optional(),
    /** Maximum number of processes (and threads) in the sandbox. */
    pids: z.number().int().min(8).max(4_194_304).optional(),
  })
  .strict();

export const BundleSchema = z
  .object({
    /** Top-level store paths; the bundle is their closure. */
    storePaths: z.array(z.string()).min(1),
    /** Default sandbox kind for this bundle. */
    kind: z.enum(["container", "vm"]).optional(),
    /**
     * The bundle's image prebuilt by Nix (nix/bundle-image.nix; the NixOS module sets it): used
     * as it is when its key matches, so the first sandbox needs no image build.
     */
    image: z.string().startsWith("/nix/store/").optional(),
    limits: LimitsSchema.optional(),
    description: z.string().optional(),
  })
  .strict();

export const ConfigSchema = z
  .object({
    stateDir: z.string().startsWith("/").optional(),
    defaultKind: z.enum(["container", "vm"]).optional(),
    defaultBundle: z.string().optional(),
    limits: LimitsSchema.optional(),
    image: z
      .object({
        /** mkfs.erofs compression: none, lz4 (fast to build) or lz4hc (smaller). */
        compression: z.enum(["none", "lz4", "lz4hc"]).optional(),
      })
      .strict()
      .optional(),
    bundles: z.record(z.string(), BundleSchema).optional(),
    driver: z
      .object({
        /** The driver's name in GetCapabilities (the gateway routes by its own configured name). */
        name: z.string().min(1).max(63).optional(),
        /** Where `serve` listens; its directory must be closed to others (0700 or 0750). */
        socketPath: z.string().startsWith("/").optional(),
        /** 0600 (the daemon's user only, the default) or 0660 (its group too: the NixOS module). */
        socketMode: z.enum(["0600", "0660"]).optional(),
        /**
         * The OpenShell gateway as this host reaches it (http://127.0.0.1:17670). Inside a
         * sandbox a loopback host becomes host.openshell.internal, the sandbox's route to the host.
         */
        gatewayEndpoint: z.string().url().optional(),
        /**
         * The OpenShell supervisor (openshell-sandbox): a store path of the binary or of a package
         * with bin/openshell-sandbox. Default: bin/openshell-sandbox of the sandbox's bundle.
         */
        supervisor: z.string().startsWith("/nix/store/").optional(),
        /** The image the gateway uses when a create names none (default nix:demo). */
        defaultImage: z.string().min(1).optional(),
        /** Sandbox kind when driver_config does not say (default: defaultKind, else container). */
        defaultKind: z.enum(["container", "vm"]).optional(),
        /** OPENSHELL_LOG_LEVEL when the gateway sends none. */
        logLevel: z.string().optional(),
      })
      .strict()
      .optional(),
    vm: z
      .object({
        /** Guest kernel image (bzImage or vmlinux); default: the newest /boot/vmlinuz-*. */
        kernel: z.string().startsWith("/").optional(),
        /** The kernel's modules directory (…/lib/modules/<release>); default /lib/modules/<release>. */
        modules: z.string().startsWith("/").optional(),
        /** A static busybox for the guest's initramfs; default /bin/busybox. */
        busybox: z.string().startsWith("/").optional(),
        /**
         * Kernel modules to load at boot besides the guest's own (the guest cannot load them on
         * demand): the real OpenShell supervisor needs at least veth and nf_tables.
         */
        extraModules: z
          .array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/))
          .max(64)
          .optional(),
        /** Boot assets prebuilt by `openshell-nix vm boot-assets` (the NixOS module sets it). */
        bootAssets: z.string().startsWith("/").optional(),
        /** auto: KVM when a probe boot works, else TCG. */
        accel: z.enum(["auto", "kvm", "tcg"]).optional(),
        /** auto: microvm where qemu has it, else q35. */
        machine: z.enum(["auto", "microvm", "q35"]).optional(),
        /** Default guest memory and vCPUs, when a sandbox's limits do not say. */
        memory: z.union([z.number().int().positive(), z.string()]).optional(),
        cpus: z.number().int().min(1).max(64).optional(),
        /** Size of a sandbox's writable disk (sparse: it costs what is written). */
        diskSize: z.union([z.number().int().positive(), z.string()]).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type Limits = z.infer<typeof LimitsSchema>;
export type BundleConfig = z.infer<typeof BundleSchema>;
export type Config = z.infer<typeof ConfigSchema>;
