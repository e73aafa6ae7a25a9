# A bundle image built by Nix in exactly the format openshell-nix builds at runtime
# (src/image/image-format.ts, format 2): the same tree and the same key, so the daemon takes a
# prebuilt image as a cache hit and never runs mkfs for it.
#
#   /closure        the closure, one store path a line, sorted
#   /registration   the closure's registration, canonical (src/nix/registration.ts)
#   /nix/store/…    exactly the closure
#
# The output holds image.erofs, image.json (format, compression, key, closure) and closure as
# a text file: erofs data is compressed, so Nix's reference scanner would not see the closure in
# it, and the text file makes the image keep its closure alive.
#
# A plain builtins.derivation whose tools are arguments, so one recipe serves both the NixOS
# module (tools from nixpkgs) and CI hosts without nixpkgs (tools from the host; see
# test/integration/nix-image.test.ts).
{
  # The bundle's name, for the output's name.
  name,
  # The bundle's top-level store paths (derivations or store path strings).
  rootPaths,
  # none, lz4 or lz4hc: must match the daemon's image.compression.
  compression ? "lz4",
  # Path of a bash.
  bash,
  # PATH for the builder: coreutils, erofs-utils (mkfs.erofs) and python3.
  toolPath,
  system ? builtins.currentSystem,
}:
let
  formatVersion = 2;
  # Fixed, like the timestamps (-T0) and the owners (--all-root): the image is a pure function
  # of the closure.
  uuid = "6f736e78-0000-4000-8000-000000000001";
  compressionFlag = if compression == "none" then "" else "-z${compression}";
  # Structured attrs give the closure with narHash, narSize and references in .attrs.json.
  meta = ''
    import base64, hashlib, json, os, sys

    # narHash as the runtime builder writes it (src/nix/registration.ts): sha256:<Nix base-32>,
    # whichever form this Nix puts in .attrs.json (base-32, base-16 or SRI).
    def nar_hash(h):
        alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
        if h.startswith("sha256-"):
            raw = base64.b64decode(h[7:])
        elif len(h) == 7 + 64:
            raw = bytes.fromhex(h[7:])
        else:
            return h
        out = ""
        for n in range(51, -1, -1):
            b = n * 5
            i, j = b // 8, b % 8
            c = (raw[i] >> j) | ((raw[i + 1] << (8 - j)) if i + 1 < len(raw) else 0)
            out += alphabet[c & 0x1f]
        return "sha256:" + out

    attrs = json.load(open(os.environ["NIX_ATTRS_JSON_FILE"]))
    infos = sorted(attrs["closure"], key=lambda i: i["path"])
    paths = [i["path"] for i in infos]
    with open("closure", "w") as f:
        f.write("".join(p + "\n" for p in paths))
    with open("registration", "w") as f:
        for i in infos:
            refs = sorted(i["references"])
            f.write("\n".join([i["path"], nar_hash(i["narHash"]), str(i["narSize"]), "", str(len(refs))] + refs) + "\n")
    h = hashlib.sha256()
    h.update(("openshell-nix-image v%d %s\n" % (${toString formatVersion}, sys.argv[1])).encode())
    for p in paths:
        h.update((p + "\n").encode())
    with open("image.json", "w") as f:
        json.dump({"formatVersion": ${toString formatVersion}, "compression": sys.argv[1],
                   "key": h.hexdigest()[:32], "closure": paths}, f, indent=2)
        f.write("\n")
  '';
in
builtins.derivation {
  name = "openshell-nix-image-${name}";
  inherit system;
  builder = bash;
  __structuredAttrs = true;
  exportReferencesGraph.closure = rootPaths;
  inherit meta toolPath;
  args = [
    "-c"
    ''
      set -euo pipefail
      source "$NIX_ATTRS_SH_FILE"
      export PATH="$toolPath"
      out="''${outputs[out]}"
      printf '%s' "$meta" > meta.py
      python3 meta.py ${compression}
      mkdir -p stage/nix/store "$out"
      cp closure registration stage/
      # Progress on stderr. Also a workaround: Nix 2.8 killed a silent builder of this recipe
      # (SIGKILL, "failed due to signal 9") in about half of the builds here, never one that
      # printed (docs/nixos.md).
      echo "staging $(wc -l < closure) store paths" >&2
      # One cp for all: hard links between store paths stay hard links.
      xargs -r cp -a -t stage/nix/store < closure
      echo "packing the erofs image (${compression})" >&2
      mkfs.erofs --quiet -T0 --all-root -U${uuid} ${compressionFlag} "$out/image.erofs" stage
      cp closure image.json "$out/"
      echo "image $(python3 -c 'import json; print(json.load(open("image.json"))["key"])')" >&2
    ''
  ];
}
