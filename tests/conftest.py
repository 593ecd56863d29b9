"""Shared fixtures: the real rv32 Linux kernel builds (cached by kernel/build.py) and booting them in QEMU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "kernel"))

from qemu import KernelBuild, boot_kernel, built_kernel  # noqa: E402
from support.servers import twin_gdb_server  # noqa: E402


KERNEL_FIXTURES = frozenset({"dwarf_kernel", "nodwarf_kernel", "kernel_builds", "booted_kernel", "dwarf_qemu",
                              "icount_qemu"})


def pytest_collection_modifyitems(items):
    """Every test that builds or boots a kernel, directly or through another fixture, is marked `kernel`, so
    `pytest -m "not kernel"` runs without building one (a marker written by hand was missed in five files). Such
    tests live in tests/kernel/, whose conftest marks all of it; this is the safety net for one put elsewhere."""
    for item in items:
        if KERNEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kernel)


@pytest.fixture(scope="session")
def dwarf_kernel() -> KernelBuild:
    return built_kernel("dwarf")


@pytest.fixture(scope="session")
def nodwarf_kernel() -> KernelBuild:
    return built_kernel("nodwarf-wrap")


@pytest.fixture(scope="session")
def kernel_builds(dwarf_kernel, nodwarf_kernel) -> dict[str, KernelBuild]:
    return {"dwarf": dwarf_kernel, "nodwarf-wrap": nodwarf_kernel}


@pytest.fixture(scope="module", params=["dwarf", "nodwarf-wrap"])
def booted_kernel(request, kernel_builds, tmp_path_factory):
    """Each variant booted in QEMU to its panic, gdbstub on a free 127.0.0.1 port; stopped after the module."""
    build = kernel_builds[request.param]
    with boot_kernel(build, tmp_path_factory.mktemp(f"qemu-{build.variant}")) as qemu:
        yield qemu


@pytest.fixture(scope="module")
def dwarf_qemu(dwarf_kernel, tmp_path_factory):
    """The DWARF kernel booted to its panic in QEMU, for tests that need one live gdbstub."""
    with boot_kernel(dwarf_kernel, tmp_path_factory.mktemp("qemu-dwarf")) as qemu:
        yield qemu


@pytest.fixture(scope="module")
def icount_qemu(dwarf_kernel, tmp_path_factory):
    """The DWARF kernel booted to its panic in QEMU with -icount: guest time advances one nanosecond per instruction,
    not with the host's wall clock. Without it a loaded host runs fewer guest instructions per wall-clock timer tick,
    so more of the guest's time goes to the tick (seen: handle_exception on top at 62-67% under load, __delay at
    87-99% on an idle host), and where samples land depends on the machine's load, not on the transport."""
    with boot_kernel(dwarf_kernel, tmp_path_factory.mktemp("qemu-icount"),
                     qemu_args=("-icount", "shift=0,sleep=off")) as qemu:
        yield qemu


@pytest.fixture()
def sim_server():
    """The twin's GDB server on firmware/xipbench.elf as a separate process on a free port; stopped after the test."""
    with twin_gdb_server(REPO / "firmware" / "xipbench.elf") as port:
        yield port
