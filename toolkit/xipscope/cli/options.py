"""The options several commands share, defined once: --target, --map, --elf, --timeout, --json."""

from __future__ import annotations

import argparse

DEFAULT_TIMEOUT = 5.0


def target_help(what: str | None = None) -> str:
    """--target's help: what this command wants of the target, then every scheme open_target knows (its table)."""
    from ..targets import SCHEMES

    return f"{what or 'the target'}, by URL: " + "; ".join(SCHEMES.values())


def add_target(parser, required: bool = True, what: str | None = None) -> argparse.Action:
    """--target URL; `parser` may be a mutually exclusive group (then it is required by the group, not by itself)."""
    kwargs = {"required": True} if required else {}
    return parser.add_argument("--target", metavar="URL", help=target_help(what), **kwargs)


def add_source(parser) -> None:
    """--target URL or --dump FILE@ADDR, one of them required: where a command that only reads memory reads it."""
    source = parser.add_mutually_exclusive_group(required=True)
    add_target(source, required=False)
    source.add_argument("--dump", metavar="FILE@ADDR",
                        help="a raw memory image and the address of its first byte, e.g. ram.bin@0x80000000")


def open_source(args):
    """The Target add_source's options name; the caller closes it."""
    if args.dump:
        from ..targets.memory_image import MemoryImageTarget
        return MemoryImageTarget.from_spec(args.dump)
    from ..targets import open_target
    return open_target(args.target, timeout=args.timeout)


def add_map(parser, default: str | None = "rp2350", default_text: str | None = None, what: str | None = None):
    """--map NAME|FILE.toml: a built-in memory map or a TOML file of [[region]] tables."""
    from ..chip.memory_map import BUILTIN_MAPS

    if default_text is None:
        default_text = f"default {default}"
    return parser.add_argument(
        "--map", default=default, metavar="NAME|FILE.toml",
        help=f"memory map: {', '.join(BUILTIN_MAPS)} (rp2350 has the XIP counters and QMI), or a TOML file of "
             f"[[region]] tables ({default_text})" + (f"; {what}" if what else ""))


def add_elf(parser, help: str, required: bool = False, symbols_alias: bool = False, metavar: str = "FILE"):
    """--elf FILE (with --symbols as another name where a System.map will do). A bare name of no file here that names
    a shipped example firmware (--elf xipbench.elf) is that firmware, as for `xipscope sim` and sim://."""
    names = ("--elf", "--symbols") if symbols_alias else ("--elf",)
    return parser.add_argument(*names, dest="elf", required=required, metavar=metavar, help=help, type=firmware_path)


def firmware_path(path: str) -> str:
    """`path` as given, or the shipped firmware's path for a bare name (sim/firmware.py's find_firmware, one copy)."""
    from ..sim.firmware import find_firmware     # stdlib only: cheap enough for argparse

    return find_firmware(path)


def add_timeout(parser):
    return parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                               help=f"seconds to wait for each target reply (default {DEFAULT_TIMEOUT:g})")


def add_json(parser, what: str):
    return parser.add_argument("--json", action="store_true", help=what)


def number(text: str) -> int:
    """An argparse type for addresses and lengths: 0x10010000, 64, 0o17."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; write it like 0x10010000 or 64") from None
