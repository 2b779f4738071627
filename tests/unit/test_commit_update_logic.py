"""The pure parts of commit and update: config merge, change lists, the committed layer
of an upper dir, resource checks and their OCI conversion."""
from __future__ import annotations

import io
import os
import stat
import tarfile

import pytest

from hoist.archive.create import write_tar_from_dir
from hoist.digest import Digest
from hoist.errors import Conflict, InvalidArgument
from hoist.engine.containers.commit import (EMPTY_LAYER, child_config_doc, commit_config,
                                            layer_excludes)
from hoist.engine.containers.update import (Host, Update, merge_host_config, oci_resources,
                                            parse_update, validate)
from hoist.image.changes import apply_changes

CONTAINER = {
    "Hostname": "abc", "User": "", "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh", "-c", "echo hi"],
    "Entrypoint": None, "Image": "busybox", "Labels": {"l": "1"}, "WorkingDir": "",
    "ExposedPorts": {"80/tcp": {}}, "AttachStdout": True,
}
HOST = Host(ncpu=2, cpus="0-1", mems="0", swap_limit=True, blkio_weight=True)


# ------------------------------------------------------------------ changes / config

def test_entrypoint_change_drops_inherited_cmd_unless_cmd_came_first():
    assert apply_changes(CONTAINER, ['ENTRYPOINT ["echo"]'])["Cmd"] is None
    cfg = apply_changes(CONTAINER, ['CMD ["a"]', "ENTRYPOINT echo"])
    assert cfg["Cmd"] == ["a"] and cfg["Entrypoint"] == ["/bin/sh", "-c", "echo"]
    assert CONTAINER["Cmd"] == ["sh", "-c", "echo hi"]  # input untouched


def test_unknown_change_is_refused_in_dockers_words():
    with pytest.raises(InvalidArgument, match="^from is not a valid change command$"):
        apply_changes({}, ["FROM x"])


def test_commit_config_without_body_keeps_the_container_config_and_applies_changes():
    cfg = commit_config(CONTAINER, None, ['CMD ["cat", "/new"]', "ENV A=2 B=3", "LABEL m=n"])
    assert cfg["Cmd"] == ["cat", "/new"]
    assert cfg["Env"] == ["PATH=/bin", "A=2", "B=3"]
    assert cfg["Labels"] == {"l": "1", "m": "n"}
    assert cfg["Hostname"] == "abc" and cfg["Image"] == "busybox" and cfg["AttachStdout"] is True
    assert cfg["ExposedPorts"] == {"80/tcp": {}}


def test_commit_config_with_body_merges_like_dockerd():
    cfg = commit_config(CONTAINER, {"Env": ["A=9"], "Labels": {"l": "2"}, "WorkingDir": "/w"}, [])
    assert cfg["Env"] == ["A=9", "PATH=/bin"]           # user first, the rest appended
    assert cfg["Labels"] == {"l": "2"}                  # the user's label wins
    assert cfg["Cmd"] == ["sh", "-c", "echo hi"]        # empty Cmd comes from the container
    assert cfg["WorkingDir"] == "/w"
    assert cfg["Hostname"] == "" and cfg["Image"] == ""  # not merged, as in dockerd
    ep = commit_config(CONTAINER, {"Entrypoint": ["/x"]}, [])
    assert ep["Entrypoint"] == ["/x"] and ep["Cmd"] is None


