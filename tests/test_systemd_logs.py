"""sd_notify over a real datagram socket, and the journald and JSON log formats."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys

import pytest

from aggregator.app import logs, systemd


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_ready_status_and_watchdog_reach_the_socket(notify_socket):
    assert systemd.ready("listening on 127.0.0.1:8080")
    assert notify_socket.recv(4096).decode().split("\n") == ["READY=1", "STATUS=listening on 127.0.0.1:8080"]
    assert systemd.watchdog()
    assert notify_socket.recv(4096) == b"WATCHDOG=1"
    assert systemd.stopping()
    assert notify_socket.recv(4096) == b"STOPPING=1"


def test_abstract_socket_names_start_with_at(monkeypatch):
    name = f"aggregator-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert systemd.status("3 sources failing")
        assert sock.recv(4096) == b"STATUS=3 sources failing"
    finally:
        sock.close()


def test_outside_systemd_nothing_is_sent(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert systemd.ready() is False  # a vanished socket is not an error


def test_watchdog_interval_is_half_of_watchdogsec_and_only_for_the_watched_pid(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    monkeypatch.delenv("WATCHDOG_PID")
    assert systemd.watchdog_interval() is None


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("aggregator", level, __file__, 1, message, None, None)


@pytest.mark.parametrize("level, prefix", [(logging.ERROR, "<3>"), (logging.WARNING, "<4>"),
                                           (logging.INFO, "<6>"), (logging.DEBUG, "<7>"),
                                           (logging.CRITICAL, "<2>")])
def test_journald_lines_carry_their_priority(level, prefix):
    text = logs.TextFormatter(journald=True).format(_record(level, "first\nsecond"))
    assert text.split("\n") == [f"{prefix}{logging.getLevelName(level)} first", f"{prefix}second"]


def test_plain_lines_have_no_prefix():
    assert logs.TextFormatter().format(_record(logging.ERROR, "boom")) == "ERROR boom"


def test_json_lines_parse_and_carry_the_traceback():
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("aggregator.app", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["level"] == "error" and entry["logger"] == "aggregator.app" and entry["message"] == "failed x"
    assert entry["time"].endswith("+00:00") and "ValueError: bad" in entry["traceback"]


def test_journal_stream_must_name_stderr(monkeypatch, tmp_path):
    target = tmp_path / "stderr.log"
    with open(target, "w") as handle:
        status = os.fstat(handle.fileno())
        monkeypatch.setattr(sys, "stderr", handle)
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
        assert logs.stderr_is_journald()
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino + 1}")
        assert not logs.stderr_is_journald()  # stderr redirected elsewhere: a terminal or a file, no prefixes
        monkeypatch.setenv("JOURNAL_STREAM", "garbage")
        assert not logs.stderr_is_journald()
