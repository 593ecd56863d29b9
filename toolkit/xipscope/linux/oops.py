"""Read a RISC-V Linux oops out of text: a bare oops, or a whole kernel log (`xipscope dmesg`, dmesg(1), a console).

The format is die() and show_regs() in arch/riscv/kernel/{traps.c,process.c} (see ../shared/reference/linux-kernel.md),
6.1 and 6.13+: the `... [#N]` title, the CPU line (6.13+ adds UID), `epc : %pS` and ` ra : %pS`, the register block,
`status: badaddr: cause:`, 6.13+'s `Code:` line, and the call trace (`[<pc>] sym+off/size`, or bare addresses without
KALLSYMS; 6.13+ under a `Call Trace:` heading). Log prefixes (`<4>`, `[    0.132286]`, `[    T1]`) are stripped;
`xipscope dmesg --json` output is read too.

Logs come from anywhere (a console capture with a garbled 150 KB line), so every pattern runs in time linear in its
line: no lazy "anything" followed by a pattern that can fail after it (trailing-space-then-end after a lazy match
retries at every split of a long line), and the text is walked line by line, keeping only the oops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import FormatError

# The largest log read: the printk ring holds at most 32 MiB (init/Kconfig LOG_BUF_SHIFT, range 12..25); a console
# capture with its prefixes may be somewhat larger, but a log of gigabytes is not a kernel's.
MAX_LOG_BYTES = 64 << 20

# One log line's prefixes: syslog level, timestamp, caller id (CONFIG_PRINTK_CALLER), then the single space printk adds.
_PREFIX = re.compile(r"^(?:<\d+>)?(?:\[\s*\d+\.\d+\])?(?:\[\s*[TC]\d+\])? ?")
_TITLE = re.compile(r"^(?P<what>\S.*?) \[#(?P<count>\d+)\]\s*$")
_CPU = re.compile(r"^CPU: (?P<cpu>\d+)(?: UID: (?P<uid>\d+))? PID: (?P<pid>\d+) Comm: (?P<comm>.{0,20}?)"
                  r"(?: (?P<taint>Not tainted|Tainted: \S+))?(?: (?P<release>\S+))?(?: #\S+.*)?\s*$")
_SYMBOL_LINE = re.compile(r"^\s*(?P<reg>epc|ra)\s*:\s*(?P<sym>\S+)\s*$")
_REGISTER = re.compile(r"(?:^|\s)(?P<name>[a-z][a-z0-9]{0,6})\s*:\s*(?P<value>[0-9a-f]{8}(?:[0-9a-f]{8})?)(?=\s|$)")
_CODE = re.compile(r"^Code: (?P<words>(?:\(?[0-9a-f]{4}\)? ?)+)\s*$")
# `.*\S` (greedy, backing off to the last non-space) where `.*?\s*$` would retry `\s*$` at every split: linear time.
_TRACE = re.compile(r"^\s*\[<(?P<pc>[0-9a-f]{8,16})>\]\s*(?P<sym>\S(?:.*\S)?)?\s*$")
_PANIC = re.compile(r"^Kernel panic - not syncing: (?P<why>(?:.*\S)?)\s*$")
_END = re.compile(r"^---\[ end trace")

# die()'s titles (traps.c do_trap_* and die()) and the cause each stands for, for oopses whose status line is lost.
TITLE_CAUSES = {
    "Oops - instruction address misaligned": 0, "Oops - instruction access fault": 1,
    "Oops - illegal instruction": 2, "Oops - load address misaligned": 4, "Oops - load access fault": 5,
    "Oops - store (or AMO) address misaligned": 6, "Oops - store (or AMO) access fault": 7,
    "Oops - environment call from U-mode": 8, "Oops - environment call from S-mode": 9,
    "Oops - environment call from M-mode": 11, "Kernel BUG": 3,
}
KERNEL_REGISTER_NAMES = ("epc ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 a6 a7 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 "
                         "t3 t4 t5 t6").split()


@dataclass(frozen=True)
class TraceEntry:
    pc: int
    symbol: str | None     # as printed: `prepare_namespace+0x54/0x148`, or None without KALLSYMS


@dataclass
class Oops:
    """One oops as the kernel printed it. Register names are the kernel's (s0, not fp)."""

    title: str                                   # `Oops - store (or AMO) access fault`
    die_count: int                               # the N of [#N]
    line: int                                    # 1-based line of the title in the input
    registers: dict[str, int] = field(default_factory=dict)
    status: int | None = None
    badaddr: int | None = None
    cause: int | None = None
    cpu: int | None = None
    pid: int | None = None
    uid: int | None = None
    comm: str | None = None
    release: str | None = None
    tainted: str | None = None
    hardware: str | None = None
    epc_symbol: str | None = None
    ra_symbol: str | None = None
    code: list[int] = field(default_factory=list)    # the Code: halfwords (6.13+)
    code_index: int | None = None                    # which one is at epc (printed in parentheses)
    call_trace: list[TraceEntry] = field(default_factory=list)
    panic: str | None = None
    others: int = 0                                  # further oopses in the input, not decoded

    @property
    def epc(self) -> int:
        return self.registers["epc"]

    def gdb_registers(self) -> dict[str, int]:
        """The registers under gdb's names (x8 is `fp`), plus `pc`, as a live Target reports them."""
        regs = {("fp" if k == "s0" else k): v for k, v in self.registers.items() if k != "epc"}
        regs["pc"] = self.registers["epc"]
        return regs

    def instruction_bytes(self) -> bytes | None:
        """The instruction at epc from the Code: line (its first halfword, and the next for a 32-bit one)."""
        if self.code_index is None:
            return None
        first = self.code[self.code_index]
        if first & 3 != 3:
            return first.to_bytes(2, "little")
        if self.code_index + 1 >= len(self.code):
            return None
        return first.to_bytes(2, "little") + self.code[self.code_index + 1].to_bytes(2, "little")