def test_child_config_appends_the_layer_and_history():
    parent = {"architecture": "arm64", "variant": "v8", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
              "history": [{"created": "x", "created_by": "base"}]}
    diff = Digest.of_bytes(b"layer")
    doc = child_config_doc(parent, config={"Cmd": ["a"]}, container_config=CONTAINER,
                           container_id="c" * 64, diff_id=diff, author="me", comment="msg",
                           created="2026-01-01T00:00:00Z")
    assert doc["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, str(diff)]
    assert doc["history"][-1] == {"created": "2026-01-01T00:00:00Z", "author": "me",
                                  "created_by": "sh -c echo hi", "comment": "msg"}
    assert doc["architecture"] == "arm64" and doc["variant"] == "v8" and doc["author"] == "me"
    assert doc["container"] == "c" * 64 and doc["container_config"]["Hostname"] == "abc"
    empty = child_config_doc(parent, config={}, container_config={"Cmd": None},
                             container_id="c", diff_id=EMPTY_LAYER, author="", comment="",
                             created="t")
    assert empty["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64]
    assert empty["history"][-1] == {"created": "t", "empty_layer": True}
    assert "author" not in empty


def test_empty_layer_digest_is_an_empty_tar():
    buf = io.BytesIO()
    tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT).close()
    assert EMPTY_LAYER == Digest.of_bytes(buf.getvalue()[:1024])
    assert str(EMPTY_LAYER) == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


# ------------------------------------------------------------------ the layer of an upper dir

def _names(root: str, exclude: set[str]) -> dict[str, tarfile.TarInfo]:
    buf = io.BytesIO()
    write_tar_from_dir(root, buf, exclude=exclude)  # type: ignore[arg-type]
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def test_upper_dir_becomes_an_oci_layer_without_runtime_mountpoints(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("etc", "bin", "dev", "usr"):
        (lower / d).mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    for f in ("hosts", "hostname", "resolv.conf"):
        (upper / "etc" / f).write_bytes(b"")       # bind-mount targets the runtime made
    (upper / "dev").mkdir()                          # an empty mountpoint dir
    (upper / "usr" / "new").mkdir(parents=True)
    (upper / "usr" / "new" / "file").write_bytes(b"data")
    (upper / "bin").mkdir()
    try:
        os.mknod(upper / "bin" / "ls", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    except PermissionError:
        pytest.skip("cannot create an overlay whiteout here")
    opaque = upper / "opq"
    opaque.mkdir()
    try:
        os.setxattr(opaque, "trusted.overlay.opaque", b"y")
        has_opaque = True
    except OSError:
        has_opaque = False
    ex = layer_excludes(str(upper), [str(lower)])
    assert ex == {"etc/hosts", "etc/hostname", "etc/resolv.conf", "dev", "etc"}
    names = _names(str(upper), ex)
    assert "bin/.wh.ls" in names and names["bin/.wh.ls"].isfile()
    assert names["usr/new/file"].size == 4
    assert not any(n == "etc" or n.startswith(("etc/", "dev")) for n in names)
    if has_opaque:
        assert "opq/.wh..wh..opq" in names


def test_changed_files_next_to_mountpoints_keep_their_directory(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_bytes(b"")
    (upper / "etc" / "motd").write_bytes(b"hello")
    (upper / "proc").mkdir()
    (upper / "proc" / "kept").write_bytes(b"")  # not an empty mountpoint dir: a change
    ex = layer_excludes(str(upper), [str(lower)])
    assert ex == {"etc/hosts"}
    names = _names(str(upper), ex)
    assert {"etc", "etc/motd", "proc", "proc/kept"} <= set(names) and "etc/hosts" not in names
    # A directory the container created holds only a mountpoint: it is a change, kept.
    (lower / "etc").rmdir()
    assert layer_excludes(str(upper), [str(lower)]) == {"etc/hosts"}


# ------------------------------------------------------------------ update

def test_parse_update_follows_the_api_version_rules():
    u = parse_update({"Memory": 10 << 20, "KernelMemory": 1 << 20, "PidsLimit": -1,
                      "CpusetCpus": "", "RestartPolicy": {"Name": ""}}, 1.47)
    assert dict(u.resources) == {"Memory": 10 << 20, "PidsLimit": 0} and u.restart is None
    old = parse_update({"KernelMemory": 1 << 20, "PidsLimit": 5}, 1.39)
    assert dict(old.resources) == {"KernelMemory": 1 << 20}
    with pytest.raises(InvalidArgument, match="EOF"):
        parse_update(None)
    with pytest.raises(InvalidArgument, match="Memory"):
        parse_update({"Memory": "10m"})


@pytest.mark.parametrize("body,msg", [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 20 << 20, "MemorySwap": 10 << 20}, "Minimum memoryswap limit should be larger"),
    ({"MemoryReservation": 1 << 20}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 10 << 20, "MemoryReservation": 20 << 20}, "can not be less than memory reservation"),
    ({"NanoCpus": 10**9, "CpuQuota": 2000}, "Nano CPUs and CPU Quota cannot both be set"),
    ({"NanoCpus": 3 * 10**9}, "Range of CPUs is from 0.01 to 2.00"),
    ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms"),
    ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms"),
    ({"CpusetCpus": "7"}, "Requested CPUs are not available - requested 7, available: 0-1"),
    ({"CpusetCpus": "x"}, "Invalid value x for cpuset cpus: invalid format: x"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"RestartPolicy": {"Name": "foo"}}, "invalid restart policy: unknown policy 'foo'"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}},
     "maximum retry count can only be used with 'on-failure'"),
    ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}, "cannot be negative"),
])
def test_validate_refuses_like_dockerd(body, msg):
    with pytest.raises(InvalidArgument, match=msg.replace("(", r"\(")):
        validate(parse_update(body), HOST)


