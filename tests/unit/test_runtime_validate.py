"""validate(): every check, and that one error names every failure."""
from __future__ import annotations

import copy

import pytest

from hoist.errors import InvalidArgument
from hoist.runtime.spec import SpecInput, generate
from hoist.runtime.validate import CHECKS, validate


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("rootfs")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return generate(SpecInput("c" * 64, {"Cmd": ["sh"], "Hostname": "h"},
                              {"Memory": 64 << 20, "CpusetCpus": "0", "PidsLimit": 5,
                               "Sysctls": {"net.ipv4.ip_forward": "1"}},
                              str(root), "/h", "/hs", "/r", "/hoist/x"))


def _bad(good, mutate):
    spec = copy.deepcopy(good)
    mutate(spec)
    with pytest.raises(InvalidArgument) as e:
        validate(spec)
    return str(e.value)


def test_generated_spec_is_valid(good):
    validate(good)


def test_minimal_spec_is_valid():
    validate({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
              "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
              "linux": {"namespaces": [{"type": "mount"}]}})


def test_not_a_mapping():
    with pytest.raises(InvalidArgument, match="must be an object"):
        validate([])  # type: ignore[arg-type]


def _set(path, value):
    def mutate(spec):
        obj = spec
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return mutate


def _delete(path):
    def mutate(spec):
        obj = spec
        for k in path[:-1]:
            obj = obj[k]
        del obj[path[-1]]
    return mutate


