"""What the container API shows of a record: ps rows, status text, filters, times."""
from __future__ import annotations

import datetime
import os
import time
from typing import Any

from .health import health_status, ps_suffix

ZERO_TIME = "0001-01-01T00:00:00Z"


def iso(t: float | None) -> str:
    if not t:
        return ZERO_TIME
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")



def parse_iso(s: str) -> float:
    if s.startswith("0001"):
        return 0.0
    return datetime.datetime.strptime(s[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def _ago(t: float) -> str:
    d = max(0.0, time.time() - t)
    if d < 1:
        return "Less than a second"
    if d < 60:
        return f"{int(d)} seconds" if int(d) != 1 else "1 second"
    if d < 3600:
        m = int(d // 60)
        return "About a minute" if m == 1 else f"{m} minutes"
    h = int(d // 3600)
    if h < 48:
        return "About an hour" if h == 1 else f"{h} hours"
    return f"{h // 24} days"


def status_text(st: dict[str, Any]) -> str:
    if st.get("Restarting"):
        return f"Restarting ({st['ExitCode']}) {_ago(parse_iso(st['FinishedAt']))} ago"
    if st["Running"]:
        s = "Up " + _ago(parse_iso(st["StartedAt"]))
        return s + " (Paused)" if st["Paused"] else s + ps_suffix(st)
    if st["Status"] == "created":
        return "Created"
    return f"Exited ({st['ExitCode']}) {_ago(parse_iso(st['FinishedAt']))} ago"


def filter_ok(doc: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key == "status" and doc["State"]["Status"] not in values:
            return False
        if key == "health" and health_status(doc["State"]) not in values:
            return False
        if key == "name" and not any(v.lstrip("/") in doc["Name"] for v in values):
            return False
        if key == "id" and not any(doc["Id"].startswith(v) for v in values):
            return False
        if key == "label":
            labels = doc["Config"].get("Labels") or {}
            for v in values:
                k, _, val = v.partition("=")
                if k not in labels or ("=" in v and labels[k] != val):
                    return False
        if key == "exited" and (doc["State"]["Status"] != "exited" or
                                str(doc["State"]["ExitCode"]) not in values):
            return False
        if key == "ancestor" and not any(v in (doc["Config"]["Image"], doc["Image"]) for v in values):
            return False
    return True


def du(path: str) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def ps_row(doc: dict[str, Any], upper_dir: str | None = None) -> dict[str, Any]:
    """One entry of GET /containers/json; ``upper_dir`` given: with SizeRw (ps -s)."""
    st = doc["State"]
    return {
        "Id": doc["Id"], "Names": [doc["Name"]], "Image": doc["Config"]["Image"],
        "ImageID": doc["Image"], "Command": " ".join([doc["Path"], *doc["Args"]]).strip(),
        "Created": int(parse_iso(doc["Created"])), "Ports": [],
        "Labels": doc["Config"].get("Labels") or {}, "State": st["Status"],
        "Status": status_text(st), "HostConfig": {"NetworkMode": doc["HostConfig"]["NetworkMode"]},
        "NetworkSettings": {"Networks": {name: {**_ENDPOINT, **(ep or {})} for name, ep in
                                         (doc["NetworkSettings"].get("Networks") or {}).items()}},
        "Mounts": doc["Mounts"],
        **({"SizeRw": du(upper_dir), "SizeRootFs": 0} if upper_dir is not None else {}),
    }


_NETWORK_SETTINGS = {
    "Bridge": "", "SandboxID": "", "HairpinMode": False, "LinkLocalIPv6Address": "",
    "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": None,
    "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
    "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
    "MacAddress": "",
}
_ENDPOINT = {
    "IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": "", "EndpointID": "",
    "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
    "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None,
}


def inspect_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """GET /containers/{id}/json: the record with every key dockerd always shows (clients
    index them without checking), and without hoist's private ones."""
    out = {k: v for k, v in doc.items() if not k.startswith("Hoist")}
    out["State"] = dict(out["State"])
    cfg = out["Config"] = dict(out["Config"])
    cfg.setdefault("OnBuild", None)
    cfg.setdefault("Volumes", None)
    ns = out["NetworkSettings"] = {**_NETWORK_SETTINGS, **(out.get("NetworkSettings") or {})}
    ns["Networks"] = {name: {**_ENDPOINT, **(ep or {})}
                      for name, ep in (ns.get("Networks") or {}).items()}
    return out
