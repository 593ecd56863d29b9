"""rsp:// against gdbservers that lie: each lie ends `xipscope dmesg/trap/profile --timeout 2` with a clear one-line
error and a non-zero exit, no traceback, within the command's time and in bounded memory.

The servers are fakes by necessity: small in-test socket servers on 127.0.0.1 that answer honestly except for one lie
each (bad checksums, an ack flood, a reply that never ends, a 1 MiB reply to a 4-byte read, non-hex registers,
malformed stop replies, a PacketSize or bitsize that is no number, an include without href). No real server lies on
demand. Each command runs in a subprocess with its data segment capped at 512 MiB, and a hang is caught by the
subprocess timeout (generous: it detects a hang, it does not time anything).
"""

from __future__ import annotations

import pytest

from support.lying_rsp import CASES, LyingServer, assert_clear_error, run


@pytest.mark.parametrize("case", CASES)
def test_a_lying_server_ends_in_a_clear_error(case, tmp_path):
    lie, command, pattern = CASES[case]
    server = LyingServer(lie)
    try:
        result = run(command, server, tmp_path)
    finally:
        server.close()
    assert_clear_error(result, command, pattern)
