"""`xipscope sim FIRMWARE.elf`: run the RP2350 twin (a model, sim/) and print its ground truth, or serve it to gdb.

Importing this module does not import unicorn.
"""

from __future__ import annotations

import json
import sys

from ..sim import MODEL_NOTE     # sim/__init__ imports nothing: --help stays free of unicorn

DESCRIPTION = (f"Run an RV32 firmware ELF on the {MODEL_NOTE}: unicorn executes the code; the XIP cache, its "
               "CTR_HIT/CTR_ACC counters, UART0 and Hazard3's traps and counters are modelled from the facts "
               "in chip/rp2350.py. Without --gdb-port it runs to the end and prints UART output and the ground "
               "truth per function.")
EPILOG = """examples:
  xipscope sim xipbench.elf --run
  xipscope sim firmware.elf --gdb-port 0 --clock-hz 1e6
  xipscope sim firmware.elf --jtag-port 0 --halted"""


def add_arguments(p) -> None:
    from ..sim.firmware import shipped_firmware, shipped_firmware_dir

    shipped = shipped_firmware()
    if shipped:
        # Appended to the examples: which bare names work is known only where this xipscope is installed.
        p.epilog += (f"\n\nExample firmware shipped with xipscope, found by its bare name (e.g. `xipscope sim "
                     f"xipbench.elf --run`, `sim://xipbench.elf`) when no such file is in the current directory: "
                     f"{', '.join(shipped)} (in {shipped_firmware_dir()}).")
    p.add_argument("firmware", help="firmware ELF (a path, or the bare name of a shipped one, e.g. xipbench.elf)")
    p.add_argument("--gdb-port", type=int, default=None, metavar="N",
                   help="serve the GDB remote protocol on 127.0.0.1:N (0 = any free port; the port is printed)")
    p.add_argument("--jtag-port", type=int, default=None, metavar="N",
                   help="serve JTAG over OpenOCD's remote_bitbang protocol on 127.0.0.1:N (a RISC-V DTM and Debug "
                        "Module over the twin's core; 0 = any free port; the port is printed)")
    p.add_argument("--halted", action="store_true",
                   help="with --jtag-port: hold the hart halted at the ELF entry until a debugger resumes it")
    p.add_argument("--boot-arch", choices=("riscv", "arm"), default="riscv",
                   help="with --jtag-port: arm models a chip booted in Arm mode (its RISC-V harts held in reset, "
                        "the Debug Module answering 'unavailable')")
    p.add_argument("--run", action="store_true", help="run to the end (the default without --gdb-port)")
    p.add_argument("--max-instructions", type=int, default=50_000_000, metavar="N",
                   help="stop a --run after about N instructions (default 50M)")
    p.add_argument("--flash", metavar="IMAGE",
                   help="program the twin's flash from IMAGE.uf2 or IMAGE.bin[@ADDR] first (the ELF's own bytes "
                        "stand where both write), e.g. seedlayout.uf2 (shipped, as the firmware is)")
    p.add_argument("--kernel", metavar="IMAGE",
                   help="boot a Linux Image as the RP2350 ports' bootloader does: IMAGE in PSRAM at 0x11000000 "
                        "(the positional ELF is then its vmlinux, for symbols), M-mode, a0 = 0, a1 = the --dtb")
    p.add_argument("--dtb", metavar="FILE",
                   help="a flattened device tree put in flash at 0x10010000 (a1 points there), e.g. pico2.dtb")
    p.add_argument("--clk-sys-hz", type=int, default=None, metavar="HZ",
                   help="clk_sys of the twin: MTIME's 1 MHz is counted in these simulated cycles (default 150 MHz)")
    p.add_argument("--uart-log", metavar="FILE", help="also write UART0 output to FILE")
    p.add_argument("--quiet-uart", action="store_true", help="do not echo UART0 output while running")
    p.add_argument("--json", action="store_true", help="print the ground truth as JSON instead of a table")
    p.add_argument("--seed", type=int, default=0, help="seed of the cache's random eviction (default 0)")
    p.add_argument("--flash-miss-cycles", type=int, default=None, metavar="N",
                   help="cycles an XIP flash access not served by the cache costs (an assumption; default 24)")
    p.add_argument("--psram-miss-cycles", type=int, default=None, metavar="N",
                   help="cycles a PSRAM access not served by the cache costs (an assumption; default 40)")
    p.add_argument("--clock-hz", type=float, default=0, metavar="HZ",
                   help="with --gdb-port or --jtag-port: pace the twin to HZ simulated cycles per second of wall time, so that "
                        "wall-clock samplers (xipscope profile) see simulated time, e.g. 1e6 (default 0: unpaced, "
                        "as fast as the host goes)")


