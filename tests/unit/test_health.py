"""Health checks: config merge/validation, the status state machine and the probe loop.

The loop runs on a real thread but in virtual time: ``VClock.wait`` advances the clock
instead of sleeping, so a schedule of 30 s intervals runs in milliseconds.
"""
from __future__ import annotations

import threading
from typing import Any

import pytest

from hoist.engine.containers import health as h
from hoist.engine.containers.health import (
    HEALTHY, NS, STARTING, UNHEALTHY, HealthChecker, HealthConfig, ProbeResult,
    apply_result, effective_healthcheck, go_duration, new_health_doc, next_delay,
    rfc3339nano, run_probe_once, stopped_health_doc, truncate_output, validate_healthcheck)
from hoist.errors import InvalidArgument

MS = 1_000_000


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("key", ["Interval", "Timeout", "StartPeriod", "StartInterval"])
def test_durations_zero_or_at_least_1ms(key: str) -> None:
    validate_healthcheck({key: 0})
    validate_healthcheck({key: MS})
    validate_healthcheck({key: 30 * NS})
    with pytest.raises(InvalidArgument, match=f"^{key} in Healthcheck cannot be less than 1ms$"):
        validate_healthcheck({key: MS - 1})
    with pytest.raises(InvalidArgument, match=f"^{key} in Healthcheck cannot be less than 1ms$"):
        validate_healthcheck({key: -5})


def test_retries_validation() -> None:
    validate_healthcheck({"Retries": 0})
    validate_healthcheck({"Retries": 7})
    with pytest.raises(InvalidArgument, match="^Retries in Healthcheck cannot be negative$"):
        validate_healthcheck({"Retries": -1})
    with pytest.raises(InvalidArgument):
        validate_healthcheck({"Retries": "3"})


def test_validation_rejects_malformed_values() -> None:
    validate_healthcheck(None)
    validate_healthcheck({"Test": ["NONE"]})
    with pytest.raises(InvalidArgument):
        validate_healthcheck({"Interval": "30s"})
    with pytest.raises(InvalidArgument):
        validate_healthcheck({"Test": "CMD true"})
    with pytest.raises(InvalidArgument):
        validate_healthcheck(["CMD", "true"])  # type: ignore[arg-type]


def test_validation_reports_interval_before_timeout_like_dockerd() -> None:
    with pytest.raises(InvalidArgument, match="^Interval"):
        validate_healthcheck({"Interval": 1, "Timeout": 1})


# ---------------------------------------------------------------- merge and parse

IMAGE = {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 10 * NS, "Timeout": 3 * NS,
         "StartPeriod": 20 * NS, "StartInterval": 2 * NS, "Retries": 5}


def test_merge_without_either() -> None:
    assert effective_healthcheck(None, None) is None
    assert effective_healthcheck(None, IMAGE) == IMAGE
    assert effective_healthcheck(None, IMAGE) is not IMAGE
    assert effective_healthcheck({"Test": ["CMD", "true"]}, None) == {"Test": ["CMD", "true"]}


def test_merge_container_fields_override_where_nonzero() -> None:
    merged = effective_healthcheck({"Interval": 1 * NS, "Retries": 0, "Timeout": 0}, IMAGE)
    assert merged == {**IMAGE, "Interval": 1 * NS}
    merged = effective_healthcheck({"Test": ["CMD", "true"], "StartPeriod": 4 * NS}, IMAGE)
    assert merged == {**IMAGE, "Test": ["CMD", "true"], "StartPeriod": 4 * NS}


def test_merge_none_disables_image_check() -> None:
    merged = effective_healthcheck({"Test": ["NONE"]}, IMAGE)
    assert merged is not None and merged["Test"] == ["NONE"]
    assert HealthConfig.parse(merged) is None


def test_parse_kinds_and_defaults() -> None:
    assert HealthConfig.parse(None) is None
    assert HealthConfig.parse({}) is None
    assert HealthConfig.parse({"Test": []}) is None
    assert HealthConfig.parse({"Test": ["NONE"]}) is None
    assert HealthConfig.parse({"Test": ["BOGUS", "x"]}) is None
    cfg = HealthConfig.parse({"Test": ["CMD", "cat", "/ok"]})
    assert cfg == HealthConfig(argv=("cat", "/ok"), interval_ns=30 * NS, timeout_ns=30 * NS,
                               start_period_ns=0, start_interval_ns=5 * NS, retries=3)
    cfg = HealthConfig.parse({"Test": ["CMD-SHELL", "exit 1"]})
    assert cfg is not None and cfg.argv == ("/bin/sh", "-c", "exit 1")
    cfg = HealthConfig.parse({"Test": ["CMD-SHELL", "exit 1"]}, shell=["/bin/bash", "-ec"])
    assert cfg is not None and cfg.argv == ("/bin/bash", "-ec", "exit 1")
    cfg = HealthConfig.parse(IMAGE)
    assert cfg is not None
    assert (cfg.interval_ns, cfg.timeout_ns, cfg.start_period_ns, cfg.start_interval_ns, cfg.retries) == (
        10 * NS, 3 * NS, 20 * NS, 2 * NS, 5)


