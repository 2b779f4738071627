"""Both directions with real Docker: the docker CLIs (Debian's 20.10 and 28.x) against
hoistd, and images moving between hoistd and a private dockerd."""
from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile

import pytest

from archives import docker_archive, simple_layer
from conftest import docker_clis

CLIS = docker_clis()
pytestmark = pytest.mark.skipif(not CLIS, reason="no docker CLI installed")


@pytest.fixture(params=CLIS, ids=lambda p: "docker-" + ("20.10" if p == "/usr/bin/docker" else "28"))
def cli(request):
    return request.param


def test_version_info(hoistd, cli):
    out = hoistd.docker("version", "--format", "{{.Server.APIVersion}}", docker=cli).stdout.decode().strip()
    assert out == "1.47"
    info = json.loads(hoistd.docker("info", "--format", "{{json .}}", docker=cli).stdout)
    assert info["OSType"] == "linux" and info["Images"] >= 1


def test_images_inspect_tag_history_rmi(hoistd, cli):
    out = hoistd.docker("images", docker=cli).stdout.decode()
    assert out.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(l.split()[:2] == ["busybox", "latest"] for l in out.splitlines()[1:])
    img_id = hoistd.docker("image", "inspect", "--format", "{{.Id}}", "busybox", docker=cli).stdout.decode().strip()
    assert img_id.startswith("sha256:")
    hoistd.docker("tag", "busybox", "interop/bb:t1", docker=cli)
    ids = hoistd.docker("images", "-q", "--no-trunc", "interop/bb", docker=cli).stdout.decode().split()
    assert ids == [img_id]
    hist = hoistd.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", "interop/bb:t1",
                         docker=cli).stdout.decode()
    assert "bootstrap busybox" in hist
    out = hoistd.docker("rmi", "interop/bb:t1", docker=cli).stdout.decode()
    assert "Untagged: interop/bb:t1" in out
    p = hoistd.docker("rmi", "interop/bb:t1", docker=cli, check=False)
    assert p.returncode != 0 and b"No such image" in p.stderr
    p = hoistd.docker("image", "inspect", "no/such:img", docker=cli, check=False)
    assert p.returncode == 1 and b"No such image" in p.stderr


def test_save_load_import_df(hoistd, cli, tmp_path):
    out = tmp_path / "bb.tar"
    hoistd.docker("save", "-o", str(out), "busybox", docker=cli)
    with tarfile.open(out) as t:
        assert "manifest.json" in t.getnames()
    hoistd.docker("tag", "busybox", "interop/saved:1", docker=cli)
    hoistd.docker("rmi", "interop/saved:1", docker=cli)
    res = hoistd.docker("load", "-i", str(out), docker=cli).stdout.decode()
    assert "Loaded image: busybox:latest" in res
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as t:
        data = b"imported\n"
        ti = tarfile.TarInfo("etc/motd")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    new_id = hoistd.docker("import", "-c", "CMD [\"cat\", \"/etc/motd\"]", "-m", "msg", str(rootfs),
                           "interop/imported:1", docker=cli).stdout.decode().strip()
    assert new_id.startswith("sha256:")
    cmd = hoistd.docker("image", "inspect", "--format", "{{json .Config.Cmd}}", "interop/imported:1",
                        docker=cli).stdout.decode().strip()
    assert json.loads(cmd) == ["cat", "/etc/motd"]
    # import from stdin
    sid = hoistd.docker("import", "-", "interop/stdin:1", docker=cli, input=rootfs.read_bytes()).stdout.decode().strip()
    assert sid == new_id or sid.startswith("sha256:")
    df = hoistd.docker("system", "df", docker=cli).stdout.decode()
    assert df.splitlines()[1].startswith("Images")


