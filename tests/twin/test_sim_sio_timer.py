"""The twin's SIO platform timer and machine-mode interrupts (a model), against the facts in chip/rp2350.py.

Facts (linux-on-rp2350.md "SIO platform timer", from pico-sdk hardware/regs/sio.h): RISCV_SOFTIRQ 0x1a0 (CORE0_SET
bit 0, CORE0_CLR bit 8), MTIME_CTRL 0x1a4 resets to 0xd (EN, DBGPAUSE_CORE0/1), MTIME/MTIMEH 0x1b0/0x1b4 at 1 MHz,
MTIMECMP/MTIMECMPH 0x1b8/0x1bc reset to 0xffffffff; the timer interrupt (mcause 0x80000007) is pending while
MTIME >= MTIMECMP, the software one (0x80000003) while the core's SOFTIRQ bit is set. The twin's clock is its
simulated cycle count at clk_sys (default 150 MHz). Interrupts are taken at block boundaries: the tests below say
which boundary, and bound the delay in instructions (machine.IRQ_POLL_CYCLES plus one block)."""

from __future__ import annotations

import time
from pathlib import Path


from xipscope.chip import rp2350 as rp
from xipscope.sim.hazard3 import Machine
from xipscope.sim.hazard3.traps import IRQ_POLL_CYCLES
from xipscope.sim.sio_timer import SioTimer

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware" / "xipbench.elf"   # only a carrier: the tests run their own code from SRAM
CODE = 0x20010000
HANDLER = CODE + 0x100
T0, T1, T2, A0, A1, A2, A3, A4 = 5, 6, 7, 10, 11, 12, 13, 14
MTVEC, MIE_CSR, MSTATUS, MCAUSE, MEPC = 0x305, 0x304, 0x300, 0x342, 0x341
WFI, MRET = 0x10500073, 0x30200073


# --- a few RV32I encodings (RISC-V unprivileged spec, chapter 2), enough for the programs below -------------------------
def addi(rd, rs1, imm):
    return (imm & 0xFFF) << 20 | rs1 << 15 | rd << 7 | 0x13


def lui(rd, imm20):
    return (imm20 & 0xFFFFF) << 12 | rd << 7 | 0x37


def lw(rd, rs1, imm):
    return (imm & 0xFFF) << 20 | rs1 << 15 | 2 << 12 | rd << 7 | 0x03


def sw(rs2, rs1, imm):
    return (imm >> 5 & 0x7F) << 25 | rs2 << 20 | rs1 << 15 | 2 << 12 | (imm & 0x1F) << 7 | 0x23


def csrrw(rd, csr, rs1):
    return csr << 20 | rs1 << 15 | 1 << 12 | rd << 7 | 0x73


def csrrs(rd, csr, rs1):
    return csr << 20 | rs1 << 15 | 2 << 12 | rd << 7 | 0x73


def csrrsi(rd, csr, uimm):
    return csr << 20 | uimm << 15 | 6 << 12 | rd << 7 | 0x73


def j_back(n_insns):
    """jal x0, -4*n_insns"""
    off = (-4 * n_insns) & 0x1FFFFF
    return ((off >> 20 & 1) << 31 | (off >> 1 & 0x3FF) << 21 | (off >> 11 & 1) << 20 | (off >> 12 & 0xFF) << 12
            | 0x6F)


def setup(ticks=None, mie=0, enable=True, softirq=False):
    """t0 = SIO; mtvec = HANDLER; MTIMECMP = MTIME + ticks; mie |= mie; mstatus.MIE if enable."""
    p = [lui(T0, rp.SIO_BASE >> 12), lui(T1, HANDLER >> 12), addi(T1, T1, HANDLER & 0xFFF), csrrw(0, MTVEC, T1)]
    if ticks is not None:
        p += [lw(T2, T0, rp.SIO_MTIME), addi(T2, T2, ticks), sw(0, T0, rp.SIO_MTIMECMPH), sw(T2, T0, rp.SIO_MTIMECMP)]
    p += [addi(T1, 0, mie), csrrs(0, MIE_CSR, T1)]
    if enable:
        p += [csrrsi(0, MSTATUS, 8)]
    if softirq:
        p += [addi(T1, 0, rp.SOFTIRQ_CORE0_SET), sw(T1, T0, rp.SIO_RISCV_SOFTIRQ)]
    return p


LOOP = [addi(A0, A0, 1), j_back(1)]   # one translated block of 2 instructions
# The handler counts the interrupt (a3), keeps mcause/mepc (a1/a2), and clears both sources: MTIMECMP to all ones
# (so MTIME < MTIMECMP) and the software interrupt (CORE0_CLR).
HANDLER_CODE = [csrrs(A1, MCAUSE, 0), csrrs(A2, MEPC, 0), addi(T1, 0, -1), sw(T1, T0, rp.SIO_MTIMECMP),
                sw(T1, T0, rp.SIO_MTIMECMPH), addi(T1, 0, rp.SOFTIRQ_CORE0_CLR), sw(T1, T0, rp.SIO_RISCV_SOFTIRQ),
                addi(A3, A3, 1), MRET]


