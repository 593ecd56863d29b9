"""Following the printk ring (`xipscope dmesg --follow`) on rings laid out per the kernel's source
(printk_ring_image.py), rebuilt between polls as the kernel would have left them: each record once, in order, across
wraps of the descriptor and data rings and of the id space; records overwritten between two polls reported as lost;
an idle poll reads the ring's head, not the ring. The QEMU kernel follows in test_dmesg_qemu.py."""

from __future__ import annotations

import struct
import subprocess
import sys

import pytest

from support.printk_ring_image import L, Memory, build_ring
from xipscope.linux.printk import (DESC_FINALIZED, DESC_RESERVED, KernelLogFacts, LostRecords, open_printk_cursor,
                                   poll_printk_records)

PRB_VAR = 0x100          # where the kernel's `prb` pointer lives in these images
FACTS = KernelLogFacts("printk_ringbuffer", {"prb": PRB_VAR}, 4, True, L, True)


class RingMemory:
    """`prb` at PRB_VAR pointing at a ring image that a test replaces between polls, as the kernel rewrites it;
    counts the bytes read."""

    def __init__(self, memory: Memory, ring_at: int):
        self.rings = [memory]
        self.ring_at = ring_at
        self.bytes_read = 0
        self.reads = 0

    def write(self, memory: Memory, ring_at: int) -> None:
        self.rings, self.ring_at = [memory] + [m for m in self.rings if m.base != memory.base], ring_at

    def read_memory(self, address: int, size: int) -> bytes:
        self.bytes_read += size
        self.reads += 1
        if address == PRB_VAR:
            return struct.pack("<I", self.ring_at)[:size]
        memory = next(m for m in self.rings if m.base <= address < m.base + len(m.data))
        return memory.read_memory(address, size)


def texts_of(events) -> list:
    return [e.text if not isinstance(e, LostRecords) else e for e in events]


@pytest.mark.parametrize("first_id", [0, 0x3FFFFFF0])
def test_each_record_once_in_order_across_ring_wraps(first_id):
    # 60 records of 12 to 28 bytes through 16 descriptors and 256 bytes of text: both rings wrap several times,
    # and from 0x3ffffff0 the ids wrap around their 30-bit space too. One poll after each record.
    texts = [f"record {i:02d} " + "x" * (i % 5) * 4 for i in range(60)]
    target = RingMemory(*build_ring(texts[:1], first_id=first_id))
    cursor = open_printk_cursor(target, FACTS)
    seen = []
    for n in range(1, 61):
        target.write(*build_ring(texts[:n], first_id=first_id))
        seen += poll_printk_records(target, cursor)
    assert texts_of(seen) == texts
    assert [r.seq for r in seen] == list(range(60)) and seen[7].caller == "T7"


def test_records_overwritten_between_polls_are_reported_lost():
    # 16-byte blocks in 256 bytes: the ring holds the newest 15, as a block that would end exactly on the ring's
    # end is stored at its start (get_next_lpos()), leaving 16 bytes unused.
    texts = [f"record {i:02d}" for i in range(40)]
    target = RingMemory(*build_ring(texts[:5]))
    cursor = open_printk_cursor(target, FACTS)
    assert texts_of(poll_printk_records(target, cursor)) == texts[:5]
    target.write(*build_ring(texts))                     # 35 more before the next poll: 5..24 were overwritten
    assert texts_of(poll_printk_records(target, cursor)) == [LostRecords(20)] + texts[25:]
    target.write(*build_ring(texts + ["one more"]))
    assert texts_of(poll_printk_records(target, cursor)) == ["one more"]


def test_a_ring_that_wrapped_before_the_first_poll_loses_nothing():
    texts = [f"record {i:02d}" for i in range(40)]
    target = RingMemory(*build_ring(texts))
    assert texts_of(poll_printk_records(target, open_printk_cursor(target, FACTS))) == texts[25:]
    # ... and following only what comes next prints nothing of it.
    cursor = open_printk_cursor(target, FACTS, from_start=False)
    assert poll_printk_records(target, cursor) == []
    target.write(*build_ring(texts + ["new"]))
    assert texts_of(poll_printk_records(target, cursor)) == ["new"]