def test_hoist_save_into_real_docker_and_run(hoistd, dockerd):
    """`hoist save busybox | docker load` then `docker run --rm busybox echo ok`."""
    saved = hoistd.hoist("save", "busybox").stdout
    dockerd.docker("load", docker=CLIS[0], input=saved)
    hoist_id = hoistd.hoist("image", "inspect", "--format", "{{.Id}}", "busybox").stdout.decode().strip()
    docker_id = dockerd.docker("image", "inspect", "--format", "{{.Id}}", "busybox", docker=CLIS[0]).stdout.decode().strip()
    assert hoist_id == docker_id
    run = dockerd.docker("run", "--rm", "--network", "none", "busybox", "echo", "ok", docker=CLIS[0])
    assert run.stdout.decode().strip() == "ok"


def test_docker_save_loads_with_same_id(hoistd, dockerd, tmp_path):
    """An image made by dockerd (with a whiteout in its second layer) keeps its ID in hoist."""
    d = CLIS[0]
    saved = hoistd.hoist("save", "busybox").stdout
    dockerd.docker("load", docker=d, input=saved)
    dockerd.docker("rm", "-f", "interop-c1", docker=d, check=False)
    dockerd.docker("run", "--name", "interop-c1", "--network", "none", "busybox", "sh", "-c",
                   "echo hi > /hi.txt && rm /etc/shadow", docker=d)
    dockerd.docker("commit", "-c", 'CMD ["cat", "/hi.txt"]', "interop-c1", "interop/committed:1", docker=d)
    dockerd.docker("rm", "interop-c1", docker=d)
    want = dockerd.docker("image", "inspect", "--format", "{{.Id}}", "interop/committed:1", docker=d).stdout.decode().strip()
    archive = tmp_path / "committed.tar"
    dockerd.docker("save", "-o", str(archive), "interop/committed:1", docker=d)
    out = hoistd.hoist("load", "-i", str(archive)).stdout.decode()
    assert "Loaded image: interop/committed:1" in out
    got = hoistd.hoist("image", "inspect", "--format", "{{.Id}}", "interop/committed:1").stdout.decode().strip()
    assert got == want
    # and back again: hoist's save of it loads into docker and runs with the whiteout applied
    dockerd.docker("rmi", "interop/committed:1", docker=d)
    dockerd.docker("load", docker=d, input=hoistd.hoist("save", "interop/committed:1").stdout)
    r = dockerd.docker("run", "--rm", "--network", "none", "interop/committed:1", "sh", "-c",
                       "cat /hi.txt; ls /etc/shadow 2>&1 || true", docker=d)
    assert r.stdout.decode().splitlines()[0] == "hi"
    assert "No such file" in r.stdout.decode()


def test_oci_archive_from_skopeo(hoistd, tmp_path):
    skopeo = "/usr/bin/skopeo"
    if not os.path.exists(skopeo):
        pytest.skip("skopeo not installed")
    src = tmp_path / "src.tar"
    src.write_bytes(docker_archive([simple_layer({"a": b"1"}), simple_layer({"b": b"2"})], ["oci/src:1"]))
    dst = tmp_path / "oci.tar"
    subprocess.run([skopeo, "copy", "--quiet", f"docker-archive:{src}", f"oci-archive:{dst}:docker.io/oci/img:2"],
                   check=True, capture_output=True)
    out = hoistd.hoist("load", "-i", str(dst)).stdout.decode()
    assert "oci/img:2" in out
    img = json.loads(hoistd.hoist("image", "inspect", "oci/img:2").stdout)[0]
    assert len(img["RootFS"]["Layers"]) == 2


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("HOIST_TEST_DEBOOTSTRAP") != "1",
                    reason="set HOIST_TEST_DEBOOTSTRAP=1 to bootstrap from a Debian mirror")
def test_bootstrap_debian_runs_in_docker(hoistd, dockerd):
    """`hoist image bootstrap debian:bookworm`, then the image runs in a real dockerd."""
    out = hoistd.hoist("image", "bootstrap", "debian:bookworm", timeout=900).stdout.decode()
    assert "debian:bookworm" in out
    dockerd.docker("load", docker=CLIS[0], input=hoistd.hoist("save", "debian:bookworm").stdout)
    r = dockerd.docker("run", "--rm", "--network", "none", "debian:bookworm", "cat", "/etc/debian_version",
                       docker=CLIS[0])
    assert r.stdout.decode().startswith("12.")
