"""The kernel fixtures boot on the RP2350 twin (a model) as the ports' bootloader starts them (linux-on-rp2350.md
"Boot"): Image in PSRAM at 0x11000000, the DTB in flash at 0x10010000, a0 = 0, a1 = the DTB, M-mode.

- pico2 (atomics emulated in its trap path) prints its banner on the PL011 earlycon and reaches its panic (no root
  file system); it needs the SIO timer and its interrupt to get there (the clocksource switch, the delays).
- pico2-stock faults at its first AMO, `amoor.w` in boot_cpu_init() -> set_cpu_online(), before the banner: a store/
  AMO access fault (mcause 7), and the log ring and the console stay empty.
Budgets are simulated instructions; the pico2 boot reaches its panic line within 23 M instructions (about 39 s on this host).
"""

from __future__ import annotations

import pytest

from qemu import PANIC_LINE, built_kernel
from xipscope.chip import rp2350 as rp
from xipscope.sim.hazard3 import Machine

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(1200, method="thread")]
BOOT_BUDGET = 40_000_000     # instructions to the panic; the twin reaches it within 23 M (checked in slices of 1 M)
STOCK_BUDGET = 1_000_000


def boot(build, budget: int, until=None, slice_: int = 1_000_000, m: Machine | None = None) -> Machine:
    m = m or Machine(build.vmlinux, kernel_image=build.image, dtb=build.dtb)
    done = 0
    while done < budget:
        done += m.run(min(slice_, budget - done)).instructions
        if until is not None and until(m):
            break
    return m


def test_pico2_prints_its_banner_and_reaches_its_panic():
    build = built_kernel("pico2")
    m = boot(build, BOOT_BUDGET, until=lambda m: "end " + PANIC_LINE in m.uart.text())
    console = m.uart.text()
    assert console.startswith("[    0.000000] Linux version 6.12"), console[:200]
    assert PANIC_LINE + ": No working init found" in console, console[-2000:]
    assert "clocksource: Switched to clocksource clint_clocksource" in console
    # The timer interrupt ran the tick; AMOs trapped and were emulated (mcause 7 handled, returned past the AMO).
    assert any(t.cause == rp.CAUSE_MACHINE_TIMER_IRQ for t in m.traps)
    counted = int.from_bytes(m.read_memory(m.elf.symbol("amo_emulated_count"), 4), "little")
    assert counted > 0
    # The twin saw every one of them return past its AMO (mret to epc + 4): the kernel's count and the twin's agree,
    # and their trap entry to return took a few percent of the boot's cycles.
    traps, cycles = m.emulated_amos
    assert traps == counted
    assert 0.005 < cycles / m.cycles < 0.2 and cycles > traps * 20, (cycles, m.cycles)
    print(f"pico2: panic after {m.instructions} instructions, {m.cycles} cycles, MTIME {m.sio_timer.mtime()} us, "
          f"{m.trap_count} traps, {counted} AMOs emulated in {cycles} cycles ({100 * cycles / m.cycles:.2f}%)")


def test_pico2_stock_faults_at_its_first_amo_before_printing():
    build = built_kernel("pico2-stock")
    # Machine.traps keeps only the latest traps: look at the first one as soon as it is taken.
    m = boot(build, STOCK_BUDGET, until=lambda m: m.trap_count > 0, slice_=1000)
    first = m.traps[0]
    boot(build, STOCK_BUDGET - m.instructions, m=m)
    assert first.cause == rp.CAUSE_STORE_FAULT
    # The instruction as the Image holds it: by the budget's end the nested trap frames have run over the kernel.
    offset = first.epc - rp.LINUX_IMAGE_ADDR
    insn = int.from_bytes(build.image.read_bytes()[offset:offset + 4], "little")
    assert insn & 0x7F == 0x2F and insn >> 27 == 0b01000, f"{insn:#x}"   # amoor.w (funct5 01000)
    name = m.elf.functions[m.elf.function_index(first.epc)].name
    assert name == "set_cpu_online.part.0", name   # boot_cpu_init()'s call, outlined by gcc (see System.map)
    assert m.uart.text() == ""                                        # died before the banner
    assert m.instructions <= STOCK_BUDGET + 1000 and m.trap_count > 1  # faults nest, and the twin stops in budget