# ---------------------------------------------------------------- state machine

CFG = HealthConfig(argv=("true",), interval_ns=30 * NS, timeout_ns=30 * NS,
                   start_period_ns=60 * NS, start_interval_ns=5 * NS, retries=3)


def res(start: float, code: int, out: str = "") -> ProbeResult:
    return ProbeResult(start, start + 0.5, code, out)


def test_new_doc_is_starting_and_keeps_log() -> None:
    assert new_health_doc() == {"Status": STARTING, "FailingStreak": 0, "Log": []}
    old = {"Status": UNHEALTHY, "FailingStreak": 4, "Log": [{"ExitCode": 1}]}
    assert new_health_doc(old) == {"Status": STARTING, "FailingStreak": 0, "Log": [{"ExitCode": 1}]}


def test_failures_in_start_period_do_not_count() -> None:
    doc = new_health_doc()
    for t in (5, 10, 59.9):
        doc, changed = apply_result(doc, res(t, 1), CFG, started_at=0)
        assert not changed
        assert doc["Status"] == STARTING and doc["FailingStreak"] == 0
    assert len(doc["Log"]) == 3


def test_success_in_start_period_flips_healthy() -> None:
    doc, changed = apply_result(new_health_doc(), res(5, 0, "ok"), CFG, started_at=0)
    assert changed and doc["Status"] == HEALTHY and doc["FailingStreak"] == 0
    assert doc["Log"][0]["ExitCode"] == 0 and doc["Log"][0]["Output"] == "ok"


def test_failures_after_healthy_count_even_inside_start_period() -> None:
    doc, _ = apply_result(new_health_doc(), res(5, 0), CFG, started_at=0)
    doc, changed = apply_result(doc, res(10, 1), CFG, started_at=0)
    assert not changed and doc["Status"] == HEALTHY and doc["FailingStreak"] == 1


def test_retries_failures_make_unhealthy_then_success_recovers() -> None:
    cfg = HealthConfig(argv=("x",), retries=3)  # start period 0: every failure counts
    doc = new_health_doc()
    doc, changed = apply_result(doc, res(1, 1), cfg, 0)
    assert (doc["Status"], doc["FailingStreak"], changed) == (STARTING, 1, False)
    doc, changed = apply_result(doc, res(2, 2), cfg, 0)
    assert (doc["Status"], doc["FailingStreak"], changed) == (STARTING, 2, False)
    doc, changed = apply_result(doc, res(3, -1), cfg, 0)
    assert (doc["Status"], doc["FailingStreak"], changed) == (UNHEALTHY, 3, True)
    doc, changed = apply_result(doc, res(4, 1), cfg, 0)
    assert (doc["Status"], doc["FailingStreak"], changed) == (UNHEALTHY, 4, False)
    doc, changed = apply_result(doc, res(5, 0), cfg, 0)
    assert (doc["Status"], doc["FailingStreak"], changed) == (HEALTHY, 0, True)
    doc, changed = apply_result(doc, res(6, 0), cfg, 0)
    assert changed is False


def test_healthy_to_unhealthy() -> None:
    cfg = HealthConfig(argv=("x",), retries=1)
    doc, _ = apply_result(new_health_doc(), res(1, 0), cfg, 0)
    doc, changed = apply_result(doc, res(2, 3), cfg, 0)
    assert changed and doc["Status"] == UNHEALTHY and doc["FailingStreak"] == 1


def test_start_period_measured_from_probe_start() -> None:
    # Probe began 59 s in (inside the 60 s period) and ended after it: still does not count.
    doc, _ = apply_result(new_health_doc(), ProbeResult(59, 65, 1, ""), CFG, started_at=0)
    assert doc["FailingStreak"] == 0
    doc, _ = apply_result(doc, res(60, 1), CFG, started_at=0)
    assert doc["FailingStreak"] == 1


