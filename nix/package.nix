# openshell-nix, the daemon and the CLI, as a Nix package.
#
# importNpmLock builds node_modules from package-lock.json's own integrity hashes, so there is
# no npmDepsHash to keep in step with the lock file. better-sqlite3 is compiled from source
# (no prebuilt download in the sandbox): python3 and the node headers are there for node-gyp.
{
  lib,
  buildNpmPackage,
  importNpmLock,
  nodejs,
  python3,
  # What the daemon runs; on its PATH through the wrapper.
  crun,
  qemu_kvm,
  erofs-utils,
  nix,
  util-linux,
  e2fsprogs,
  xz,
  zstd,
  slirp4netns,
  coreutils,
  findutils,
  gnused,
  bash,
}:
let
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../package.json
      ../package-lock.json
      ../tsconfig.json
      ../tsconfig.build.json
      ../src
      ../bench
      ../proto
      ../nix
    ];
  };
  runtimePath = lib.makeBinPath [
    crun
    qemu_kvm
    erofs-utils
    nix
    util-linux
    e2fsprogs
    xz
    zstd
    slirp4netns
    coreutils
    findutils
    gnused
    bash
  ];
in
buildNpmPackage {
  pname = "openshell-nix";
  version = (lib.importJSON ../package.json).version;
  inherit src;
  # nixpkgs' default Node (an LTS); better-sqlite3 is compiled against its headers, so the
  # Node 20 pin of the Debian path does not apply here.
  inherit nodejs;

  npmDeps = importNpmLock { npmRoot = src; };
  npmConfigHook = importNpmLock.npmConfigHook;

  nativeBuildInputs = [ python3 ];
  env.npm_config_nodedir = nodejs;

  npmBuildScript = "build";

  # buildNpmPackage makes bin/openshell-nix with makeWrapper; these arguments go into it.
  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    runtimePath
  ];

  meta = {
    description = "Sandboxes for NVIDIA OpenShell made from the host's /nix/store: erofs bundle images, crun containers, microVMs";
    homepage = "https://github.com/openshell-nix/openshell-nix";
    license = lib.licenses.asl20;
    mainProgram = "openshell-nix";
    platforms = [ "x86_64-linux" ];
  };
}
