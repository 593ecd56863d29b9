"""`xipscope trap`: decode a trap from a halted target or an oops (trap.py does the work)."""

from __future__ import annotations

from ..errors import TargetError, XipscopeError
from . import options

DESCRIPTION = ("Decode a trap from a halted target (mcause, mepc, mstatus, mtval, GPRs) or from a Linux oops "
               "(--oops; a whole kernel log is fine). The faulting address is recomputed from the instruction "
               "at mepc and the registers, since Hazard3 writes mtval = 0.")
EPILOG = """examples:
  xipscope trap --target rsp://127.0.0.1:3333 --elf firmware.elf
  xipscope trap --oops console.log --elf vmlinux
  xipscope dmesg --elf vmlinux --dump ram.bin@0x80000000 | xipscope trap --oops - --elf vmlinux"""


def add_arguments(p) -> None:
    options.add_target(p, required=False, what="a halted target (stopped at the trap)")
    p.add_argument("--oops", metavar="FILE", help="oops text or a kernel log holding one ('-' for stdin); "
                   "with --target too, the target's memory supplies the stack to unwind")
    options.add_elf(p, "the ELF that was running (vmlinux or firmware), or a System.map", required=True,
                    symbols_alias=True)
    options.add_map(p, default=None, default_text="default: the built-in map where mepc is in memory")
    options.add_json(p, "one JSON object")
    options.add_timeout(p)


def run(args) -> int:
    import sys

    from ..elf import load_symbols
    from ..trap import decode_oops, decode_trap, render_trap

    if not args.target and not args.oops:
        raise XipscopeError("say where the trap is: --target URL (a halted target) or --oops FILE")
    symbols = load_symbols(args.elf)
    target = None
    if args.target:
        from ..targets import open_target
        from ..targets.base import require_riscv
        target = open_target(args.target, timeout=args.timeout)
        try:
            require_riscv(target, "trap decoding (mcause, mepc)")
        except XipscopeError:
            target.close()
            raise
    try:
        if args.oops:
            from ..files import read_regular
            from ..linux.oops import MAX_LOG_BYTES, parse_oops
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