def test_log_keeps_last_five_in_order() -> None:
    doc = new_health_doc()
    for i in range(8):
        doc, _ = apply_result(doc, res(100 + i, i % 2, f"run {i}"), CFG, 0)
    assert [e["Output"] for e in doc["Log"]] == [f"run {i}" for i in range(3, 8)]
    assert doc["Log"][-1]["Start"] == rfc3339nano(107)
    assert doc["Log"][-1]["End"] == rfc3339nano(107.5)


def test_apply_result_does_not_mutate_input() -> None:
    doc = new_health_doc()
    apply_result(doc, res(1, 0), CFG, 0)
    assert doc == new_health_doc()


def test_stopped_doc_is_unhealthy() -> None:
    doc, _ = apply_result(new_health_doc(), res(1, 0), CFG, 0)
    stopped = stopped_health_doc(doc)
    assert stopped["Status"] == UNHEALTHY and stopped["Log"] == doc["Log"]
    assert doc["Status"] == HEALTHY


def test_next_delay() -> None:
    # Inside the start period and still starting: the start interval.
    assert next_delay(CFG, STARTING, now=10, started_at=0) == 5
    # Healthy already: the normal interval even inside the start period.
    assert next_delay(CFG, HEALTHY, now=10, started_at=0) == 30
    # After the start period: the interval.
    assert next_delay(CFG, STARTING, now=60, started_at=0) == 30
    no_period = HealthConfig(argv=("x",))
    assert next_delay(no_period, STARTING, now=0, started_at=0) == 30


# ---------------------------------------------------------------- output, timeout, errors

def test_truncate_output() -> None:
    assert truncate_output("") == ""
    assert truncate_output("a" * 4096) == "a" * 4096
    assert truncate_output("a" * 4097) == "a" * 4096 + "..."
    assert truncate_output(b"b" * 5000) == "b" * 4096 + "..."
    # A multi-byte character cut at the limit becomes U+FFFD like Go's JSON encoding.
    out = truncate_output("a" * 4095 + "é" + "z")
    assert out == "a" * 4095 + "\ufffd..."
    assert truncate_output(b"\xff ok") == "\ufffd ok"


def probe_returning(code: int, out: str | bytes, seen: list[Any] | None = None) -> h.Probe:
    def probe(argv: list[str], timeout_s: float) -> tuple[int, str | bytes]:
        if seen is not None:
            seen.append((argv, timeout_s))
        return code, out
    return probe


def test_run_probe_once_passes_argv_and_timeout() -> None:
    seen: list[Any] = []
    cfg = HealthConfig(argv=("/bin/sh", "-c", "exit 3"), timeout_ns=1500 * MS)
    times = iter([100.0, 101.25])
    r = run_probe_once(probe_returning(3, "boom\n", seen), cfg, lambda: next(times))
    assert seen == [(["/bin/sh", "-c", "exit 3"], 1.5)]
    assert r == ProbeResult(100.0, 101.25, 3, "boom\n")


def test_timeout_result() -> None:
    cfg = HealthConfig(argv=("sleep", "9"), timeout_ns=30 * NS)
    r = run_probe_once(probe_returning(-1, ""), cfg, lambda: 1.0)
    assert (r.exit_code, r.output) == (-1, "Health check exceeded timeout (30s)")
    cfg = HealthConfig(argv=("sleep", "9"), timeout_ns=1500 * MS)
    r = run_probe_once(probe_returning(-1, "partial"), cfg, lambda: 1.0)
    assert (r.exit_code, r.output) == (-1, "Health check exceeded timeout (1.5s): partial")


def test_probe_exception_is_a_failed_check() -> None:
    def broken(argv: list[str], timeout_s: float) -> tuple[int, str]:
        raise RuntimeError("container is not running")
    r = run_probe_once(broken, CFG, lambda: 7.0)
    assert (r.exit_code, r.output, r.start) == (-1, "container is not running", 7.0)
    r = run_probe_once(probe_returning(0, ""), HealthConfig(argv=()), lambda: 7.0)
    assert r.exit_code == -1


@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (MS, "1ms"), (100 * MS, "100ms"),
    (1500 * MS, "1.5s"), (30 * NS, "30s"), (90 * NS, "1m30s"), (120 * NS, "2m0s"),
    (3600 * NS, "1h0m0s"), (3723 * NS + 500 * MS, "1h2m3.5s")])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_rfc3339nano() -> None:
    assert rfc3339nano(0) == "1970-01-01T00:00:00Z"
    assert rfc3339nano(1.5) == "1970-01-01T00:00:01.5Z"
    assert rfc3339nano(1700000000.123456) == "2023-11-14T22:13:20.123456Z"


# ---------------------------------------------------------------- the thread, in virtual time

