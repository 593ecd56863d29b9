"""`xipscope probe-latency --target URL`: measure the user's own probe (probe_latency.py) and save the figures where
the probe model and `xipscope profile` pick them up."""

from __future__ import annotations

from . import options

DESCRIPTION = ("Times single-word reads (each waited for) and a long block read through the target, works out "
               "the probe's round trip and wire rate, prints them and saves them "
               "($XDG_CONFIG_HOME/xipscope/probe-latency.json) for `xipscope profile` and the probe model.")
EPILOG = """examples:
  xipscope probe-latency --target pyocd://
  xipscope probe-latency --target openocd://127.0.0.1:6666 --address 0x20001000"""


def add_arguments(p) -> None:
    from ..probe_latency import DEFAULT_ADDRESS     # the one copy; this module is light (no target is opened)

    options.add_target(p, what="the probe's target (pyocd:// counts its probe's work: round trip and wire rate; "
                               "any other gives the round trip only)")
    p.add_argument("--address", type=options.number, default=DEFAULT_ADDRESS, metavar="ADDR",
                   help=f"readable memory to read (default {DEFAULT_ADDRESS:#x}, SRAM)")
    options.add_timeout(p)


def run(args) -> int:
    import sys

    from ..probe_latency import measure_probe
    from ..probe_model import ProbeModel, save_figures
    from ..targets import open_target
    from ..targets.base import MODEL

    target = open_target(args.target, timeout=args.timeout)
    try:
        figures = measure_probe(target, args.address)
        url = target.url
        twin = MODEL in target.capabilities or "twin:" in url
    finally:
        target.close()
    latency_s, wire_hz = figures.pop("latency_s"), figures.pop("wire_hz")
    path = save_figures(latency_s, wire_hz, url, figures)
    out = sys.stdout
    out.write(f"round trip: {latency_s * 1e6:.0f} us ({figures['single_reads']} single-word reads, median "
              f"{figures['single_read_us']:.0f} us each)\n")
    if wire_hz:
        out.write(f"wire rate:  {wire_hz:,.0f} bit/s (from a {figures['block_bytes']:,}-byte block read, median "
                  f"{figures['block_read_us']:,.0f} us)\n")
    else:
        reason = ("the two timings don't fit round trips x latency + wire bits / rate" if figures["counted"]
                  else "this transport does not count its probe's wire bits")
        out.write(f"wire rate:  not measured ({reason}); the model assumes {ProbeModel().wire_hz / 1e6:g} MHz\n")
    if twin:
        out.write("note: this target is the twin (a model): it answers in host time, so these figures are the "
                  "host's, not a probe's\n")
    out.write(f"saved to {path}: `xipscope profile` prices its samples with them (meta.json probe_model)\n")
    return 0
