"""hoist.api.http.WorkerPool: connections are served by threads that were waiting for
them, and the pool grows whenever long-lived connections hold its workers."""
from __future__ import annotations

import threading
import time

from hoist.api.http import WorkerPool


def test_every_job_runs_even_when_all_workers_are_held():
    release = threading.Event()
    started: list[int] = []
    lock = threading.Lock()

    def serve(n: int) -> None:
        with lock:
            started.append(n)
        if n >= 0:
            release.wait(10)  # an attach or `logs -f`: holds its worker

    pool = WorkerPool(serve, spare=2, keep=2)
    for n in range(12):  # far more jobs than the workers there were at first
        pool.submit(n)
    deadline = time.monotonic() + 10
    while len(started) < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(started) == list(range(12))
    release.set()
    pool.submit(-1)  # and it still serves once they are free
    deadline = time.monotonic() + 5
    while -1 not in started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert -1 in started


def test_workers_count_as_idle_again_after_their_jobs():
    finished = threading.Semaphore(0)
    pool = WorkerPool(finished.release, spare=2, keep=3)
    for _ in range(20):
        pool.submit()
    for _ in range(20):
        assert finished.acquire(timeout=5)
    deadline = time.monotonic() + 5
    while pool._idle < 3 and time.monotonic() < deadline:  # the last finally-blocks run
        time.sleep(0.01)
    assert pool._idle >= 3
