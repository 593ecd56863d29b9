"""The `xipscope` command: thin adapters from arguments to library functions (heavy imports stay inside commands)."""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import XipscopeError
from .linux.printk import parse_levels  # the gdb commands use it too, so it lives in the library

TARGET_HELP = ("target URL: rsp://HOST:PORT (any GDB server: QEMU -gdb, OpenOCD :3333, pyOCD gdbserver, "
               "xipscope sim), sim://FIRMWARE.elf (the RP2350 twin, a model), snapshot://DIR (a saved snapshot)")


def cmd_gdb_script(args) -> int:
    from pathlib import Path

    print(Path(__file__).resolve().parent / "gdb" / "script.py")
    return 0


def open_memory_source(args):
    """The Target a command reads from: --target URL or --dump FILE@ADDR."""
    if args.dump:
        from .target.memory_image import MemoryImageTarget
        return MemoryImageTarget.from_spec(args.dump)
    from .target import open_target
    return open_target(args.target, timeout=args.timeout)


def cmd_dmesg(args) -> int:
    from .linux.printk import format_log, kernel_log_facts, read_kernel_log

    if args.follow and args.dump:
        raise XipscopeError("--follow watches a running kernel: give --target URL (a RAM image never changes)")
    facts = kernel_log_facts(args.elf)
    target = open_memory_source(args)
    if args.follow:
        try:
            return follow_dmesg(args, target, facts)
        finally:
            target.close()
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


def follow_dmesg(args, target, facts) -> int:
    """Print records as the kernel writes them until Ctrl-C, which ends the current poll cleanly (a target halted
    for a poll is resumed before we stop)."""
    import signal
    import threading

    from .linux.printk import LostRecords, follow_printk_records, format_record
    from .target.base import RUN_CONTROL

    if RUN_CONTROL in target.capabilities and target.state() == "halted":
        # As `profile` does: a kernel stopped (e.g. by a GDB server as we attached) would write nothing to follow.
        target.resume()
        print(f"xipscope dmesg: resumed {target.url}, which was halted", file=sys.stderr)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for event in follow_printk_records(target, facts, args.caller, from_start=args.follow == "all",
                                           interval=args.interval, stop=stop):
            if isinstance(event, LostRecords):
                lines = [json.dumps({"lost": event.count}) if args.json else
                         f"xipscope dmesg: {event.count} record(s) lost: overwritten before they were read"]
            elif args.level is not None and event.level not in args.level:
                continue
            else:
                lines = ([json.dumps(event.to_json(), ensure_ascii=False)] if args.json
                         else format_record(event, True))
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()
    finally:
        signal.signal(signal.SIGINT, previous)
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
    follow = dmesg.add_mutually_exclusive_group()
    follow.add_argument("-w", "--follow", action="store_const", const="all", default=None,
                        help="print the log, then each new record as the kernel writes it, until Ctrl-C (polls the "
                             "ring's head: memory read while the core runs where the transport can, else a brief "
                             "halt per poll; records overwritten between two polls are reported as lost)")
    follow.add_argument("-W", "--follow-new", dest="follow", action="store_const", const="new",
                        help="as --follow, printing only the records written from now on")
    dmesg.add_argument("--interval", type=float, default=0.25, metavar="SECONDS",
                       help="with --follow: seconds between two polls (default 0.25)")
    dmesg.set_defaults(func=cmd_dmesg)

    # In the order a user meets them: what the kernel said, why it died, where the time goes, why it hangs, then the
    # post-mortem, flash and twin tools.
    from .trap_cli import add_command as add_trap_command
    add_trap_command(commands)
    from .profile.sampler import add_command as add_profile_command
    add_profile_command(commands)
    from .top_cli import add_command as add_top_command
    add_top_command(commands)
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
    gdb_script = commands.add_parser(
        "gdb-script", help="print the path of the file that loads the xs commands into gdb-multiarch",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the path of the file to `source` in gdb-multiarch for the xs commands\n"
                    "(xipscope/gdb/script.py): it puts this xipscope, and the venv it is installed in, on gdb's own\n"
                    "Python path. Where gdb's Python imports xipscope already (e.g. `pip install --user` with the\n"
                    "Python gdb embeds), `python import xipscope.gdb` in gdb does the same.",
        epilog="example:\n"
               "  gdb-multiarch firmware.elf -ex \"source $(xipscope gdb-script)\" -ex 'target remote :3333'\n"
               "  (gdb) help xs")
    gdb_script.set_defaults(func=cmd_gdb_script)
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