def machine_with(program, **kwargs) -> Machine:
    m = Machine(FIRMWARE, **kwargs)
    m.write_memory(CODE, b"".join(w.to_bytes(4, "little") for w in program))
    m.write_memory(HANDLER, b"".join(w.to_bytes(4, "little") for w in HANDLER_CODE))
    m.write_register("pc", CODE)
    return m


def due_cycle(m: Machine) -> int:
    """The first cycle at which MTIME >= MTIMECMP, from MTIMECMP as the program wrote it (t2; the handler has since
    moved MTIMECMP to all ones) at 1 MHz ticks of clk_sys."""
    return -(-m.read_register("t2") * m.sio_timer.clk_hz // rp.MTIME_TICK_HZ)


# --- the register model on its own --------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.cycles = 0

    def __call__(self):
        return self.cycles


def test_reset_values_are_the_datasheets():
    t = SioTimer(Clock())
    assert t.read(rp.SIO_MTIME_CTRL) == 0xD
    assert t.read(rp.SIO_MTIMECMP) == 0xFFFFFFFF and t.read(rp.SIO_MTIMECMPH) == 0xFFFFFFFF
    assert t.read(rp.SIO_MTIME) == 0 and t.read(rp.SIO_MTIMEH) == 0
    assert t.read(rp.SIO_RISCV_SOFTIRQ) == 0 and not t.timer_pending() and not t.software_pending()


def test_mtime_ticks_at_1mhz_of_clk_sys():
    clock = Clock()
    t = SioTimer(clock)                       # clk_sys 150 MHz: 150 cycles a tick
    clock.cycles = 149
    assert t.read(rp.SIO_MTIME) == 0
    clock.cycles = 150 * 1000
    assert t.read(rp.SIO_MTIME) == 1000
    slow = SioTimer(clock, clk_hz=48_000_000)  # configurable clk_sys: 48 cycles a tick
    assert slow.read(rp.SIO_MTIME) == 150 * 1000 // 48


def test_mtime_ctrl_en_stops_it_and_fullspeed_counts_clk_sys():
    clock = Clock()
    t = SioTimer(clock)
    clock.cycles = 1500
    t.write(rp.SIO_MTIME_CTRL, rp.MTIME_CTRL_RESET & ~rp.MTIME_CTRL_EN)
    clock.cycles = 15000
    assert t.read(rp.SIO_MTIME) == 10          # stopped where it was
    t.write(rp.SIO_MTIME_CTRL, rp.MTIME_CTRL_EN | rp.MTIME_CTRL_FULLSPEED)
    clock.cycles = 15100
    assert t.read(rp.SIO_MTIME) == 110         # one count per clk_sys cycle since


def test_mtime_and_mtimecmp_halves_are_writable_and_compare_64_bits():
    clock = Clock()
    t = SioTimer(clock)
    t.write(rp.SIO_MTIMEH, 1)
    t.write(rp.SIO_MTIME, 0xFFFFFFF0)
    assert (t.read(rp.SIO_MTIMEH), t.read(rp.SIO_MTIME)) == (1, 0xFFFFFFF0)
    t.write(rp.SIO_MTIMECMPH, 2)
    t.write(rp.SIO_MTIMECMP, 0x4)
    assert not t.timer_pending()
    assert t.timer_due() == 0x14 * 150         # 0x1_fffffff0 + 0x14 = 0x2_00000004
    clock.cycles = 0x14 * 150 - 1
    assert not t.timer_pending()
    clock.cycles += 1
    assert t.timer_pending() and (t.read(rp.SIO_MTIMEH), t.read(rp.SIO_MTIME)) == (2, 4)


def test_softirq_set_and_clear_bits():
    t = SioTimer(Clock())
    t.write(rp.SIO_RISCV_SOFTIRQ, rp.SOFTIRQ_CORE0_SET)
    assert t.software_pending() and t.read(rp.SIO_RISCV_SOFTIRQ) == 1
    t.write(rp.SIO_RISCV_SOFTIRQ, rp.SOFTIRQ_CORE1_SET)
    assert t.read(rp.SIO_RISCV_SOFTIRQ) == 3
    t.write(rp.SIO_RISCV_SOFTIRQ, rp.SOFTIRQ_CORE0_CLR)
    assert not t.software_pending() and t.read(rp.SIO_RISCV_SOFTIRQ) == 2


# --- interrupts on the twin ----------------------------------------------------------------------------------------
def test_timer_interrupt_is_taken_at_the_first_block_boundary_once_due():
    program = setup(ticks=20, mie=rp.MIE_MTIE) + LOOP
    m = machine_with(program)
    loop = CODE + 4 * (len(program) - 2)
    m.run(20_000)
    assert [t.cause for t in m.traps] == [rp.CAUSE_MACHINE_TIMER_IRQ]
    trap = m.traps[0]
    # Code in SRAM: one cycle an instruction, so the due cycle is an instruction count. The loop's blocks are 2
    # instructions: the interrupt comes at the first block start at or after the due cycle.
    due = due_cycle(m)
    assert due <= trap.instret < due + 2
    assert trap.epc == loop
    assert m.read_register("a1") == 0x80000007 and m.read_register("a2") == loop and m.read_register("a3") == 1
    assert m.read_register("mstatus") & 8   # mret restored MIE from MPIE


def test_a_pending_masked_interrupt_shows_in_mip_and_is_taken_soon_after_mie_is_set():
    program = setup(ticks=20, mie=rp.MIE_MTIE, enable=False) + LOOP
    m = machine_with(program)
    m.run(20_000)
    assert m.traps == []
    assert m.read_register("mip") == rp.MIE_MTIE
    m.write_register("mstatus", m.read_register("mstatus") | 8)   # a debugger sets mstatus.MIE
    before = m.instructions
    m.run(1_000)
    assert [t.cause for t in m.traps] == [rp.CAUSE_MACHINE_TIMER_IRQ]
    assert before <= m.traps[0].instret <= before + IRQ_POLL_CYCLES + 2
    assert m.read_register("mip") == 0          # the handler moved MTIMECMP past MTIME


def test_the_timer_interrupt_waits_for_mie_mtie():
    m = machine_with(setup(ticks=20, mie=0) + LOOP)
    m.run(20_000)
    assert m.traps == [] and m.read_register("mip") == rp.MIE_MTIE


def test_software_interrupt_from_riscv_softirq():
    program = setup(mie=rp.MIE_MSIE, softirq=True) + LOOP
    m = machine_with(program)
    m.run(1_000)
    assert [t.cause for t in m.traps] == [rp.CAUSE_MACHINE_SOFTWARE_IRQ]
    # The store to RISCV_SOFTIRQ is the last of the setup block; the loop's first block takes the interrupt.
    assert m.traps[0].epc == CODE + 4 * (len(program) - 2)
    assert m.read_register("a3") == 1 and m.sio_timer.read(rp.SIO_RISCV_SOFTIRQ) == 0


def test_wfi_sleeps_in_simulated_time_until_the_timer_is_due():
    ticks = 1000   # 1 ms: 150 000 cycles at 150 MHz
    program = setup(ticks=ticks, mie=rp.MIE_MTIE) + [WFI, addi(A4, 0, 7)] + LOOP
    m = machine_with(program)
    wfi_at = CODE + 4 * (len(program) - 4)
    r = m.run(500)
    assert r.reason == "budget"
    assert [t.cause for t in m.traps] == [rp.CAUSE_MACHINE_TIMER_IRQ]
    assert m.traps[0].epc == wfi_at + 4                 # the handler returns after the wfi
    assert m.read_register("a4") == 7
    assert m.instructions <= 500 + 2 and m.cycles >= due_cycle(m)   # asleep: time passed, few instructions ran
    assert m.sio_timer.mtime() >= m.read_register("t2")


def test_wfi_with_nothing_enabled_is_idle():
    m = machine_with(setup(ticks=20, mie=0) + [WFI] + LOOP)
    assert m.run(20_000).reason == "idle"


def test_mtime_stands_still_while_the_core_is_halted():
    """DBGPAUSE_CORE0 (reset 1): MTIME stops while a debugger holds the core halted. The twin's clock is simulated
    time, so it moves only while the core runs; the wall-clock wait only gives a host clock the chance to leak in."""
    m = machine_with(setup() + LOOP)
    m.run(10)
    mtime = int.from_bytes(m.read_memory(rp.SIO_BASE + rp.SIO_MTIME, 4), "little")
    time.sleep(0.05)
    assert int.from_bytes(m.read_memory(rp.SIO_BASE + rp.SIO_MTIME, 4), "little") == mtime
    cycles = m.cycles
    m.run(15_000)
    assert m.sio_timer.mtime() == m.cycles * rp.MTIME_TICK_HZ // rp.CLK_SYS_DEFAULT_HZ
    assert m.sio_timer.mtime() - mtime >= (m.cycles - cycles) // 150 - 1


def test_uart0_is_what_the_pl011_earlycon_polls():
    """Linux's pl011 earlycon (drivers/tty/serial/amba-pl011.c, pl011_putc with mmio32): waits while UARTFR.TXFF,
    writes UARTDR with a 32-bit store, then waits while UARTFR.BUSY."""
    program = [lui(T0, rp.UART0_BASE >> 12), lw(A0, T0, rp.PL011_FR), addi(T1, 0, ord("L")), sw(T1, T0, rp.PL011_DR),
               lw(A1, T0, rp.PL011_FR), WFI]
    m = machine_with(program)
    m.run(100)
    for reg in ("a0", "a1"):
        assert m.read_register(reg) & (rp.PL011_FR_TXFF | rp.PL011_FR_BUSY) == 0
    assert m.uart.text() == "L"
