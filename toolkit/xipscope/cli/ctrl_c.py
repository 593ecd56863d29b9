"""Ctrl-C as a request to stop, for the commands that end their loop cleanly on it (profile, dmesg --follow).

A SIGINT handler must not set a threading.Event: Event.set takes the event's lock, and the handler runs on the main
thread, which may hold that very lock inside Event.wait when the signal arrives; the process then waits on itself
for ever (`dmesg --follow` did so in a loaded suite run). StopRequest offers the Event's is_set/set/wait, but
set only stores a flag and writes a byte to a pipe, and wait selects on that pipe: no lock on either side."""

from __future__ import annotations

import contextlib
import os
import select
import signal


class StopRequest:
    """A stop flag that a signal handler may set, and that a thread may wait on with a timeout. Close it after use."""

    def __init__(self):
        self._set = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        try:
            os.write(self._write_fd, b"!")
        except OSError:   # the pipe is full of wake-ups (or closed): the flag is enough
            pass

    def wait(self, timeout: float | None = None) -> bool:
        if not self._set:
            select.select([self._read_fd], [], [], timeout)
        return self._set

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def ctrl_c_stops(second_raises: bool = False):
    """While inside, Ctrl-C sets the StopRequest this yields (with second_raises, a second Ctrl-C raises
    KeyboardInterrupt: stop now, whatever the loop is doing)."""
    stop = StopRequest()

    def on_sigint(_signum, _frame):
        if second_raises and stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.close()
