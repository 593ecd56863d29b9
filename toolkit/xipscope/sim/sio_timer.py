"""The SIO's RISC-V platform timer and software interrupt (a model), core 0's view, at SIO_BASE + 0x1a0..0x1bc.

Facts (chip/rp2350.py, from pico-sdk hardware/regs/sio.h via linux-on-rp2350.md): MTIME/MTIMEH 0x1b0/0x1b4 count at
1 MHz (the TICKS generator) or, with MTIME_CTRL.FULLSPEED, at clk_sys; MTIMECMP/MTIMECMPH 0x1b8/0x1bc reset to
0xffffffff; MTIME_CTRL 0x1a4 resets to 0xd (EN, DBGPAUSE_CORE0/1); RISCV_SOFTIRQ 0x1a0 sets and clears each core's
software interrupt. The timer interrupt (mip.MTIP) is pending while MTIME >= MTIMECMP.

What the model chooses: time is the twin's simulated time, its cycle count at clk_sys (default 150 MHz), so MTIME
does not move while the twin is not simulating, e.g. while a debugger holds the core halted: the DBGPAUSE bits'
reset behaviour. With DBGPAUSE cleared a board's MTIME keeps counting during a halt; the twin's does not (it has no
time outside simulation), and the bits are kept only as register state.
"""

from __future__ import annotations

from ..chip import rp2350 as rp

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1


class SioTimer:
    """`now()` returns the twin's simulated cycles since power-on; `on_change()` is called after every write that
    can change when an interrupt is due (the twin re-plans its interrupt check)."""

    def __init__(self, now, clk_hz: int = rp.CLK_SYS_DEFAULT_HZ, on_change=None):
        if clk_hz <= 0:
            raise ValueError(f"clk_sys must be a positive frequency in Hz, not {clk_hz}")
        self.now = now
        self.clk_hz = int(clk_hz)
        self.on_change = on_change
        self.ctrl = rp.MTIME_CTRL_RESET
        self.mtimecmp = (rp.MTIMECMP_RESET << 32) | rp.MTIMECMP_RESET
        self.softirq = 0               # pending bits, CORE0_SET / CORE1_SET positions
        self._base = 0                 # MTIME at cycle self._since
        self._since = 0

    # --- time ------------------------------------------------------------------------------------------------------
    def _rate(self) -> int:
        return self.clk_hz if self.ctrl & rp.MTIME_CTRL_FULLSPEED else rp.MTIME_TICK_HZ

    def mtime(self, cycles: int | None = None) -> int:
        cycles = self.now() if cycles is None else cycles
        if not self.ctrl & rp.MTIME_CTRL_EN:
            return self._base
        return (self._base + max(0, cycles - self._since) * self._rate() // self.clk_hz) & MASK64

    def _rebase(self, value: int | None = None) -> None:
        """Start counting again from `value` (or the current MTIME) at the current cycle."""
        cycles = self.now()
        self._base = self.mtime(cycles) if value is None else value & MASK64
        self._since = cycles

    def timer_pending(self, cycles: int | None = None) -> bool:
        return self.mtime(cycles) >= self.mtimecmp

    def software_pending(self) -> bool:
        return bool(self.softirq & rp.SOFTIRQ_CORE0_SET)

    def timer_due(self) -> int | None:
        """The first cycle count at which MTIME >= MTIMECMP (now, if it already is), or None while MTIME is stopped
        below MTIMECMP."""
        cycles = self.now()
        if self.timer_pending(cycles):
            return cycles
        if not self.ctrl & rp.MTIME_CTRL_EN:
            return None
        # smallest c with base + (c - since) * rate // clk >= cmp
        ticks = self.mtimecmp - self._base
        rate = self._rate()
        return self._since + (ticks * self.clk_hz + rate - 1) // rate

    # --- registers -------------------------------------------------------------------------------------------------
    def read(self, offset: int) -> int:
        if offset == rp.SIO_MTIME:
            return self.mtime() & MASK32
        if offset == rp.SIO_MTIMEH:
            return self.mtime() >> 32
        if offset == rp.SIO_MTIMECMP:
            return self.mtimecmp & MASK32
        if offset == rp.SIO_MTIMECMPH:
            return self.mtimecmp >> 32
        if offset == rp.SIO_MTIME_CTRL:
            return self.ctrl
        if offset == rp.SIO_RISCV_SOFTIRQ:
            return self.softirq
        return 0

    peek = read   # reads have no side effects

    def write(self, offset: int, value: int) -> None:
        value &= MASK32
        if offset == rp.SIO_MTIME:
            self._rebase((self.mtime() & ~MASK32) | value)
        elif offset == rp.SIO_MTIMEH:
            self._rebase((self.mtime() & MASK32) | value << 32)
        elif offset == rp.SIO_MTIMECMP:
            self.mtimecmp = (self.mtimecmp & ~MASK32) | value
        elif offset == rp.SIO_MTIMECMPH:
            self.mtimecmp = (self.mtimecmp & MASK32) | value << 32
        elif offset == rp.SIO_MTIME_CTRL:
            self._rebase()              # what counted so far stands; the new rate or stop applies from now
            self.ctrl = value & 0xF
        elif offset == rp.SIO_RISCV_SOFTIRQ:
            self.softirq |= value & (rp.SOFTIRQ_CORE0_SET | rp.SOFTIRQ_CORE1_SET)
            self.softirq &= ~(value >> 8) & (rp.SOFTIRQ_CORE0_SET | rp.SOFTIRQ_CORE1_SET)
        else:
            return
        if self.on_change is not None:
            self.on_change()

    poke = write   # a debugger's write lands as the firmware's does (the SIO does not tell the bus masters apart here)