@pytest.mark.parametrize("mutate, msg", [
    (_set(["ociVersion"], "2"), "ociVersion"),
    (_delete(["root"]), "root.path is required"),
    (_set(["root", "readonly"], "yes"), "root.readonly"),
    (_delete(["process"]), "process is required"),
    (_set(["process", "args"], []), "process.args"),
    (_set(["process", "args"], ["a", 1]), "process.args"),
    (_set(["process", "cwd"], "rel"), "process.cwd"),
    (_set(["process", "env"], ["NOEQUALS"]), "process.env"),
    (_set(["process", "terminal"], "no"), "process.terminal"),
    (_delete(["linux"]), "linux is required"),
    (_set(["process", "user", "uid"], -1), "process.user.uid"),
    (_set(["process", "user", "gid"], "0"), "process.user.gid"),
    (_set(["process", "user", "additionalGids"], [-3]), "additionalGids"),
    (_set(["process", "user", "umask"], 0o1777), "umask"),
    (_set(["process", "capabilities", "bounding"], ["CAP_FLY"]), "unknown capability 'CAP_FLY'"),
    (_set(["process", "capabilities", "magic"], []), "unknown capability set"),
    (_set(["process", "capabilities", "effective"], "CAP_KILL"), "must be a list"),
    (_set(["process", "rlimits"], [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]), "unknown rlimit"),
    (_set(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]), "exceeds hard"),
    (_set(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1}]), "unsigned"),
    (_set(["process", "rlimits"], [{"type": "RLIMIT_CORE", "soft": 1, "hard": 1}] * 2), "given twice"),
    (_set(["process", "oomScoreAdj"], 5000), "oomScoreAdj"),
    (_set(["process", "noNewPrivileges"], 1), "noNewPrivileges"),
    (_set(["mounts"], [{"destination": "rel", "type": "tmpfs"}]), "destination 'rel'"),
    (_set(["mounts"], [{"destination": "/a/../../etc", "type": "tmpfs"}]), "without '..'"),
    (_set(["mounts"], [{"destination": "/proc", "type": "tmpfs"}]), "/proc must be of type proc"),
    (_set(["mounts"], [{"destination": "/sys", "type": "tmpfs"}]), "/sys must be of type sysfs"),
    (_set(["mounts"], [{"destination": "/b", "type": "bind", "source": "rel"}]), "bind source"),
    (_set(["mounts"], [{"destination": "/b", "options": ["rbind"], "source": "/../x"}]), "bind source"),
    (_set(["mounts"], [{"destination": "/t"}]), "type is required"),
    (_set(["mounts"], [{"destination": "/t", "type": "tmpfs", "options": "ro"}]), "options"),
    (_set(["linux", "namespaces"], [{"type": "mount"}, {"type": "mount"}]), "mount given twice"),
    (_set(["linux", "namespaces"], [{"type": "mount"}, {"type": "wormhole"}]), "unknown namespace type"),
    (_set(["linux", "namespaces"], [{"type": "mount"}, {"type": "net"}]), "unknown namespace type 'net'"),
    (_set(["linux", "namespaces"], [{"type": "uts"}]), "mount namespace is required"),
    (_set(["linux", "namespaces"], [{"type": "mount"}, {"type": "uts", "path": "x"}]), "path must be absolute"),
    (_set(["linux", "namespaces"], [{"type": "mount"}]), "hostname requires a new uts namespace"),
    (_set(["hostname"], "bad host name"), "invalid hostname"),
    (_set(["hostname"], "x" * 65), "invalid hostname"),
    (_set(["linux", "maskedPaths"], ["proc/kcore"]), "maskedPaths"),
    (_set(["linux", "readonlyPaths"], ["/proc/../etc"]), "readonlyPaths"),
    (_set(["linux", "cgroupsPath"], "relative/x"), "cgroupsPath"),
    (_set(["linux", "cgroupsPath"], "/a/../../b"), "cgroupsPath"),
    (_set(["linux", "cgroupsPath"], "/"), "cgroupsPath"),
    (_set(["linux", "cgroupsPath"], ""), "cgroupsPath"),
    (_set(["linux", "resources", "devices"], [{"access": "rwm"}]), "boolean 'allow'"),
    (_set(["linux", "resources", "devices"], [{"allow": True, "type": "x"}]), "unknown type"),
    (_set(["linux", "resources", "devices"], [{"allow": True, "access": "rwx"}]), "bad access"),
    (_set(["linux", "resources", "devices"], [{"allow": True, "major": -2}]), "major"),
    (_set(["linux", "devices"], [{"path": "dev/x", "type": "c"}]), "linux.devices"),
    (_set(["linux", "resources", "memory"], {"limit": 100, "swap": 50}), "swap"),
    (_set(["linux", "resources", "memory"], {"limit": "1g"}), "memory.limit"),
    (_set(["linux", "resources", "cpu"], {"cpus": "0-x"}), "bad cpuset"),
    (_set(["linux", "resources", "cpu"], {"quota": "1"}), "cpu.quota"),
    (_set(["linux", "resources", "pids"], {"limit": "1"}), "pids.limit"),
    (_set(["linux", "seccomp", "defaultAction"], "SCMP_ACT_MAYBE"), "unknown defaultAction"),
    (_set(["linux", "seccomp", "architectures"], ["SCMP_ARCH_Z80"]), "unknown architecture"),
    (_set(["linux", "seccomp", "syscalls"], [{"names": ["read"], "action": "NOPE"}]), "unknown action"),
    (_set(["linux", "seccomp", "syscalls"], [{"names": [], "action": "SCMP_ACT_ALLOW"}]), "names must be"),
    (_set(["linux", "seccomp", "syscalls"], [{"names": ["r"], "action": "SCMP_ACT_ALLOW",
                                              "args": [{"index": 0, "op": "SCMP_CMP_ABOUT"}]}]), "unknown operator"),
    (_set(["linux", "seccomp", "syscalls"], [{"names": ["r"], "action": "SCMP_ACT_ALLOW",
                                              "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]), "index must be 0-5"),
    (_set(["linux", "seccomp"], "default"), "linux.seccomp must be an object"),
    (_set(["linux", "sysctl"], {"net.x": 1}), "linux.sysctl"),
])
def test_each_check(good, mutate, msg):
    assert msg in _bad(good, mutate)


def test_systemd_cgroups_path_allowed(good):
    spec = copy.deepcopy(good)
    spec["linux"]["cgroupsPath"] = "system.slice:hoist:abc"
    validate(spec)


def test_every_failure_is_named(good):
    def mutate(spec):
        spec["process"]["cwd"] = "rel"
        spec["process"]["user"]["uid"] = -1
        spec["linux"]["namespaces"].append({"type": "pid"})
        spec["linux"]["maskedPaths"] = ["x"]
        spec["process"]["rlimits"] = [{"type": "RLIMIT_X", "soft": 0, "hard": 0}]
    msg = _bad(good, mutate)
    for part in ("process.cwd", "process.user.uid", "pid given twice", "maskedPaths", "RLIMIT_X"):
        assert part in msg
    assert msg.startswith("invalid runtime spec: ")


def test_malformed_shapes_are_reported_not_crashing(good):
    msg = _bad(good, _set(["linux", "resources"], {"memory": [1, 2]}))
    assert "malformed" in msg or "memory" in msg
    msg = _bad(good, _set(["process", "rlimits"], ["nofile"]))
    assert "rlimits entries must be objects" in msg
    msg = _bad(good, _set(["linux", "namespaces"], ["mount"]))
    assert "unknown namespace type" in msg


def test_checks_are_small_functions():
    assert len(CHECKS) >= 10 and all(callable(c) for c in CHECKS)
