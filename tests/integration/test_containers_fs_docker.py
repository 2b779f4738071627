"""cp / export / diff against hoistd with the real docker CLIs and docker-py, including
hostile containers (symlinks to "/" and ``..`` chains, links swapped while we copy) and
hostile archives. Nothing may ever be read from or written to the host outside the
container's rootfs."""
from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import os
import tarfile
import uuid

import docker
import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CLIS = [c for c in ("/usr/local/bin/docker", "/usr/bin/docker") if os.path.exists(c)]
HOSTILE = ("ln -s / /etc/evil; ln -s ../../../../../../.. /tmp/up; "
           "mkdir -p /data/sub; echo one > /data/a; echo two > /data/sub/b; "
           "rm /etc/shadow; echo changed >> /etc/passwd")


@pytest.fixture(scope="module")
def client(hoistd):
    c = docker.DockerClient(base_url=hoistd.host, version="1.47", timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="module")
def stopped(client):
    """A stopped container whose rootfs holds links pointing "out" of it."""
    ctr = client.containers.create("busybox", ["sh", "-c", HOSTILE], network_mode="none",
                                   name="fs-" + uuid.uuid4().hex[:8])
    ctr.start()
    assert ctr.wait(timeout=60)["StatusCode"] == 0
    yield ctr
    ctr.remove(force=True)


@pytest.fixture(scope="module")
def running(client):
    ctr = client.containers.run("busybox", ["sh", "-c", HOSTILE + "; exec sleep 600"],
                                detach=True, network_mode="none",
                                name="fsr-" + uuid.uuid4().hex[:8])
    yield ctr
    ctr.remove(force=True)


def _tar(*members: tuple) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for kind, name, arg in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(arg)
                tf.addfile(ti, io.BytesIO(arg))
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
                tf.addfile(ti)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
    return buf.getvalue()


def _files(stream) -> dict[str, bytes | None]:
    data = b"".join(stream)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf:
            out[m.name] = tf.extractfile(m).read() if m.isfile() else None
    return out


def _no_mounts(hoistd) -> bool:
    with open("/proc/self/mountinfo") as f:
        return not [l for l in f if hoistd.root in l and "/containers/" in l]


# --------------------------------------------------------------------------- docker CLI


@pytest.mark.parametrize("cli", CLIS)
def test_docker_cli_cp_round_trip(hoistd, stopped, tmp_path, cli):
    name = stopped.name
    d = lambda *a, **kw: hoistd.docker(*a, docker=cli, **kw)
    d("cp", f"{name}:/data", str(tmp_path / "copy"))
    assert (tmp_path / "copy" / "sub" / "b").read_text() == "two\n"
    d("cp", f"{name}:/data/.", str(tmp_path / "contents"))
    assert {"a", "sub"} <= set(os.listdir(tmp_path / "contents"))
    assert not os.path.exists(tmp_path / "contents" / "data")
    (tmp_path / "up.txt").write_text("up\n")
    d("cp", str(tmp_path / "up.txt"), f"{name}:/data/sub/")
    d("cp", str(tmp_path / "up.txt"), f"{name}:/data/renamed.txt")
    (tmp_path / "tree" / "x").mkdir(parents=True)
    (tmp_path / "tree" / "x" / "y").write_text("y\n")
    d("cp", str(tmp_path / "tree"), f"{name}:/data/")
    got = _files(stopped.get_archive("/data")[0])
    assert got["data/sub/up.txt"] == b"up\n" and got["data/renamed.txt"] == b"up\n"
    assert got["data/tree/x/y"] == b"y\n"
    p = d("cp", str(tmp_path / "up.txt"), f"{name}:/nonexist/dir/", check=False)
    assert p.returncode != 0
    p = d("cp", f"{name}:/nonexist", str(tmp_path / "nx"), check=False)
    assert p.returncode != 0  # 28: dockerd's message; 20.10: "No such container:path"
    assert (b"Could not find the file /nonexist" in p.stderr
            or b"No such container:path" in p.stderr), p.stderr
    assert _no_mounts(hoistd)  # the stopped container's rootfs is unmounted again


