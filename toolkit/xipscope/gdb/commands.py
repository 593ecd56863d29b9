"""The `xs` commands (and $xs_region) inside gdb-multiarch; importing this module registers them with gdb.

Works on any gdbserver (QEMU, OpenOCD, pyOCD, the twin), unlike the kernel's lx-* helpers. Every command is a thin
adapter: it reads through gdb (xipscope.targets.gdb_inferior) and the xipscope library does the work. Loaded by
`python import xipscope.gdb`, or by sourcing the file `xipscope gdb-script` prints (xipscope/gdb/script.py).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gdb

from xipscope.chip import get_memory_map
from xipscope.chip.memory_map import BUILTIN_MAPS
from xipscope.errors import XipscopeError
from xipscope.targets.gdb_inferior import GdbInferiorTarget


class _Session:
    """What the commands remember between calls in one gdb session."""
    memory_map = get_memory_map("rp2350")
    map_choice: str | None = None          # what the user gave `xs map` (a name or a TOML path), if anything
    last_xip_counters: tuple[int, int] | None = None


def _map_for(explicit: str | None, default: str | None = "rp2350") -> tuple:
    """(MemoryMap or None, the name or path it was given by): --map, else `xs map`'s choice, else `default`."""
    choice = explicit or _Session.map_choice or default
    return (get_memory_map(choice) if choice else None), choice


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
    completer = None        # a gdb.COMPLETE_* class; None: our complete() (gdb ignores it when a class is given)
    options: tuple[str, ...] = ()          # offered by tab completion
    value_options: tuple[str, ...] = ()    # options that take a value (--map and path options aside)
    file_options: tuple[str, ...] = ()     # options whose value is a path
    positional_is_file = False

    def __init__(self):
        if self.completer is None:
            super().__init__(f"xs {self.name}", self.command_class)
        else:
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
        except (gdb.error, OSError) as e:     # gdb refused a command we gave it; a file we could not write
            raise gdb.GdbError(f"xs {self.name}: {e}") from None

    def run(self, args) -> None:
        raise NotImplementedError

    def complete(self, text: str, word: str):
        """Options; map names (or a file) after --map; paths after path options and for a path argument."""
        ends_word = not text or text[-1].isspace()
        tokens = text.split()
        current = "" if ends_word else (tokens[-1] if tokens else "")
        previous = (tokens[-1] if ends_word else tokens[-2] if len(tokens) > 1 else "") if tokens else ""
        if word is None:
            return None     # gdb's first call only asks how to break words: its default is fine
        if previous == "--map":
            return _completions(BUILTIN_MAPS, current, word) or _path_completions(current, word)
        if previous in self.file_options:
            return _path_completions(current, word)
        if previous in self.value_options:
            return []
        if current.startswith("-") or not self.positional_is_file:
            return _completions(self.options, current, word)
        return _path_completions(current, word)


def _path_completions(current: str, word: str) -> list[str]:
    """Paths that extend `current` (directories with a trailing /). gdb 13's own COMPLETE_FILENAME completes nothing
    after an earlier word in a Python command's arguments (`--elf /tm<TAB>`), so we list the directory ourselves."""
    import glob
    found = [p + "/" if os.path.isdir(p) else p for p in sorted(glob.glob(glob.escape(current) + "*"))]
    return _completions(found, current, word)


def _completions(candidates, current: str, word: str) -> list[str]:
    """Candidates that extend `current`, cut to what replaces `word` (gdb may break words at '-')."""
    cut = len(current) - len(word)
    return [c[cut:] for c in candidates if c.startswith(current)]


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

Subcommands: xs dmesg, xs trap, xs region ADDR, xs xip [reset], xs map [NAME|FILE], xs profile SECONDS,
xs snapshot DIR; the function $xs_region(ADDR).
`help xs SUBCOMMAND` says more."""

    def __init__(self):
        super().__init__("xs", gdb.COMMAND_USER, gdb.COMPLETE_COMMAND, prefix=True)


class XsDmesg(_XsCommand):
    """Print the kernel log from the printk ring buffer, as the console prints it (same as `xipscope dmesg`).

Usage: xs dmesg [--level LIST] [--elf FILE] [--caller|--no-caller]
The symbols come from the file gdb has loaded (`file vmlinux`) unless --elf names one (vmlinux or System.map).
LIST: emerg,alert,crit,err,warn,notice,info,debug or 0-7, comma-separated."""

    name = "dmesg"
    options = ("--level", "--elf", "--caller", "--no-caller")
    value_options = ("--level",)
    file_options = ("--elf",)

    def parser(self):
        from xipscope.linux.printk import parse_levels
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


class XsTrap(_XsCommand):
    """Why did it die: decode the trap the stopped program holds (same as `xipscope trap`).

