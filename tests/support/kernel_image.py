"""The running test kernel's image in RAM (_start to _end), read through our rsp:// client."""

from __future__ import annotations

from xipscope.elf.symbols import load_symbols
from xipscope.targets.rsp import RspTarget


def read_kernel_image(kernel) -> tuple[int, bytes, object]:
    """(address of _start, the bytes up to _end, the System.map index) of a RunningKernel."""
    symbols = load_symbols(kernel.build.system_map)   # _start/_end are untyped: System.map lists them
    start, end = symbols.address_of("_start"), symbols.address_of("_end")
    target = RspTarget("127.0.0.1", kernel.port)
    try:
        return start, target.read_memory(start, end - start), symbols
    finally:
        target.close()
