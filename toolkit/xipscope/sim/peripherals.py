"""The twin's peripherals (a model): enough of UART0 (PL011) to print, XIP_CTRL with the cache counters, QMI and the
XIP maintenance alias. Each offers read/write/peek/poke at an offset into its block, as sim/bus.py maps them."""

from __future__ import annotations

from ..chip import rp2350 as rp
from .xip_cache import XipCache


class Uart:
    """PL011 transmit side only: DR takes a byte, FR says the FIFO is never full and nothing was received."""

    def __init__(self, echo=None):
        self.output = bytearray()
        self.echo = echo   # callable taking bytes (e.g. sys.stdout.buffer.write), or None

    def read(self, offset: int) -> int:
        if offset == rp.PL011_FR:
            return rp.PL011_FR_RXFE | rp.PL011_FR_TXFE
        return 0

    peek = read   # reads have no side effects

    def write(self, offset: int, value: int) -> None:
        if offset == rp.PL011_DR:
            byte = bytes((value & 0xFF,))
            self.output += byte
            if self.echo is not None:
                self.echo(byte)

    poke = write   # a debugger's write to DR transmits as the firmware's does

    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


class XipCtrl:
    """XIP_CTRL: CTRL (reset 0x83; EN_SECURE gates caching for Hazard3's M-mode), STAT, CTR_HIT, CTR_ACC."""

    def __init__(self, cache: XipCache):
        self.cache = cache
        self.ctrl = rp.XIP_CTRL_CTRL_RESET

    def read(self, offset: int) -> int:
        if offset == rp.XIP_CTRL_CTRL:
            return self.ctrl
        if offset == rp.XIP_CTRL_STAT:
            return rp.STAT_FIFO_EMPTY
        if offset == rp.XIP_CTRL_CTR_HIT:
            return self.cache.read_counter(1)
        if offset == rp.XIP_CTRL_CTR_ACC:
            return self.cache.read_counter(0)
        return 0

    peek = read   # reads have no side effects (the counters clear on a write, not on a read)

    def write(self, offset: int, value: int) -> None:
        if offset == rp.XIP_CTRL_CTRL:
            if value & rp.CTRL_POWER_DOWN:
                # xip.h POWER_DOWN: "Writing 1 to this bit forces CTRL_EN_SECURE and CTRL_EN_NONSECURE to 0".
                value &= ~(rp.CTRL_EN_SECURE | rp.CTRL_EN_NONSECURE)
            self.ctrl = value & 0xFFFFFFFF
            self.cache.enabled = bool(self.ctrl & rp.CTRL_EN_SECURE)
        elif offset == rp.XIP_CTRL_CTR_HIT:
            self.cache.clear_counter(1)     # type WC: any write clears
        elif offset == rp.XIP_CTRL_CTR_ACC:
            self.cache.clear_counter(0)

    poke = write   # a debugger's write to CTR_HIT/CTR_ACC clears it as any write does


class XipMaintenance:
    """The XIP maintenance alias: a write is a cache operation picked by the low 3 address bits (rp2350.py
    XIP_MAINT_OPS); reads give 0 (INFERRED: the datasheet gives reads no meaning). `trace`, when a list, records each
    operation as ("maint", offset, operation)."""

    def __init__(self, cache: XipCache, trace: list | None = None):
        self.cache = cache
        self.trace = trace

    def read(self, offset: int) -> int:
        return 0

    peek = read

    def write(self, offset: int, value: int) -> None:
        op = self.cache.maintain(offset)
        if self.trace is not None:
            self.trace.append(("maint", offset, op))

    poke = write


class Qmi:
    """QMI (a model): the register file with its documented resets, and direct mode as far as XIP cares.

    What is modelled: DIRECT_CSR.EN (while it is 1 the twin bus-faults XIP fetches and loads, hazard3/hooks.py), M0/M1
    TIMING/RFMT/RCMD/WFMT/WCMD and ATRANS0-7 as plain registers (the twin checks ATRANS SIZE, not BASE).
    Not modelled: a flash chip behind direct mode. Bytes written to DIRECT_TX go nowhere, DIRECT_RX reads 0 (so a
    status-register poll reads "not busy"), BUSY is never set and the FIFO status bits keep the value last written.
    """

    def __init__(self):
        self.direct_csr = rp.QMI_DIRECT_CSR_RESET
        self.windows = [dict(rp.QMI_WINDOW_RESET) for _ in range(2)]
        self.atrans = list(rp.QMI_ATRANS_RESET)
        self.xip_checks = [False]   # a list cell the core's hot hooks hold: True while this state can fault XIP

    @property
    def direct_mode(self) -> bool:
        return bool(self.direct_csr & rp.DIRECT_CSR_EN)

    def read(self, offset: int) -> int:
        if offset == rp.QMI_DIRECT_CSR:
            return self.direct_csr
        if offset == rp.QMI_DIRECT_RX:
            return 0
        where = self._window_reg(offset)
        if where is not None:
            return self.windows[where[0]][where[1]]
        if rp.QMI_ATRANS0 <= offset < rp.QMI_ATRANS0 + 4 * rp.QMI_ATRANS_COUNT:
            return self.atrans[(offset - rp.QMI_ATRANS0) // 4]
        return 0

    peek = read   # reads have no side effects

    def write(self, offset: int, value: int) -> None:
        value &= 0xFFFFFFFF
        if offset == rp.QMI_DIRECT_CSR:
            self.direct_csr = value & ~rp.DIRECT_CSR_BUSY
        elif offset == rp.QMI_DIRECT_TX:
            pass   # no flash chip behind direct mode
        elif (where := self._window_reg(offset)) is not None:
            self.windows[where[0]][where[1]] = value
        elif rp.QMI_ATRANS0 <= offset < rp.QMI_ATRANS0 + 4 * rp.QMI_ATRANS_COUNT:
            self.atrans[(offset - rp.QMI_ATRANS0) // 4] = value & 0x07FF0FFF
        self.xip_checks[0] = self.direct_mode or any(
            rp.atrans_size_pages(a) < rp.QMI_ATRANS_WINDOW // rp.QMI_ATRANS_PAGE for a in self.atrans)

    poke = write

    @staticmethod
    def _window_reg(offset: int) -> tuple[int, int] | None:
        for w, base in enumerate((rp.QMI_M0_TIMING, rp.QMI_M1_TIMING)):
            if base <= offset < base + rp.QMI_WINDOW_STRIDE:
                return w, offset - base
        return None
