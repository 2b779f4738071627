"""The Engine API image endpoints, driven by docker-py (an independent real client)."""
from __future__ import annotations

import io
import json
import os
import tarfile

import docker
import pytest


@pytest.fixture(scope="module")
def client(hoistd):
    c = docker.DockerClient(base_url=hoistd.host, version="auto", timeout=120)
    yield c
    c.close()


def _tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_ping_and_version(client):
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] == "1.47"
    assert v["Os"] == "linux"
    info = client.info()
    assert info["Images"] >= 1
    assert info["OSType"] == "linux"


def test_versioned_paths_and_too_new(hoistd, client):
    api = docker.APIClient(base_url=hoistd.host, version="1.41")
    assert api.version()["ApiVersion"] == "1.47"
    res = api._get(api.base_url + "/v1.99/version")
    assert res.status_code == 400
    assert "too new" in res.json()["message"]
    res = api._get(api.base_url + "/v1.12/version")
    assert res.status_code == 400 and "too old" in res.json()["message"]


def test_list_get_tag_remove(client):
    bb = client.images.get("busybox")
    assert "busybox:latest" in bb.tags
    assert bb.id.startswith("sha256:")
    assert bb.attrs["Config"]["Cmd"] == ["sh"]
    assert bb.attrs["RootFS"]["Type"] == "layers"
    assert bb.tag("example/bb", "v1") is True
    assert "example/bb:v1" in client.images.get("example/bb:v1").tags
    ids = [i.id for i in client.images.list()]
    assert bb.id in ids
    assert client.images.list(name="example/bb")[0].id == bb.id
    client.images.remove("example/bb:v1")
    assert "example/bb:v1" not in client.images.get(bb.id).tags
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("example/bb:v1")


def test_history(client):
    h = client.images.get("busybox").history()
    assert h[0]["Id"].startswith("sha256:")
    assert "busybox:latest" in h[0]["Tags"]
    assert h[0]["Size"] > 100_000


def test_save_and_load_roundtrip(client):
    bb = client.images.get("busybox")
    data = b"".join(bb.save(named=True))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        names = t.getnames()
        manifest = json.load(t.extractfile("manifest.json"))
    assert "index.json" in names and "oci-layout" in names
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    bb.tag("example/roundtrip", "x")
    client.images.remove("example/roundtrip:x")
    loaded = client.images.load(data)
    assert loaded[0].id == bb.id


def test_import_with_changes(hoistd, client):
    api = client.api
    tarball = _tarball({"hello.txt": b"hi\n"})
    res = api.import_image_from_data(tarball, repository="example/imp", tag="1",
                                     changes=['CMD ["cat", "/hello.txt"]', "ENV A=b"])
    image_id = json.loads(res.strip().splitlines()[-1])["status"] if isinstance(res, str) else None
    img = client.images.get("example/imp:1")
    if image_id:
        assert img.id == image_id
    assert img.attrs["Config"]["Cmd"] == ["cat", "/hello.txt"]
    assert "A=b" in img.attrs["Config"]["Env"]
    assert img.history()[0]["Comment"] == "Imported from -"


def test_errors_map_to_docker_status(client):
    with pytest.raises(docker.errors.ImageNotFound) as e:
        client.images.get("no/such:image")
    assert "No such image" in str(e.value)
    with pytest.raises(docker.errors.APIError) as e:
        client.api.tag("busybox", "Bad Name")
    assert e.value.status_code == 400


def test_events_stream_image_actions(client):
    import time
    since = time.time() - 1
    client.images.get("busybox").tag("example/ev", "1")
    client.images.remove("example/ev:1")
    evs = client.events(since=since, until=time.time() + 1, decode=True,
                        filters={"type": "image"})
    actions = [e["Action"] for e in evs]
    assert "tag" in actions and "untag" in actions


def test_rmi_conflict_and_force(client):
    bb = client.images.get("busybox")
    bb.tag("example/multi", "a")
    bb.tag("example/multi", "b")
    with pytest.raises(docker.errors.APIError) as e:
        client.images.remove(bb.id)
    assert e.value.status_code == 409
    client.images.remove("example/multi:a")
    client.images.remove("example/multi:b")
    assert client.images.get(bb.id).tags == ["busybox:latest"]


def test_prune_dangling(client):
    tarball = _tarball({"f": b"1"})
    client.api.import_image_from_data(tarball, repository="example/dangle", tag="1")
    img = client.images.get("example/dangle:1")
    client.api.import_image_from_data(_tarball({"f": b"2"}), repository="example/dangle", tag="1")
    assert img.id in [i.id for i in client.images.list(filters={"dangling": True})]
    res = client.images.prune(filters={"dangling": True})
    assert {"Deleted": img.id} in res["ImagesDeleted"]
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(img.id)


def test_system_df(client):
    df = client.df()
    assert df["LayersSize"] > 0
    assert any("busybox:latest" in i["RepoTags"] for i in df["Images"])


def test_import_from_url(client):
    """`docker import http://...`: the daemon downloads the tarball (from a server this
    test runs on loopback)."""
    import http.server
    import threading

    tarball = _tarball({"from-url.txt": b"downloaded\n"})

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/rootfs.tar":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(tarball)))
            self.end_headers()
            self.wfile.write(tarball)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{srv.server_port}/rootfs.tar"
        client.api.import_image_from_url(url, repository="example/fromurl", tag="1")
        img = client.images.get("example/fromurl:1")
        assert img.history()[0]["Comment"] == f"Imported from {url}"
        with pytest.raises(docker.errors.APIError) as e:
            client.api.import_image_from_url(f"http://127.0.0.1:{srv.server_port}/missing.tar",
                                             repository="example/fromurl", tag="2")
        assert "404" in str(e.value)
    finally:
        srv.shutdown()
