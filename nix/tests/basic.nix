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

    with subtest("a restart of the daemon keeps a running sandbox"):
        machine.succeed("openshell-nix create --name keep --bundle python --start -- python3 -c 'import time; time.sleep(86400)'")
        machine.succeed("systemctl restart openshell-nix.service")
        machine.wait_for_unit("openshell-nix.service")
        machine.succeed("openshell-nix exec keep -- python3 -c 'print(1)'")
        machine.succeed("openshell-nix rm --force keep")
  '';
}
