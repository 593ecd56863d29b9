"""Annotated source of a sampled function, as `perf annotate` shows it: its source lines, each with the samples that
fell on it and the XIP misses attributed to it, from the per-line table (analysis.share_by_line) and the ELF's line
table (which lines the function's code comes from).

Source files are found by the path DWARF recorded, tried as it is and then with leading directories dropped, under
the working directory, the profile directory and the ELF's directory and its parents: a build whose paths were
remapped (`-ffile-prefix-map`) or that moved is still found from a checkout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ..elf.symbols import SymbolIndex

SPAN_LIMIT = 150     # a function spanning more source lines shows only the stretches around its sampled lines
CONTEXT = 4


@dataclass
class SourceLine:
    file: str
    line: int
    text: str | None          # None: the source file was not found
    samples: int = 0
    share: float = 0.0
    misses: float = float("nan")


@dataclass
class AnnotatedFunction:
    function: str
    file: str | None                   # the file most of its code comes from
    path: Path | None                  # where that file was found (None: not found)
    lines: list[SourceLine | None]     # its lines in order; None marks lines left out (a gap)
    inlined: list[SourceLine] = field(default_factory=list)   # sampled lines from other files (inlined code)
    samples: int = 0


def find_source(name: str, bases: list[Path]) -> Path | None:
    """The file DWARF calls NAME: as given, then with leading directories dropped, under each base in turn."""
    path = Path(name)
    if path.is_absolute() and path.is_file():
        return path
    parts = [p for p in path.parts if p not in ("/", "..", ".")]
    for k in range(len(parts)):
        for base in bases:
            candidate = base.joinpath(*parts[k:])
            if candidate.is_file():
                return candidate
    return None


def source_bases(profile_dir: Path | None, elf_path: Path | None) -> list[Path]:
    bases = [Path.cwd()]
    if profile_dir is not None:
        bases.append(Path(profile_dir))
    if elf_path is not None:
        elf_dir = Path(elf_path).resolve().parent
        bases += [elf_dir, *list(elf_dir.parents)[:3]]
    return bases


def _function_lines(symbols: "SymbolIndex", function: str) -> dict[str, set[int]]:
    """file -> the lines the line table gives for the function's code (every 2-byte address: RV32C and Thumb)."""
    import numpy as np

    out: dict[str, set[int]] = {}
    for symbol in symbols.symbols_named(function):
        if symbol.kind != "function" or not symbol.size:
            continue
        s = symbols.symbolize(np.arange(symbol.address, symbol.address + min(symbol.size, 1 << 17), 2))
        for file_id, line in set(zip(s.file_id.tolist(), s.line.tolist())):
            if file_id >= 0 and line > 0:
                out.setdefault(symbols.files[file_id], set()).add(line)
    return out


def _read_lines(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    return path.read_text(errors="replace").splitlines()


def annotate_function(by_line: "pd.DataFrame", function: str, symbols: "SymbolIndex",
                      bases: list[Path]) -> AnnotatedFunction:
    """FUNCTION's source with the samples and misses of BY_LINE (analysis.share_by_line's table, index file:line)."""
    sampled: dict[tuple[str, int], tuple[int, float, float]] = {}
    rows = by_line[by_line["function"] == function]
    for label, samples, share, misses in zip(rows.index, rows["samples"], rows["share"], rows["misses"]):
        file, _, line = str(label).rpartition(":")
        if file and line.isdigit():
            sampled[(file, int(line))] = (int(samples), float(share), float(misses))
    total = int(rows["samples"].sum())
    code_lines = _function_lines(symbols, function)
    for file, line in sampled:
        code_lines.setdefault(file, set()).add(line)
    if not code_lines:
        return AnnotatedFunction(function, None, None, [], samples=total)
    # The function's own file: where most of its code lines are (inlined helpers contribute a few each).
    main = max(code_lines, key=lambda f: (sum(s[0] for k, s in sampled.items() if k[0] == f), len(code_lines[f])))
    path = find_source(main, bases)
    text = _read_lines(path)

    def line_of(file: str, n: int, body: list[str] | None) -> SourceLine:
        samples, share, misses = sampled.get((file, n), (0, 0.0, float("nan")))
        return SourceLine(file, n, body[n - 1] if body is not None and 0 < n <= len(body) else None,
                          samples, share, misses)

    numbers = sorted(code_lines[main])
    first, last = max(numbers[0] - 1, 1), numbers[-1]
    if last - first < SPAN_LIMIT:
        shown = list(range(first, last + 1))
    else:
        hot = sorted({n for f, n in sampled if f == main} or numbers[:1])
        shown = sorted({m for n in hot for m in range(max(n - CONTEXT, 1), n + CONTEXT + 1)})
    lines: list[SourceLine | None] = []
    for n in shown:
        if lines and lines[-1] is not None and n != lines[-1].line + 1:
            lines.append(None)
        lines.append(line_of(main, n, text))
    bodies: dict[str, list[str] | None] = {}
    inlined = []
    for file, n in sorted(k for k in sampled if k[0] != main):
        if file not in bodies:
            bodies[file] = _read_lines(find_source(file, bases))
        inlined.append(line_of(file, n, bodies[file]))
    return AnnotatedFunction(function, main, path, lines, inlined, total)