class VClock:
    """Virtual time: wait() advances the clock at once instead of sleeping."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t
        self.waits: list[float] = []

    def now(self) -> float:
        return self.t

    def wait(self, ev: threading.Event, seconds: float) -> bool:
        if ev.is_set():
            return True
        self.waits.append(seconds)
        self.t += seconds
        return ev.is_set()


class ScriptedProbe:
    """Exit codes to return in turn; stops the checker when the script runs out."""

    def __init__(self, clock: VClock, codes: list[int], duration: float = 0.25) -> None:
        self.clock = clock
        self.codes = list(codes)
        self.duration = duration
        self.starts: list[float] = []
        self.checker: HealthChecker | None = None

    def __call__(self, argv: list[str], timeout_s: float) -> tuple[int, str]:
        self.starts.append(self.clock.t)
        self.clock.t += self.duration
        if not self.codes:
            assert self.checker is not None
            self.checker.stop()
            return 0, ""
        return self.codes.pop(0), f"probe {len(self.starts)}"


def run_checker(cfg: HealthConfig, codes: list[int], *, started_at: float = 1000.0,
                previous: dict[str, Any] | None = None, resume: bool = False
                ) -> tuple[HealthChecker, ScriptedProbe, list[tuple[dict[str, Any], bool]]]:
    clock = VClock(started_at)
    probe = ScriptedProbe(clock, codes)
    changes: list[tuple[dict[str, Any], bool]] = []
    checker = HealthChecker("c" * 64, cfg, probe, lambda d, c: changes.append((d, c)),
                            started_at=started_at, previous=previous, resume=resume,
                            now=clock.now, wait=clock.wait)
    probe.checker = checker
    checker.start()
    checker.join(10)
    assert not checker.running
    return checker, probe, changes


def test_checker_schedule_and_transitions() -> None:
    cfg = HealthConfig(argv=("x",), interval_ns=30 * NS, retries=2)
    checker, probe, changes = run_checker(cfg, [0, 1, 1, 0])
    # First probe one interval after start, then one interval after each probe ended.
    assert probe.starts[:4] == [1030.0, 1060.25, 1090.5, 1120.75]
    statuses = [(d["Status"], d["FailingStreak"], changed) for d, changed in changes]
    assert statuses == [(HEALTHY, 0, True), (HEALTHY, 1, False), (UNHEALTHY, 2, True), (HEALTHY, 0, True)]
    # The stop inside the 5th probe drops its result; stop leaves Status unhealthy.
    assert len(changes) == 4
    assert checker.doc["Status"] == UNHEALTHY
    assert [e["Output"] for e in checker.doc["Log"]] == ["probe 1", "probe 2", "probe 3", "probe 4"]


def test_checker_uses_start_interval_during_start_period() -> None:
    cfg = HealthConfig(argv=("x",), interval_ns=30 * NS, start_period_ns=12 * NS,
                       start_interval_ns=5 * NS, retries=1)
    _, probe, changes = run_checker(cfg, [1, 1, 1, 1])
    # 5 s steps while starting inside the period; the failure at ~15 s is past the
    # 12 s period, counts, and (retries=1) makes it unhealthy; then the 30 s interval.
    assert probe.starts[:4] == [1005.0, 1010.25, 1015.5, 1045.75]
    assert [(d["Status"], d["FailingStreak"]) for d, _ in changes] == [
        (STARTING, 0), (STARTING, 0), (UNHEALTHY, 1), (UNHEALTHY, 2)]


def test_checker_success_in_start_period_switches_to_interval() -> None:
    cfg = HealthConfig(argv=("x",), interval_ns=30 * NS, start_period_ns=100 * NS,
                       start_interval_ns=5 * NS)
    _, probe, changes = run_checker(cfg, [1, 0, 1])
    assert probe.starts[:3] == [1005.0, 1010.25, 1040.5]
    assert [(d["Status"], c) for d, c in changes] == [(STARTING, False), (HEALTHY, True), (HEALTHY, False)]


def test_checker_records_timeouts() -> None:
    cfg = HealthConfig(argv=("x",), interval_ns=1 * NS, timeout_ns=2 * NS, retries=1)
    _, _, changes = run_checker(cfg, [-1])
    entry = changes[0][0]["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (2s): probe 1"
    assert changes[0][0]["Status"] == UNHEALTHY


def test_restart_resets_status_keeps_log_resume_keeps_status() -> None:
    cfg = HealthConfig(argv=("x",), retries=1)
    first, _, _ = run_checker(cfg, [1])
    prev = first.doc
    assert prev["Status"] == UNHEALTHY and prev["FailingStreak"] == 1
    restarted = HealthChecker("c", cfg, probe_returning(0, ""), lambda d, c: None,
                              started_at=0, previous=prev)
    assert restarted.doc == {"Status": STARTING, "FailingStreak": 0, "Log": prev["Log"]}
    resumed = HealthChecker("c", cfg, probe_returning(0, ""), lambda d, c: None,
                            started_at=0, previous=prev, resume=True)
    assert resumed.doc == prev


def test_stop_before_first_probe_real_time() -> None:
    """Real clock and Event: stop() wakes the waiting thread at once."""
    calls: list[Any] = []
    cfg = HealthConfig(argv=("x",), interval_ns=3600 * NS)
    checker = HealthChecker("c", cfg, probe_returning(0, "", calls), lambda d, c: calls.append(d),
                            started_at=0)
    checker.start()
    assert checker.running
    doc = checker.stop()
    checker.join(5)
    assert not checker.running and checker.stopped
    assert calls == []
    assert doc == {"Status": UNHEALTHY, "FailingStreak": 0, "Log": []}


def test_real_thread_probes_with_small_interval() -> None:
    got = threading.Event()
    changes: list[tuple[dict[str, Any], bool]] = []

    def on_change(doc: dict[str, Any], changed: bool) -> None:
        changes.append((doc, changed))
        got.set()

    import time
    cfg = HealthConfig(argv=("true",), interval_ns=10 * MS)
    checker = HealthChecker("c", cfg, probe_returning(0, "fine"), on_change, started_at=time.time())
    checker.start()
    assert got.wait(5)
    checker.stop()
    checker.join(5)
    assert changes[0][0]["Status"] == HEALTHY and changes[0][1] is True


def test_on_change_errors_do_not_kill_the_checker() -> None:
    clock = VClock()
    probe = ScriptedProbe(clock, [0, 0, 0])
    calls: list[int] = []

    def bad(doc: dict[str, Any], changed: bool) -> None:
        calls.append(1)
        raise OSError("disk full")

    checker = HealthChecker("c", HealthConfig(argv=("x",)), probe, bad, started_at=clock.t,
                            now=clock.now, wait=clock.wait)
    probe.checker = checker
    checker.start()
    checker.join(10)
    assert len(calls) == 3


# ---------------------------------------------------------------- real processes, real time

def subprocess_probe(argv: list[str], timeout_s: float) -> tuple[int, str | bytes]:
    """What the engine's exec probe does, with host processes: -1 plus partial output on timeout."""
    import subprocess
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        return -1, e.output or b""
    return p.returncode, p.stdout


