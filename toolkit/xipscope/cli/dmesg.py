"""`xipscope dmesg`: the kernel log out of target memory or a RAM image (linux/printk.py reads it)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import XipscopeError
from . import options

DESCRIPTION = "Read the Linux kernel log out of memory, formatted exactly as the kernel's console prints it."
EPILOG = """examples:
  xipscope dmesg --elf vmlinux --target rsp://127.0.0.1:1234
  xipscope dmesg --elf System.map --dump ram.bin@0x80000000 --level err,warn
  xipscope dmesg --elf vmlinux --target rsp://127.0.0.1:1234 --follow-new"""


def levels(text: str) -> set[int]:
    """--level's type: printk's parser, imported when the option is given (not to build the parser)."""
    from ..linux.printk import parse_levels
    return parse_levels(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_elf(p, "the running kernel's vmlinux (with or without DWARF) or its System.map", required=True,
                    symbols_alias=True)
    options.add_source(p)
    options.add_json(p, "one JSON object per record: seq, ts_ns, level, facility, flags, caller, text, dev_info")
    p.add_argument("--level", type=levels, metavar="LIST",
                   help="only these levels: emerg,alert,crit,err,warn,notice,info,debug or 0-7")
    p.add_argument("--caller", action=argparse.BooleanOptionalAction, default=None,
                   help="the kernel records callers (CONFIG_PRINTK_CALLER); default: from DWARF or a .config "
                        "beside the symbols")
    options.add_timeout(p)
    follow = p.add_mutually_exclusive_group()
    follow.add_argument("-w", "--follow", action="store_const", const="all", default=None,
                        help="print the log, then each new record as the kernel writes it, until Ctrl-C (polls the "
                             "ring's head: memory read while the core runs where the transport can, else a brief "
                             "halt per poll; records overwritten between two polls are reported as lost)")
    follow.add_argument("-W", "--follow-new", dest="follow", action="store_const", const="new",
                        help="as --follow, printing only the records written from now on")
    p.add_argument("--interval", type=float, default=0.25, metavar="SECONDS",
                   help="with --follow: seconds between two polls (default 0.25)")


def run(args) -> int:
    from ..linux.printk import format_log, kernel_log_facts, read_kernel_log

    if args.follow and args.dump:
        raise XipscopeError("--follow watches a running kernel: give --target URL (a RAM image never changes)")
    facts = kernel_log_facts(args.elf)
    target = options.open_source(args)
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
    from ..linux.printk import LostRecords, follow_printk_records, format_record
    from ..targets.base import RUN_CONTROL
    from .ctrl_c import ctrl_c_stops

    if RUN_CONTROL in target.capabilities and target.state() == "halted":
        # As `profile` does: a kernel stopped (e.g. by a GDB server as we attached) would write nothing to follow.
        target.resume()
        print(f"xipscope dmesg: resumed {target.url}, which was halted", file=sys.stderr)
    with ctrl_c_stops() as stop:
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
    return 0
