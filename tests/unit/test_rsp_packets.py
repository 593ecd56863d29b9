"""GDB remote protocol framing, on examples from gdb's manual ("Remote Protocol": Overview, Binary Data)."""

from hypothesis import given, strategies as st

from xipscope.rsp.packets import (Packet, PacketParser, checksum, decode_payload, escape_binary, frame)


def test_frame_and_checksum():
    assert checksum(b"OK") == 0x9A
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"") == b"$#00"
    assert frame(b"qSupported") == b"$qSupported#37"


def test_run_length_decoding_from_the_manual():
    # "0* " means the same thing as "0000": ' ' is 32, so the '0' repeats 32 - 29 = 3 more times.
    assert decode_payload(b"0* ") == b"0000"
    assert decode_payload(b"ab*\"c") == b"ab" + b"b" * 5 + b"c"


def test_escapes_round_trip_the_bytes_that_must_be_escaped():
    data = b"a#b$c}d*e"
    escaped = escape_binary(data)
    assert escaped == b"a}\x03b}\x04c}]d}\ne"
    assert decode_payload(escaped) == data


@given(st.binary(max_size=1000))
def test_checksum_is_the_byte_sum_modulo_256(data):
    assert checksum(data) == sum(data) % 256     # Adler-32 in 256-byte pieces: the sums stay exact, 0xff bytes too
    for size in (257, 264, 512, 513):    # the two-piece path of a `g` reply, and past it
        assert checksum(b"\xff" * size) == (size * 255) % 256


@given(st.binary(max_size=300))
def test_escape_then_decode_is_identity(data):
    assert decode_payload(escape_binary(data)) == data


def test_parser_handles_split_packets_acks_and_interrupts():
    parser = PacketParser()
    assert parser.feed(b"+$O") == [b"+"]
    assert parser.pending == 2
    items = parser.feed(b"K#9a\x03-$E01#a6")
    assert items == [Packet(b"OK", True), b"\x03", b"-", Packet(b"E01", True)]
    assert parser.feed(b"$OK#00") == [Packet(b"OK", False)]   # wrong checksum is reported, not dropped


@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(1, 7))
def test_parser_reassembles_any_split(payloads, step):
    stream = b"".join(frame(escape_binary(p)) for p in payloads)
    parser = PacketParser()
    got = []
    for i in range(0, len(stream), step):
        got += parser.feed(stream[i:i + step])
    assert [decode_payload(p.payload) for p in got] == payloads
    assert all(p.checksum_ok for p in got)
