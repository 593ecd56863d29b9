"""The twin's example firmware (xipbench.elf, amofault.elf, ..., seedlayout.uf2), found by its bare name.

`xipscope sim xipbench.elf` and `sim://xipbench.elf` use the copy shipped with xipscope when no such file is in the
current directory. A wheel carries copies in xipscope/firmware/ (setup.py copies them from the checkout's firmware/
when it builds); a checkout, or an editable install, finds them in the checkout's firmware/. Stdlib only: `--help`
lists them.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_PLACES = (_HERE.parent / "firmware",          # an installed wheel: xipscope/firmware/
           _HERE.parents[2] / "firmware")      # a checkout: toolkit/xipscope/sim/ -> firmware/


def shipped_firmware_dir() -> Path | None:
    """Where the example firmware is, or None (a build without it)."""
    return next((place for place in _PLACES if (place / "xipbench.elf").is_file()), None)


def shipped_firmware() -> list[str]:
    """The names of the example firmware ELFs and flash images."""
    place = shipped_firmware_dir()
    return sorted(p.name for p in place.iterdir() if p.suffix in (".elf", ".uf2")) if place else []


def find_firmware(path: str) -> str:
    """`path` as given, unless it is a bare name (no directory) of no file here and of a shipped firmware: then the
    shipped copy's path. A flash image spec IMAGE@ADDR keeps its @ADDR."""
    name, at, address = path.partition("@")
    if Path(name).name != name or Path(name).exists():
        return path
    place = shipped_firmware_dir()
    if place is None or not (place / name).is_file():
        return path
    return str(place / name) + at + address
