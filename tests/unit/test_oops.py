"""The oops parser on the real 6.1 kernel's oops (as `xipscope dmesg` printed it), the 6.13+ format, logs without
KALLSYMS or prefixes, several oopses, and fuzzed text: FormatError or a result, never a traceback."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.oops_texts import OOPS_61
from xipscope.errors import FormatError
from xipscope.linux.oops import parse_oops, strip_log_prefix
from xipscope.trap import decode_oops


# The 6.13+ shape (traps.c die() + dump_instr(), process.c __show_regs(), show_regs_print_info with UID), as dmesg(1)
# prints it: timestamps only, a Call Trace heading, the Code: line with the faulting halfword in parentheses.
OOPS_613 = """\
[   12.345678] Oops - load access fault [#1]
[   12.345700] Modules linked in:
[   12.345710] CPU: 0 UID: 0 PID: 57 Comm: sh Not tainted 6.13.7 #2
[   12.345720] Hardware name: Raspberry Pi Pico 2 (DT)
[   12.345730] epc : do_thing+0x12/0x40
[   12.345740]  ra : caller_fn+0x20/0x60
[   12.345750] epc : 1020a012 ra : 1020b020 sp : 2001ff00
[   12.345760]  gp : 10400000 tp : 20010000 t0 : 00000000
[   12.345770]  t1 : 00000001 t2 : 00000002 s0 : 2001ff20
[   12.345780]  s1 : 11000010 a0 : 00000000 a1 : 00000000
[   12.345790]  a2 : 00000000 a3 : 00000000 a4 : 00000000
[   12.345800]  a5 : 00000000 a6 : 00000000 a7 : 00000000
[   12.345810]  s2 : 00000000 s3 : 00000000 s4 : 00000000
[   12.345820]  s5 : 00000000 s6 : 00000000 s7 : 00000000
[   12.345830]  s8 : 00000000 s9 : 00000000 s10: 00000000
[   12.345840]  s11: 00000000 t3 : 00000000 t4 : 00000000
[   12.345850]  t5 : 00000000 t6 : 00000000
[   12.345860] status: 00001880 badaddr: 00000000 cause: 00000005
[   12.345870] Call Trace:
[   12.345880] [<1020a012>] do_thing+0x12/0x40
[   12.345890] [<1020b020>] caller_fn+0x20/0x60
[   12.345900] Code: 0001 0001 0001 0001 0001 0001 0001 0001 0001 0001 (2f83) 0044 
[   12.345910] ---[ end trace 0000000000000000 ]---
"""


def test_real_61_oops_from_xipscope_dmesg():
    oops = parse_oops(OOPS_61)
    assert oops.title == "Oops - store (or AMO) access fault" and oops.die_count == 1 and oops.line == 2
    assert (oops.cpu, oops.pid, oops.comm, oops.uid, oops.release) == (0, 1, "swapper", None, "6.1.192")
    assert oops.tainted == "Not tainted" and oops.hardware == "riscv-virtio,qemu (DT)"
    assert oops.epc_symbol == "prepare_namespace+0x54/0x148" and oops.ra_symbol == "kernel_init_freeable+0x16e/0x194"
    assert oops.epc == 0x80131234 and oops.registers["s1"] == 0x00800000 and oops.registers["t6"] == 0x804A1BF0
    assert len(oops.registers) == 32
    assert (oops.status, oops.badaddr, oops.cause) == (0x1880, 0x0080004C, 7)
    assert [(e.pc, e.symbol) for e in oops.call_trace] == [
        (0x80131234, "prepare_namespace+0x54/0x148"), (0x8012C780, "kernel_init+0x1a/0xde"),
        (0x80001DA0, "ret_from_exception+0x0/0x1c")]
    assert oops.panic == "Attempted to kill init! exitcode=0x0000000b"
    assert oops.code == [] and oops.instruction_bytes() is None and oops.others == 0
    regs = oops.gdb_registers()
    assert regs["pc"] == 0x80131234 and regs["fp"] == 0x8040BF60 and "s0" not in regs


def test_613_format_with_uid_code_line_and_call_trace_heading():
    oops = parse_oops(OOPS_613)
    assert oops.uid == 0 and oops.pid == 57 and oops.comm == "sh" and oops.release == "6.13.7"
    assert oops.cause == 5 and oops.epc == 0x1020A012
    assert oops.code_index == 10 and oops.instruction_bytes() == bytes.fromhex("832f4400")
    assert [e.pc for e in oops.call_trace] == [0x1020A012, 0x1020B020]


def test_without_prefixes_without_kallsyms_and_syslog_levels():
    bare = "\n".join(strip_log_prefix(line) for line in OOPS_61.splitlines())
    assert parse_oops(bare).epc == 0x80131234
    no_kallsyms = (bare.replace("epc : prepare_namespace+0x54/0x148", "epc : 0x80131234")
                   .replace("[<8012c780>] kernel_init+0x1a/0xde", "[<8012c780>] 0x8012c780"))
    oops = parse_oops(no_kallsyms)
    assert oops.epc_symbol == "0x80131234" and oops.call_trace[1].symbol is None
    syslog = "\n".join("<0>" + line for line in OOPS_61.splitlines())
    assert parse_oops(syslog).cause == 7


def test_xipscope_dmesg_json_records():
    records = [json.dumps({"seq": i, "ts_ns": i, "level": 0, "text": strip_log_prefix(line)})
               for i, line in enumerate(OOPS_61.splitlines())]
    oops = parse_oops("\n".join(records))
    assert oops.cause == 7 and oops.epc == 0x80131234 and len(oops.call_trace) == 3


def test_several_oopses_take_the_first():
    oops = parse_oops(OOPS_61 + OOPS_613.replace("[#1]", "[#2]"))
    assert oops.cause == 7 and oops.others == 1


def test_cause_from_title_when_status_line_is_lost():
    text = "\n".join(line for line in OOPS_61.splitlines() if "status:" not in line)
    assert parse_oops(text).cause == 7


@pytest.mark.parametrize("text, message", [
    ("", "no oops found"),
    ("[    0.0] Linux version 6.1\nhello\n", "no oops found"),
    ("Oops - store (or AMO) access fault [#1]\nCPU: 0 PID: 1 Comm: x\n", "no register block"),
    ("Something odd [#1]\nepc : 80000000 ra : 00000000 sp : 00000000\n", "no 'status"),
])
def test_bad_input_is_a_format_error(text, message):
    with pytest.raises(FormatError, match=message):
        parse_oops(text)


def _check(text: str) -> None:
    try:
        oops = parse_oops(text)
    except FormatError:
        return
    assert isinstance(oops.epc, int) and isinstance(oops.cause, int)
    oops.instruction_bytes()
    report = decode_oops(oops, None, "rp2350")      # and the decode over it never fails either
    json.dumps(report.to_json())
    report.format()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_fuzz_random_text(text):
    _check(text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_oops(data):
    lines = (OOPS_61 if data.draw(st.booleans()) else OOPS_613).splitlines()
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "cut", "garble", "dup"]))
        if action == "drop":
            lines.pop(i)
        elif action == "cut":
            lines[i] = lines[i][:data.draw(st.integers(0, len(lines[i])))]
        elif action == "garble":
            j = data.draw(st.integers(0, max(len(lines[i]) - 1, 0)))
            lines[i] = lines[i][:j] + data.draw(st.text(max_size=8)) + lines[i][j + 1:]
        else:
            lines.insert(i, lines[i])
        if not lines:
            break
    _check("\n".join(lines))
