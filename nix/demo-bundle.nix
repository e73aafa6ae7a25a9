# The embedded demo bundle: a self-contained Python + busybox closure built from the Debian host's
# own binaries, for hosts that have Nix (Debian's nix-bin) but no nixpkgs and no NixOS config.
#
# Every output refers only to store paths: glibc is a store path of its own, python and its
# shared libraries are relocated into the store with patchelf (interpreter and RUNPATH), so the
# closure runs where nothing but /nix/store exists. Nix's reference scanner finds the edges
# between the paths by itself. The host tools (sh, cp, patchelf, ldd) are used at build time only.
#
#   nix-build nix/demo-bundle.nix -A env --option substituters ''
let
  system = builtins.currentSystem;
  hostLib = "/lib/x86_64-linux-gnu";

  # builder is the host's /bin/sh; Nix hands builders PATH=/path-not-set, so set it here.
  # Each step says what it builds: Debian's Nix 2.8 killed silent builders now and then.
  step = name: script:
    builtins.derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-e" "-c" "echo 'building ${name}' >&2\n${script}" ];
      PATH = "/usr/bin:/bin";
    };

  busybox = step "busybox-static" ''
    mkdir -p $out/bin
    cp /bin/busybox $out/bin/busybox
    for applet in $($out/bin/busybox --list); do
      [ "$applet" = busybox ] || ln -s busybox $out/bin/$applet
    done
  '';

  glibc = step "glibc-host-2.36" ''
    mkdir -p $out/lib/locale
    for so in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libmvec.so.1 libresolv.so.2 libpthread.so.0 \
              libdl.so.2 librt.so.1 libutil.so.1 libanl.so.1 libnss_files.so.2 libnss_dns.so.2; do
      cp -L ${hostLib}/$so $out/lib/$so
    done
    cp -r /usr/lib/locale/C.utf8 $out/lib/locale/
  '';

  # Every library python or one of its extension modules loads, except those glibc provides.
  pythonLibs = step "python3.11-libs-host" ''
    mkdir -p $out/lib
    for elf in /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so; do ldd "$elf"; done \
      | while read -r soname arrow path rest; do
          [ "$arrow" = "=>" ] && [ -f "$path" ] && echo "$soname $path"
        done | sort -u > needed
    test -s needed
    while read -r soname path; do
      [ -e ${glibc}/lib/$soname ] && continue
      cp -L "$path" $out/lib/$soname
      chmod u+w $out/lib/$soname
      patchelf --set-rpath ${glibc}/lib:$out/lib $out/lib/$soname
    done < needed
  '';

  python3 = step "python3-host-3.11" ''
    mkdir -p $out/bin $out/lib
    cp /usr/bin/python3.11 $out/bin/python3.11
    chmod u+w $out/bin/python3.11
    patchelf --set-interpreter ${glibc}/lib/ld-linux-x86-64.so.2 \
      --set-rpath ${glibc}/lib:${pythonLibs}/lib $out/bin/python3.11
    ln -s python3.11 $out/bin/python3
    cp -a /usr/lib/python3.11 $out/lib/
    # The static libpython (25 MB) is for embedding, and sitecustomize points into the host's /etc.
    rm -rf $out/lib/python3.11/config-3.11-x86_64-linux-gnu $out/lib/python3.11/sitecustomize.py
    find $out/lib/python3.11 -name __pycache__ -type d -prune -exec rm -rf {} +
    for so in $out/lib/python3.11/lib-dynload/*.so; do
      chmod u+w $so
      patchelf --set-rpath ${glibc}/lib:${pythonLibs}/lib $so
    done
    # Nix sets every mtime to 1 when it registers the output, which would make timestamp-checked
    # bytecode stale on every start (and a root python outside a sandbox would rewrite it in the
    # store); unchecked-hash pyc stays valid. -f matters: the interpreter running compileall has
    # already written timestamp pyc for the modules it imports at start-up (encodings, codecs…),
    # and without -f compileall would keep those.
    $out/bin/python3.11 -I -m compileall -f -q -j0 --invalidation-mode unchecked-hash $out/lib/python3.11 >/dev/null || true
    # Every start-up module must carry hash-based bytecode (flags field != 0).
    $out/bin/python3.11 -I -c 'import importlib.util as u, encodings, codecs, site, os; bad = [m.__name__ for m in (encodings, codecs, site, os) if int.from_bytes(open(u.cache_from_source(m.__file__), "rb").read()[4:8], "little") == 0]; assert not bad, bad' 
    $out/bin/python3.11 -I -c 'import ssl, sqlite3, ctypes, lzma, zlib, json, hashlib'
  '';

  # What a sandbox puts on PATH: one bin directory with python and the busybox applets.
  env = step "openshell-demo-env" ''
    mkdir -p $out/bin
    for f in ${busybox}/bin/*; do ln -s $f $out/bin/; done
    ln -s ${python3}/bin/python3 ${python3}/bin/python3.11 $out/bin/
  '';
in
{
  inherit busybox glibc pythonLibs python3 env;
}
