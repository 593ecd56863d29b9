"""Every test under tests/kernel/ builds or boots a real rv32 Linux kernel (QEMU, or the pico2 builds on the twin): each
is marked `kernel` here, so `pytest -m "not kernel"` (or `pytest tests/unit tests/twin`) builds and boots none."""

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.kernel)
