"""The one build step pyproject.toml can't declare: the wheel carries copies of the twin's example firmware.

The firmware stays in firmware/ (its sources and Makefile, and the tests, use it there); building the package copies
the ELFs and the example UF2 into it as xipscope/firmware/, where xipscope.sim.firmware finds them by bare name.
An editable install needs no copy: it runs from the checkout, which has firmware/.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

FIRMWARE = Path(__file__).resolve().parent / "firmware"
SHIPPED = ("*.elf", "*.uf2")


class BuildPyWithFirmware(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        files = sorted(f for pattern in SHIPPED for f in FIRMWARE.glob(pattern))
        if not (FIRMWARE / "xipbench.elf").is_file():
            raise SystemExit(f"setup.py: no firmware ELFs in {FIRMWARE}; build from a checkout, or from an sdist "
                             "(MANIFEST.in puts them in it)")
        out = Path(self.build_lib) / "xipscope" / "firmware"
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(f, out / f.name)


setup(cmdclass={"build_py": BuildPyWithFirmware})
