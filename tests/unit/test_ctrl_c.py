"""Ctrl-C as a stop request (cli/ctrl_c.py): set from a signal handler while the main thread waits on it.

A threading.Event set from the handler deadlocks when the signal lands while the main thread holds the event's lock
inside Event.wait: the same loop below with an Event hung within a few thousand signals in every try (checked by
hand; not asserted here, it is CPython's behaviour, not ours). `dmesg --follow` hung on Ctrl-C that way in a loaded
suite run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xipscope.cli.ctrl_c import StopRequest, ctrl_c_stops

TOOLKIT = str(Path(__file__).resolve().parents[2] / "toolkit")


def test_a_signal_handler_sets_it_while_the_main_thread_waits_on_it_thousands_of_times():
    # A timer signal lands at a random point of the wait loop, each time with a fresh request; a deadlock would hang
    # the child, so it runs in one with a bound (a hang's bound, not a speed requirement: idle, it takes 1-2 s).
    script = textwrap.dedent("""
        import signal
        from xipscope.cli.ctrl_c import StopRequest
        for i in range(5000):
            stop = StopRequest()
            signal.signal(signal.SIGALRM, lambda *_: stop.set())
            signal.setitimer(signal.ITIMER_REAL, 0.0002)
            while not stop.is_set():
                stop.wait(0.0001)
            stop.close()
        print("stopped", i + 1)
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": TOOLKIT})
    assert child.returncode == 0 and child.stdout.split() == ["stopped", "5000"], child.stderr


def test_wait_returns_at_once_when_set_and_after_its_timeout_when_not():
    stop = StopRequest()
    try:
        assert stop.wait(0.01) is False and not stop.is_set()
        stop.set()
        stop.set()           # a second set (a second Ctrl-C) changes nothing
        assert stop.is_set() and stop.wait(None) is True and stop.wait(0) is True
    finally:
        stop.close()


def test_ctrl_c_sets_the_request_a_second_raises_when_asked_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGINT)
    with ctrl_c_stops() as stop:
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)             # without second_raises: still only a request
        assert stop.is_set()
    assert signal.getsignal(signal.SIGINT) is before
    with ctrl_c_stops(second_raises=True) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
