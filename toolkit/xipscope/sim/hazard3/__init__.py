"""The twin of one Hazard3 core on an RP2350 (a model): `Machine`, made of one class per concern.

  core.py        the Machine: its state, loading, running (slices, steps, halts, breakpoints), a debugger's view
  hooks.py       the unicorn hooks (block, XIP data, peripheral, interrupt, bad access), block records, code fetch;
                 the hot paths, and the model's fetch, cycle and QMI choices
  traps.py       trap entry, interrupts, wfi sleep and idle, atomics outside SRAM; every trap passes `_record_trap`
  csrs.py        the CSRs the twin answers itself (counters, mcountinhibit, IDs) and unicorn's register numbers
  accounting.py  the ground truth per function and per XIP device, summed from what the hooks counted

The mixins hold no state of their own and call each other's methods through the Machine. Importing this package does
not import unicorn.
"""

from .core import Machine, RunResult
from .traps import Trap

__all__ = ["Machine", "RunResult", "Trap"]
