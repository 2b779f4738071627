"""The JSON types of a container create body, checked as dockerd's Go decoder does.

dockerd decodes the body into typed structs, so a string where a number belongs is a
400 before anything else happens ("json: cannot unmarshal string into Go struct field
…"). hoist reads plain dicts; without this check such a body would fail later and less
clearly (a 500 from deep inside, or a start that cannot work). null is every field's
zero value, as in Go.
"""
from __future__ import annotations

from typing import Any, Mapping

from ...errors import InvalidArgument

# kind -> (accepts, Go type name for the message)
STR, BOOL, INT, UINT = "string", "bool", "int64", "uint"
STRLIST = "[]string"
STRSLICE = "strslice.StrSlice"   # a string or a list of strings
STRMAP = "map[string]string"
OBJ = "object"                   # any JSON object (checked further elsewhere)
OBJLIST = "[]object"

CONFIG: dict[str, str] = {
    "Hostname": STR, "Domainname": STR, "User": STR, "AttachStdin": BOOL,
    "AttachStdout": BOOL, "AttachStderr": BOOL, "ExposedPorts": OBJ, "Tty": BOOL,
    "OpenStdin": BOOL, "StdinOnce": BOOL, "Env": STRLIST, "Cmd": STRSLICE,
    "Healthcheck": OBJ, "ArgsEscaped": BOOL, "Image": STR, "Volumes": OBJ,
    "WorkingDir": STR, "Entrypoint": STRSLICE, "NetworkDisabled": BOOL, "MacAddress": STR,
    "OnBuild": STRLIST, "Labels": STRMAP, "StopSignal": STR, "StopTimeout": INT,
    "Shell": STRSLICE, "HostConfig": OBJ, "NetworkingConfig": OBJ,
}

HOST_CONFIG: dict[str, str] = {
    "Binds": STRLIST, "ContainerIDFile": STR, "LogConfig": OBJ, "NetworkMode": STR,
    "PortBindings": OBJ, "RestartPolicy": OBJ, "AutoRemove": BOOL, "VolumeDriver": STR,
    "VolumesFrom": STRLIST, "ConsoleSize": OBJLIST, "Annotations": STRMAP,
    "CapAdd": STRSLICE, "CapDrop": STRSLICE, "CgroupnsMode": STR, "Dns": STRLIST,
    "DnsOptions": STRLIST, "DnsSearch": STRLIST, "ExtraHosts": STRLIST, "GroupAdd": STRLIST,
    "IpcMode": STR, "Cgroup": STR, "Links": STRLIST, "OomScoreAdj": INT, "PidMode": STR,
    "Privileged": BOOL, "PublishAllPorts": BOOL, "ReadonlyRootfs": BOOL,
    "SecurityOpt": STRLIST, "StorageOpt": STRMAP, "Tmpfs": STRMAP, "UTSMode": STR,
    "UsernsMode": STR, "ShmSize": INT, "Sysctls": STRMAP, "Runtime": STR, "Isolation": STR,
    "CpuShares": INT, "Memory": INT, "NanoCpus": INT, "CgroupParent": STR,
    "BlkioWeight": UINT, "BlkioWeightDevice": OBJLIST, "BlkioDeviceReadBps": OBJLIST,
    "BlkioDeviceWriteBps": OBJLIST, "BlkioDeviceReadIOps": OBJLIST,
    "BlkioDeviceWriteIOps": OBJLIST, "CpuPeriod": INT, "CpuQuota": INT,
    "CpuRealtimePeriod": INT, "CpuRealtimeRuntime": INT, "CpusetCpus": STR,
    "CpusetMems": STR, "Devices": OBJLIST, "DeviceCgroupRules": STRLIST,
    "DeviceRequests": OBJLIST, "KernelMemory": INT, "KernelMemoryTCP": INT,
    "MemoryReservation": INT, "MemorySwap": INT, "MemorySwappiness": INT,
    "OomKillDisable": BOOL, "PidsLimit": INT, "Ulimits": OBJLIST, "CpuCount": INT,
    "CpuPercent": INT, "IOMaximumIOps": UINT, "IOMaximumBandwidth": UINT,
    "Mounts": OBJLIST, "MaskedPaths": STRLIST, "ReadonlyPaths": STRLIST, "Init": BOOL,
}

