"""Restart policies: dockerd's validation messages, decisions, backoff and daemon start."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from hoist.engine.containers.restart import (
    INITIAL_DELAY, MAX_DELAY, RestartDecision, RestartManager, RestartPolicy,
    containers_to_start, policy_for_update, restart_at_daemon_start,
    should_start_at_daemon_start, validate_restart_policy, wants_restart)
from hoist.errors import Conflict, InvalidArgument

ONLY_ON_FAILURE = "invalid restart policy: maximum retry count can only be used with 'on-failure'"


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("raw,expected", [
    (None, RestartPolicy("no", 0)),
    ({}, RestartPolicy("no", 0)),
    ({"Name": ""}, RestartPolicy("no", 0)),
    ({"Name": "", "MaximumRetryCount": 123}, RestartPolicy("no", 0)),   # old clients
    ({"Name": "", "MaximumRetryCount": -1}, RestartPolicy("no", 0)),
    ({"Name": "no"}, RestartPolicy("no", 0)),
    ({"Name": "always", "MaximumRetryCount": 0}, RestartPolicy("always", 0)),
    ({"Name": "unless-stopped"}, RestartPolicy("unless-stopped", 0)),
    ({"Name": "on-failure"}, RestartPolicy("on-failure", 0)),
    ({"Name": "on-failure", "MaximumRetryCount": 5}, RestartPolicy("on-failure", 5)),
])
def test_valid_policies(raw: Any, expected: RestartPolicy) -> None:
    assert RestartPolicy.from_api(raw) == expected


@pytest.mark.parametrize("raw,message", [
    ({"Name": "always", "MaximumRetryCount": 3}, ONLY_ON_FAILURE),
    ({"Name": "always", "MaximumRetryCount": -3}, ONLY_ON_FAILURE + " and cannot be negative"),
    ({"Name": "unless-stopped", "MaximumRetryCount": 1}, ONLY_ON_FAILURE),
    ({"Name": "no", "MaximumRetryCount": 2}, ONLY_ON_FAILURE),
    ({"Name": "no", "MaximumRetryCount": -2}, ONLY_ON_FAILURE + " and cannot be negative"),
    ({"Name": "on-failure", "MaximumRetryCount": -1},
     "invalid restart policy: maximum retry count cannot be negative"),
    ({"Name": "sometimes"}, "invalid restart policy: unknown policy 'sometimes'; use one of "
                            "'no', 'always', 'on-failure', or 'unless-stopped'"),
    ({"Name": "on-failure:3"}, "invalid restart policy: unknown policy 'on-failure:3'; use one of "
                               "'no', 'always', 'on-failure', or 'unless-stopped'"),
])
def test_invalid_policies(raw: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as ei:
        RestartPolicy.from_api(raw)
    assert str(ei.value) == message
    assert ei.value.status == 400


def test_malformed_types() -> None:
    for raw in ("always", {"Name": 3}, {"Name": "on-failure", "MaximumRetryCount": "3"},
                {"Name": "on-failure", "MaximumRetryCount": True}):
        with pytest.raises(InvalidArgument):
            RestartPolicy.from_api(raw)  # type: ignore[arg-type]


def test_to_api_roundtrip() -> None:
    p = RestartPolicy("on-failure", 4)
    assert p.to_api() == {"Name": "on-failure", "MaximumRetryCount": 4}
    assert RestartPolicy.from_api(p.to_api()) == p
    assert RestartPolicy().to_api() == {"Name": "no", "MaximumRetryCount": 0}


def test_auto_remove_refuses_restart_policy() -> None:
    assert validate_restart_policy({"AutoRemove": True}) == RestartPolicy()
    assert validate_restart_policy({"AutoRemove": True, "RestartPolicy": {"Name": "no"}}) == RestartPolicy()
    assert validate_restart_policy({"AutoRemove": True, "RestartPolicy": {"Name": ""}}) == RestartPolicy()
    for name in ("always", "unless-stopped", "on-failure", "bogus"):
        with pytest.raises(InvalidArgument, match="^can't create 'AutoRemove' container with restart policy$"):
            validate_restart_policy({"AutoRemove": True, "RestartPolicy": {"Name": name}})
    assert validate_restart_policy({"RestartPolicy": {"Name": "always"}}) == RestartPolicy("always")
    with pytest.raises(InvalidArgument, match="unknown policy"):
        validate_restart_policy({"AutoRemove": False, "RestartPolicy": {"Name": "bogus"}})


def test_policy_for_update() -> None:
    assert policy_for_update(None, False) is None
    assert policy_for_update({"Name": ""}, True) is None
    assert policy_for_update({"Name": "always"}, False) == RestartPolicy("always")
    assert policy_for_update({"Name": "no"}, True) == RestartPolicy("no")
    with pytest.raises(Conflict, match="AutoRemove is enabled"):
        policy_for_update({"Name": "on-failure", "MaximumRetryCount": 2}, True)
    with pytest.raises(InvalidArgument):
        policy_for_update({"Name": "always", "MaximumRetryCount": 2}, False)


# ---------------------------------------------------------------- decisions

def test_policy_votes() -> None:
    always, unless = RestartPolicy("always"), RestartPolicy("unless-stopped")
    no, onf, onf2 = RestartPolicy("no"), RestartPolicy("on-failure"), RestartPolicy("on-failure", 2)
    assert not wants_restart(no, 1, False, 0)
    assert wants_restart(always, 0, False, 0) and wants_restart(always, 0, True, 99)
    assert wants_restart(unless, 0, False, 0) and not wants_restart(unless, 1, True, 0)
    assert not wants_restart(onf, 0, False, 0)
    assert wants_restart(onf, 1, False, 1000)       # no limit
    assert wants_restart(onf, -1, False, 0)         # any non-zero code is a failure
    assert wants_restart(onf2, 137, True, 1)        # manual stop alone does not matter
    assert not wants_restart(onf2, 1, False, 2)     # retries used up


def test_no_policy_never_restarts() -> None:
    m = RestartManager(RestartPolicy("no"))
    d = m.should_restart(1, False, 0.5)
    assert d.restart is False and d.restart_count == 0


def test_always_restarts_on_any_exit_with_doubling_backoff() -> None:
    m = RestartManager(RestartPolicy("always"))
    delays = []
    for i in range(12):
        d = m.should_restart(i % 2, False, 0.01)
        assert d.restart
        assert d.restart_count == i + 1
        delays.append(d.delay)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[9] == 51.2
    assert delays[10:] == [MAX_DELAY, MAX_DELAY]
    assert m.restart_count == 12


def test_long_run_resets_backoff() -> None:
    m = RestartManager(RestartPolicy("always"))
    for _ in range(5):
        m.should_restart(1, False, 1.0)
    assert m.should_restart(1, False, 9.99).delay == 3.2
    assert m.should_restart(1, False, 10.0).delay == INITIAL_DELAY
    assert m.should_restart(1, False, 0.0).delay == 0.2


def test_backoff_advances_even_when_not_restarting() -> None:
    m = RestartManager(RestartPolicy("on-failure"))
    assert m.should_restart(0, False, 0).restart is False   # backoff 0.1
    assert m.should_restart(1, False, 0).delay == 0.2


def test_on_failure_counts_retries() -> None:
    m = RestartManager(RestartPolicy("on-failure", 3))
    assert m.should_restart(0, False, 0).restart is False
    got = [m.should_restart(2, False, 0) for _ in range(4)]
    assert [d.restart for d in got] == [True, True, True, False]
    assert [d.restart_count for d in got] == [1, 2, 3, 3]
    assert got[3].reason


def test_on_failure_count_carries_from_record() -> None:
    m = RestartManager(RestartPolicy("on-failure", 3), restart_count=2)
    assert m.should_restart(1, False, 0) == RestartDecision(True, INITIAL_DELAY, 3)
    assert m.should_restart(1, False, 0).restart is False


def test_unless_stopped_vs_always_after_manual_stop_without_cancel() -> None:
    # e.g. docker kill -s USR1 on a container whose StopSignal is something else:
    # dockerd marks it manually stopped but does not cancel its restart manager.
    assert RestartManager(RestartPolicy("always")).should_restart(0, True, 0).restart is True
    assert RestartManager(RestartPolicy("unless-stopped")).should_restart(0, True, 0).restart is False
    assert RestartManager(RestartPolicy("unless-stopped")).should_restart(0, False, 0).restart is True


def test_cancel_stops_every_policy() -> None:
    for name in ("always", "unless-stopped", "on-failure"):
        m = RestartManager(RestartPolicy(name))
        m.cancel()
        d = m.should_restart(1, True, 0)
        assert d.restart is False and d.reason == "restart canceled"
        assert m.canceled


def test_set_policy() -> None:
    m = RestartManager(RestartPolicy("no"))
    assert not m.should_restart(1, False, 0).restart
    m.set_policy(RestartPolicy("on-failure", 1))
    assert m.policy == RestartPolicy("on-failure", 1)
    assert m.should_restart(1, False, 0).restart


# ---------------------------------------------------------------- waiting

class FakeWait:
    def __init__(self, cancel_during: RestartManager | None = None) -> None:
        self.seen: list[float] = []
        self.cancel_during = cancel_during

    def __call__(self, ev: threading.Event, seconds: float) -> bool:
        self.seen.append(seconds)
        if self.cancel_during is not None:
            self.cancel_during.cancel()
        return ev.is_set()


def test_wait_uses_injected_sleep_and_honours_cancel() -> None:
    fake = FakeWait()
    m = RestartManager(RestartPolicy("always"), wait=fake)
    assert m.wait(0.4) is True and fake.seen == [0.4]
    m.cancel()
    assert m.wait(0.8) is False and fake.seen == [0.4]


def test_wait_canceled_midway() -> None:
    m = RestartManager(RestartPolicy("always"))
    fake = FakeWait(cancel_during=m)
    m._wait = fake
    assert m.wait(60) is False


def test_real_wait_is_cut_short_by_cancel() -> None:
    m = RestartManager(RestartPolicy("always"))
    threading.Timer(0.02, m.cancel).start()
    assert m.wait(30) is False


def test_schedule_starts_after_delay() -> None:
    m = RestartManager(RestartPolicy("always"))
    d = m.should_restart(1, False, 0)
    started = threading.Event()
    gave_up: list[Any] = []
    t = m.schedule(d, started.set, gave_up.append)
    t.join(5)
    assert started.is_set() and gave_up == []


def test_schedule_canceled_gives_up_without_starting() -> None:
    m = RestartManager(RestartPolicy("always"))
    d = RestartDecision(True, 30.0, 1)
    started: list[int] = []
    gave_up: list[Any] = []
    t = m.schedule(d, lambda: started.append(1), gave_up.append)
    m.cancel()
    t.join(5)
    assert not t.is_alive()
    assert started == [] and gave_up == [None]


def test_schedule_start_failure_is_reported() -> None:
    m = RestartManager(RestartPolicy("always"), wait=FakeWait())
    gave_up: list[Any] = []

    def boom() -> None:
        raise OSError("mount failed")

    m.schedule(RestartDecision(True, 0.1, 1), boom, gave_up.append).join(5)
    assert len(gave_up) == 1 and isinstance(gave_up[0], OSError)


# ---------------------------------------------------------------- daemon start

def doc(cid: str, policy: dict[str, Any] | None, exit_code: int = 0, restart_count: int = 0,
        started: str = "2026-11-28T10:00:00.5Z") -> dict[str, Any]:
    hc: dict[str, Any] = {} if policy is None else {"RestartPolicy": policy}
    return {"Id": cid, "RestartCount": restart_count, "HostConfig": hc,
            "State": {"Running": False, "ExitCode": exit_code, "StartedAt": started}}


def test_daemon_start_rules() -> None:
    def go(name: str, count: int = 0, **kw: Any) -> bool:
        base: dict[str, Any] = {"exit_code": 0, "manually_stopped": False, "restart_count": 0,
                                "started_before": True}
        base.update(kw)
        return should_start_at_daemon_start(RestartPolicy(name, count), **base)

    assert go("always") and go("always", manually_stopped=True)
    assert go("unless-stopped") and not go("unless-stopped", manually_stopped=True)
    assert not go("no", exit_code=1)
    assert not go("on-failure") and go("on-failure", exit_code=1)
    assert go("on-failure", 3, exit_code=1, restart_count=2)
    assert not go("on-failure", 3, exit_code=1, restart_count=3)
    assert not go("always", started_before=False)


def test_containers_to_start_from_docs() -> None:
    records = [
        (doc("a", {"Name": "always"}), True),
        (doc("b", {"Name": "unless-stopped"}), True),
        (doc("c", {"Name": "unless-stopped"}), False),
        (doc("d", {"Name": "on-failure", "MaximumRetryCount": 2}, exit_code=1, restart_count=1), False),
        (doc("e", {"Name": "on-failure", "MaximumRetryCount": 2}, exit_code=1, restart_count=2), False),
        (doc("f", {"Name": "on-failure"}, exit_code=0), False),
        (doc("g", {"Name": "always"}, started="0001-01-01T00:00:00Z"), False),
        (doc("h", None), False),
        (doc("i", {"Name": "bogus"}), False),
        (doc("j", {"Name": "no"}, exit_code=3), False),
    ]
    assert containers_to_start(records) == ["a", "c", "d"]
    assert restart_at_daemon_start(doc("k", {"Name": "always"}), manually_stopped=False)
