"""Docker's container health checks: configuration, validation and the probe loop.

This module knows nothing about how a probe runs: the engine hands a :class:`Probe`
(an exec inside the container) to a :class:`HealthChecker`, which schedules probes the
way dockerd does, keeps the ``State.Health`` document and reports every result through
``on_change``. Everything that decides something is a pure function so it can be tested
without threads or waiting; the checker only adds the schedule.

Behaviour follows dockerd (daemon/health.go, container/health.go):

* Test ``["NONE"]`` (or no test / an unknown test type) means no probe at all;
  ``["CMD", argv...]`` runs argv, ``["CMD-SHELL", cmd]`` runs the container's Shell
  (default ``/bin/sh -c``) with cmd.
* Zero durations mean the defaults: interval 30s, timeout 30s, start period 0,
  start interval 5s; zero retries mean 3.
* The first probe runs one interval after the checker starts; later ones one interval
  after the previous probe ended. While the container is in its start period and has
  never been healthy, the start interval is used instead.
* Exit code 0 resets the failing streak and makes the container healthy. Any other exit
  code is a failure; failures of probes that *began* within the start period do not count
  while the status is still ``starting``. ``retries`` counted failures in a row make it
  unhealthy.
* A probe that runs past its timeout is a failure with ExitCode -1 and Output
  ``Health check exceeded timeout (30s)`` (plus ``: <output>`` if it printed something).
* Output is kept to 4096 bytes, with ``...`` appended when cut; Log keeps the last 5.
* Stopping the checker (container stopped or paused) leaves Status ``unhealthy``, as
  dockerd does "for compatibility"; a fresh start resets Status to ``starting`` and
  FailingStreak to 0 but keeps the Log.
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from ...errors import InvalidArgument

log = logging.getLogger(__name__)

NS = 1_000_000_000
MINIMUM_DURATION_NS = 1_000_000  # 1ms, dockerd's containertypes.MinimumDuration

DEFAULT_INTERVAL_NS = 30 * NS
DEFAULT_TIMEOUT_NS = 30 * NS
DEFAULT_START_PERIOD_NS = 0
DEFAULT_START_INTERVAL_NS = 5 * NS
DEFAULT_RETRIES = 3

MAX_OUTPUT_BYTES = 4096
MAX_LOG_ENTRIES = 5

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"

DEFAULT_SHELL = ("/bin/sh", "-c")

_DURATION_FIELDS = ("Interval", "Timeout", "StartPeriod", "StartInterval")


class Probe(Protocol):
    """Runs one health probe inside the container.

    Returns (exit code, combined stdout+stderr). On timeout it must stop the probe
    process and return ``(-1, output captured so far)``; a real process never exits
    with -1, so -1 is how a timeout is told apart. Raising an exception records the
    probe as failed with ExitCode -1 and the exception's message as Output (dockerd does
    the same when the exec cannot be started).
    """

    def __call__(self, argv: list[str], timeout_s: float) -> tuple[int, str | bytes]: ...


# ---------------------------------------------------------------- configuration

def _ns(raw: Mapping[str, Any], key: str) -> int:
    v = raw.get(key) or 0
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        raise InvalidArgument(f"{key} in Healthcheck must be an integer number of nanoseconds")
    return v


def validate_healthcheck(raw: Mapping[str, Any] | None) -> None:
    """dockerd's create-time checks of Config.Healthcheck (raises InvalidArgument)."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise InvalidArgument("Healthcheck must be an object")
    test = raw.get("Test")
    if test is not None and (not isinstance(test, list) or not all(isinstance(t, str) for t in test)):
        raise InvalidArgument("Test in Healthcheck must be a list of strings")
    # Same order and wording as dockerd, so the first error matches its message.
    for key in ("Interval", "Timeout"):
        v = _ns(raw, key)
        if v != 0 and v < MINIMUM_DURATION_NS:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    retries = raw.get("Retries") or 0
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise InvalidArgument("Retries in Healthcheck must be an integer")
    if retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    for key in ("StartPeriod", "StartInterval"):
        v = _ns(raw, key)
        if v != 0 and v < MINIMUM_DURATION_NS:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")


