"""Docker's restart policies: validation, the per-container restart decision and backoff.

No processes and no database here: the engine asks a :class:`RestartManager` what to do
when a container's init exits and performs the answer itself. Behaviour follows dockerd
(api/types/container ValidateRestartPolicy, restartmanager, daemon/monitor.go, restore):

* ``no`` never restarts; ``always`` restarts on any exit; ``unless-stopped`` likewise
  unless the user stopped the container; ``on-failure[:N]`` restarts on a non-zero exit
  while fewer than N restarts were made (N=0: no limit).
* ``docker stop``/``kill`` cancel the manager (dockerd's ExitOnNext), so the exit they
  cause is never restarted, whatever the policy. ``always`` and ``unless-stopped`` then
  differ only when the daemon starts: ``always`` containers are started again even if
  they were stopped by hand, ``unless-stopped`` ones are not.
* Before each restart the engine waits: 100 ms, doubling per restart up to 1 minute; a
  run of at least 10 s resets the wait to 100 ms.
* A manual start makes a fresh manager (RestartCount back to 0); an automatic restart
  keeps the same one, so its count and backoff carry on.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ...errors import Conflict, InvalidArgument

log = logging.getLogger(__name__)

NO = "no"
ALWAYS = "always"
ON_FAILURE = "on-failure"
UNLESS_STOPPED = "unless-stopped"
POLICIES = (NO, ALWAYS, ON_FAILURE, UNLESS_STOPPED)

INITIAL_DELAY = 0.1   # seconds before the first automatic restart
MAX_DELAY = 60.0      # backoff ceiling
BACKOFF_FACTOR = 2
RESET_AFTER = 10.0    # a run at least this long resets the backoff

ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class RestartPolicy:
    name: str = NO
    maximum_retry_count: int = 0

    @classmethod
    def from_api(cls, raw: Mapping[str, Any] | None) -> "RestartPolicy":
        """HostConfig.RestartPolicy, validated as dockerd does (raises InvalidArgument)."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidArgument("invalid restart policy: must be an object")
        name = raw.get("Name") or ""
        count = raw.get("MaximumRetryCount") or 0
        if not isinstance(name, str):
            raise InvalidArgument("invalid restart policy: Name must be a string")
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidArgument("invalid restart policy: MaximumRetryCount must be an integer")
        if name == "":
            # dockerd accepts (and ignores) a count without a name, for old clients.
            return cls()
        if name in (NO, ALWAYS, UNLESS_STOPPED):
            if count != 0:
                msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                raise InvalidArgument(msg + (" and cannot be negative" if count < 0 else ""))
        elif name == ON_FAILURE:
            if count < 0:
                raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
        else:
            raise InvalidArgument(f"invalid restart policy: unknown policy '{name}'; use one of "
                                  "'no', 'always', 'on-failure', or 'unless-stopped'")
        return cls(name, count)

    def to_api(self) -> dict[str, Any]:
        return {"Name": self.name, "MaximumRetryCount": self.maximum_retry_count}

    @property
    def is_none(self) -> bool:
        return self.name == NO


def validate_restart_policy(host_config: Mapping[str, Any]) -> RestartPolicy:
    """Create-time check of HostConfig (RestartPolicy and AutoRemove) in dockerd's order."""
    raw = host_config.get("RestartPolicy")
    name = raw.get("Name") if isinstance(raw, Mapping) else None
    if host_config.get("AutoRemove") and name not in (None, "", NO):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    return RestartPolicy.from_api(raw)


def policy_for_update(raw: Mapping[str, Any] | None, auto_remove: bool) -> RestartPolicy | None:
    """``docker update --restart``: the new policy, or None when the request sets none."""
    if not raw or not raw.get("Name"):
        return None
    policy = RestartPolicy.from_api(raw)
    if auto_remove and not policy.is_none:
        raise Conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
    return policy


def wants_restart(policy: RestartPolicy, exit_code: int, manually_stopped: bool,
                  restart_count: int) -> bool:
    """The policy's vote alone (no cancellation, no backoff)."""
    if policy.name == ALWAYS:
        return True
    if policy.name == UNLESS_STOPPED:
        return not manually_stopped
    if policy.name == ON_FAILURE:
        limit = policy.maximum_retry_count
        return exit_code != 0 and (limit == 0 or restart_count < limit)
    return False


@dataclass(frozen=True)
class RestartDecision:
    restart: bool
    delay: float         # seconds to wait before starting again (meaningful if restart)
    restart_count: int   # the container's RestartCount after this decision
    reason: str = ""     # why not, for the log


def _event_wait(ev: threading.Event, seconds: float) -> bool:
    return ev.wait(seconds)


