"""Hold `xipscope dmesg` output against what the kernel printed on its serial console."""

from __future__ import annotations

import re

CONSOLE_LOGLEVEL = 7   # CONFIG_CONSOLE_LOGLEVEL_DEFAULT in kernel/common.config: levels 0-6 reach the console
_PREFIXED = re.compile(r"^\[ *\d+\.\d{6}\]")


def console_lines(text: str) -> list[str]:
    """The kernel's lines on the serial console (QEMU's own messages dropped)."""
    return [line.rstrip("\r") for line in text.splitlines() if _PREFIXED.match(line)]


def match_console(console: list[str], ours: list[str], tail_only: bool = False) -> None:
    """Every line of `ours`, in order, is a console line; the console may repeat a line right after itself
    (a record printed by both the boot console and the real one during the hand-over).

    With `tail_only` (a ring that wrapped), `ours` is the newest part of the console log: it must end where the
    console ends and start somewhere after the console's first line.
    """
    assert ours, "xipscope printed nothing"
    start = 0
    if tail_only:
        assert ours[0] in console, f"first line not on the console: {ours[0]!r}"
        start = len(console) - 1 - console[::-1].index(ours[0])
        # the first line may be repeated on the console: start at the earliest position from which the rest matches
        while start > 0 and console[start - 1] == ours[0]:
            start -= 1
    i = start
    for n, line in enumerate(ours):
        while i < len(console) and console[i] != line and i > start and console[i] == console[i - 1]:
            i += 1   # a repeated console line
        assert i < len(console), f"line {n} of xipscope's output is past the end of the console: {line!r}"
        assert console[i] == line, f"line {n}: xipscope printed {line!r}, the console {console[i]!r}"
        i += 1
    while i < len(console) and console[i] == console[i - 1]:
        i += 1
    assert i == len(console), f"the console printed {len(console) - i} more line(s): {console[i:i + 3]}"
