/**
 * A deny-list seccomp profile layered under the dropped capabilities. Root inside a container
 * sandbox is uid 0 on the host, so the kernel's attack surface is trimmed where a workload has no
 * business: loading modules or kernels, the keyring, bpf, perf, userfaultfd, mounting, switching
 * or creating namespaces (user namespaces are the usual first step of a privilege escalation),
 * file-handle syscalls that walk around path-based checks, and io_uring (a large, young kernel
 * interface with a record of privilege escalations; ordinary programs fall back to read/write). Most of these already fail for
 * lack of a capability; the filter makes that a property of the sandbox, not of the host kernel.
 */

const EPERM = 1;
const ENOSYS = 38;

const DENIED: readonly string[] = [
  "acct",
  "add_key",
  "bpf",
  "clock_adjtime",
  "clock_settime",
  "delete_module",
  "finit_module",
  "fsconfig",
  "fsmount",
  "fsopen",
  "fspick",
  "init_module",
  "io_uring_enter",
  "io_uring_register",
  "io_uring_setup",
  "iopl",
  "ioperm",
  "kexec_file_load",
  "kexec_load",
  "keyctl",
  "lookup_dcookie",
  "mount",
  "mount_setattr",
  "move_mount",
  "name_to_handle_at",
  "open_by_handle_at",
  "open_tree",
  "perf_event_open",
  "pivot_root",
  "quotactl",
  "reboot",
  "request_key",
  "setns",
  "settimeofday",
  "swapoff",
  "swapon",
  "syslog",
  "umount2",
  "unshare",
  "uselib",
  "userfaultfd",
  "vhangup",
];

/** clone() flags that create namespaces; CLONE_NEWUSER is the one an unprivileged process could use. */
const CLONE_NAMESPACE_FLAGS = [
  0x10000000, 0x20000000, 0x40000000, 0x04000000, 0x08000000, 0x00020000, 0x02000000,
];

export interface OciSeccomp {
  defaultAction: string;
  architectures: string[];
  syscalls: {
    names: string[];
    action: string;
    errnoRet?: number;
    args?: { index: number; value: number; valueTwo: number; op: string }[];
  }[];
}

/**
 * What the OpenShell supervisor must be able to do to build its own sandbox for the agent
 * (a network namespace with a veth pair and a proxy, mounts, its own seccomp and Landlock
 * rules): mount and namespace calls. Only sandboxes of the compute driver get these back.
 */
const SUPERVISOR_ALLOWED: ReadonlySet<string> = new Set([
  "fsconfig",
  "fsmount",
  "fsopen",
  "fspick",
  "mount",
  "mount_setattr",
  "move_mount",
  "open_tree",
  "pivot_root",
  "setns",
  "syslog",
  "umount2",
  "unshare",
]);

export type SeccompProfileKind = "default" | "supervisor";

export function seccompProfile(kind: SeccompProfileKind = "default"): OciSeccomp {
  const denied = kind === "supervisor" ? DENIED.filter((n) => !SUPERVISOR_ALLOWED.has(n)) : DENIED;
  return {
    defaultAction: "SCMP_ACT_ALLOW",
    architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    syscalls: [
      { names: [...denied], action: "SCMP_ACT_ERRNO", errnoRet: EPERM },
      // clone3 passes its flags in memory, where seccomp cannot look: answer ENOSYS so libc
      // falls back to clone(), whose flags the rules below can check.
      { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS },
      ...(kind === "supervisor"
        ? []
        : CLONE_NAMESPACE_FLAGS.map((flag) => ({
            names: ["clone"],
            action: "SCMP_ACT_ERRNO",
            errnoRet: EPERM,
            args: [{ index: 0, value: flag, valueTwo: flag, op: "SCMP_CMP_MASKED_EQ" }],
          }))),
    ],
  };
}