Usage: xs trap [--json] [--map NAME|FILE] [--elf FILE]
Reads mcause, mepc, mstatus, mtval and the registers through gdb (stop at the trap vector first, e.g.
`break handle_exception` for Linux), recomputes the faulting address from the instruction at mepc (Hazard3 writes
mtval = 0), and explains it with the memory map's rules. Symbols: the file gdb has loaded, unless --elf names one.
Map: --map, else the one `xs map` chose, else the built-in map where mepc is in memory.
--json prints one JSON object, as `xipscope trap --json` does (its "source" names gdb, not an rsp:// URL)."""

    name = "trap"
    options = ("--json", "--map", "--elf")
    file_options = ("--elf",)

    def parser(self):
        p = super().parser()
        p.add_argument("--json", action="store_true")
        p.add_argument("--map")
        p.add_argument("--elf")
        return p

    def run(self, args) -> None:
        from xipscope.elf import load_symbols
        from xipscope.trap import decode_trap, render_trap

        symbols = load_symbols(_symbol_file(args.elf))
        memory_map, _ = _map_for(args.map, default=None)
        gdb.write(render_trap(decode_trap(GdbInferiorTarget(), symbols, memory_map), args.json))


class XsProfile(_XsCommand):
    """Sample the program's PC for SECONDS (and the XIP counters, and stacks), then print where the time went.

Usage: xs profile SECONDS [--samples N] [--rate HZ] [--stacks] [--out DIR] [--map NAME|FILE] [--elf FILE]
With --samples, the run ends after N samples, SECONDS only capping it.
gdb's own run control is far too slow to sample from a Python command, and a gdbserver takes one client at a time.
So `xs profile` notes the server's address, detaches gdb (the program runs on; gdb's breakpoints are out while it
samples), runs xipscope's sampler over rsp:// to the same server (one round trip per sample), halts the program
and connects gdb again with `target remote` (or extended-remote). Needs a TCP `target remote HOST:PORT`.
Prints the top functions, the share of each memory region and the XIP hit rate, and writes the samples (as
`xipscope profile` does) and an HTML report into DIR (default: a new xs-profile-TIME directory here).
Map: --map, else the one `xs map` chose, else rp2350. Ctrl-C ends the run early; the samples taken are kept."""

    name = "profile"
    options = ("--samples", "--rate", "--stacks", "--out", "--map", "--elf")
    value_options = ("--samples", "--rate")
    file_options = ("--out", "--elf")

    def parser(self):
        p = super().parser()
        p.add_argument("seconds", type=float)
        p.add_argument("--samples", type=int)
        p.add_argument("--rate", type=float)
        p.add_argument("--stacks", action="store_true")
        p.add_argument("--out")
        p.add_argument("--map")
        p.add_argument("--elf")
        return p

    def run(self, args) -> None:
        import time

        from xipscope.elf import load_symbols
        import json

        from xipscope.profile.report import summary_text, write_report
        from xipscope.profile.sampler import sample_profile
        from xipscope.targets.rsp import RspTarget

        if args.seconds <= 0:
            raise gdb.GdbError("xs profile: SECONDS must be above zero")
        if args.samples is not None and args.samples <= 0:
            raise gdb.GdbError("xs profile: --samples N must be above zero")
        inferior = GdbInferiorTarget()
        address, kind = inferior.remote_address, inferior.remote_kind
        host, _, port = (address or "").removeprefix("tcp:").rpartition(":")
        if not host or not port.isdigit():
            raise gdb.GdbError("xs profile: gdb must be connected over TCP (`target remote HOST:PORT`) for xipscope to "
                               f"sample the same server; the connection is {kind or 'none'} {address or ''}".rstrip())
        if inferior.state() != "halted":
            raise gdb.GdbError("xs profile: the program runs; interrupt it (Ctrl-C) first")
        elf = _symbol_file(args.elf)
        symbols = load_symbols(elf)
        memory_map, map_name = _map_for(args.map)
        out = Path(args.out or f"xs-profile-{time.strftime('%Y%m%d-%H%M%S')}")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise gdb.GdbError(f"xs profile: {out} exists and is not an empty directory; give --out a new directory")
        try:
            out.mkdir(parents=True, exist_ok=True)     # now, not after gdb has detached for nothing
        except OSError as e:
            raise gdb.GdbError(f"xs profile: cannot make {out}: {e.strerror or e}") from None

        amount = f"{args.samples} samples (at most {args.seconds:g} s)" if args.samples else f"{args.seconds:g} s"
        gdb.write(f"xs profile: detaching gdb from {address}; sampling for {amount} over "
                  f"rsp://{host}:{port}\n")
        gdb.flush()
        gdb.execute("detach", to_string=True)
        run = None
        try:
            target = RspTarget(host, int(port))
            try:
                run = sample_profile(target, out, memory_map=memory_map, duration=args.seconds, samples=args.samples,
                                     rate_hz=args.rate,
                                     stacks=args.stacks, symbols=symbols, elf=elf, map_name=map_name)
            except KeyboardInterrupt:
                pass                        # Ctrl-C ends the sampling; what was taken is on disk
            finally:
                try:
                    target.halt()
                except XipscopeError:
                    pass                    # the server is gone: reconnecting gdb below says so
                target.disconnect()         # no `D`: the program stays halted for gdb, as the user left it
        finally:
            try:
                gdb.execute(f"target {kind} {address}", to_string=True)
            except gdb.error as e:
                raise gdb.GdbError(f"xs profile: could not connect gdb again to {address} ({e}); the samples are "
                                   f"in {out}. Reconnect with `target {kind} {address}`.") from None
        meta = run.meta if run is not None else {}
        if run is not None:
            gdb.write(f"{meta['samples']} samples in {meta['duration_s']:.2f} s ({meta['rate_hz_achieved'] or 0:.0f}/s)"
                      f" via {meta['transport']}; gdb is connected again\n")
        else:
            gdb.write("xs profile: interrupted; gdb is connected again\n")
        # The same summary `xipscope profile` prints, made from the report's own tables.
        report = write_report(out, symbols=symbols, memory_map=memory_map)
        gdb.write(summary_text(json.loads((report.parent / "summary.json").read_text())) + "\n")
        gdb.write(f"samples in {out}; report: {report}\n")


class XsSnapshot(_XsCommand):
    """Save the stopped program's registers (every one gdb has, CSRs included) and RAM into DIR, for snapshot://DIR.

Usage: xs snapshot DIR [--flash] [--map NAME|FILE] [--size REGION=SIZE]... [--elf FILE]
Everything is read through gdb; run control is left alone (the program stays stopped). Saves the map's RAM
(SRAM and PSRAM on rp2350, dram on qemu-virt; XIP flash too with --flash), as `xipscope snapshot` does. Later:
`xipscope dmesg --target snapshot://DIR`, `xipscope trap --target snapshot://DIR`, `xipscope serve DIR`.
Map: --map, else the one `xs map` chose, else rp2350. The ELF's hash goes into the manifest (the loaded file, or --elf)."""

    name = "snapshot"
    options = ("--flash", "--map", "--size", "--elf")
    value_options = ("--size",)
    file_options = ("--elf",)
    positional_is_file = True

    def parser(self):
        p = super().parser()
        p.add_argument("directory")
        p.add_argument("--flash", action="store_true")
        p.add_argument("--map")
        p.add_argument("--size", action="append", default=[])
        p.add_argument("--elf")
        return p

    def run(self, args) -> None:
        from xipscope.snapshot.take import parse_sizes, take_snapshot

        target = GdbInferiorTarget()
        if target.state() != "halted":
            raise gdb.GdbError("xs snapshot: the program runs; interrupt it (Ctrl-C) first")
        memory_map, _ = _map_for(args.map)
        elf = args.elf or gdb.current_progspace().filename
        manifest = take_snapshot(target, args.directory, memory_map, elf=elf, include_flash=args.flash,
                                 resume=False, sizes=parse_sizes(args.size),
                                 log=lambda text: gdb.write(f"xs snapshot: {text}\n"))
        total = sum(r["size"] for r in manifest["regions"])
        gdb.write(f"snapshot in {args.directory}: {len(manifest['registers'])} registers, "
                  f"{len(manifest['regions'])} regions, {total} bytes, {manifest['seconds']} s\n")


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
                _Session.map_choice = choice
            except XipscopeError as e:
                raise gdb.GdbError(f"xs map: {e}") from None
        m = _Session.memory_map
        gdb.write(f"memory map {m.name}:\n")
        for r in m:
            gdb.write(f"  {r.start:#010x}-{r.end - 1:#010x}  {r.name:<20} {r.kind}"
                      f"{' cached' if r.cached else ''}{' atomics' if r.atomics_ok else ''}\n")

    def complete(self, text: str, word: str):
        if word is None:
            return None
        return _completions(BUILTIN_MAPS, text.strip(), word) or _path_completions(text.strip(), word)


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
XsTrap()
XsProfile()
XsSnapshot()
XsRegion()
XsMap()
XsXip()
XsRegionFunction()
