"""Record a conversation with a real gdbserver, then serve it again: the same bytes to a second client, so two ways of
taking samples (rsp://'s native loop and its Python path) decode exactly the same replies of a real server (the twin's
GDB server, QEMU), whose samples would otherwise differ from run to run.

RecordingProxy forwards between one client and the server on 127.0.0.1 and logs what each side sent, in order.
ReplayServer serves that log to one client: it reads what the client sends, which must be the recorded bytes, and
sends the server's recorded bytes where they came; a client that sends anything else ends the replay (`mismatch`).
"""

from __future__ import annotations

import select
import socket
import threading


class RecordingProxy:
    def __init__(self, port: int):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.log: list[tuple[str, bytes]] = []     # ("client" | "server", bytes), in the order the proxy saw them
        self._server_port = port
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self._server_port))
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with client, server:
            peers = {client: (server, "client"), server: (client, "server")}
            while True:
                for sock in select.select(list(peers), [], [])[0]:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    other, side = peers[sock]
                    self.log.append((side, data))
                    try:
                        other.sendall(data)
                    except OSError:
                        return

    def close(self) -> list[tuple[str, bytes]]:
        """The log, once both sides are done (the client closed)."""
        self._thread.join(30)
        self.listener.close()
        return self.log


class ReplayServer:
    def __init__(self, log: list[tuple[str, bytes]]):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.mismatch: str | None = None
        self._log = log
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock, _ = self.listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        received = b""
        with sock:
            try:
                for side, data in self._log:
                    if side == "server":
                        sock.sendall(data)
                        continue
                    while len(received) < len(data):
                        more = sock.recv(65536)
                        if not more:
                            return
                        received += more
                    if received[:len(data)] != data:
                        self.mismatch = f"the client sent {received[:40]!r}, the recorded one {data[:40]!r}"
                        return
                    received = received[len(data):]
                while sock.recv(65536):     # past the log: wait for the client to close
                    pass
            except OSError:
                return

    def close(self) -> None:
        self._thread.join(30)
        self.listener.close()


def native_and_python_samples(port: int, request, count: int, monkeypatch) -> tuple[list, list]:
    """`count` samples of `request` (back to back) taken from the server on `port` by the native loop through a
    RecordingProxy, then the same replies, served again, taken by the Python path (XIPSCOPE_NATIVE=0): each a list of
    (pc, the 8-byte read as a little-endian int or None)."""
    from xipscope.targets.base import open_sampler
    from xipscope.targets.rsp import RspTarget

    proxy = RecordingProxy(port)
    target = RspTarget("127.0.0.1", proxy.port)
    native: list = []
    try:
        sampler = open_sampler(target, request)
        assert sampler.take_batch is not None, "the native loop did not load (no cc?): nothing would be compared"
        while len(native) < count:
            _, pcs, memory = sampler.take_batch(count - len(native))
            native += zip(pcs, memory)
        sampler.finish()
    finally:
        target.close()
    replay = ReplayServer(proxy.close())
    python: list = []
    with monkeypatch.context() as m:
        m.setenv("XIPSCOPE_NATIVE", "0")
        target = RspTarget("127.0.0.1", replay.port)
        try:
            sampler = open_sampler(target, request)
            assert sampler.take_batch is None
            for _ in range(count):
                sample = sampler.take()
                python.append((sample.registers["pc"],
                               int.from_bytes(sample.memory[0], "little") if sample.memory else None))
            sampler.finish()
        finally:
            target.close()
            replay.close()
    assert replay.mismatch is None, replay.mismatch
    return native, python