class RestartManager:
    """One per running container, from its start until it stays stopped.

    Not a thread: :meth:`should_restart` is pure bookkeeping; :meth:`wait` /
    :meth:`schedule` do the backoff wait, which :meth:`cancel` cuts short. Thread-safe.
    """

    def __init__(self, policy: RestartPolicy, restart_count: int = 0, *,
                 wait: Callable[[threading.Event, float], bool] = _event_wait) -> None:
        self._policy = policy
        self._count = restart_count
        self._delay = 0.0
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._wait = wait

    @property
    def policy(self) -> RestartPolicy:
        return self._policy

    def set_policy(self, policy: RestartPolicy) -> None:
        """``docker update --restart`` on a live container."""
        with self._lock:
            self._policy = policy

    @property
    def restart_count(self) -> int:
        return self._count

    @property
    def canceled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """No more restarts from this manager: docker stop/kill/restart/rm, daemon shutdown."""
        self._cancel.set()

    def should_restart(self, exit_code: int, manually_stopped: bool,
                       run_duration: float) -> RestartDecision:
        """Decide after the container's init exited.

        ``manually_stopped``: the user stopped/killed it, or the daemon is shutting down.
        ``run_duration``: seconds from State.StartedAt to the exit. When the answer is to
        restart, RestartCount becomes ``decision.restart_count`` and the engine waits
        ``decision.delay`` (see :meth:`wait`) before starting it again.
        """
        with self._lock:
            if self._policy.is_none:
                return RestartDecision(False, 0.0, self._count, "restart policy is 'no'")
            if self._cancel.is_set():
                return RestartDecision(False, 0.0, self._count, "restart canceled")
            # Backoff advances on every exit, restarted or not, exactly like dockerd.
            if run_duration >= RESET_AFTER or self._delay == 0:
                self._delay = INITIAL_DELAY
            elif self._delay < MAX_DELAY:
                self._delay = min(self._delay * BACKOFF_FACTOR, MAX_DELAY)
            if not wants_restart(self._policy, exit_code, manually_stopped, self._count):
                return RestartDecision(False, 0.0, self._count, f"policy '{self._policy.name}' declines")
            self._count += 1
            return RestartDecision(True, self._delay, self._count)

    def wait(self, seconds: float) -> bool:
        """Sleep the backoff; False when canceled meanwhile (then do not start)."""
        if self._cancel.is_set():
            return False
        return not self._wait(self._cancel, seconds) and not self._cancel.is_set()

    def schedule(self, decision: RestartDecision, start: Callable[[], None],
                 gave_up: Callable[[BaseException | None], None]) -> threading.Thread:
        """Wait ``decision.delay`` on a daemon thread, then call ``start()``.

        ``gave_up(None)`` when canceled during the wait, ``gave_up(err)`` when start()
        raised: the engine then marks the container stopped (and auto-removes it).
        """
        def run() -> None:
            if not self.wait(decision.delay):
                gave_up(None)
                return
            try:
                start()
            except BaseException as e:  # report every failure to the engine, never lose it
                log.debug("restart failed: %s", e)
                gave_up(e)

        t = threading.Thread(target=run, name="restart", daemon=True)
        t.start()
        return t


# ---------------------------------------------------------------- daemon start

def should_start_at_daemon_start(policy: RestartPolicy, *, exit_code: int, manually_stopped: bool,
                                 restart_count: int, started_before: bool) -> bool:
    """Start this stopped container when hoistd starts?

    ``always``: yes (even after a manual stop); ``unless-stopped``: if not stopped by
    hand; ``on-failure``: if the last exit was non-zero and retries remain. Never for a
    container that was never started.
    """
    return started_before and wants_restart(policy, exit_code, manually_stopped, restart_count)


def restart_at_daemon_start(doc: Mapping[str, Any], manually_stopped: bool) -> bool:
    """:func:`should_start_at_daemon_start` for an inspect-shaped container document."""
    state = doc.get("State") or {}
    try:
        policy = RestartPolicy.from_api((doc.get("HostConfig") or {}).get("RestartPolicy"))
    except InvalidArgument:
        return False  # a record we cannot read is never auto-started
    started = state.get("StartedAt") or ZERO_TIME
    return should_start_at_daemon_start(
        policy, exit_code=int(state.get("ExitCode") or 0), manually_stopped=manually_stopped,
        restart_count=int(doc.get("RestartCount") or 0),
        started_before=not str(started).startswith("0001-"))


def containers_to_start(records: Iterable[tuple[Mapping[str, Any], bool]]) -> list[str]:
    """Ids to start at daemon start from (inspect doc, manually stopped) of stopped containers."""
    return [str(doc["Id"]) for doc, manual in records if restart_at_daemon_start(doc, manual)]
