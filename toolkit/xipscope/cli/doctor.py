"""`xipscope doctor`: name why a board hangs (doctor.py gathers the evidence and runs the checks)."""

from __future__ import annotations

from . import options

DESCRIPTION = ("Halt the core briefly, read its registers, XIP_CTRL, the QMI registers and the counters, take "
               "a short burst of PC samples, and name what is wrong, most serious first, with the evidence and "
               "what to do.")
EPILOG = """examples:
  xipscope doctor --target rsp://127.0.0.1:3333 --elf firmware.elf
  xipscope doctor --target sim://xipbench.elf --json
  xipscope doctor --target rsp://127.0.0.1:1234 --elf vmlinux --map qemu-virt"""


def add_arguments(p) -> None:
    from ..doctor import DEFAULT_SAMPLES    # the one copy; this parser is built only for `xipscope doctor`

    options.add_target(p, what="the board that hangs (it is halted briefly and left running)")
    options.add_elf(p, "the running program's ELF (or System.map), for names and callers; sim:// targets default "
                       "to their firmware")
    options.add_map(p, what="QMI/XIP checks need QMI in it")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                   help=f"PC samples to take (default {DEFAULT_SAMPLES})")
    options.add_json(p, "JSON: findings (id, severity, title, evidence, advice), what was checked, notes")
    options.add_timeout(p)


def run(args) -> int:
    import json
    import sys

    from ..chip.memory_map import get_memory_map
    from ..doctor import diagnose, format_diagnosis
    from ..elf.symbols import load_symbols
    from ..targets import open_target
    from ..targets.base import FIRMWARE

    memory_map = get_memory_map(args.map)
    with open_target(args.target, timeout=args.timeout) as target:
        elf = args.elf
        if elf is None and FIRMWARE in target.capabilities:
            elf = target.firmware     # the twin knows what it runs
        symbols = load_symbols(elf) if elf else None
        diagnosis = diagnose(target, symbols, memory_map, samples=args.samples)
    if args.json:
        sys.stdout.write(json.dumps(diagnosis.to_json(), indent=1) + "\n")
    else:
        sys.stdout.write(format_diagnosis(diagnosis))
    return 0