def effective_healthcheck(container: Mapping[str, Any] | None,
                          image: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The Healthcheck stored in a container's Config: the request's over the image's.

    As dockerd's config merge: no container healthcheck takes the image's whole; else each
    container field that is empty/zero is taken from the image. ``["NONE"]`` is kept as is
    (it is what ``docker inspect`` shows for ``--no-healthcheck``); :meth:`HealthConfig.parse`
    turns it into "no probe".
    """
    if container is None:
        return dict(image) if image is not None else None
    merged = dict(container)
    if image is None:
        return merged
    if not merged.get("Test"):
        if image.get("Test"):
            merged["Test"] = list(image["Test"])
    for key in _DURATION_FIELDS + ("Retries",):
        if not merged.get(key) and image.get(key):
            merged[key] = image[key]
    return merged


@dataclass(frozen=True)
class HealthConfig:
    """A Healthcheck with defaults applied; only exists when there is something to run."""

    argv: tuple[str, ...]          # what to exec (shell already prepended for CMD-SHELL)
    interval_ns: int = DEFAULT_INTERVAL_NS
    timeout_ns: int = DEFAULT_TIMEOUT_NS
    start_period_ns: int = DEFAULT_START_PERIOD_NS
    start_interval_ns: int = DEFAULT_START_INTERVAL_NS
    retries: int = DEFAULT_RETRIES

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None,
              shell: list[str] | tuple[str, ...] | None = None) -> "HealthConfig | None":
        """From a (merged) Config.Healthcheck; None when no probe should run.

        ``shell`` is the container's Config.Shell (used for CMD-SHELL when set).
        """
        if not raw:
            return None
        test = list(raw.get("Test") or [])
        if not test:
            return None
        kind = test[0]
        if kind == "CMD":
            argv = tuple(test[1:])
        elif kind == "CMD-SHELL":
            argv = tuple(shell or DEFAULT_SHELL) + tuple(test[1:])
        else:
            # "NONE" disables; any other type is ignored by dockerd with a warning.
            if kind != "NONE":
                log.warning("unknown healthcheck type %r (expected 'CMD')", kind)
            return None
        return cls(
            argv=argv,
            interval_ns=_ns(raw, "Interval") or DEFAULT_INTERVAL_NS,
            timeout_ns=_ns(raw, "Timeout") or DEFAULT_TIMEOUT_NS,
            start_period_ns=_ns(raw, "StartPeriod") or DEFAULT_START_PERIOD_NS,
            start_interval_ns=_ns(raw, "StartInterval") or DEFAULT_START_INTERVAL_NS,
            retries=int(raw.get("Retries") or 0) or DEFAULT_RETRIES,
        )


# ---------------------------------------------------------------- pure state machine

@dataclass(frozen=True)
class ProbeResult:
    start: float      # unix time the probe began
    end: float        # unix time it finished
    exit_code: int
    output: str

    def to_api(self) -> dict[str, Any]:
        return {"Start": rfc3339nano(self.start), "End": rfc3339nano(self.end),
                "ExitCode": self.exit_code, "Output": self.output}


def new_health_doc(previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """State.Health for a (re)started container: starting, no streak, the old Log kept."""
    logs = list((previous or {}).get("Log") or [])
    return {"Status": STARTING, "FailingStreak": 0, "Log": logs}


def stopped_health_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """State.Health once probing stops (stop, pause): dockerd marks it unhealthy."""
    out = _copy_doc(doc)
    out["Status"] = UNHEALTHY
    return out


def _copy_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {"Status": doc.get("Status") or UNHEALTHY,
            "FailingStreak": int(doc.get("FailingStreak") or 0),
            "Log": list(doc.get("Log") or [])}


def apply_result(doc: Mapping[str, Any], result: ProbeResult, cfg: HealthConfig,
                 started_at: float) -> tuple[dict[str, Any], bool]:
    """The Health document after one probe, and whether its Status changed.

    ``started_at`` is the container's State.StartedAt (unix time): a failure of a probe
    that began less than the start period after it does not count while still starting.
    """
    new = _copy_doc(doc)
    old_status = new["Status"]
    new["Log"] = (new["Log"] + [result.to_api()])[-MAX_LOG_ENTRIES:]
    if result.exit_code == 0:
        new["FailingStreak"] = 0
        new["Status"] = HEALTHY
    else:
        in_grace = (old_status == STARTING
                    and (result.start - started_at) * NS < cfg.start_period_ns)
        if not in_grace:
            new["FailingStreak"] += 1
            if new["FailingStreak"] >= cfg.retries:
                new["Status"] = UNHEALTHY
    return new, new["Status"] != old_status


def next_delay(cfg: HealthConfig, status: str, now: float, started_at: float) -> float:
    """Seconds to wait before the next probe (after start, and after each probe ends)."""
    if (now - started_at) * NS >= cfg.start_period_ns:
        return cfg.interval_ns / NS
    if status == STARTING:
        return cfg.start_interval_ns / NS
    return cfg.interval_ns / NS


def truncate_output(out: str | bytes) -> str:
    """Probe output as dockerd stores it: at most 4096 bytes, ``...`` when cut."""
    data = out if isinstance(out, bytes) else out.encode("utf-8", "surrogateescape")
    cut = len(data) > MAX_OUTPUT_BYTES
    # Invalid UTF-8 (including a character cut in half) becomes U+FFFD, as Go's JSON does.
    text = data[:MAX_OUTPUT_BYTES].decode("utf-8", "replace")
    return text + "..." if cut else text


def timeout_message(timeout_ns: int, output: str) -> str:
    msg = f"Health check exceeded timeout ({go_duration(timeout_ns)})"
    return f"{msg}: {output}" if output else msg


def run_probe_once(probe: Probe, cfg: HealthConfig, now: Callable[[], float]) -> ProbeResult:
    """Run one probe and turn whatever happened into a result (never raises)."""
    start = now()
    if not cfg.argv:
        return ProbeResult(start, now(), -1, "healthcheck command is empty")
    try:
        code, raw = probe(list(cfg.argv), cfg.timeout_ns / NS)
    except Exception as e:  # any probe failure is a failed check, not a dead checker
        return ProbeResult(start, now(), -1, truncate_output(str(e)))
    out = truncate_output(raw or "")
    if code == -1:
        out = timeout_message(cfg.timeout_ns, out)
    return ProbeResult(start, now(), int(code), out)


# ---------------------------------------------------------------- the checker thread

OnChange = Callable[[dict[str, Any], bool], None]


def _event_wait(ev: threading.Event, seconds: float) -> bool:
    return ev.wait(seconds)


class HealthChecker:
    """Probes one running container on a daemon thread until :meth:`stop`.

    ``on_change(doc, status_changed)`` is called on the checker thread after every probe
    with a fresh copy of State.Health; ``status_changed`` is True when Status differs from
    before the probe (publish ``health_status: <Status>`` then). Exceptions it raises are
    logged and ignored so a persistence hiccup does not end health checking.

    ``now`` (unix time) and ``wait(stop_event, seconds) -> stopped`` are injectable so
    tests run in virtual time.
    """

    def __init__(self, container_id: str, cfg: HealthConfig, probe: Probe, on_change: OnChange,
                 *, started_at: float, previous: Mapping[str, Any] | None = None,
                 resume: bool = False,
                 now: Callable[[], float] = time.time,
                 wait: Callable[[threading.Event, float], bool] = _event_wait) -> None:
        self.container_id = container_id
        self.cfg = cfg
        self._probe = probe
        self._on_change = on_change
        self._started_at = started_at
        self._now = now
        self._wait = wait
        # resume=True (unpause) keeps Status/FailingStreak like dockerd's reopened monitor;
        # otherwise this is a (re)start and the document is reset to starting.
        self._doc = _copy_doc(previous) if (resume and previous) else new_health_doc(previous)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def doc(self) -> dict[str, Any]:
        """A copy of the current State.Health document."""
        with self._lock:
            return _copy_doc(self._doc)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"health-{self.container_id[:12]}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        """Stop probing (container stopped, paused or removed); returns State.Health.

        Does not wait: a probe in flight is left to its own timeout (the engine's probe
        dies with the container anyway) and its result is dropped. The returned document
        has Status ``unhealthy`` as dockerd leaves it; no event is due for that change.

        ``on_change`` runs outside this object's lock, so one call that was already under
        way may still arrive after stop() returned: call stop() while holding the lock
        that ``on_change`` takes and have ``on_change`` return early when
        :attr:`stopped` is set; then nothing stale is ever persisted.
        """
        self._stop.set()
        with self._lock:
            self._doc = stopped_health_doc(self._doc)
            return _copy_doc(self._doc)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (tests, daemon shutdown)."""
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                delay = next_delay(self.cfg, self.doc["Status"], self._now(), self._started_at)
                if self._wait(self._stop, delay) or self._stop.is_set():
                    return
                result = run_probe_once(self._probe, self.cfg, self._now)
                with self._lock:
                    # A result that lands after stop() is dropped, as dockerd does.
                    if self._stop.is_set():
                        return
                    self._doc, changed = apply_result(self._doc, result, self.cfg, self._started_at)
                    snapshot = _copy_doc(self._doc)
                try:
                    self._on_change(snapshot, changed)
                except Exception:
                    log.exception("health: on_change failed for %s", self.container_id)
        except Exception:  # keep a bug from dying silently on a daemon thread
            log.exception("health checker for %s crashed", self.container_id)


# ---------------------------------------------------------------- presentation

def health_status(state: Mapping[str, Any]) -> str:
    """State.Health.Status, or ``none`` without a health check (``ps --filter health=``)."""
    health = state.get("Health")
    if not health:
        return "none"
    return str(health.get("Status") or UNHEALTHY)


def ps_suffix(state: Mapping[str, Any]) -> str:
    """What ``docker ps`` appends to "Up 3 minutes" for a running container."""
    status = health_status(state)
    if status == "none":
        return ""
    return " (health: starting)" if status == STARTING else f" ({status})"


# ---------------------------------------------------------------- formatting

def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): 30s, 1.5s, 100ms, 2m0s, 1h0m0s."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    sign = "-" if neg else ""
    if u < NS:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if u >= size:
                return sign + _frac(u, size) + unit
    h, rem = divmod(u, 3600 * NS)
    m, rem = divmod(rem, 60 * NS)
    s = _frac(rem, NS) + "s"
    if h:
        return f"{sign}{h}h{m}m{s}"
    if m:
        return f"{sign}{m}m{s}"
    return sign + s


def _frac(v: int, size: int) -> str:
    whole, part = divmod(v, size)
    if not part:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}." + f"{part:0{digits}d}".rstrip("0")


def rfc3339nano(t: float) -> str:
    """UTC time as Go's RFC3339Nano (trailing zeros of the fraction dropped)."""
    ns = int(round(t * 1_000_000)) * 1000  # float seconds carry microseconds reliably
    sec, frac = divmod(ns, NS)
    base = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    f = f"{frac:09d}".rstrip("0")
    return f"{base}.{f}Z" if f else base + "Z"