def strip_log_prefix(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1)


def _text_lines(text: str):
    """The lines of `text` as str.splitlines() gives them, one at a time: a log of millions of empty lines never
    becomes a list of millions of strings."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield from text[start:end].splitlines() or [""]
        start = end + 1


def _log_lines(text: str):
    """Lines without their log prefixes; `xipscope dmesg --json` records (one JSON object a line) give their text."""
    import json

    for line in _text_lines(text):
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict) and isinstance(record.get("text"), str):
                yield from record["text"].splitlines() or [""]
                continue
        yield strip_log_prefix(line)


def parse_oops(text: str) -> Oops:
    """The first oops in `text` (a whole log is fine); `others` counts the ones after it. FormatError if none."""
    if not isinstance(text, str):
        raise FormatError(f"expected oops text, found {type(text).__name__}")
    oops = None
    count = 0
    for count, line in enumerate(_log_lines(text), 1):
        if m := _TITLE.match(line):
            if oops is None:
                oops = Oops(title=m["what"], die_count=int(m["count"]), line=count)
            else:
                oops.others += 1
        elif oops is not None and not oops.others:
            _read_line(oops, line.strip())
    if oops is None:
        raise FormatError("no oops found: expected a line like 'Oops - store (or AMO) access fault [#1]' "
                          f"(die()'s title) among {count} lines. Pass the kernel log that holds the crash, "
                          "e.g. the output of `xipscope dmesg`.")
    if "epc" not in oops.registers:
        raise FormatError(f"the oops at line {oops.line} ({oops.title!r}) has no register block: expected a line "
                          "like 'epc : 80131234 ra : 80130c7e sp : 8040bf20' after it. Is the log cut short?")
    if oops.cause is None:
        oops.cause = TITLE_CAUSES.get(oops.title)
        if oops.cause is None:
            raise FormatError(f"the oops at line {oops.line} ({oops.title!r}) has no 'status: ... cause: ...' line "
                              "and its title names no known cause")
    return oops


def _read_line(oops: Oops, body: str) -> None:
    """What one line of the oops after its title says, into `oops`."""
    if not body or _END.match(body):
        return
    if (p := _PANIC.match(body)) and oops.panic is None:
        oops.panic = p["why"]
        return
    if (c := _CPU.match(body)) and oops.cpu is None:
        oops.cpu, oops.pid, oops.comm = int(c["cpu"]), int(c["pid"]), c["comm"]
        oops.uid = int(c["uid"]) if c["uid"] is not None else None
        oops.tainted, oops.release = c["taint"], c["release"]
        return
    if body.startswith("Hardware name:"):
        oops.hardware = body.split(":", 1)[1].strip()
        return
    if body == "Call Trace:":
        return
    if (t := _TRACE.match(body)):
        sym = t["sym"]
        if sym is not None and re.fullmatch(r"0x[0-9a-f]+", sym):
            sym = None     # no KALLSYMS: %pS printed the bare address
        oops.call_trace.append(TraceEntry(int(t["pc"], 16), sym))
        return
    if (s := _SYMBOL_LINE.match(body)):
        if s["reg"] == "epc":
            oops.epc_symbol = s["sym"]
        else:
            oops.ra_symbol = s["sym"]
        return
    if (code := _CODE.match(body)):
        words = code["words"].split()
        oops.code = [int(w.strip("()"), 16) for w in words]
        marked = [i for i, w in enumerate(words) if w.startswith("(")]
        oops.code_index = marked[0] if marked else None
        return
    for r in _REGISTER.finditer(body):
        name, value = r["name"], int(r["value"], 16)
        if name in ("status", "badaddr", "cause"):
            setattr(oops, name, value)
        elif name in KERNEL_REGISTER_NAMES and name not in oops.registers:
            oops.registers[name] = value
