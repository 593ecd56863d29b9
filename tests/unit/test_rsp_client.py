"""rsp:// against scripted servers that fail on purpose (QEMU's real gdbstub: kernel/test_rsp_client_qemu.py)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import types

import pytest

from xipscope.errors import TargetError
from xipscope.targets import open_target
from xipscope.targets.rsp import ReplyWaitChooser, RspTarget
from xipscope.rsp.packets import PacketParser, Packet, frame


class CostedTakes:
    """A take() for ReplyWaitChooser alone (no server): each sample costs what `cost[way]` says (us) on a clock that
    only these samples move, so the chooser's decisions are exact, not subject to the machine's load."""

    def __init__(self, cost: dict[str, int]):
        self.conn = types.SimpleNamespace(poll_replies=None)
        self.cost = cost
        self.ways: list[str] = []
        self.now = 0

    def clock(self) -> int:
        return self.now

    def take(self) -> str:
        way = "poll" if self.conn.poll_replies else "block"
        self.ways.append(way)
        self.now += self.cost[way] * 1000
        return way


class CostedBatches(CostedTakes):
    """CostedTakes for a batch take (take(k), as rsp://'s native loop): k samples, each costing what its way costs."""

    def __init__(self, cost: dict[str, int]):
        super().__init__(cost)
        self.sizes: list[int] = []

    def take(self, k: int) -> list[str]:
        self.sizes.append(k)
        return [super(CostedBatches, self).take() for _ in range(k)]


def test_the_reply_wait_chooser_measures_batches_in_small_ones():
    """Batches (take(k)) count as k samples; while measuring they are cut to MEASURE_BATCH, so a losing block still
    ends early: at 100 us against 3,000 us a sample, the slow way (blocking, measured first) takes its whole first
    block of 64, and its second ends after one batch of 8, which took longer than a whole block polled."""
    takes = CostedBatches({"block": 3000, "poll": 100})
    chooser = ReplyWaitChooser(takes.take, takes.conn, clock=takes.clock)
    while takes.ways.count("block") < chooser.WARMUP:
        chooser(64)
    assert takes.sizes == [64] * (chooser.WARMUP // 64)
    takes.ways.clear()
    takes.sizes.clear()
    while not chooser.choices:
        chooser(64)
    assert chooser.mode == "poll"
    assert max(takes.sizes[:-1]) == chooser.MEASURE_BATCH
    assert takes.ways[:-8].count("block") == 64 + 8 and takes.ways[:-8].count("poll") == 2 * 64
    assert chooser(64) == ["poll"] * 64      # chosen: whole batches again


def warmed_up(chooser: ReplyWaitChooser, takes: CostedTakes) -> None:
    """Take the chooser's WARMUP samples, which are blocked on and not measured, and forget them."""
    for _ in range(chooser.WARMUP):
        chooser()
    assert takes.ways == ["block"] * chooser.WARMUP and chooser.choices == 0
    takes.ways.clear()


@pytest.mark.parametrize("fast_way", ["block", "poll"])
def test_the_reply_wait_chooser_keeps_the_faster_way(fast_way):
    """After the warm-up, blocks alternate, blocked-on first; a block of the way that is losing ends once it took as
    long as a whole block of the other way: at 100 us against 3,000 us a sample, the slow way's blocks after the
    first end after 3 samples (64 x 100 us is over after the third 3,000 us sample)."""
    slow_way = {"poll": "block", "block": "poll"}[fast_way]
    takes = CostedTakes({fast_way: 100, slow_way: 3000})
    chooser = ReplyWaitChooser(takes.take, takes.conn, clock=takes.clock)
    warmed_up(chooser, takes)
    while not chooser.choices:
        chooser()
    block = chooser.BLOCK
    # block-first order: with the slow way measured first, its 128 samples come before anything is known.
    first_slow = block if slow_way == "block" else 3
    measured, first_chosen = takes.ways[:-1], takes.ways[-1]    # the sample that made the choice went the chosen way
    assert measured.count(fast_way) == 2 * block and measured.count(slow_way) == first_slow + 3
    assert first_chosen == fast_way
    assert [chooser() for _ in range(5)] == [fast_way] * 5 and chooser.mode == fast_way
    described = chooser.describe()
    assert described["replies"] == {"poll": "polled", "block": "blocked on"}[fast_way]
    assert described["us_per_sample"] == {fast_way: 100.0, slow_way: 3000.0}
    assert described["checks"] == 0


def test_the_reply_wait_choice_follows_a_change():
    """Every RECHECK samples one block of each way is measured again: when polling turns slow (the OS put us on the
    server's CPU), the next check finds it and the sampler blocks from then on."""
    takes = CostedTakes({"block": 300, "poll": 100})
    chooser = ReplyWaitChooser(takes.take, takes.conn, clock=takes.clock)
    chooser.RECHECK = 500
    warmed_up(chooser, takes)
    while not chooser.choices:
        chooser()
    assert chooser.mode == "poll"
    takes.cost["poll"] = 2000
    for _ in range(chooser.RECHECK + 2 * chooser.BLOCK):
        chooser()
    assert chooser.mode == "block" and chooser.describe()["checks"] == 1
    assert takes.ways[-5:] == ["block"] * 5


def test_the_reply_wait_choice_weighs_every_block_since_the_last():
    """One fast block of polling after a slow one does not carry the choice: the first polled block costs 1,000 us a
    sample (and ends after 20, having taken as long as a blocked block), the second 100 us; over both, polling costs
    314 us a sample against blocking's 300, so blocking stays."""
    takes = CostedTakes({"block": 300, "poll": 1000})
    chooser = ReplyWaitChooser(takes.take, takes.conn, clock=takes.clock)
    warmed_up(chooser, takes)
    while not chooser.choices:
        if takes.ways.count("poll") == 20:
            takes.cost["poll"] = 100
        chooser()
    assert takes.ways[:-1].count("poll") == 20 + chooser.BLOCK
    assert chooser.mode == "block"


def test_the_reply_wait_can_be_fixed():
    conn = types.SimpleNamespace(poll_replies=None)
    chooser = ReplyWaitChooser(lambda: conn.poll_replies, conn, "poll")
    assert [chooser() for _ in range(3)] == [True] * 3
    assert chooser.describe() == {"replies": "polled", "chosen_by": "request", "us_per_sample": None, "checks": None}


def test_nothing_listening_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TargetError, match=rf"rsp://127.0.0.1:{port}: cannot connect"):
        RspTarget("127.0.0.1", port, timeout=1)


def test_bad_urls():
    with pytest.raises(TargetError, match="names a host and port"):
        open_target("rsp://127.0.0.1")
    with pytest.raises(TargetError, match="unknown target URL"):
        open_target("jtag://x")


# -- scripted servers ------------------------------------------------------------------------------------------------
# A fake, on purpose: it injects faults a real gdbserver can't be made to produce on demand (a socket that dies in the
# middle of a reply, garbage, silence). Everything before the fault is a well-formed exchange.

class ScriptedServer:
    """Answers packets by prefix from `replies`; `fault(sock, payload)` decides when and how to break."""

    def __init__(self, replies: dict[bytes, bytes], fault):
        self.replies = replies
        self.fault = fault
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        parser = PacketParser()
        try:
            conn, _ = self.listener.accept()
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                for item in parser.feed(data):
                    if not isinstance(item, Packet):
                        continue
                    conn.sendall(b"+")
                    if self.fault(conn, item.payload):
                        conn.close()
                        return
                    reply = next((r for p, r in self.replies.items() if item.payload.startswith(p)), b"")
                    conn.sendall(frame(reply))
        except OSError:
            pass

    def close(self):
        self.listener.close()
        self.thread.join(2)


BASIC = {b"qSupported": b"PacketSize=100", b"?": b"S05", b"m": b"00112233", b"D": b"OK"}


@contextlib.contextmanager
def scripted_target(replies: dict[bytes, bytes], fault=lambda conn, payload: False, timeout: float = 2.0,
                    poll_replies: bool = False):
    """An RspTarget connected to a ScriptedServer; both closed afterwards, whatever the test did to them.
    poll_replies: await replies by polling (RspConnection.poll_replies) rather than blocking."""
    server = ScriptedServer(replies, fault)
    target = RspTarget("127.0.0.1", server.port, timeout=timeout)
    target.conn.poll_replies = poll_replies
    try:
        yield target
    finally:
        target.conn.close()
        server.close()


@pytest.mark.parametrize("poll_replies", [False, True], ids=["blocked", "polled"])
def test_socket_dies_mid_reply(poll_replies):
    def fault(conn, payload):
        if payload.startswith(b"m"):
            conn.sendall(b"$0011")   # half a reply, then the server is gone
            return True
    with scripted_target(BASIC, fault, poll_replies=poll_replies) as target:
        with pytest.raises(TargetError, match=r"closed the connection while waiting for 4 bytes of memory at 0x1000"):
            target.read_memory(0x1000, 4)


@pytest.mark.parametrize("poll_replies", [False, True], ids=["blocked", "polled"])
def test_silence_is_a_timeout_naming_what_was_expected(poll_replies):
    silent_on_g = lambda conn, payload: payload.startswith(b"g") and not conn.recv(1)  # noqa: E731
    with scripted_target(BASIC, silent_on_g, timeout=0.5, poll_replies=poll_replies) as target:
        with pytest.raises(TargetError, match=r"no reply within 0.5 s while waiting for the register block"):
            target.read_registers()


def test_malformed_memory_reply():
    with scripted_target({**BASIC, b"m": b"zz"}) as target:
        with pytest.raises(TargetError, match=r"cannot read memory at 0x2000"):
            target.read_memory(0x2000, 1)


def test_no_target_description_falls_back_to_the_riscv_g_layout():
    regs = "".join(f"{i:02x}000000" for i in range(32)) + "78563412"
    with scripted_target({**BASIC, b"g": regs.encode()}) as target:
        values = target.read_registers()
        assert values["ra"] == 1 and values["t6"] == 31 and values["pc"] == 0x12345678
        with pytest.raises(TargetError, match="no register named 'mcause'"):
            target.read_register("mcause")


def test_a_broken_target_description_is_a_clear_error():
    replies = {**BASIC, b"qSupported": b"PacketSize=100;qXfer:features:read+", b"qXfer": b"l<target><reg name="}
    with scripted_target(replies) as target:
        assert target.read_memory(0x1000, 4) == bytes.fromhex("00112233")   # memory needs no description
        with pytest.raises(TargetError, match="target description is not valid XML"):
            target.read_register("pc")