def test_docker_cli_cp_running_export_and_diff(hoistd, running, tmp_path):
    name = running.name
    d = hoistd.docker
    (tmp_path / "f").write_text("live\n")
    d("cp", str(tmp_path / "f"), f"{name}:/tmp/")
    assert running.exec_run(["cat", "/tmp/f"]).output == b"live\n"
    out = d("cp", f"{name}:/tmp/f", "-").stdout
    assert _files([out]) == {"f": b"live\n"}
    exported = d("export", name).stdout
    names = tarfile.open(fileobj=io.BytesIO(exported)).getnames()
    assert "bin/busybox" in names and "data/sub/b" in names and "tmp/f" in names
    assert "etc/shadow" not in names
    diff = d("diff", name).stdout.decode().splitlines()
    for line in ("A /data", "A /data/a", "C /etc", "C /etc/passwd", "D /etc/shadow",
                 "A /etc/evil", "C /tmp", "A /tmp/f", "A /tmp/up"):
        assert line in diff, (line, diff)
    assert not any(l.endswith(("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"))
                   for l in diff)


# --------------------------------------------------------------------------- docker-py


def test_docker_py_stat_get_put(stopped):
    strm, st = stopped.get_archive("/etc/evil")
    assert st["name"] == "evil" and st["linkTarget"] == "/" and st["mode"] & (1 << 27)
    assert list(_files(strm)) == ["evil"]  # the link itself, not followed
    strm, st = stopped.get_archive("/etc/evil/")
    assert st["mode"] & (1 << 31) and st["name"] == "evil"
    files = _files(strm)
    # "/etc/evil/" is the container's root, not the host's
    assert files["evil/etc/passwd"].endswith(b"changed\n")
    strm, st = stopped.get_archive("/tmp/up/etc/passwd")
    assert _files(strm)["passwd"].endswith(b"changed\n")
    for comp in (gzip.compress, bz2.compress, lzma.compress, lambda b: b):
        data = comp(_tar(("file", "c.txt", comp.__name__.encode())))
        assert stopped.put_archive("/data", data)
        assert _files(stopped.get_archive("/data/c.txt")[0]) == {"c.txt": comp.__name__.encode()}
    with pytest.raises(docker.errors.NotFound):
        stopped.get_archive("/nope")
    with pytest.raises(docker.errors.NotFound):
        stopped.put_archive("/nope", _tar(("file", "x", b"x")))
    with pytest.raises(docker.errors.APIError) as e:
        stopped.put_archive("/data/a", _tar(("file", "x", b"x")))
    assert "not a directory" in str(e.value)


def test_docker_py_export_and_diff(stopped):
    names = tarfile.open(fileobj=io.BytesIO(b"".join(stopped.export()))).getnames()
    assert "data/a" in names and "etc/evil" in names
    changes = {(c["Path"], c["Kind"]) for c in stopped.diff()}
    assert {("/etc/shadow", 2), ("/etc/passwd", 0), ("/data", 1), ("/etc", 0)} <= changes


def test_head_stat_header(client, stopped):
    api = client.api
    r = api.head(api._url("/containers/{0}/archive", stopped.id), params={"path": "/data/a"})
    assert r.status_code == 200
    st = json.loads(base64.b64decode(r.headers["X-Docker-Container-Path-Stat"]))
    assert list(st) == ["name", "size", "mode", "mtime", "linkTarget"]
    assert st["name"] == "a" and st["size"] == 4 and st["mode"] == 0o644
    r = api.head(api._url("/containers/{0}/archive", stopped.id), params={"path": "/nope"})
    assert r.status_code == 404


# --------------------------------------------------------------------------- hostile


def test_cp_into_links_to_root_stays_in_rootfs(hoistd, stopped, tmp_path):
    tag = uuid.uuid4().hex[:12]
    (tmp_path / f"pwn-{tag}").write_text("x\n")
    for dest in ("/etc/evil/", "/tmp/up/", "/tmp/up/tmp/", "/etc/evil/../../tmp/"):
        hoistd.docker("cp", str(tmp_path / f"pwn-{tag}"), f"{stopped.name}:{dest}")
    stopped.put_archive("/tmp/up", _tar(("file", f"api-{tag}", b"y")))
    assert not os.path.exists(f"/pwn-{tag}") and not os.path.exists(f"/api-{tag}")
    assert not os.path.exists(f"/tmp/pwn-{tag}")
    got = _files(stopped.get_archive("/.")[0])
    assert got[f"./pwn-{tag}"] == b"x\n" and got[f"./tmp/pwn-{tag}"] == b"x\n"
    assert got[f"./api-{tag}"] == b"y"


