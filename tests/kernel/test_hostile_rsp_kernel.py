"""`xipscope dmesg` against gdbservers that lie (fakes by necessity: see support/lying_rsp.py), with the built kernel's
System.map (split from unit/test_hostile_rsp.py: this part builds a kernel)."""

from __future__ import annotations

import pytest

from support.lying_rsp import CASES, LyingServer, assert_clear_error, run


@pytest.mark.kernel
@pytest.mark.parametrize("case, pattern", [
    ("bad checksums", r"a packet with a bad checksum 4 times"),
    ("ack flood", r"no reply within 2 s \(only acks and interrupts\)"),
    ("a 1 MiB reply to an 8-byte read", r"a packet longer than a reply can be .* while waiting for \d+ bytes of memory"),
    ("a reply longer than asked", r"the reply to a read of \d+ bytes at 0x[0-9a-f]+ is \d+ characters .*at most \d+ "
                                  r"can be data"),
])
def test_dmesg_meets_the_same_lies(case, pattern, dwarf_kernel, tmp_path):
    """dmesg reads memory only (`m`, through read_memory): the same lies end it as clearly."""
    server = LyingServer(CASES[case][0])
    try:
        result = run("dmesg", server, tmp_path, "--elf", str(dwarf_kernel.system_map))
    finally:
        server.close()
    assert_clear_error(result, "dmesg", pattern)
