"""xipscope inside gdb-multiarch: `source gdb_scripts/xipscope.py`, then `help xs`.

Works on any gdbserver (QEMU, OpenOCD, pyOCD, the twin), unlike the kernel's lx-* helpers. Every command is a thin
adapter: it reads through gdb (xipscope.target.gdb_inferior) and the xipscope library does the work.

Debian's gdb embeds the system python3, not our venv: this script puts the project's package and its venv's
site-packages (REPO/.venv, or $XIPSCOPE_VENV) on gdb's sys.path. The venv must be made with the same Python minor
version gdb embeds (`python3 -m venv` on Debian does that; `make venv` uses it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import gdb

REPO = Path(__file__).resolve().parent.parent


def _put_xipscope_on_path() -> None:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv = Path(os.environ.get("XIPSCOPE_VENV") or REPO / ".venv")
    site_packages = venv / "lib" / version / "site-packages"
    if not site_packages.is_dir():
        raise gdb.GdbError(
            f"xipscope: no {site_packages}: gdb embeds {version}, so xipscope needs a venv made with it. "
            f"Run `make venv` in {REPO}, or set XIPSCOPE_VENV to such a venv, then source this script again.")
    for path in (str(site_packages), str(REPO / "toolkit")):
        if path not in sys.path:
            sys.path.insert(0, path)


_put_xipscope_on_path()

from xipscope.chip import get_memory_map  # noqa: E402
from xipscope.chip.memory_map import BUILTIN_MAPS  # noqa: E402
from xipscope.errors import XipscopeError  # noqa: E402
from xipscope.target.gdb_inferior import GdbInferiorTarget  # noqa: E402


class _Session:
    """What the commands remember between calls in one gdb session."""
    memory_map = get_memory_map("rp2350")
    last_xip_counters: tuple[int, int] | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise gdb.GdbError(f"{self.prog}: {message}")

    def exit(self, status=0, message=None):
        if message:
            gdb.write(message)
        raise gdb.GdbError("") if status else _HelpShown()


class _HelpShown(Exception):
    pass


class _XsCommand(gdb.Command):
    """Base of the `xs` subcommands: library errors become gdb errors, never Python tracebacks."""

    name = ""
    command_class = gdb.COMMAND_DATA
    completer = gdb.COMPLETE_NONE

    def __init__(self):
        super().__init__(f"xs {self.name}", self.command_class, self.completer)

    def parser(self) -> _Parser:
        return _Parser(prog=f"xs {self.name}", add_help=True)

    def invoke(self, argument: str, from_tty: bool) -> None:
        try:
            args = self.parser().parse_args(gdb.string_to_argv(argument))
            self.run(args)
        except _HelpShown:
            pass
        except XipscopeError as e:
            raise gdb.GdbError(f"xs {self.name}: {e}") from None

    def run(self, args) -> None:
        raise NotImplementedError


def _symbol_file(explicit: str | None) -> str:
    path = explicit or gdb.current_progspace().filename
    if not path:
        raise gdb.GdbError("no symbol file: load the kernel with `file vmlinux` or pass --elf FILE")
    return path


def _address(expression: str) -> int:
    try:
        return int(gdb.parse_and_eval(expression)) & 0xFFFFFFFF
    except gdb.error as e:
        raise gdb.GdbError(f"not an address: {expression!r} ({e})") from None


class XsPrefix(gdb.Command):
    """xipscope: XIP cache counters, memory regions, kernel log and traps of an RP2350 (or QEMU) target.

Subcommands: xs dmesg, xs region ADDR, xs xip [reset], xs map [NAME|FILE]; the function $xs_region(ADDR).
`help xs SUBCOMMAND` says more."""

    def __init__(self):
        super().__init__("xs", gdb.COMMAND_USER, gdb.COMPLETE_COMMAND, prefix=True)


class XsDmesg(_XsCommand):
    """Print the kernel log from the printk ring buffer, as the console prints it (same as `xipscope dmesg`).

