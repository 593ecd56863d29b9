"""pyOCD's probe plugin for the twin's DAP face (a model; entry point group `pyocd.probe`).

pyOCD's own tools reach the twin as a probe of type `twin` (pyOCD keys probe plugins by the plugin's `name`, not the
entry point's, and a `-u TYPE:ID` asks only the plugin of that type), on Arm firmware with pyOCD's rp2350 target:

    pyocd commander -u twin:firmware/armxip.elf -t rp2350 -c "read32 0x10000000"
    pyocd gdbserver -u twin:firmware/armxip.elf -t rp2350 --port 3333     # then rsp://127.0.0.1:3333

(RISC-V firmware shows the APB-AP of the Debug Module, which pyOCD's own targets don't drive: use pyocd://twin:FW.elf.)

Its own module because pyOCD loads plugins, and asks each for its probe class, while pyOCD itself is being imported
(possibly because sim/dap.py is being imported). So the class handed over here only finds probes, and reaches the
probe in sim/dap.py when pyOCD asks for one, by which time every import has finished.
"""

from __future__ import annotations

from pyocd.core.plugin import Plugin

PROBE_TYPE = "twin"     # sim/dap.py's UID_PREFIX without its colon: the probe's unique id names its type


def whole_id(unique_id: str | None) -> str | None:
    """The twin probe's unique id (`twin:FW.elf`, as pyocd://twin:FW.elf names it) from the one pyOCD's aggregator asks
    with: it strips the `twin:` of `-u twin:FW.elf` (is_explicit says it was there)."""
    from .dap import UID_PREFIX
    if unique_id and not unique_id.startswith(UID_PREFIX):
        return UID_PREFIX + unique_id
    return unique_id


class TwinProbePlugin(Plugin):

    def load(self):
        from pyocd.probe.debug_probe import DebugProbe   # already imported: pyOCD loads plugins after it

        class TwinProbeFinder(DebugProbe):
            @classmethod
            def get_all_connected_probes(cls, unique_id=None, is_explicit=False):
                from .dap import TwinDapProbe
                return TwinDapProbe.get_all_connected_probes(whole_id(unique_id), is_explicit)

            @classmethod
            def get_probe_with_id(cls, unique_id, is_explicit=False):
                from .dap import TwinDapProbe
                return TwinDapProbe.get_probe_with_id(whole_id(unique_id), is_explicit)

        return TwinProbeFinder

    @property
    def name(self) -> str:
        return PROBE_TYPE

    @property
    def description(self) -> str:
        from . import MODEL_NOTE
        return (f"{MODEL_NOTE}: an ADIv6 SW-DP with the RISC-V Debug Module's APB-AP (0xa000) or core 0's AHB-AP "
                "(0x2000); `-u twin:FIRMWARE.elf`")