def _run_real(test: list[str], want: str, **kw: int) -> dict[str, Any]:
    import time
    cfg = HealthConfig.parse({"Test": test, "Interval": 20 * MS, **kw})
    assert cfg is not None
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def on_change(doc: dict[str, Any], changed: bool) -> None:
        seen.append(doc)
        if doc["Status"] == want:
            done.set()

    checker = HealthChecker("c", cfg, subprocess_probe, on_change, started_at=time.time())
    checker.start()
    try:
        assert done.wait(10), seen
    finally:
        checker.stop()
        checker.join(10)
    return seen[-1]


def test_real_shell_probe_healthy() -> None:
    doc = _run_real(["CMD-SHELL", "echo ready; echo err >&2"], HEALTHY)
    assert doc["Log"][-1]["ExitCode"] == 0
    assert doc["Log"][-1]["Output"] == "ready\nerr\n"


def test_real_probe_failing_and_timing_out() -> None:
    doc = _run_real(["CMD", "/bin/sh", "-c", "exit 7"], UNHEALTHY, Retries=2)
    assert [e["ExitCode"] for e in doc["Log"]] == [7, 7]
    doc = _run_real(["CMD-SHELL", "echo slow; exec sleep 5"], UNHEALTHY, Retries=1, Timeout=150 * MS)
    assert doc["Log"][-1]["ExitCode"] == -1
    assert doc["Log"][-1]["Output"] == "Health check exceeded timeout (150ms): slow\n"


def test_presentation_helpers() -> None:
    assert h.health_status({}) == "none"
    assert h.health_status({"Health": None}) == "none"
    assert h.health_status({"Health": {"Status": HEALTHY}}) == HEALTHY
    assert h.ps_suffix({}) == ""
    assert h.ps_suffix({"Health": new_health_doc()}) == " (health: starting)"
    assert h.ps_suffix({"Health": {"Status": UNHEALTHY}}) == " (unhealthy)"
    assert h.ps_suffix({"Health": {"Status": HEALTHY}}) == " (healthy)"
