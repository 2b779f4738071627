"""Docker's image semantics on a real store (copying snapshotter, no root needed)."""
from __future__ import annotations

import io
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "integration"))
from archives import docker_archive, file_entry, simple_layer, tar_bytes  # noqa: E402

from hoist.engine.daemon_state import Engine  # noqa: E402
from hoist.engine.importer import import_image  # noqa: E402
from hoist.errors import Conflict, InvalidArgument, NotFound  # noqa: E402


@pytest.fixture
def engine(tmp_path):
    return Engine.open(str(tmp_path / "root"), "native")


def load(engine, layers, tags):
    return engine.archives.load(io.BytesIO(docker_archive(layers, tags)))


def test_resolve_by_tag_id_prefix_and_digest(engine):
    load(engine, [simple_layer()], ["r/a:1"])
    image_id = engine.images.resolve("r/a:1")
    assert engine.images.resolve(image_id) == image_id
    assert engine.images.resolve(image_id[7:19]) == image_id
    assert engine.images.resolve("docker.io/r/a:1") == image_id
    with pytest.raises(NotFound, match="No such image: r/a:2"):
        engine.images.resolve("r/a:2")
    with pytest.raises(NotFound):
        engine.images.resolve("sha256:" + "0" * 64)


def test_rmi_untags_then_deletes(engine):
    load(engine, [simple_layer()], ["r/a:1"])
    image_id = engine.images.resolve("r/a:1")
    engine.images.tag("r/a:1", "r/b", "2")
    assert engine.images.remove("r/a:1") == [{"Untagged": "r/a:1"}]
    assert engine.images.resolve("r/b:2") == image_id
    out = engine.images.remove("r/b:2")
    assert out[0] == {"Untagged": "r/b:2"} and out[-1] == {"Deleted": image_id}
    assert engine.store.images() == []
    assert list(engine.store.content.walk()) == []


def test_rmi_by_id_with_several_tags_needs_force(engine):
    load(engine, [simple_layer()], ["r/a:1", "r/a:2"])
    image_id = engine.images.resolve("r/a:1")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        engine.images.remove(image_id[7:19])
    out = engine.images.remove(image_id[7:19], force=True)
    assert {"Deleted": image_id} in out
    assert {"Untagged": "r/a:1"} in out and {"Untagged": "r/a:2"} in out


def test_retag_makes_old_image_dangling_and_prune_removes_it(engine):
    load(engine, [simple_layer({"v": b"1"})], ["r/a:1"])
    old = engine.images.resolve("r/a:1")
    lines = load(engine, [simple_layer({"v": b"2"})], ["r/a:1"])
    assert any("renaming the old one" in ln for ln in lines)
    dangling = engine.images.list(filters={"dangling": ["true"]})
    assert [i["Id"] for i in dangling] == [old]
    assert dangling[0]["RepoTags"] == []
    res = engine.images.prune()
    assert res["ImagesDeleted"] == [{"Deleted": old}]
    assert res["SpaceReclaimed"] > 0


def test_list_filters(engine):
    load(engine, [simple_layer()], ["r/a:1"])
    load(engine, [simple_layer({"z": b"z"})], ["other/b:1"])
    names = lambda f: sorted(t for i in engine.images.list(filters=f) for t in i["RepoTags"])  # noqa: E731
    assert names({"reference": ["r/*"]}) == ["r/a:1"]
    assert names({"reference": ["other/b"]}) == ["other/b:1"]
    assert names({}) == ["other/b:1", "r/a:1"]
    with pytest.raises(InvalidArgument, match="invalid filter"):
        engine.images.list(filters={"bogus": ["1"]})


def test_history_maps_empty_layers(engine):
    layer = simple_layer()
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + __import__("hashlib").sha256(layer).hexdigest()]},
                      "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "ADD file"},
                                  {"created": "2026-01-01T00:00:01Z", "created_by": "CMD [\"sh\"]",
                                   "empty_layer": True}]}).encode()
    engine.archives.load(io.BytesIO(docker_archive([layer], ["r/h:1"], config=cfg)))
    h = engine.images.history("r/h:1")
    assert [x["CreatedBy"] for x in h] == ['CMD ["sh"]', "ADD file"]
    assert h[0]["Size"] == 0 and h[1]["Size"] > 0
    assert h[0]["Tags"] == ["r/h:1"] and h[1]["Id"] == "<missing>"


def test_import_with_changes_and_message(engine):
    tarball = tar_bytes([file_entry("hello", b"hi")])
    image_id = import_image(engine.store, io.BytesIO(tarball), repo="r/imp", tag="1",
                            changes=["CMD echo hi", "ENV A=1 B=2", "EXPOSE 80", "WORKDIR /srv"],
                            message="made by test")
    info = engine.images.inspect("r/imp:1")
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert info["Config"]["Env"] == ["A=1", "B=2"]
    assert info["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert info["Config"]["WorkingDir"] == "/srv"
    assert info["Comment"] == "made by test"
    with pytest.raises(InvalidArgument, match="not a valid change command"):
        import_image(engine.store, io.BytesIO(tarball), changes=["RUN rm -rf /"])


def test_save_then_load_into_another_store(engine, tmp_path):
    load(engine, [simple_layer(), simple_layer({"b": b"2"})], ["r/s:1"])
    out = io.BytesIO()
    engine.archives.save(["r/s:1"], out)
    plan = engine.archives.plan_save(["r/s:1"])
    assert plan.size == len(out.getvalue())
    other = Engine.open(str(tmp_path / "other"), "native")
    other.archives.load(io.BytesIO(out.getvalue()))
    assert other.images.resolve("r/s:1") == engine.images.resolve("r/s:1")