def test_validate_discards_what_the_kernel_cannot_do_with_a_warning():
    host = Host(ncpu=2, cpus="0-1", mems="0", swap_limit=False, blkio_weight=False)
    u = validate(parse_update({"Memory": 10 << 20, "BlkioWeight": 500}), host)
    assert dict(u.resources) == {"Memory": 10 << 20, "MemorySwap": -1}
    assert len(u.warnings) == 2 and "Weight discarded" in u.warnings[1]


def test_merge_host_config_conflicts_with_what_is_set():
    with pytest.raises(Conflict, match="CPU Quota cannot be updated as NanoCPUs"):
        merge_host_config({"NanoCpus": 10**9}, parse_update({"CpuQuota": 20000}))
    with pytest.raises(Conflict, match="Nano CPUs cannot be updated as CPU Period"):
        merge_host_config({"CpuPeriod": 100000}, parse_update({"NanoCpus": 10**9}))
    # No swap limit stored: dockerd refuses a memory limit without --memory-swap.
    with pytest.raises(Conflict, match="memoryswap limit"):
        merge_host_config({"Memory": 0, "MemorySwap": 0}, parse_update({"Memory": 64 << 20}))
    # -m alone at create means swap = 2 x memory: growing within that is fine.
    hc = merge_host_config({"Memory": 64 << 20, "MemorySwap": 0}, parse_update({"Memory": 100 << 20}))
    assert hc["Memory"] == 100 << 20
    with pytest.raises(Conflict, match="AutoRemove"):
        merge_host_config({"AutoRemove": True}, parse_update({"RestartPolicy": {"Name": "always"}}))


def test_merge_host_config_writes_only_the_given_fields():
    old = {"Memory": 0, "MemorySwap": 0, "CpuShares": 0, "PidsLimit": 100, "Binds": ["/a:/b"]}
    new = merge_host_config(old, parse_update({"Memory": 64 << 20, "MemorySwap": 128 << 20,
                                               "PidsLimit": 0, "CpuShares": 512,
                                               "RestartPolicy": {"Name": "on-failure",
                                                                 "MaximumRetryCount": 2}}))
    assert new == {"Memory": 64 << 20, "MemorySwap": 128 << 20, "CpuShares": 512, "PidsLimit": None,
                   "Binds": ["/a:/b"], "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}}
    assert old["PidsLimit"] == 100


def test_oci_resources_converts_the_touched_parts():
    hc = {"Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 5 * 10**8, "CpuShares": 512,
          "CpusetCpus": "0", "PidsLimit": None, "BlkioWeight": 300}
    upd = parse_update({"Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 5 * 10**8,
                        "PidsLimit": -1, "BlkioWeight": 300})
    res = oci_resources(hc, upd)
    assert res["memory"]["limit"] == 64 << 20
    assert res["memory"].get("swap") in (None, 128 << 20)  # absent without swap accounting
    assert res["cpu"] == {"period": 100000, "quota": 50000, "shares": 512, "cpus": "0"}
    assert res["pids"] == {"limit": 0}
    assert res["blockIO"] == {"weight": 300}
    assert oci_resources(hc, Update({"CpuShares": 512})) == {"cpu": res["cpu"]}


def test_image_comment_falls_back_to_the_newest_history_entry():
    from hoist.engine.images import _comment
    assert _comment({"comment": "top", "history": [{"comment": "h"}]}) == "top"
    assert _comment({"history": [{"comment": "old"}, {"comment": "from commit -m"}]}) == "from commit -m"
    assert _comment({"history": [{"comment": "old"}, {"created_by": "x"}]}) == ""
    assert _comment({}) == ""


def test_changes_may_come_as_one_dockerfile_text():
    cfg = commit_config(CONTAINER, None, ["# a comment\nENV X=1\n\nUSER nobody", "EXPOSE 8080"])
    assert "X=1" in cfg["Env"] and cfg["User"] == "nobody"
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "8080/tcp": {}}
