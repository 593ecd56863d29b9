"""The `xipscope` command: thin adapters from arguments to library functions (heavy imports stay inside commands)."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import XipscopeError

TARGET_HELP = ("target URL: rsp://HOST:PORT (any GDB server: QEMU -gdb, OpenOCD :3333, pyOCD gdbserver, "
               "xipscope sim), sim://FIRMWARE.elf (the RP2350 twin, a model), snapshot://DIR (a saved snapshot)")


def parse_levels(text: str) -> set[int]:
    """`err,warn` or `0-3` or `3,4`: the log levels to keep, as dmesg(1) names them."""
    from .linux.printk import LEVEL_NAMES

    levels: set[int] = set()
    for item in text.split(","):
        item = item.strip().lower()
        if item in LEVEL_NAMES:
            levels.add(LEVEL_NAMES.index(item))
        elif "-" in item and all(p.isdigit() for p in item.split("-", 1)):
            low, high = map(int, item.split("-", 1))
            levels.update(range(low, high + 1))
        elif item.isdigit() and int(item) < 8:
            levels.add(int(item))
        else:
            raise argparse.ArgumentTypeError(
                f"unknown level {item!r}; use {', '.join(LEVEL_NAMES)} or 0-7, comma-separated")
    return levels


def open_memory_source(args):
    """The Target a command reads from: --target URL or --dump FILE@ADDR."""
    if args.dump:
        from .target.memory_image import MemoryImageTarget
        return MemoryImageTarget.from_spec(args.dump)
    from .target import open_target
    return open_target(args.target, timeout=args.timeout)


def cmd_dmesg(args) -> int:
    from .linux.printk import format_log, kernel_log_facts, read_kernel_log

    facts = kernel_log_facts(args.elf)
    target = open_memory_source(args)
    try:
        log = read_kernel_log(target, facts, caller=args.caller)
    finally:
        target.close()
    out = sys.stdout
    if args.json:
        for record in log.records:
            if args.level is None or record.level in args.level:
                out.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
    else:
        for line in format_log(log, args.level):
            out.write(line + "\n")
    for note in log.notes:
        print(f"xipscope dmesg: {note}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xipscope",
        description="Debug and profile the RP2350 running code in place (XIP) from flash and PSRAM: "
                    "kernel log recovery, trap decoding, XIP cache profiling.")
    parser.add_argument("--version", action="version", version=f"xipscope {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    dmesg = commands.add_parser(
        "dmesg", help="print the kernel log from the printk ring buffer in target memory or a RAM image",
        description="Read the Linux kernel log out of memory, formatted exactly as the kernel's console prints it.")
    dmesg.add_argument("--elf", "--symbols", dest="elf", required=True, metavar="FILE",
                       help="the running kernel's vmlinux (with or without DWARF) or its System.map")
    source = dmesg.add_mutually_exclusive_group(required=True)
    source.add_argument("--target", metavar="URL", help=TARGET_HELP)
    source.add_argument("--dump", metavar="FILE@ADDR",
                        help="raw RAM image and the address of its first byte, e.g. ram.bin@0x80000000")
    dmesg.add_argument("--json", action="store_true",
                       help="one JSON object per record: seq, ts_ns, level, facility, flags, caller, text, dev_info")
    dmesg.add_argument("--level", type=parse_levels, metavar="LIST",
                       help="only these levels: emerg,alert,crit,err,warn,notice,info,debug or 0-7")
    dmesg.add_argument("--caller", action=argparse.BooleanOptionalAction, default=None,
                       help="the kernel records callers (CONFIG_PRINTK_CALLER); default: from DWARF or a .config "
                            "beside the symbols")
    dmesg.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each target reply")
    dmesg.set_defaults(func=cmd_dmesg)

    # In the order a user meets them: what the kernel said, why it died, where the time goes, why it hangs, then the
    # post-mortem, flash and twin tools.
    from .trap_cli import add_command as add_trap_command
    add_trap_command(commands)
    from .profile.sampler import add_command as add_profile_command
    add_profile_command(commands)
    from .profile.cli import add_command as add_report_commands
    add_report_commands(commands)
    from .probe_latency import add_command as add_probe_latency_command
    add_probe_latency_command(commands)
    from .doctor import add_command as add_doctor_command
    add_doctor_command(commands)
    from .snapshot import add_command as add_snapshot_commands
    add_snapshot_commands(commands)
    from .image.cli import add_command as add_image_command
    add_image_command(commands)
    from .dump import add_command as add_dump_command
    add_dump_command(commands)
    from .sim.cli import add_command as add_sim_command
    add_sim_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
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
