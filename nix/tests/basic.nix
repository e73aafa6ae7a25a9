# The NixOS VM test (flake check `nixos`): a machine with the module and a python bundle runs a
# container sandbox and a VM sandbox printing from python, from the image nixos-rebuild built.
#   nix build .#checks.x86_64-linux.nixos
{ self }:
{
  name = "openshell-nix";

  nodes.machine =
    { pkgs, ... }:
    {
      imports = [ self.nixosModules.default ];
      services.openshell-nix = {
        enable = true;
        bundles.python.packages = [ pkgs.python3 ];
        # A stand-in for the OpenShell supervisor: the driver's sandboxes need one (no gateway here).
        supervisorPackage = pkgs.writeShellScriptBin "openshell-sandbox" "exec sleep infinity";
        settings.driver.gatewayEndpoint = "http://127.0.0.1:17670";
        # The test VM has no nested KVM to rely on.
        settings.vm.accel = "tcg";
      };
      virtualisation.memorySize = 3072;
      virtualisation.cores = 2;
    };

  testScript = ''
    machine.wait_for_unit("openshell-nix.service")
    machine.wait_for_file("/run/openshell-nix/compute-driver.sock")
    machine.succeed("stat -c %a /run/openshell-nix/compute-driver.sock | grep -x 660")

    with subtest("the prebuilt image is used: no image build at the first sandbox"):
        out = machine.succeed("openshell-nix run --bundle python -- python3 -c 'print(6*7)' 2>&1")
        assert "42" in out, out
        assert "prebuilt by Nix" in out, out
        machine.succeed("test -L /var/lib/openshell-nix/images/*.erofs")

    with subtest("a VM sandbox from the same image, with prebuilt boot assets"):
        out = machine.succeed("openshell-nix run --kind vm --bundle python -- python3 -c 'print(6*7)'")
        assert out.strip() == "42", out
        machine.fail("test -e /var/lib/openshell-nix/boot")

    with subtest("the driver answers on its socket"):
        machine.succeed("openshell-nix driver caps | grep '\"gatewayManagesLifecycle\": true'")

    with subtest("a restart of the daemon keeps the sandboxes it runs (KillMode=process)"):
        import json
        sid = machine.succeed("openshell-nix driver create --kind container --image nix:python").strip()
        before = json.loads(machine.succeed(f"openshell-nix inspect os-{sid} --json"))
        assert before["state"] == "running", before
        machine.succeed("systemctl restart openshell-nix.service")
        machine.wait_for_unit("openshell-nix.service")
        machine.wait_for_file("/run/openshell-nix/compute-driver.sock")
        after = json.loads(machine.succeed(f"openshell-nix inspect os-{sid} --json"))
        # Not restarted: the same start, the same monitor.
        assert (after["state"], after["startedAt"], after["pid"]) == ("running", before["startedAt"], before["pid"]), after
        machine.succeed(f"openshell-nix driver get {sid} | grep '\"state\": \"running\"'")
        machine.succeed(f"openshell-nix driver rm {sid}")
  '';
}
