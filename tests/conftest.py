"""Shared fixtures: the real rv32 Linux kernel builds (cached by kernel/build.py) and booting them in QEMU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "kernel"))

from qemu import KernelBuild, boot_kernel  # noqa: E402


@pytest.fixture(scope="session")
def kernel_builds() -> dict[str, KernelBuild]:
    """Both kernel variants, built (or taken from the cache) by kernel/build.py."""
    out = subprocess.run([sys.executable, str(REPO / "kernel" / "build.py"), "dwarf", "nodwarf-wrap"],
                         check=True, capture_output=True, text=True).stdout.split()
    return {name: KernelBuild(name, Path(path)) for name, path in zip(("dwarf", "nodwarf-wrap"), out)}


@pytest.fixture(scope="session")
def dwarf_kernel(kernel_builds) -> KernelBuild:
    return kernel_builds["dwarf"]


@pytest.fixture(scope="session")
def nodwarf_kernel(kernel_builds) -> KernelBuild:
    return kernel_builds["nodwarf-wrap"]


@pytest.fixture(scope="module", params=["dwarf", "nodwarf-wrap"])
def booted_kernel(request, kernel_builds, tmp_path_factory):
    """Each variant booted in QEMU to its panic, gdbstub on a free 127.0.0.1 port; stopped after the module."""
    build = kernel_builds[request.param]
    with boot_kernel(build, tmp_path_factory.mktemp(f"qemu-{build.variant}")) as qemu:
        yield qemu
