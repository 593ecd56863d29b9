"""The one way the CLI shows a long operation's progress on stderr (profile, snapshot, dump, image).

On a terminal: a rich bar with the command's name, a line of text and the time elapsed. Anywhere else (a log file, a
pipe, CI): no bar and no control characters, only a plain `xipscope COMMAND: TEXT` line every PLAIN_EVERY_S seconds,
so a long run in a log still shows it moves and a short one prints nothing. Applications report through a callback
(bytes done, bytes total; profile's is samples and seconds); this module only draws.
"""

from __future__ import annotations

import sys
import time

PLAIN_EVERY_S = 5.0


def byte_text(done: int, total: int | None) -> str:
    """`12.0 of 64.0 MiB` (KiB below a MiB)."""
    unit, scale = ("MiB", 1 << 20) if (total or done) >= 1 << 20 else ("KiB", 1 << 10)
    return f"{done / scale:.1f} of {total / scale:.1f} {unit}" if total else f"{done / scale:.1f} {unit}"


class ProgressDisplay:
    """`with ProgressDisplay("snapshot") as shown:` then shown.update(completed, text, total=None) as work is done,
    or pass shown.show_bytes as an application's (done, total) progress callback. A total of None: no end known."""

    def __init__(self, command: str, total: float | None = None, stream=None):
        self.command = command
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.is_terminal = self.stream.isatty()
        self.bar = None
        self.next_line = 0.0

    def __enter__(self) -> "ProgressDisplay":
        if self.is_terminal:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            # redirect_stdout off: a command's stdout may be a file (dump > out.txt) that must not pass through here
            self.bar = Progress(TextColumn(f"[bold]{self.command}"), BarColumn(), TextColumn("{task.fields[text]}"),
                                TimeElapsedColumn(), console=Console(file=self.stream), redirect_stdout=False)
            self.bar.start()
            self.task = self.bar.add_task(self.command, total=self.total, text="")
        else:
            self.next_line = time.monotonic() + PLAIN_EVERY_S
        return self

    def update(self, completed: float, text: str, total: float | None = None) -> None:
        if total is not None:
            self.total = total
        if self.bar is not None:
            self.bar.update(self.task, completed=completed, total=self.total, text=text)
            return
        now = time.monotonic()
        if now >= self.next_line:
            print(f"xipscope {self.command}: {text}", file=self.stream, flush=True)
            self.next_line = now + PLAIN_EVERY_S

    def show_bytes(self, done: int, total: int | None) -> None:
        """An application's progress callback, in bytes."""
        self.update(done, byte_text(done, total), total)

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.stop()
        return False
