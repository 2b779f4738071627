"""The create body's docker-28 serialisation details (complements test_cli_runopts.py;
the side-by-side capture test in tests/integration compares whole bodies)."""
from __future__ import annotations

from hoist.cli.main import lookup
from hoist.cli.runopts import build_create_body


def body(*argv: str) -> dict:
    opts, args = lookup("create").parse(list(argv))
    return build_create_body(opts, args[0], args[1:])


def test_interactive_always_attaches_stdin():
    b = body("-i", "-a", "stdout", "busybox")
    assert (b["AttachStdin"], b["AttachStdout"], b["AttachStderr"], b["StdinOnce"]) == \
        (True, True, False, True)


def test_capabilities_are_normalised():
    h = body("--cap-add", "net_admin", "--cap-add", "CAP_NET_ADMIN", "--cap-drop", "all",
             "busybox")["HostConfig"]
    assert (h["CapAdd"], h["CapDrop"]) == (["CAP_NET_ADMIN"], ["ALL"])


def test_default_endpoint_only_without_network_flag():
    assert list(body("busybox")["NetworkingConfig"]["EndpointsConfig"]) == ["default"]
    assert body("--network", "none", "busybox")["NetworkingConfig"] == {"EndpointsConfig": {}}


def test_zero_values_are_sent_as_docker_does():
    b = body("busybox")
    h = b["HostConfig"]
    assert b["Volumes"] == {} and b["Env"] is None and b["OnBuild"] is None
    assert (h["MemorySwappiness"], h["PidsLimit"], h["Ulimits"], h["Memory"]) == (-1, 0, [], 0)
    assert h["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert "Mounts" not in h and "Tmpfs" not in h