def _machine_kwargs(args, uart_echo):
    from ..sim.counters import Timing

    defaults = Timing()
    timing = Timing(args.flash_miss_cycles if args.flash_miss_cycles is not None else defaults.flash_miss_cycles,
                    args.psram_miss_cycles if args.psram_miss_cycles is not None else defaults.psram_miss_cycles)
    kwargs = {"timing": timing, "seed": args.seed, "uart_echo": uart_echo, "flash_image": args.flash,
              "kernel_image": args.kernel, "dtb": args.dtb}
    if args.clk_sys_hz is not None:
        kwargs["clk_hz"] = args.clk_sys_hz
    return kwargs


def run(args) -> int:
    from ..sim.firmware import find_firmware

    args.firmware = find_firmware(args.firmware)
    args.flash = find_firmware(args.flash) if args.flash else None

    log = open(args.uart_log, "wb") if args.uart_log else None
    out = sys.stdout

    def echo(byte: bytes) -> None:
        if log is not None:
            log.write(byte)
            log.flush()
        if not args.quiet_uart and not args.json and args.gdb_port is None and args.jtag_port is None:
            out.buffer.write(byte) if hasattr(out, "buffer") else out.write(byte.decode("latin-1"))
            out.flush()

    try:
        if args.jtag_port is not None and not args.run:
            from ..sim.jtag import serve as serve_jtag
            serve_jtag(args.firmware, args.jtag_port, _machine_kwargs(args, echo), halted=args.halted,
                       boot_arch=args.boot_arch, clock_hz=args.clock_hz or None)
            return 0
        if args.gdb_port is not None and not args.run:
            from ..sim.gdbserver import serve
            serve(args.firmware, args.gdb_port, _machine_kwargs(args, echo), clock_hz=args.clock_hz or None)
            return 0
        from ..sim.hazard3 import Machine
        from ..sim.truth_tables import format_function_table, stats_json, trap_loop_text

        machine = Machine(args.firmware, **_machine_kwargs(args, echo))
        if not args.json:
            print(f"== {MODEL_NOTE}: running {args.firmware} (UART0 output follows)", flush=True)
        result = machine.run(args.max_instructions)
        # The run stops by itself (idle, trap-loop) or at its budget; a firmware spinning through its trap handler
        # runs to the budget, as a board spins until halted, and the trap loop is named beside the stop.
        loop = trap_loop_text(machine) if result.reason == "budget" else None
        if args.json:
            print(json.dumps(stats_json(machine) | {"stop": result.reason, "max_instructions": args.max_instructions,
                                                    "trap_loop": loop}, indent=1))
        else:
            stop = (f"budget: the {args.max_instructions:,} instructions of --max-instructions ran out"
                    if result.reason == "budget" else result.reason)
            print(f"\n== {MODEL_NOTE}: stopped ({stop}) at pc {result.pc:#010x} after "
                  f"{result.instructions:,} instructions" + (f"; UART0 output kept in {args.uart_log}"
                                                             if args.uart_log else ""))
            if loop is not None:
                print(f"== {loop}")
            print(format_function_table(machine), end="")
        return 0
    finally:
        if log is not None:
            log.close()