NESTED: dict[str, dict[str, str]] = {
    "RestartPolicy": {"Name": STR, "MaximumRetryCount": INT},
    "LogConfig": {"Type": STR, "Config": STRMAP},
    "Healthcheck": {"Test": STRLIST, "Interval": INT, "Timeout": INT, "StartPeriod": INT,
                    "StartInterval": INT, "Retries": INT},
}
ITEMS: dict[str, dict[str, str]] = {
    "Ulimits": {"Name": STR, "Soft": INT, "Hard": INT},
    "Mounts": {"Type": STR, "Source": STR, "Target": STR, "ReadOnly": BOOL,
               "Consistency": STR, "BindOptions": OBJ, "VolumeOptions": OBJ,
               "TmpfsOptions": OBJ},
}


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _fits(kind: str, v: Any) -> bool:
    if v is None:
        return True
    if kind == STR:
        return isinstance(v, str)
    if kind == BOOL:
        return isinstance(v, bool)
    if kind in (INT, UINT):
        ok = isinstance(v, int) and not isinstance(v, bool) or \
            isinstance(v, float) and v.is_integer()
        return ok and (kind == INT or v >= 0)
    if kind == STRLIST:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == STRSLICE:
        return isinstance(v, str) or isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == STRMAP:
        return isinstance(v, dict) and all(isinstance(x, str) or x is None for x in v.values())
    if kind == OBJ:
        return isinstance(v, dict)
    if kind == OBJLIST:
        return isinstance(v, list)
    return True


def _check(doc: Mapping[str, Any], fields: Mapping[str, str], where: str) -> None:
    for key, kind in fields.items():
        v = doc.get(key)
        if not _fits(kind, v):
            raise InvalidArgument(f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
                                  f"{where}.{key} of type {kind}")
        if v is None:
            continue
        if key in NESTED:
            _check(v, NESTED[key], f"{where}.{key}")
        if key in ITEMS:
            for item in v:
                if not isinstance(item, dict):
                    raise InvalidArgument(f"json: cannot unmarshal {_json_kind(item)} into Go "
                                          f"struct field {where}.{key} of type object")
                _check(item, ITEMS[key], f"{where}.{key}")


def check_create_body(body: Mapping[str, Any]) -> None:
    """Raise InvalidArgument (400) naming the first field whose JSON type is wrong."""
    _check(body, CONFIG, "Config")
    hc = body.get("HostConfig")
    if hc:
        _check(hc, HOST_CONFIG, "HostConfig")


EXEC_CONFIG: dict[str, str] = {
    "User": STR, "Privileged": BOOL, "Tty": BOOL, "ConsoleSize": OBJLIST,
    "AttachStdin": BOOL, "AttachStderr": BOOL, "AttachStdout": BOOL, "Detach": BOOL,
    "DetachKeys": STR, "Env": STRLIST, "WorkingDir": STR, "Cmd": STRSLICE,
}


def check_exec_body(body: Mapping[str, Any]) -> None:
    """POST /containers/{id}/exec, as check_create_body."""
    _check(body, EXEC_CONFIG, "ExecConfig")


# HostConfig as dockerd stores and shows it for a body that left everything out: every
# field (Go zero values), then the defaults dockerd fills in at create.
HOST_CONFIG_ZERO: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
    "NetworkMode": "", "PortBindings": None, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0],
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "", "Dns": None, "DnsOptions": None,
    "DnsSearch": None, "ExtraHosts": None, "GroupAdd": None, "IpcMode": "", "Cgroup": "",
    "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
    "UsernsMode": "", "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 0,
    "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": None,
    "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": None,
    "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
    "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None,
    "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}


def complete_host_config(hc: Mapping[str, Any], cgroup_v1: bool, masked: list[str],
                         readonly: list[str], shm_size: int) -> dict[str, Any]:
    """The client's HostConfig over the zero values, with dockerd's create-time defaults:
    a private IPC namespace, the host's cgroup namespace on cgroup v1 (private on v2),
    64 MiB /dev/shm, json-file logs and, unless privileged, the masked and read-only
    paths spelled out."""
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v)
                           for k, v in HOST_CONFIG_ZERO.items()}
    out.update({k: v for k, v in hc.items() if v is not None})
    if not out["IpcMode"]:
        out["IpcMode"] = "private"
    if not out["CgroupnsMode"]:
        out["CgroupnsMode"] = "host" if cgroup_v1 else "private"
    if not out["ShmSize"]:
        out["ShmSize"] = shm_size
    log = dict(out["LogConfig"] or {})
    log.setdefault("Config", {})
    if not log.get("Type"):
        log["Type"] = "json-file"
    out["LogConfig"] = log
    if not out["Privileged"]:
        if out["MaskedPaths"] is None:
            out["MaskedPaths"] = list(masked)
        if out["ReadonlyPaths"] is None:
            out["ReadonlyPaths"] = list(readonly)
    return out
