"""The printk decoders on rings laid out per the kernel's source, and on fuzzed and mutated real rings."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from support.printk_ring_image import L, Memory, build_ring
from xipscope.errors import XipscopeError
from xipscope.linux.printk import (PrintkRecord, format_record, format_timestamp, read_log_buf, read_printk_ring)


def test_timestamps_use_integer_arithmetic():
    # 1.0000005 s: a float formatter rounds the microseconds up; the kernel truncates.
    assert format_timestamp(1_000_000_500) == "[    1.000000]"
    assert format_timestamp(2_999_999_999) == "[    2.999999]"
    assert format_timestamp(123456_000001000) == "[123456.000001]"


def test_multiline_records_repeat_the_prefix_and_caller_field():
    record = PrintkRecord(0, 5_000_000, 6, 0, 2, 0x80000001, "a\nb")
    assert format_record(record, True) == ["[    0.005000][    C1] a", "[    0.005000][    C1] b"]
    assert format_record(record, False) == ["[    0.005000] a", "[    0.005000] b"]


def test_records_in_order():
    texts = [f"record {i}" for i in range(5)]
    memory, prb = build_ring(texts)
    log = read_printk_ring(memory, prb, L, has_caller=True)
    assert [r.text for r in log.records] == texts
    assert [r.caller for r in log.records] == ["T0", "T1", "T2", "T3", "T4"]
    assert log.lost == 0


@pytest.mark.parametrize("first_lpos", range(0, 256, 4))
def test_wrapped_blocks_are_read_from_the_start_of_the_ring(first_lpos):
    # Every start position, so that some block would end exactly on the boundary and one wraps; drgn reads a wrapped
    # block at data[begin] and prints its id as text, lx-dmesg mishandles the exact-boundary case.
    texts = [f"message number {i:02d}" for i in range(12)]   # 24-byte blocks: the 256-byte ring holds 10
    memory, prb = build_ring(texts, count_bits=4, size_bits=8, first_lpos=first_lpos)
    log = read_printk_ring(memory, prb, L, has_caller=False)
    got = [r.text for r in log.records]
    assert got and got == texts[-len(got):] and len(got) >= 9
    assert log.lost == 0


def test_ids_that_wrap_around_the_id_space():
    texts = [f"r{i}" for i in range(6)]
    memory, prb = build_ring(texts, first_id=0x3FFFFFFD)
    assert [r.text for r in read_printk_ring(memory, prb, L, False).records] == texts


def test_a_descriptor_reused_by_a_newer_record_is_not_printed():
    memory, prb = build_ring([f"r{i}" for i in range(4)])
    data = bytearray(memory.data)
    descs = struct.unpack_from("<I", data, 4)[0] - memory.base
    struct.pack_into("<I", data, descs + 1 * L.desc_size, (2 << 30) | 17)   # slot 1 now claims id 17
    log = read_printk_ring(Memory(memory.base, data), prb, L, False)
    assert [r.text for r in log.records] == ["r0", "r2", "r3"] and log.lost == 1


def test_garbage_header_is_a_clear_error():
    with pytest.raises(XipscopeError, match="not a printk_ringbuffer"):
        read_printk_ring(Memory(0, b"\xff" * 64), 0, L, False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 6), st.integers(4, 10), st.binary(min_size=16, max_size=4096), st.integers(0, 2**32 - 1),
       st.integers(0, 2**32 - 1))
def test_random_rings_give_records_or_a_clear_error(count_bits, size_bits, noise, head, tail):
    count, size = 1 << count_bits, 1 << size_bits
    base = 0x2000
    descs, infos = base + 64, base + 64 + count * L.desc_size
    data = infos + count * L.info_size
    body = (noise * (1 + (data + size - base) // len(noise)))[:data + size - base - 64]
    header = struct.pack("<11I", count_bits, descs, infos, head, tail, head, size_bits, data, 0, 0, 0)
    memory = Memory(base, header + bytes(20) + body)
    try:
        log = read_printk_ring(memory, base, L, True)
    except XipscopeError:
        return
    assert len(log.records) <= count
    for record in log.records:
        assert 0 <= record.level < 8 and len(record.text.encode("utf-8", "replace")) <= 4 * size


# -- the pre-5.10 __log_buf -----------------------------------------------------------------------------------------

def log_buf_image(texts: list[str], header: int, align: int, caller: bool):
    """A __log_buf as 4.x/5.4 kernels write it: struct printk_log headers, text, padding to `align`."""
    buf = bytearray(512)
    idx = 0
    for n, text in enumerate(texts):
        raw = text.encode()
        length = -(-(header + len(raw)) // align) * align
        fields = struct.pack("<QHHHBB", 1000 * n, length, len(raw), 0, 0, (4 << 5) | 2)
        if caller:
            fields += struct.pack("<I", 100 + n)
        buf[idx:idx + len(fields)] = fields
        buf[idx + header:idx + header + len(raw)] = raw
        idx += length
    return Memory(0x4000, buf), idx


@pytest.mark.parametrize("header,align,caller", [(16, 4, False), (16, 8, False), (20, 4, True), (24, 8, True)])
def test_log_buf_records_with_and_without_caller(header, align, caller):
    texts = ["Booting Linux", "a somewhat longer line of text", "x"]
    memory, nxt = log_buf_image(texts, header, align, caller)
    log = read_log_buf(memory, 0x4000, 512, 0, nxt, first_seq=7)
    assert [r.text for r in log.records] == texts
    assert [r.seq for r in log.records] == [7, 8, 9]
    assert [r.caller for r in log.records] == (["T100", "T101", "T102"] if caller else [None] * 3)
    assert all(r.level == 4 for r in log.records)


def test_log_buf_follows_the_wrap_marker():
    data = bytearray(512)
    struct.pack_into("<QHHHBB", data, 400, 5, 24, 6, 0, 0, 0xC2)
    data[416:422] = b"oldest"
    struct.pack_into("<QH", data, 424, 0, 0)                      # wrap marker after the oldest record
    struct.pack_into("<QHHHBB", data, 0, 6, 24, 6, 0, 0, 0xC2)
    data[16:22] = b"newest"
    log = read_log_buf(Memory(0x4000, data), 0x4000, 512, 400, 24)
    assert [r.text for r in log.records] == ["oldest", "newest"]


def test_log_buf_garbage_is_a_clear_error():
    with pytest.raises(XipscopeError):
        read_log_buf(Memory(0x4000, b"\x07" * 512), 0x4000, 512, 0, 100)
