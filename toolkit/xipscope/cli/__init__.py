"""The `xipscope` command: one module per command in this package, each imported only when its command runs.

Every command module exposes DESCRIPTION, EPILOG (its examples), add_arguments(parser) and run(args) -> exit status,
and imports the library inside run(), so that building the parser costs the top level plus the one command asked for
(`xipscope dmesg` imports neither the profiler nor doctor). The shared options (--target, --map, --elf, --timeout,
--json) are defined once, in options.py. Applications expose functions; printing and arguments live here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import XipscopeError

# (name, module in this package, one-line help), in the order a user meets them: what the kernel said, why it died,
# where the time goes, why it hangs, then the post-mortem, flash and twin tools.
COMMANDS = (
    ("dmesg", "dmesg", "print the kernel log from the printk ring buffer in target memory or a RAM image"),
    ("trap", "trap", "why did it die: decode mcause/mepc/mstatus, the instruction and the faulting address"),
    ("profile", "profile",
     "sample the PC (and XIP cache counters, and stacks) of a running target into a profile directory"),
    ("top", "top", "live view of where a running target spends its time, like perf top (samples also go to disk)"),
    ("report", "report", "analyse a profile directory: HTML report with plots, CSV, speedscope, collapsed stacks"),
    ("compare", "compare", "compare two profiles: per-region and per-function deltas with a plot"),
    ("probe-latency", "probe_latency", "measure your debug probe's round trip and wire rate for the probe model"),
    ("doctor", "doctor", "name why a board hangs: flash writes from XIP, LR/SC livelocks, traps, XIP settings"),
    ("snapshot", "snapshot", "halt a target and save its registers and RAM to a directory (for snapshot://DIR)"),
    ("serve", "serve", "serve a snapshot over the GDB remote protocol (gdb-multiarch: target remote :PORT)"),
    ("image", "image", "decode the RP2350 flash image: block loops, IMAGE_DEF, partition table, Linux layout"),
    ("dump", "dump", "hexdump target memory with the region and symbol of each line"),
    ("sim", "sim", "run firmware on the RP2350 twin (a model), or serve it to gdb"),
    ("gdb-script", "gdb_script", "print the path of the file that loads the xs commands into gdb-multiarch"),
)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's wrapping, except that lines indented by two spaces (the examples) are kept as written."""

    def _fill_text(self, text, width, indent):
        out = []
        for line in text.splitlines():
            if line.startswith("  ") or not line.strip():
                out.append(indent + line)
            else:
                out.append(super()._fill_text(line, width, indent))
        return "\n".join(out)


def command_module(module: str):
    return importlib.import_module(f"{__name__}.{module}")


def chosen_command(argv: list[str]) -> str | None:
    """The command argv names: its first word that is not an option (the top level's options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser's top level, with the arguments of the command argv names (None: of every command)."""
    parser = argparse.ArgumentParser(
        prog="xipscope", formatter_class=HelpFormatter,
        description="Debug and profile the RP2350 running code in place (XIP) from flash and PSRAM: "
                    "kernel log recovery, trap decoding, XIP cache profiling.",
        epilog="example:\n  xipscope dmesg --elf vmlinux --target rsp://127.0.0.1:1234\n"
               "  xipscope COMMAND --help   (each command's options and examples)")
    parser.add_argument("--version", action="version", version=f"xipscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = None if argv is None else chosen_command(argv)
    for name, module, help_text in COMMANDS:
        if argv is not None and name != wanted:
            commands.add_parser(name, help=help_text)     # named in the list; its options are not needed
            continue
        mod = command_module(module)
        sub = commands.add_parser(name, help=help_text, description=mod.DESCRIPTION, epilog=mod.EPILOG,
                                  formatter_class=HelpFormatter)
        mod.add_arguments(sub)
        sub.set_defaults(handler=mod.run)     # not `run`: sim has a --run
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.handler(args)
    except XipscopeError as e:
        print(f"xipscope {args.command}: error: {e}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"xipscope {args.command}: error: ran out of memory; the input is larger than this machine can hold "
              "(is it the file you meant?)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
