"""The twin's peripherals (a model): enough of UART0 (PL011) to print, and XIP_CTRL with the cache counters."""

from __future__ import annotations

from ..chip import rp2350 as rp
from .cache import XipCache


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

    def write(self, offset: int, value: int) -> None:
        if offset == rp.XIP_CTRL_CTRL:
            self.ctrl = value & 0xFFFFFFFF
            self.cache.enabled = bool(self.ctrl & rp.CTRL_EN_SECURE)
        elif offset == rp.XIP_CTRL_CTR_HIT:
            self.cache.clear_counter(1)     # type WC: any write clears
        elif offset == rp.XIP_CTRL_CTR_ACC:
            self.cache.clear_counter(0)
