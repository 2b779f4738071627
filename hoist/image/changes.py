"""``--change`` instructions for import and commit (a Dockerfile subset applied to a config).

Docker accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR and
STOPSIGNAL here; everything else is refused with Docker's message.
"""
from __future__ import annotations

import copy
import json
import shlex
from typing import Any

from ..errors import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "USER", "VOLUME",
           "WORKDIR", "STOPSIGNAL")


def _json_or_shell(arg: str) -> list[str]:
    s = arg.strip()
    if s.startswith("["):
        try:
            v = json.loads(s)
        except ValueError:
            v = None
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    return ["/bin/sh", "-c", s]


def _key_values(arg: str, what: str) -> list[tuple[str, str]]:
    """``K=V K2="v 2"`` or the legacy ``K V with spaces`` form."""
    s = arg.strip()
    if not s:
        raise InvalidArgument(f"{what} requires at least one argument")
    first = s.split(None, 1)[0]
    if "=" not in first:
        parts = s.split(None, 1)
        if len(parts) < 2 and what == "ENV":
            raise InvalidArgument("ENV must have two arguments")
        return [(parts[0], parts[1] if len(parts) > 1 else "")]
    out = []
    for tok in shlex.split(s, posix=True):
        if "=" not in tok:
            raise InvalidArgument(f"{what} names can not be blank: {tok!r} has no '='")
        k, v = tok.split("=", 1)
        if not k:
            raise InvalidArgument(f"{what} names can not be blank")
        out.append((k, v))
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return a new container config with the ``changes`` applied (input untouched)."""
    cfg = copy.deepcopy(config)
    cmd_set = False
    for line in changes:
        line = line.strip()
        if not line:
            continue
        parts = line.split(None, 1)
        instr = parts[0].upper()
        arg = parts[1] if len(parts) > 1 else ""
        if instr not in ALLOWED:
            raise InvalidArgument(f"{parts[0].lower()} is not a valid change command")
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(arg)
            cmd_set = True
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(arg)
            # As in a Dockerfile: a new ENTRYPOINT drops the inherited CMD, unless a CMD
            # came earlier in the same list of changes.
            if not cmd_set:
                cfg["Cmd"] = None
        elif instr == "ENV":
            env = [e for e in (cfg.get("Env") or [])]
            for k, v in _key_values(arg, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_key_values(arg, "LABEL"))
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in arg.split():
                p = p if "/" in p else f"{p}/tcp"
                num = p.split("/")[0]
                if not all(x.isdigit() for x in num.split("-")):
                    raise InvalidArgument(f"invalid containerPort: {num}")
                ports[p] = {}
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _json_or_shell(arg) if arg.strip().startswith("[") else arg.split():
                vols[v] = {}
            cfg["Volumes"] = vols
        elif instr == "USER":
            cfg["User"] = arg.strip()
        elif instr == "WORKDIR":
            cfg["WorkingDir"] = arg.strip()
        elif instr == "STOPSIGNAL":
            cfg["StopSignal"] = arg.strip()
        elif instr == "ONBUILD":
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [arg.strip()]
    return cfg
