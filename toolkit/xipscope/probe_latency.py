"""`xipscope probe-latency --target URL`: measure the user's own probe's round trip and wire rate, and save them where
the probe model (probe_model.py) and `xipscope profile` pick them up.

Two measurements through the Target protocol: a run of single-word reads, each one waited for, and a long block
read. Where the transport counts its probe's work (pyocd://), each read's round trips and wire bits are known, and
the two timings give the two unknowns of the model's time = round trips x latency + wire bits / wire rate. Where it
does not (rsp://, openocd://: a server between us and the probe), each single read is taken as one round trip and the
wire rate is not measured (the model then assumes its default wire clock).
"""

from __future__ import annotations

import statistics
import time

SINGLE_READS = 200
BLOCK_BYTES = 16 * 1024
BLOCK_ROUNDS = 3
DEFAULT_ADDRESS = 0x20000000         # RP2350 SRAM (the twin has it too): readable while the core runs


def measure_probe(target, address: int = DEFAULT_ADDRESS, single_reads: int = SINGLE_READS,
                  block_bytes: int = BLOCK_BYTES, clock=time.perf_counter) -> dict:
    """{latency_s, wire_hz (None: not measured), and what was measured}: see the module docstring."""
    counts = getattr(target, "probe_counts", lambda: None)
    target.read_memory(address, 4)                # warm up (pyOCD's AP selection, SBA set-up)
    before = counts()
    times = []
    for _ in range(single_reads):
        t0 = clock()
        target.read_memory(address, 4)
        times.append(clock() - t0)
    single = counts() - before if before is not None else None
    block_times = []
    before = counts()
    for _ in range(BLOCK_ROUNDS):
        t0 = clock()
        target.read_memory(address, block_bytes)
        block_times.append(clock() - t0)
    block = counts() - before if before is not None else None

    t_single, t_block = statistics.median(times), statistics.median(block_times)
    result = {"single_reads": single_reads, "single_read_us": t_single * 1e6, "block_bytes": block_bytes,
              "block_read_us": t_block * 1e6, "address": address}
    if single is None or not single.round_trips:
        result.update(latency_s=t_single, wire_hz=None, counted=False)
        return result
    rt_s, bits_s = single.round_trips / single_reads, single.wire_bits / single_reads
    rt_b, bits_b = block.round_trips / BLOCK_ROUNDS, block.wire_bits / BLOCK_ROUNDS
    result.update(counted=True, single_round_trips=rt_s, single_wire_bits=bits_s, block_round_trips=rt_b,
                  block_wire_bits=bits_b)
    # t = rt x latency + bits x (1 / wire rate), for the single read and the block: two equations, two unknowns.
    det = rt_s * bits_b - rt_b * bits_s
    seconds_per_bit = (rt_s * t_block - rt_b * t_single) / det if det else 0.0
    if seconds_per_bit > 0:
        latency = (t_single - bits_s * seconds_per_bit) / rt_s
        if latency > 0:
            result.update(latency_s=latency, wire_hz=1 / seconds_per_bit)
            return result
    # The timings don't fit round trips x latency + bits / rate (the wire too fast to see, or a target answering in
    # host time, as the twin does): all of a single read is latency.
    result.update(latency_s=t_single / rt_s, wire_hz=None)
    return result
