"""Profile firmware on the RP2350 twin (a model) by running it in steps: a simple, honest collector for the analyses,
the example reports and the tests, writing the same sample files `xipscope profile` writes.

Every jittered number of modelled cycles (so the samples cannot alias with a loop), it reads the pc and the raw
XIP_CTRL CTR_HIT/CTR_ACC registers through the twin's debugger view, which has no side effects. t_ns is *modelled*
time (the twin's cycles at `clock_hz`), not host time, so a profile of the twin is reproducible, and halted_ns is 0:
the modelled clock stops while the collector reads. Ground truth (the twin's exact per-function instructions, cycles
and cache counts) goes to truth.json beside the samples, so an analysis can say how close sampling came.

    python analyses/twin_profile.py firmware/xipbench.elf --out /tmp/xipbench-profile
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "toolkit"))

from xipscope.chip import rp2350 as rp  # noqa: E402
from xipscope.profile.store import SampleWriter, write_meta  # noqa: E402

CLOCK_HZ = 150_000_000    # the RP2350's default system clock, to turn modelled cycles into time


def profile_twin(firmware: str | Path, out: str | Path, every: int = 2000, seed: int = 0,
                 max_instructions: int = 20_000_000, timing=None, call: tuple[str, tuple[int, ...]] | None = None,
                 extra_meta: dict | None = None) -> dict:
    """Sample `firmware` on the twin every ~`every` modelled cycles (jittered +-50%) until it parks or has run
    `max_instructions`; with `call=(function, args)`, run that function from a fresh stack instead of the entry
    point (as Machine.call does). Returns the meta written to meta.json."""
    from xipscope.sim import MODEL_NOTE
    from xipscope.sim.hazard3 import Machine

    firmware = Path(firmware)
    machine = Machine(firmware, timing=timing, seed=seed)
    if call is not None:
        function, args = call
        machine.write_register("sp", machine.elf.symbol("__stack_top"))
        machine.write_register("ra", machine.elf.symbol("_park"))
        for i, value in enumerate(args):
            machine.write_register(f"a{i}", value)
        machine.write_register("pc", machine.elf.symbol(function))
    writer = SampleWriter(out, flush_rows=1 << 20, flush_seconds=3600)   # one part: the twin cannot die mid-run
    rng = random.Random(seed)
    low, high = max(1, every // 2), every * 3 // 2
    chunk = max(8, every // 32)
    ctr_hit, ctr_acc = rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_HIT, rp.XIP_CTRL_BASE + rp.XIP_CTRL_CTR_ACC
    reason = "budget"
    while machine.instructions < max_instructions and reason == "budget":
        # Sample by modelled time, as a sampler on a real chip samples by wall time. The twin runs by instruction
        # counts, and an instruction costs 1 to ~40 cycles: running "the cycles left" as instructions would stop
        # late in slow code and under-sample it. Small chunks keep the stop within `chunk` instructions of `due`.
        due = machine.cycles + rng.randint(low, high)
        while machine.cycles < due and reason == "budget":
            reason = machine.run(min(chunk, due - machine.cycles)).reason
        pc = machine.pc
        hit = int.from_bytes(machine.read_memory(ctr_hit, 4), "little")
        acc = int.from_bytes(machine.read_memory(ctr_acc, 4), "little")
        # The modelled clock stands still while the collector reads: in the twin's time a sample halts it for 0 ns.
        writer.add(t_ns=machine.cycles * 1_000_000_000 // CLOCK_HZ, pc=pc, halted_ns=0, xip_hit=hit, xip_acc=acc)
    writer.close()
    meta = {"target": f"sim://{firmware}", "target_note": f"{MODEL_NOTE}, stepped by analyses/twin_profile.py",
            "elf": os.path.relpath(firmware.resolve(), Path(out).resolve()),     # relative: the profile can move
            "elf_sha256": hashlib.sha256(firmware.read_bytes()).hexdigest(),
            "map": "rp2350", "samples": writer.count, "every_cycles": every, "seed": seed,
            "clock_hz": CLOCK_HZ, "time_base": "modelled cycles / clock_hz", "stop": reason,
            "flash_miss_cycles": machine.timing.flash_miss_cycles,
            "psram_miss_cycles": machine.timing.psram_miss_cycles,
            "counters": "raw CTR_HIT/CTR_ACC readings (never cleared by the sampler)"} | (extra_meta or {})
    # The registers at the last halt, as a sampler can record them from its last register read: they let the report
    # name the lock of an LR/SC loop.
    meta["registers"] = machine.read_registers()
    if call is not None:
        meta["call"] = [call[0], list(call[1])]
    write_meta(out, meta)
    truth = {"instructions": machine.instructions, "cycles": machine.cycles,
             "functions": [{"name": f.name, "region": f.region, "instructions": f.instructions, "cycles": f.cycles,
                            "xip_accesses": f.xip_accesses, "xip_hits": f.xip_hits} for f in machine.function_stats()],
             "regions": machine.region_stats(), "uart": machine.uart.text(),
             "xip_counters": {"hit": int.from_bytes(machine.read_memory(ctr_hit, 4), "little"),
                              "acc": int.from_bytes(machine.read_memory(ctr_acc, 4), "little")},
             "registers": machine.read_registers()}
    (Path(out) / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    machine.close()
    return meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("firmware")
    p.add_argument("--out", required=True)
    p.add_argument("--every", type=int, default=2000, help="mean modelled cycles between samples (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-instructions", type=int, default=20_000_000)
    args = p.parse_args(argv)
    meta = profile_twin(args.firmware, args.out, args.every, args.seed, args.max_instructions)
    print(f"{meta['samples']} samples of {args.firmware} in {args.out} (stopped: {meta['stop']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
