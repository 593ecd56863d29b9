"""pyOCD's own command line on the twin (a model) through the probe plugin (sim/dap_plugin.py): the documented
`pyocd ... -u twin:FIRMWARE.elf -t rp2350` reaches the twin's Arm core with pyOCD's own rp2350 target.

pyOCD 0.46 splits `-u TYPE:ID` at the first colon and asks only the probe plugin whose `name` is TYPE (aggregator.py),
so the plugin is named `twin`. These run pyOCD's CLI as a user would, in subprocesses from the repository root (the
entry point comes from the installed metadata: `pip install -e .` of this checkout).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from support.openocd_twin import stop_process

from xipscope.elf.program import ElfImage

REPO = Path(__file__).resolve().parents[2]
ARMXIP = "firmware/armxip.elf"           # relative, as the README and the plugin's docstring write it
ENV = dict(os.environ, PYTHONPATH=str(REPO / "toolkit") + os.pathsep + os.environ.get("PYTHONPATH", ""))


def pyocd(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyocd", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO, env=ENV)


@contextlib.contextmanager
def pyocd_gdbserver(log: Path, safety_s: float = 120.0):
    """`pyocd gdbserver -u twin:armxip.elf -t rp2350` on a port the OS picks (its STDIO server too), bound to 127.0.0.1
    (pyOCD's default); yields the gdb port once pyOCD says it listens; always stops the process."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pyocd", "gdbserver", "-u", f"twin:{ARMXIP}", "-t", "rp2350",
                                 "--port", "0", "--telnet-port", "0"], stdout=out, stderr=subprocess.STDOUT,
                                cwd=REPO, env=ENV)
    try:
        # The safety bound only turns a hang into a failure: progress is what's awaited.
        deadline = time.monotonic() + safety_s
        while not (match := re.search(r"GDB server listening on port (\d+)", log.read_text(errors="replace"))):
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"pyocd gdbserver did not listen (exit {proc.poll()}):\n{log.read_text(errors='replace')[-2000:]}"
            time.sleep(0.05)
        yield int(match.group(1))
    finally:
        stop_process(proc)


def test_the_plugin_registers_the_probe_type_twin_that_its_unique_ids_begin_with():
    from pyocd.probe.aggregator import PROBE_CLASSES, DebugProbeAggregator

    from xipscope.sim.dap import UID_PREFIX, TwinDapProbe
    from xipscope.sim.dap_plugin import PROBE_TYPE
    assert UID_PREFIX == PROBE_TYPE + ":" and PROBE_TYPE in PROBE_CLASSES
    [probe] = DebugProbeAggregator.get_all_connected_probes(f"twin:{REPO / ARMXIP}")
    assert isinstance(probe, TwinDapProbe) and probe.unique_id == f"twin:{REPO / ARMXIP}"
    # Without the type nothing is started: the twin is no attached probe to find by a part of its id.
    assert DebugProbeAggregator.get_all_connected_probes(str(REPO / ARMXIP)) == []


def test_pyocd_commander_reads_the_twins_flash_as_the_elf_holds_it():
    result = pyocd("commander", "-u", f"twin:{ARMXIP}", "-t", "rp2350", "-c", "read32 0x10000000 8")
    assert result.returncode == 0, result.stdout + result.stderr
    image = ElfImage(REPO / ARMXIP, "EM_ARM")
    [vectors] = [s.data[:8] for s in image.segments if s.paddr == 0x10000000]
    words = [f"{int.from_bytes(vectors[i:i + 4], 'little'):08x}" for i in (0, 4)]   # initial SP, reset vector
    assert re.search(rf"10000000:\s+{words[0]}\s+{words[1]}", result.stdout), result.stdout


def test_xipscope_profiles_the_twin_through_pyocds_own_gdbserver(tmp_path):
    from xipscope.profile.analysis import load_profile
    from xipscope.profile.store import read_meta

    phases = {"flash_spin", "sram_spin", "table_walk"}            # armxip's three phases (firmware/arm/armxip.S)
    with pyocd_gdbserver(tmp_path / "pyocd.log") as port:
        out = tmp_path / "prof"
        result = subprocess.run([sys.executable, "-m", "xipscope", "profile", "--target", f"rsp://127.0.0.1:{port}",
                                 "--elf", str(REPO / ARMXIP), "--samples", "50", "--out", str(out)],
                                capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr
    assert read_meta(out)["samples"] == 50
    functions = set(load_profile(out, REPO / ARMXIP).samples["function"])
    # Every pc pyOCD's gdbserver read lies in armxip's code: its phases, or main/_start/the veneer between them.
    assert functions and functions <= phases | {"main", "__sram_spin_veneer", "_start"}, functions
    assert all(f"  {name} " in result.stdout for name in functions & phases), result.stdout