def test_an_idle_poll_reads_the_head_not_the_ring():
    texts = [f"record {i:02d}" for i in range(10)]
    target = RingMemory(*build_ring(texts, count_bits=10, size_bits=14))    # 1024 descriptors, 16 KiB of text
    cursor = open_printk_cursor(target, FACTS)
    assert len(poll_printk_records(target, cursor)) == 10
    target.bytes_read = target.reads = 0
    assert poll_printk_records(target, cursor) == []
    # `prb` (4 bytes) and the ring's head_id and tail_id (8 bytes), against 1024 x (12 + 88) + 16384 for the ring.
    assert (target.bytes_read, target.reads) == (12, 2)
    # One new record: its descriptor, info and text, and the ids again to see whether it was overwritten meanwhile.
    target.write(*build_ring(texts + ["eleven"], count_bits=10, size_bits=14))
    target.bytes_read = 0
    assert texts_of(poll_printk_records(target, cursor)) == ["eleven"]
    assert target.bytes_read == 12 + L.desc_size + L.info_size + (4 + 8) + 8


def test_a_record_being_written_waits_for_the_next_poll():
    texts = ["first", "second", "third"]
    memory, ring_at = build_ring(texts)
    data = bytearray(memory.data)
    descs = struct.unpack_from("<I", data, 4)[0] - memory.base
    struct.pack_into("<I", data, descs + 2 * L.desc_size, (DESC_RESERVED << 30) | 2)   # id 2: reserved, not done
    target = RingMemory(Memory(memory.base, data), ring_at)
    cursor = open_printk_cursor(target, FACTS)
    assert texts_of(poll_printk_records(target, cursor)) == ["first", "second"]
    struct.pack_into("<I", data, descs + 2 * L.desc_size, (DESC_FINALIZED << 30) | 2)
    target.write(Memory(memory.base, data), ring_at)
    assert texts_of(poll_printk_records(target, cursor)) == ["third"]


def test_a_moved_ring_is_read_on_from_the_last_record_printed():
    # A kernel that sizes its log buffer at boot copies the records into a new ring and points `prb` at it.
    texts = [f"record {i}" for i in range(8)]
    target = RingMemory(*build_ring(texts[:5]))
    cursor = open_printk_cursor(target, FACTS)
    assert len(poll_printk_records(target, cursor)) == 5
    target.write(*build_ring(texts, count_bits=6, size_bits=10, base=0x10000))
    assert texts_of(poll_printk_records(target, cursor)) == texts[5:]


def test_follow_refuses_a_ram_image(tmp_path):
    image = tmp_path / "ram.bin"
    image.write_bytes(b"\0" * 64)
    result = subprocess.run([sys.executable, "-m", "xipscope", "dmesg", "--follow", "--elf", "vmlinux", "--dump",
                             f"{image}@0x80000000"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "--follow watches a running kernel: give --target URL" in result.stderr


def test_the_pre_5_10_log_buf_is_followed_by_its_seqs():
    # No descriptor ring to watch: each poll reads __log_buf whole and prints the seqs not printed yet.
    def image(first_seq: int, texts: list[str]) -> Memory:
        memory = bytearray(0x400)
        idx = 0x200                                   # past PRB_VAR, which RingMemory answers itself
        for n, text in enumerate(texts):
            raw = text.encode()
            length = -(-(16 + len(raw)) // 4) * 4
            struct.pack_into("<QHHHBB", memory, idx, 1000 * (first_seq + n), length, len(raw), 0, 0, (6 << 5) | 2)
            memory[idx + 16:idx + 16 + len(raw)] = raw
            idx += length
        # log_buf, log_buf_len, log_first_idx, log_next_idx, log_first_seq
        struct.pack_into("<IIIIQ", memory, 0, 0x200, 0x200, 0, idx - 0x200, first_seq)
        return Memory(0, memory)

    facts = KernelLogFacts("log_buf", {"log_buf": 0, "log_buf_len": 4, "log_first_idx": 8, "log_next_idx": 12,
                                       "log_first_seq": 16}, 4, True, None, None)
    texts = [f"line {i}" for i in range(9)]
    target = RingMemory(image(0, texts[:3]), 0)
    cursor = open_printk_cursor(target, facts)
    assert texts_of(poll_printk_records(target, cursor)) == texts[:3]
    assert poll_printk_records(target, cursor) == []
    target.write(image(5, texts[5:]), 0)            # 3 and 4 dropped out of the buffer between the polls
    assert texts_of(poll_printk_records(target, cursor)) == [LostRecords(2)] + texts[5:]
