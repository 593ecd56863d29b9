"""Lay records out in memory the way kernel/printk/printk_ringbuffer.c does (32-bit), for decoder tests.

Not a stand-in for the kernel (the QEMU tests read real rings): it builds the corner cases a boot may not hit on
demand, e.g. a data block that would end exactly on the ring boundary and so is stored at the ring's start.
"""

from __future__ import annotations

import struct

from xipscope.linux.printk import DESC_FINALIZED, builtin_layout

L = builtin_layout(4)


class Memory:
    """A flat byte image at `base`, with the read_memory of a Target."""

    def __init__(self, base: int, data: bytes):
        self.base, self.data = base, bytes(data)

    def read_memory(self, address: int, size: int) -> bytes:
        from xipscope.errors import TargetError
        if address < self.base or address + size > self.base + len(self.data) or size < 0:
            raise TargetError(f"read of {size} at {address:#x} outside the image")
        return self.data[address - self.base:address - self.base + size]


def build_ring(texts: list[str], count_bits: int = 4, size_bits: int = 8, first_lpos: int = 0,
               first_id: int = 0, base: int = 0x1000) -> tuple[Memory, int]:
    """(memory, address of struct printk_ringbuffer) holding `texts` as finalized records, oldest first.

    Only as many records as fit stay valid, as in the kernel: older ones fall behind the tail.
    """
    count, size = 1 << count_bits, 1 << size_bits
    ring_at, descs_at = base, base + 64
    infos_at = descs_at + count * L.desc_size
    data_at = infos_at + count * L.info_size
    mem = bytearray(data_at + size - base)
    lpos, ident = first_lpos, first_id
    blocks = []   # (id, begin, next)
    for n, text in enumerate(texts):
        raw = text.encode()
        block = (4 + len(raw) + 3) & ~3
        begin, nxt = lpos, lpos + block
        if begin >> size_bits != nxt >> size_bits:          # get_next_lpos(): wrapping blocks start the ring
            nxt = ((nxt >> size_bits) << size_bits) + block
        start = 0 if nxt - begin != block else begin & (size - 1)
        d = data_at - base + start
        mem[d:d + 4] = struct.pack("<I", ident)
        mem[d + 4:d + 4 + len(raw)] = raw
        index = ident & (count - 1)
        dp = descs_at - base + index * L.desc_size
        mem[dp:dp + 12] = struct.pack("<III", (DESC_FINALIZED << 30) | ident, begin & 0xFFFFFFFF, nxt & 0xFFFFFFFF)
        ip = infos_at - base + index * L.info_size
        mem[ip:ip + 24] = struct.pack("<QQHBBI", n, 1_000_000 * n, len(raw), 0, (6 << 5) | 2, n)
        blocks.append((ident, begin, nxt))
        lpos, ident = nxt, (ident + 1) & 0x3FFFFFFF
    # the tail is the oldest record whose block still lies within one ring size of the head
    head_id = blocks[-1][0]
    alive = [b for b in blocks if lpos - b[1] <= size][-count:]
    tail_id = alive[0][0]
    mem[0:44] = struct.pack("<11I", count_bits, descs_at, infos_at, head_id, tail_id, head_id,
                            size_bits, data_at, lpos & 0xFFFFFFFF, alive[0][1] & 0xFFFFFFFF, 0)
    return Memory(base, mem), ring_at
