"""`xipscope trap`: the command-line adapter over trap.py (kept apart so that `xipscope --help` imports none of it)."""

from __future__ import annotations

from .errors import TargetError, XipscopeError


def add_command(subparsers):
    p = subparsers.add_parser(
        "trap", help="why did it die: decode mcause/mepc/mstatus, the instruction and the faulting address",
        description="Decode a trap from a halted target (mcause, mepc, mstatus, mtval, GPRs) or from a Linux oops "
                    "(--oops; a whole kernel log is fine). The faulting address is recomputed from the instruction "
                    "at mepc and the registers, since Hazard3 writes mtval = 0.")
    p.add_argument("--target", metavar="URL", help="a halted target: rsp://HOST:PORT, sim://FIRMWARE.elf")
    p.add_argument("--oops", metavar="FILE", help="oops text or a kernel log holding one ('-' for stdin); "
                   "with --target too, the target's memory supplies the stack to unwind")
    p.add_argument("--elf", "--symbols", dest="elf", required=True, metavar="FILE",
                   help="the ELF that was running (vmlinux or firmware), or a System.map")
    p.add_argument("--map", metavar="NAME|FILE", help="memory map: rp2350, qemu-virt or a TOML file "
                   "(default: the built-in map where mepc is in memory)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each target reply")
    p.set_defaults(func=cmd_trap)
    return p


def cmd_trap(args) -> int:
    import sys

    from .elf import load_symbols
    from .trap import decode_oops, decode_trap, render_trap

    if not args.target and not args.oops:
        raise XipscopeError("say where the trap is: --target URL (a halted target) or --oops FILE")
    symbols = load_symbols(args.elf)
    target = None
    if args.target:
        from .target import open_target
        from .target.base import require_riscv
        target = open_target(args.target, timeout=args.timeout)
        try:
            require_riscv(target, "trap decoding (mcause, mepc)")
        except XipscopeError:
            target.close()
            raise
    try:
        if args.oops:
            from .files import read_regular
            from .linux.oops import MAX_LOG_BYTES, parse_oops
            if args.oops == "-":
                text = sys.stdin.read(MAX_LOG_BYTES)
            else:
                text = read_regular(args.oops, "the oops text", max_size=MAX_LOG_BYTES, hint="Pipe a stream into "
                                    "--oops - instead.", why="a kernel log may have (the printk ring is at "
                                    "most 32 MiB)").decode(errors="replace")
            report = decode_oops(parse_oops(text), symbols, args.map, target=target, source=args.oops)
        else:
            if target.state() != "halted":
                raise TargetError(f"{target.url}: the target is running; halt it at the trap first "
                                  "(e.g. a breakpoint at the trap vector)")
            report = decode_trap(target, symbols, args.map)
    finally:
        if target is not None and not args.oops:
            # Leave a halted target halted: the trap is still there for gdb or a snapshot.
            (getattr(target, "disconnect", None) or target.close)()
        elif target is not None:
            target.close()      # only its memory was read (the stack): leave it as dmesg does
    sys.stdout.write(render_trap(report, args.json))
    return 0
