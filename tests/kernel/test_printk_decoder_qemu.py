"""The printk decoders on the real kernel: its ring after the panic, mutated, and its DWARF layout (split from
unit/test_printk_decoder.py: this part builds and boots a kernel)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from support.printk_ring_image import L, Memory
from xipscope.errors import XipscopeError
from xipscope.linux.printk import read_printk_ring


@pytest.fixture(scope="module")
def real_ring(dwarf_qemu):
    """The DWARF kernel's ring as it stood after its panic: descriptors, infos and text, read over rsp://."""
    from support.kernel_image import read_kernel_image

    start, image, symbols = read_kernel_image(dwarf_qemu)
    prb = struct.unpack_from("<I", image, symbols.address_of("prb") - start)[0]
    memory = Memory(start, image)
    ring = struct.unpack_from("<11I", image, prb - start)
    count, size = 1 << ring[0], 1 << ring[6]
    regions = [(prb, 44), (ring[1], count * L.desc_size), (ring[2], count * L.info_size), (ring[7], size)]
    baseline = read_printk_ring(memory, prb, L, True)
    assert len(baseline.records) > 50 and baseline.lost == 0
    return memory, prb, regions, baseline


@pytest.mark.kernel
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                min_size=1, max_size=64))
def test_mutated_real_rings_give_records_or_a_clear_error(real_ring, mutations):
    memory, prb, regions, baseline = real_ring
    data = bytearray(memory.data)
    for region, where, value in mutations:
        start, length = regions[region]
        data[start - memory.base + int(where * length)] = value
    try:
        log = read_printk_ring(Memory(memory.base, data), prb, L, True)
    except XipscopeError:
        return
    assert len(log.records) <= 1 << 16
    if any(region == 0 for region, _, _ in mutations):
        return   # the ring's header points at everything: any outcome but a crash is fine
    # a byte of a descriptor, an info or a text block touches one record: the others come out as they were
    untouched = {r.seq: r.text for r in baseline.records}
    assert sum(r.text == untouched.get(r.seq) for r in log.records) >= len(log.records) - len(mutations)


@pytest.mark.kernel
def test_the_built_in_32_bit_layout_is_what_the_kernels_dwarf_says(dwarf_kernel):
    from xipscope.elf.struct_layout import read_unit
    from xipscope.linux.printk import builtin_layout, dwarf_layout

    assert dwarf_layout(dwarf_kernel.vmlinux, 4) == builtin_layout(4)
    # print_caller() exists only with CONFIG_PRINTK_CALLER, which the DWARF variant has
    _, present = read_unit(dwarf_kernel.vmlinux, "vprintk_store", set(), {"print_caller", "no_such_function"})
    assert present == {"print_caller"}