def test_hostile_archives_refused_or_contained(client, stopped):
    tag = uuid.uuid4().hex[:12]
    for bad in (_tar(("file", f"../../../../../../tmp/esc-{tag}", b"x")),
                _tar(("file", f"/tmp/abs-{tag}", b"x"))):
        with pytest.raises(docker.errors.APIError) as e:
            stopped.put_archive("/data", bad)
        assert e.value.status_code == 400
    # Symlinks in the archive, then files "through" them: an absolute link, a ".."
    # chain and the host's own path of a host directory.
    stopped.put_archive("/data", _tar(("sym", "abs", "/"), ("file", f"abs/tmp/via-abs-{tag}", b"a"),
                                      ("sym", "rel", "../../../../.."),
                                      ("file", f"rel/tmp/via-rel-{tag}", b"b")))
    with pytest.raises(docker.errors.APIError):
        stopped.put_archive("/data", _tar(("sym", "host", "/tmp"),
                                          ("file", "host/../../../proc/x", b"c")))
    for p in (f"/tmp/via-abs-{tag}", f"/tmp/via-rel-{tag}"):
        assert not os.path.exists(p)
        assert _files(stopped.get_archive(p)[0])  # landed inside the container
    assert not os.path.exists(f"/tmp/esc-{tag}") and not os.path.exists(f"/tmp/abs-{tag}")


def test_links_swapped_while_copying_stay_inside(hoistd, client):
    """A container flips /tmp/sw between a directory and a link to "/" while we copy
    into and out of it; every write lands in the container, every read comes from it."""
    tag = uuid.uuid4().hex[:12]
    ctr = client.containers.run(
        "busybox", ["sh", "-c", "while :; do mkdir /tmp/sw; rmdir /tmp/sw; ln -s / /tmp/sw; "
                    "rm /tmp/sw; ln -s ../../../../.. /tmp/sw; rm /tmp/sw; done"],
        detach=True, network_mode="none", name="race-" + tag)
    try:
        body = _tar(("file", f"race-{tag}", b"r"))
        landed = 0
        with open("/etc/hostname", "rb") as f:
            host_name = f.read()
        for _ in range(60):
            try:
                ctr.put_archive("/tmp/sw/", body)
                landed += 1
            except docker.errors.APIError as e:
                assert e.status_code in (404, 500), e  # the path vanished mid-copy
            try:
                strm, _ = ctr.get_archive("/tmp/sw/etc/hostname")
                got = _files(strm).get("hostname")
                assert not host_name or got != host_name  # never the host's file
            except docker.errors.APIError as e:
                assert e.status_code in (404, 500), e
        assert landed  # the race was really run, not just refused
        assert not os.path.exists(f"/race-{tag}") and not os.path.exists(f"/tmp/race-{tag}")
    finally:
        ctr.remove(force=True)


def test_cp_root_and_dir_contents_every_cli(hoistd, client, tmp_path):
    """The root is archived as "/", "/bin", ... and "dir/." as "./x", as dockerd does;
    both docker CLIs and hoist's own rebase that into the destination."""
    # (a clean container: the docker CLI refuses the hostile links of `stopped`)
    fresh = client.containers.create("busybox", ["true"], network_mode="none")
    try:
        fresh.put_archive("/", _tar(("dir", "data", None), ("file", "data/a", b"one\n"),
                                    ("dir", "data/sub", None), ("file", "data/sub/b", b"two\n")))
        names = list(_files(fresh.get_archive("/")[0]))
        assert names[0] in ("", "/") and "/bin/busybox" in names  # tarfile strips the "/"
        runs = [(c.replace("/", "_"), lambda *a, c=c: hoistd.docker(*a, docker=c))
                for c in CLIS]
        runs.append(("hoist", hoistd.hoist))
        for label, run in runs:
            run("cp", f"{fresh.name}:/", str(tmp_path / f"root-{label}"))
            assert {"bin", "data", "tmp"} <= set(os.listdir(tmp_path / f"root-{label}")), label
            (tmp_path / f"into-{label}").mkdir()
            run("cp", f"{fresh.name}:/data/.", str(tmp_path / f"into-{label}"))
            assert (tmp_path / f"into-{label}" / "sub" / "b").read_text() == "two\n", label
            run("cp", f"{fresh.name}:/data/.", str(tmp_path / f"new-{label}"))
            assert (tmp_path / f"new-{label}" / "a").read_text() == "one\n", label
    finally:
        fresh.remove(force=True)


