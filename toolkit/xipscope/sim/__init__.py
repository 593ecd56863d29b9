"""The RP2350 twin (a model): real RV32 firmware run by unicorn, with the XIP cache, its counters, UART0 and Hazard3 traps.

`Machine` (hazard3/) is the core; `SimTarget` (target.py) opens it as a Target (`sim://FIRMWARE.elf`);
`gdbserver.py` serves it to gdb; `cli.py` is `xipscope sim`. Importing this package does not import unicorn.
"""

MODEL_NOTE = "RP2350 twin (a model)"   # how every table, message and error of the twin labels itself
