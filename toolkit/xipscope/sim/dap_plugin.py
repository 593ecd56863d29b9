"""pyOCD's probe plugin for the twin's DAP face (entry point group `pyocd.probe`): `pyocd ... -u twin:FIRMWARE.elf`.

Its own module because pyOCD loads plugins, and asks each for its probe class, while pyOCD itself is being imported
(possibly because sim/dap.py is being imported). So the class handed over here only finds probes, and reaches the
probe in sim/dap.py when pyOCD asks for one, by which time every import has finished.
"""

from __future__ import annotations

from pyocd.core.plugin import Plugin


class TwinProbePlugin(Plugin):

    def load(self):
        from pyocd.probe.debug_probe import DebugProbe   # already imported: pyOCD loads plugins after it

        class TwinProbeFinder(DebugProbe):
            @classmethod
            def get_all_connected_probes(cls, unique_id=None, is_explicit=False):
                from .dap import TwinDapProbe
                return TwinDapProbe.get_all_connected_probes(unique_id, is_explicit)

            @classmethod
            def get_probe_with_id(cls, unique_id, is_explicit=False):
                from .dap import TwinDapProbe
                return TwinDapProbe.get_probe_with_id(unique_id, is_explicit)

        return TwinProbeFinder

    @property
    def name(self) -> str:
        return "xipscope-twin"

    @property
    def description(self) -> str:
        from .machine import MODEL_NOTE
        return (f"{MODEL_NOTE}: an ADIv6 SW-DP with the RISC-V Debug Module's APB-AP (0xa000) or core 0's AHB-AP "
                "(0x2000)")