def test_cp_archive_mode_uses_container_user(hoistd, client, tmp_path):
    """`docker cp -a` (copyUIDGID) owns the files by the container's user; without it
    the archive's owners are kept."""
    ctr = client.containers.create("busybox", ["true"], user="nobody", network_mode="none")
    try:
        f = tmp_path / "owned"
        f.write_text("o\n")
        os.chown(f, 1234, 1234)
        hoistd.docker("cp", "-a", str(f), f"{ctr.name}:/tmp/")
        f2 = tmp_path / "kept"
        f2.write_text("k\n")
        os.chown(f2, 1234, 1234)
        hoistd.docker("cp", str(f2), f"{ctr.name}:/tmp/")
        data = b"".join(ctr.get_archive("/tmp")[0])
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            owners = {m.name: (m.uid, m.gid) for m in tf}
        assert owners["tmp/owned"] == (65534, 65534)
        assert owners["tmp/kept"] != (65534, 65534)
    finally:
        ctr.remove(force=True)


DIFF_SCRIPT = ("rm /etc/shadow; sed -i s/root/ROOT/ /etc/passwd; mkdir -p /data/sub; "
               "echo x > /data/sub/f; ln -s / /etc/evil; mkfifo /tmp/fifo; rm -rf /var; "
               "mkdir -p /var/spool; touch /var/x; rm -rf /home; mkdir /home")


def test_diff_matches_dockerd(hoistd, dockerd):
    if dockerd.docker("image", "inspect", "busybox", check=False).returncode != 0:
        dockerd.docker("load", input=hoistd.hoist("save", "busybox").stdout)
    got = []
    for d in (hoistd, dockerd):
        c = docker.DockerClient(base_url=d.host, version="1.41", timeout=120)
        ctr = c.containers.run("busybox", ["sh", "-c", DIFF_SCRIPT], detach=True,
                               network_mode="none")
        try:
            assert ctr.wait(timeout=60)["StatusCode"] == 0
            got.append(sorted((x["Path"], x["Kind"]) for x in ctr.diff()))
        finally:
            ctr.remove(force=True)
            c.close()
    assert got[0] == got[1], "\n".join(map(str, got))


def test_cp_follow_link(hoistd, client, tmp_path):
    """cp -L copies what a container symlink points to, resolved inside the container,
    under the link's name; without -L the link itself is copied."""
    ctr = client.containers.create("busybox", ["true"], network_mode="none")
    try:
        ctr.put_archive("/tmp", _tar(("sym", "pl", "/etc/passwd"), ("sym", "esc", "../../../etc")))
        runs = [(c.replace("/", "_"), lambda *a, c=c: hoistd.docker(*a, docker=c))
                for c in CLIS] + [("hoist", hoistd.hoist)]
        for label, run in runs:
            run("cp", "-L", f"{ctr.name}:/tmp/pl", str(tmp_path / f"f-{label}"))
            assert (tmp_path / f"f-{label}").read_text().startswith("root:x:0:0"), label
            assert not (tmp_path / f"f-{label}").is_symlink()
            run("cp", f"{ctr.name}:/tmp/pl", str(tmp_path / f"l-{label}"))
            assert os.readlink(tmp_path / f"l-{label}") == "/etc/passwd", label
            run("cp", "-L", f"{ctr.name}:/tmp/esc", str(tmp_path / f"d-{label}"))
            # the container's /etc (busybox has no host's os-release), not the host's
            assert (tmp_path / f"d-{label}" / "passwd").exists(), label
            assert not (tmp_path / f"d-{label}" / "os-release").exists(), label
    finally:
        ctr.remove(force=True)


def test_cp_network_files_are_the_mounted_ones(hoistd, stopped, running):
    """/etc/hosts, /etc/hostname and /etc/resolv.conf are bind-mounted by the runtime;
    cp gives their real content (as dockerd does), also inside a directory copy."""
    for ctr in (stopped, running):
        ctr.reload()
        with open(ctr.attrs["HostnamePath"], "rb") as f:
            hostname = f.read()
        assert hostname.strip()
        out = hoistd.docker("cp", f"{ctr.name}:/etc/hostname", "-").stdout
        assert _files([out]) == {"hostname": hostname}
        strm, st = ctr.get_archive("/etc/")
        assert st["name"] == "etc"
        files = _files(strm)
        assert files["etc/hostname"] == hostname and b"localhost" in files["etc/hosts"]
        _, st = ctr.get_archive("/etc/hostname")
        assert st["size"] == len(hostname)
    assert running.exec_run(["cat", "/etc/hostname"]).output == hostname
