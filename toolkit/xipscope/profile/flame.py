"""A flame graph of the sampled stacks as inline SVG, drawn from the collapsed stacks the report also writes
(stacks.collapsed), so the picture and the file cannot disagree: no script, no network, it opens wherever the HTML does.

As flamegraph.pl draws it: the root ("all") at the bottom, each frame on top of its caller, a frame's width its
number of samples, callees of one caller side by side in name order (so x says nothing about time), colours from
the name (warm hues, the same name the same colour in every report). A frame's `<title>` is its tooltip.
"""

from __future__ import annotations

import html
import zlib
from dataclasses import dataclass, field

FRAME_HEIGHT = 17
FONT_PX = 12
CHAR_PX = 7.3          # a 12 px monospace glyph's advance, to cut labels to fit their frame
ROOT = "all"


@dataclass
class FlameNode:
    name: str
    samples: int = 0
    children: dict[str, "FlameNode"] = field(default_factory=dict)


def parse_collapsed(collapsed: str) -> FlameNode:
    """The call tree of `root;caller;leaf COUNT` lines (a node's samples include its callees')."""
    root = FlameNode(ROOT)
    for line in collapsed.splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        node = root
        node.samples += n
        for name in stack.split(";"):
            node = node.children.setdefault(name, FlameNode(name))
            node.samples += n
    return root


def _color(name: str) -> str:
    h = zlib.crc32(name.encode())
    return f"rgb({205 + h % 50},{(h >> 8) % 190},{(h >> 16) % 55})"


def flame_svg(collapsed: str, width: int = 1000) -> str:
    """The flame graph of COLLAPSED as an `<svg>` element ('' when there are no samples). Each frame is a
    `<g class="frame" data-name=NAME data-samples=N>` holding its rect, its label and its tooltip."""
    root = parse_collapsed(collapsed)
    if root.samples == 0:
        return ""
    per_sample = width / root.samples
    frames: list[tuple[int, float, FlameNode]] = []      # (depth, x, node)

    def place(node: FlameNode, depth: int, x: float) -> None:
        frames.append((depth, x, node))
        for name in sorted(node.children):
            child = node.children[name]
            place(child, depth + 1, x)
            x += child.samples * per_sample

    place(root, 0, 0.0)
    depth_max = max(d for d, _, _ in frames)
    height = (depth_max + 1) * FRAME_HEIGHT
    out = [f"<svg class='flame' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' font-family='monospace' font-size='{FONT_PX}'>"]
    for depth, x, node in frames:
        w = node.samples * per_sample
        y = height - (depth + 1) * FRAME_HEIGHT
        name = html.escape(node.name, quote=True)
        fits = int((w - 4) / CHAR_PX)
        label = node.name if len(node.name) <= fits else node.name[:fits - 2] + ".." if fits >= 3 else ""
        out.append(f"<g class='frame' data-name='{name}' data-samples='{node.samples}'>"
                   f"<title>{name}: {node.samples:,} samples, {node.samples / root.samples:.1%}</title>"
                   f"<rect x='{x:.3f}' y='{y}' width='{w:.3f}' height='{FRAME_HEIGHT - 1}' rx='2' "
                   f"fill='{'#d8d8d8' if depth == 0 else _color(node.name)}'/>"
                   + (f"<text x='{x + 2:.3f}' y='{y + FRAME_HEIGHT - 5}'>{html.escape(label)}</text>" if label else "")
                   + "</g>")
    out.append("</svg>")
    return "".join(out)
