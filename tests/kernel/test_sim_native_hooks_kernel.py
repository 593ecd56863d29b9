"""The twin's native hooks against its Python hooks on the first 3 M instructions of the pico2 kernel's boot (the
rest of the comparison, on firmware: twin/test_sim_native_hooks.py)."""

from __future__ import annotations

import pytest

from qemu import built_kernel
from support.native_hooks import machine, state


@pytest.mark.kernel
@pytest.mark.timeout(600, method="thread")
def test_pico2_boot_slice_is_the_same_with_native_and_python_hooks(monkeypatch):
    """The first 3 M instructions of the pico2 boot (PSRAM-resident kernel, AMO traps, the timer interrupt)."""
    build = built_kernel("pico2")
    runs = {}
    for native in (True, False):
        m = machine(native, monkeypatch, build.vmlinux, kernel_image=build.image, dtb=build.dtb)
        for _ in range(3):
            m.run(1_000_000)
        runs[native] = state(m)
    assert runs[True]["trap_count"] > 0 and runs[True]["ctr"][0] > 1_000_000
    assert runs[True] == runs[False]