Usage: xs dmesg [--level LIST] [--elf FILE] [--caller|--no-caller]
The symbols come from the file gdb has loaded (`file vmlinux`) unless --elf names one (vmlinux or System.map).
LIST: emerg,alert,crit,err,warn,notice,info,debug or 0-7, comma-separated."""

    name = "dmesg"

    def parser(self):
        from xipscope.cli import parse_levels
        p = super().parser()
        p.add_argument("--level", type=parse_levels)
        p.add_argument("--elf")
        p.add_argument("--caller", action=argparse.BooleanOptionalAction, default=None)
        return p

    def run(self, args) -> None:
        from xipscope.linux.printk import format_log, kernel_log_facts, read_kernel_log
        log = read_kernel_log(GdbInferiorTarget(), kernel_log_facts(_symbol_file(args.elf)), caller=args.caller)
        gdb.write("".join(line + "\n" for line in format_log(log, args.level)))
        for note in log.notes:
            gdb.write(f"xs dmesg: {note}\n", gdb.STDERR)


class XsRegion(_XsCommand):
    """Which memory region an address is in, whether the XIP cache is in front of it and whether atomics work there.

Usage: xs region ADDR   (any gdb expression: 0x11000000, &some_lock, $pc)
The map is the one `xs map` selected (default rp2350)."""

    name = "region"
    completer = gdb.COMPLETE_EXPRESSION

    def invoke(self, argument: str, from_tty: bool) -> None:
        if not argument.strip():
            raise gdb.GdbError("usage: xs region ADDR")
        gdb.write(_Session.memory_map.describe(_address(argument)) + "\n")


class XsMap(_XsCommand):
    """Show the memory map the xs commands use, or choose one: a built-in name (rp2350, qemu-virt) or a TOML file.

Usage: xs map [NAME|FILE]"""

    name = "map"

    def invoke(self, argument: str, from_tty: bool) -> None:
        choice = argument.strip()
        if choice:
            try:
                _Session.memory_map = get_memory_map(choice)
            except XipscopeError as e:
                raise gdb.GdbError(f"xs map: {e}") from None
        m = _Session.memory_map
        gdb.write(f"memory map {m.name}:\n")
        for r in m:
            gdb.write(f"  {r.start:#010x}-{r.end - 1:#010x}  {r.name:<20} {r.kind}"
                      f"{' cached' if r.cached else ''}{' atomics' if r.atomics_ok else ''}\n")

    def complete(self, text: str, word: str):
        names = [n for n in BUILTIN_MAPS if n.startswith(text)]
        return names or gdb.COMPLETE_FILENAME


class XsXip(_XsCommand):
    """The XIP cache counters (XIP_CTRL CTR_HIT, CTR_ACC) and the hit rate since the last `xs xip`.

Usage: xs xip [reset]
The counters count for the whole chip, saturate at 0xffffffff and are cleared by any write: `xs xip reset` writes them."""

    name = "xip"

    def invoke(self, argument: str, from_tty: bool) -> None:
        from xipscope.chip import rp2350 as rp
        try:
            self._show(argument.strip(), rp)
        except XipscopeError as e:
            raise gdb.GdbError(f"xs xip: {e}") from None

    def _show(self, action: str, rp) -> None:
        if action not in ("", "reset"):
            raise gdb.GdbError("usage: xs xip [reset]")
        target = GdbInferiorTarget()
        counters = rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT
        if action == "reset":
            target.write_memory(counters, bytes(8))
            _Session.last_xip_counters = (0, 0)
            gdb.write("XIP counters cleared\n")
            return
        raw = target.read_memory(counters, 8)
        hit, acc = int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")
        gdb.write(f"CTR_HIT {hit}  CTR_ACC {acc}  hit rate {_rate(hit, acc)}"
                  f"{'  (saturated: `xs xip reset`)' if rp.XIP_COUNTER_MAX in (hit, acc) else ''}\n")
        last = _Session.last_xip_counters
        if last is not None and hit >= last[0] and acc >= last[1]:
            gdb.write(f"since the last xs xip: {hit - last[0]} hits of {acc - last[1]} accesses, "
                      f"hit rate {_rate(hit - last[0], acc - last[1])}\n")
        elif last is not None:
            gdb.write("since the last xs xip: the counters were cleared in between\n")
        _Session.last_xip_counters = (hit, acc)

    def complete(self, text: str, word: str):
        return [w for w in ("reset",) if w.startswith(text)]


def _rate(hits: int, accesses: int) -> str:
    return f"{100.0 * hits / accesses:.1f}%" if accesses else "n/a (no accesses)"


class XsRegionFunction(gdb.Function):
    """$xs_region(ADDR): the name of the memory region ADDR is in ("unmapped" if none), on the map `xs map` chose."""

    def __init__(self):
        super().__init__("xs_region")

    def invoke(self, address):
        return _Session.memory_map.region_name(int(address) & 0xFFFFFFFF)


XsPrefix()
XsDmesg()
XsRegion()
XsMap()
XsXip()
XsRegionFunction()
