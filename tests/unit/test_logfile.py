"""json-file logs: Docker's line format, rotation, tail/since/until/follow across rotation."""
from __future__ import annotations

import json
import os
import threading
import time

from hoist.runtime.logfile import LogWriter, format_time, parse_time, read_logs


def test_format_is_dockers(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = LogWriter(p, 0, 1)
    w.write("stdout", b"hello\nwor", 1_700_000_000_120_000_000)
    w.write("stdout", b"ld\n", 1_700_000_000_500_000_000)
    w.write("stderr", "\u00e9t\u00e9\n".encode(), 1_700_000_001_000_000_000)
    w.write("stdout", b"no newline")
    w.close()
    lines = [json.loads(x) for x in open(p, encoding="utf-8")]
    assert lines[0] == {"log": "hello\n", "stream": "stdout", "time": "2023-11-14T22:13:20.12Z"}
    assert lines[1]["log"] == "world\n"
    assert lines[2] == {"log": "\u00e9t\u00e9\n", "stream": "stderr", "time": "2023-11-14T22:13:21Z"}
    assert lines[3]["log"] == "no newline"
    assert open(p, "rb").read().count(b"\n") == 4


def test_time_round_trip():
    ns = 1_700_000_000_123_456_789
    assert format_time(ns) == "2023-11-14T22:13:20.123456789Z"
    assert format_time(ns - 789, fixed=True) == "2023-11-14T22:13:20.123456000Z"
    assert parse_time(format_time(ns)) == ns
    assert parse_time("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500_000_000


def test_long_lines_are_split(tmp_path):
    p = str(tmp_path / "l.log")
    w = LogWriter(p, 0, 1)
    w.write("stdout", b"x" * 40000 + b"\n")
    w.close()
    sizes = [len(e.data) for e in read_logs(p)]
    assert sizes == [16384, 16384, 40000 - 32768 + 1]


def test_rotation_keeps_max_files_and_order(tmp_path):
    p = str(tmp_path / "r.log")
    w = LogWriter(p, 1000, 3)
    for i in range(200):
        w.write("stdout", f"line {i:04d}\n".encode(), 1_000_000_000 * (i + 1))
    w.close()
    assert sorted(os.listdir(tmp_path)) == ["r.log", "r.log.1", "r.log.2"]
    assert all(os.path.getsize(tmp_path / f) <= 1000 for f in os.listdir(tmp_path))
    got = [int(e.data.split()[1]) for e in read_logs(p)]
    assert got == list(range(got[0], 200)) and got[0] > 0
    assert [e.data for e in read_logs(p, tail=3)] == [b"line 0197\n", b"line 0198\n", b"line 0199\n"]
    assert list(read_logs(p, tail=0)) == []
    since = [e.time_ns for e in read_logs(p, since_ns=195 * 1_000_000_000)]
    assert since == [i * 1_000_000_000 for i in range(196, 201)]
    until = list(read_logs(p, until_ns=got[0] * 1_000_000_000 + 2_000_000_000))
    assert len(until) == 2


def test_single_file_truncates(tmp_path):
    p = str(tmp_path / "t.log")
    w = LogWriter(p, 500, 1)
    for i in range(100):
        w.write("stdout", f"{i}\n".encode())
    w.close()
    assert os.listdir(tmp_path) == ["t.log"] and os.path.getsize(p) <= 500
    assert list(read_logs(p))[-1].data == b"99\n"


def test_follow_across_rotation(tmp_path):
    p = str(tmp_path / "f.log")
    w = LogWriter(p, 300, 30)  # enough files that nothing is rotated out while we follow
    w.write("stdout", b"before\n")
    done = threading.Event()

    def writer():
        for i in range(100):
            w.write("stderr" if i % 2 else "stdout", f"n{i}\n".encode())
            time.sleep(0.001)
        w.close()
        done.set()

    t = threading.Thread(target=writer)
    got = []
    it = read_logs(p, follow=True, stop=done.is_set, poll_interval=0.005)
    got.append(next(it).data)
    t.start()
    got.extend(e.data for e in it)
    t.join()
    assert got == [b"before\n"] + [f"n{i}\n".encode() for i in range(100)]
    assert os.path.exists(p + ".8")  # it did rotate many times while we followed


def test_torn_lines_are_skipped(tmp_path):
    p = str(tmp_path / "x.log")
    with open(p, "w") as f:
        f.write('{"log":"ok\\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}\n{"log":"tor')
    assert [e.data for e in read_logs(p)] == [b"ok\n"]
