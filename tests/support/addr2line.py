"""binutils' addr2line as the reference for the symbol index (unit/test_symbols.py on small ELFs,
kernel/test_symbols_kernel.py on the kernel), and how its function names match ours."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ADDR2LINE = "riscv64-linux-gnu-addr2line"
# GCC's clone suffixes: the symtab says foo.constprop.0 where DWARF (and so addr2line) says foo.
CLONE_SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|lto_priv|localalias)(\.\d+)?)+$")


def addr2line(elf: Path, addresses: list[int], inline: bool = True) -> list[tuple[list[str], list[str]]]:
    """One addr2line process for all addresses; per address its (function names, file:line strings), innermost first."""
    args = [ADDR2LINE, "-f", "-a", "-e", str(elf)] + (["-i"] if inline else [])
    out = subprocess.run(args, input="\n".join(map(hex, addresses)), capture_output=True, text=True,
                         check=True).stdout.splitlines()
    blocks: list[list[str]] = []
    for line in out:
        if re.fullmatch(r"0x[0-9a-f]+", line):  # -a echoes each address first, which delimits the inline chains
            blocks.append([])
        else:
            blocks[-1].append(line)
    assert len(blocks) == len(addresses)
    return [(b[0::2], [re.sub(r" \(discriminator \d+\)$", "", loc) for loc in b[1::2]]) for b in blocks]


def same_function(index, ours: str | None, offset: int, address: int, theirs: str) -> bool:
    """Our symtab function is addr2line's outermost DWARF function, up to clone suffixes and aliases at one address."""
    if ours is None:
        return theirs == "??"
    names = {CLONE_SUFFIX.sub("", s.name) for s in index.symbols_at(address - offset)}
    return CLONE_SUFFIX.sub("", theirs) in names
