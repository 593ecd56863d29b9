"""The twin's peripheral bus (a model): which register block each device model answers, for both cores.

Each row of DEVICES names a block of chip/rp2350.py's PERIPHERALS (which gives its base and size) and the attribute of
a core that holds the block's model. A core's Bus takes the rows whose model that core holds (the Arm core has no QMI
or cache maintenance yet, the Hazard3 core no ACCESSCTRL), maps them into the core's unicorn for the firmware, and
answers the debugger's reads and writes. Adding a device: its model on the core and one row here.

A model offers, at a byte offset into its block:
  read(offset) -> int            a firmware load (may have side effects: a FIFO pops);
  write(offset, value)           a firmware store;
  peek(offset) -> int            a debugger read: no side effects;
  poke(offset, value)            a debugger write (the bus master is the debugger, as ACCESSCTRL tells apart).
Registers are whole 32-bit words; the bus passes the offset as the core gave it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chip import rp2350 as rp

DEVICES = (
    ("xip-maintenance", "xip_maintenance"),
    ("accessctrl", "accessctrl"),
    ("uart0", "uart"),
    ("xip_ctrl", "xip_ctrl"),
    ("xip_qmi", "qmi"),
    ("sio", "sio_timer"),       # the RISC-V platform timer and software interrupt only (sio_timer.py)
)


@dataclass(frozen=True)
class Device:
    name: str      # the block's name in chip/rp2350.py PERIPHERALS (and chip/memory_map.py's regions)
    base: int
    size: int
    model: object


class Bus:
    """The peripherals one core reaches, from DEVICES and the models the core holds."""

    def __init__(self, core):
        self.devices = tuple(Device(name, *rp.PERIPHERALS[name], getattr(core, attribute))
                             for name, attribute in DEVICES if getattr(core, attribute, None) is not None)

    def names(self) -> str:
        return ", ".join(d.name for d in self.devices)

    def map_into(self, uc) -> None:
        """Map every device into a unicorn instance: the firmware's loads and stores reach the model's read/write."""
        for d in self.devices:
            read, write = d.model.read, d.model.write
            uc.mmio_map(d.base, d.size, lambda _uc, off, _size, _ud, read=read: read(off), None,
                        lambda _uc, off, _size, value, _ud, write=write: write(off, value), None)

    def find(self, address: int) -> tuple[object, int] | None:
        """(model, offset) of the device holding `address`, or None."""
        for d in self.devices:
            if d.base <= address < d.base + d.size:
                return d.model, address - d.base
        return None

    def read(self, address: int) -> int | None:
        """The word at `address` as the firmware loads it (with the load's side effects), or None: no device."""
        where = self.find(address)
        return where[0].read(where[1]) if where else None

    def peek(self, address: int) -> int | None:
        """The word at `address` as a debugger reads it (no side effects), or None: no device there."""
        where = self.find(address)
        return where[0].peek(where[1]) if where else None

    def poke(self, address: int, value: int) -> bool:
        """A debugger's write of one word; False if no device is there."""
        where = self.find(address)
        if where is None:
            return False
        where[0].poke(where[1], value & 0xFFFFFFFF)
        return True
