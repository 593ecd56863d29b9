"""Snapshots of the RP2350 twin (a model), read back through snapshot://, served to gdb, and damaged on purpose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.servers import twin_gdb_server, xipscope_server
from xipscope.chip.memory_map import get_memory_map
from xipscope.errors import FormatError, TargetError, XipscopeError
from xipscope.snapshot.take import BLOCK, take_snapshot
from xipscope.targets import open_target
from xipscope.snapshot.read import SnapshotTarget

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware"
RP2350 = get_memory_map("rp2350")
SRAM, PSRAM, FLASH = RP2350["sram"], RP2350["psram"], RP2350["flash"]
TWIN_PSRAM = 8 << 20      # the twin backs 8 MiB of the 16 MiB PSRAM window, as on a Pico Plus 2


def xipscope(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xipscope", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def amofault(tmp_path_factory):
    """amofault.elf run on the twin until it parked after its mcause-7 trap, and a snapshot of it (flash too)."""
    target = open_target(f"sim://{FIRMWARE / 'amofault.elf'}")
    assert target.run(1_000_000).reason == "idle"
    out = tmp_path_factory.mktemp("snap") / "amofault"
    manifest = take_snapshot(target, out, RP2350, elf=FIRMWARE / "amofault.elf", include_flash=True)
    yield target, out, manifest
    target.close()


def test_twin_snapshot_saves_sram_psram_flash_and_registers(amofault):
    live, out, manifest = amofault
    assert manifest["complete"] and manifest["error"] is None
    regions = {r["name"]: r for r in manifest["regions"]}
    assert set(regions) == {"sram", "psram", "flash"}          # one alias each: no psram-nocache copy
    assert (regions["sram"]["start"], regions["sram"]["size"], regions["sram"]["extent"]) == (SRAM.start, SRAM.size, "map")
    assert (regions["psram"]["size"], regions["psram"]["extent"]) == (TWIN_PSRAM, "probed")
    assert regions["flash"]["size"] == FLASH.size
    assert manifest["memory_map"]["name"] == "rp2350"
    from xipscope.disk_cache import content_hash
    assert manifest["elf"]["hash"] == content_hash(FIRMWARE / "amofault.elf")

    snap = SnapshotTarget(out)
    try:
        assert snap.state() == "halted"
        assert snap.read_registers() == live.read_registers()
        # what `xipscope trap` needs from a snapshot: the trap CSRs, as the twin took the AMO fault in PSRAM
        assert snap.read_register("mcause") == 7 and snap.read_register("mtval") == 0
        epc = snap.read_register("mepc")
        assert epc == live.read_register("mepc") and FLASH.start <= epc < FLASH.end
        assert snap.read_register("mstatus") == live.read_register("mstatus")
        assert snap.read_register("s0") == snap.read_register("fp") == snap.read_register("x8")
        for region, size in ((SRAM, SRAM.size), (PSRAM, TWIN_PSRAM), (FLASH, FLASH.size)):
            assert snap.read_memory(region.start, size) == live.read_memory(region.start, size), region.name
        lock = live.machine.elf.symbol("psram_lock")
        assert snap.read_memory(lock, 4) == live.read_memory(lock, 4)
        assert snap.read_memory(epc, 4) == live.read_memory(epc, 4)   # the faulting instruction, from saved flash
    finally:
        snap.close()


@pytest.mark.parametrize("address,size", [
    (SRAM.end, 4),                      # just past SRAM
    (SRAM.end - 2, 4),                  # runs off the end of SRAM
    (PSRAM.start + TWIN_PSRAM, 4),      # the part of the PSRAM window the board does not have
    (0x14000000, 4),                    # an uncached alias of saved PSRAM is not saved memory
    (0x40070000, 4),                    # a peripheral
    (0, 1),
])
def test_reads_outside_the_saved_regions_fail(amofault, address, size):
    snap = SnapshotTarget(amofault[1])
    try:
        with pytest.raises(TargetError, match="outside the memory this snapshot saved"):
            snap.read_memory(address, size)
    finally:
        snap.close()


def test_snapshot_cli_on_the_twin_without_and_with_flash(tmp_path):
    elf = FIRMWARE / "xipbench.elf"
    result = xipscope("snapshot", "--target", f"sim://{elf}", "--out", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert [(r["name"], r["start"], r["size"]) for r in manifest["regions"]] == [
        ("psram", PSRAM.start, TWIN_PSRAM), ("sram", SRAM.start, SRAM.size)]
    assert manifest["complete"] and manifest["target"] == f"sim://{elf}"
    names = [r["name"] for r in manifest["registers"]]
    assert {"pc", "sp", "ra", "mcause", "mepc", "mstatus", "mtval"} <= set(names)
    snap = SnapshotTarget(tmp_path / "a")
    try:
        with pytest.raises(TargetError):
            snap.read_memory(FLASH.start, 4)          # flash only on request
        assert snap.read_register("pc") == snap.read_registers()["pc"]
    finally:
        snap.close()

    result = xipscope("snapshot", "--target", f"sim://{elf}", "--out", str(tmp_path / "b"), "--flash",
                      "--size", "psram=64K")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    regions = {r["name"]: (r["size"], r["extent"]) for r in manifest["regions"]}
    assert regions == {"flash": (FLASH.size, "map"), "psram": (64 << 10, "given"), "sram": (SRAM.size, "map")}
    from xipscope.elf.program import ElfImage
    image = ElfImage(elf)
    snap = SnapshotTarget(tmp_path / "b")
    try:
        assert snap.read_memory(image.entry, 16) == open_target(f"sim://{elf}").read_memory(image.entry, 16)
    finally:
        snap.close()

    again = xipscope("snapshot", "--target", f"sim://{elf}", "--out", str(tmp_path / "b"))
    assert again.returncode == 1 and "not an empty directory" in again.stderr and "Traceback" not in again.stderr


def test_unknown_region_size_is_refused_before_touching_the_target(tmp_path):
    result = xipscope("snapshot", "--target", "rsp://127.0.0.1:1", "--out", str(tmp_path / "x"),
                      "--size", "dram=64M")
    assert result.returncode == 1 and "not a region this snapshot saves" in result.stderr, result.stderr


# -- the served snapshot -----------------------------------------------------------------------------------------------

@pytest.fixture()
def served(amofault):
    with xipscope_server("serve", amofault[1], "--port", "0") as port:
        yield port


def test_served_twin_snapshot_answers_our_client_and_gdb(amofault, served):
    live = amofault[0]
    client = open_target(f"rsp://127.0.0.1:{served}")
    try:
        assert client.state() == "halted"
        for name in ("pc", "sp", "ra", "mcause", "mepc", "mstatus", "mtval", "mvendorid"):
            assert client.read_register(name) == live.read_register(name), name
        assert client.read_memory(SRAM.start, 4096) == live.read_memory(SRAM.start, 4096)
        assert client.read_memory(PSRAM.start, 64 << 10) == live.read_memory(PSRAM.start, 64 << 10)
        with pytest.raises(TargetError):
            client.read_memory(SRAM.end, 4)
        with pytest.raises(TargetError, match="memory ends at"):
            client.read_memory(SRAM.end - 8, 16)     # the served part stops where the saved region does
    finally:
        client.close()

    exe = shutil.which("gdb-multiarch")
    assert exe, "gdb-multiarch is needed: apt-get install gdb-multiarch"
    out = subprocess.run([exe, "-nx", "-batch", "-ex", "set confirm off", "-ex", f"target remote 127.0.0.1:{served}",
                          "-ex", "p/x $mcause", "-ex", "p/x $mepc", "-ex", "info symbol $mepc",
                          "-ex", f"x/wx {SRAM.end:#x}", "-ex", "stepi", "-ex", "p/x $pc", "-ex", "detach",
                          str(FIRMWARE / "amofault.elf")], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    values = re.findall(r"^\$\d+ = (0x[0-9a-f]+)", text, re.M)
    assert values == ["0x7", hex(live.read_register("mepc")), hex(live.read_register("pc"))], text
    assert "spin_lock" in text and "Cannot access memory at address 0x20082000" in text, text


# -- damage: fuzzed manifests, truncated files, a target that dies -----------------------------------------------------

@pytest.fixture(scope="module")
def small_snapshot(tmp_path_factory):
    """A small complete snapshot (PSRAM bounded to 64 KiB) to damage."""
    target = open_target(f"sim://{FIRMWARE / 'amofault.elf'}")
    target.run(1_000_000)
    out = tmp_path_factory.mktemp("small") / "snap"
    take_snapshot(target, out, RP2350, sizes={"psram": 64 << 10})
    target.close()
    return out


def _paths(value, prefix=()):
    """Every key/index path in a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _mutate(document, path, new_value, delete):
    if not path:
        return new_value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new_value
    return document


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_manifests_give_clear_errors(small_snapshot, tmp_path_factory, data):
    original = json.loads((small_snapshot / "manifest.json").read_text())
    paths = list(_paths(original))
    path = data.draw(st.sampled_from(paths))
    delete = bool(path) and data.draw(st.booleans())
    manifest = _mutate(json.loads(json.dumps(original)), path, data.draw(json_values), delete)
    work = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(small_snapshot, work, dirs_exist_ok=True)
    (work / "manifest.json").write_text(json.dumps(manifest))
    try:
        snap = SnapshotTarget(work)
    except (FormatError, TargetError) as e:
        assert str(e)
        return
    try:   # a mutation the checks accept must still give a working target
        snap.read_registers()
        snap.memory_map()
        for region in snap.regions:
            if region.size:
                snap.read_memory(region.start, min(region.size, 64))
    except XipscopeError:
        pass
    finally:
        snap.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_garbage_manifests_give_clear_errors(small_snapshot, tmp_path_factory, raw):
    work = tmp_path_factory.mktemp("garbage")
    shutil.copytree(small_snapshot, work, dirs_exist_ok=True)
    (work / "manifest.json").write_bytes(raw)
    with pytest.raises((FormatError, TargetError)):
        SnapshotTarget(work)


def test_damaged_snapshots_are_refused_without_a_traceback(small_snapshot, tmp_path):
    cases = {
        "truncated": (lambda d: (d / "regions" / "psram.bin").write_bytes(
            (d / "regions" / "psram.bin").read_bytes()[:1000]), "holds 1000 bytes, the manifest says 65536"),
        "changed": (lambda d: (d / "regions" / "sram.bin").write_bytes(
            b"\x01" + (d / "regions" / "sram.bin").read_bytes()[1:]), "does not match the hash"),
        "missing": (lambda d: (d / "regions" / "sram.bin").unlink(), "cannot be read"),
        "nested": (lambda d: (d / "manifest.json").write_text("[" * 100000), "not valid JSON"),
        "escape": (lambda d: (d / "manifest.json").write_text((d / "manifest.json").read_text().replace(
            '"regions/sram.bin"', '"../../etc/passwd"')), "a path inside the snapshot directory"),
        "no manifest": (lambda d: (d / "manifest.json").unlink(), "not a snapshot directory"),
    }
    for name, (damage, message) in cases.items():
        work = tmp_path / name.replace(" ", "-")
        shutil.copytree(small_snapshot, work)
        damage(work)
        with pytest.raises(XipscopeError, match=re.escape(message)):
            SnapshotTarget(work)
        result = xipscope("serve", str(work), "--port", "0", timeout=30)
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


class DiesOnTheNthBulkRead:
    """The twin, with a fault injected: the Nth large read_memory fails as if the probe's link dropped.
    A fake only for this: the real part can't be made to vanish on demand at a chosen read."""

    def __init__(self, target, n):
        self.target, self.n, self.url = target, n, target.url

    def read_memory(self, address, size):
        if size > 1:
            self.n -= 1
            if self.n == 0:
                raise TargetError(f"{self.url}: the server closed the connection while waiting for memory")
        return self.target.read_memory(address, size)

    def __getattr__(self, name):
        return getattr(self.target, name)


def test_a_target_that_dies_mid_snapshot_leaves_a_partial_snapshot(tmp_path):
    live = open_target(f"sim://{FIRMWARE / 'amofault.elf'}")
    live.run(1_000_000)
    out = tmp_path / "partial"
    with pytest.raises(TargetError, match="partial") as info:
        take_snapshot(DiesOnTheNthBulkRead(live, 3), out, RP2350, include_flash=True)
    assert "the server closed the connection" in str(info.value)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is False and "closed the connection" in manifest["error"]
    assert [(r["name"], r["size"], r["partial"]) for r in manifest["regions"]] == [
        ("flash", 2 * BLOCK, True)]        # two blocks read, the third failed
    snap = SnapshotTarget(out)             # what was saved is still readable, and says it is partial
    try:
        assert not snap.complete
        assert snap.read_registers() == live.read_registers()
        assert snap.read_memory(FLASH.start, 2 * BLOCK) == live.read_memory(FLASH.start, 2 * BLOCK)
        with pytest.raises(TargetError):
            snap.read_memory(FLASH.start + 2 * BLOCK, 4)
        with pytest.raises(TargetError):
            snap.read_memory(SRAM.start, 4)
    finally:
        snap.close()
        live.close()


def test_snapshot_keeps_its_memory_map_and_elf(amofault):
    snap = SnapshotTarget(amofault[1])
    try:
        saved_map = snap.memory_map()
        assert saved_map.to_json() == RP2350.to_json()
        assert saved_map.region_name(snap.read_register("mepc")) == "flash"
        assert saved_map.region_name(PSRAM.start + 0x10) == "psram"
        assert snap.elf["path"] == str((FIRMWARE / "amofault.elf").resolve())
    finally:
        snap.close()


def test_a_running_twin_is_halted_for_the_snapshot_and_resumed(tmp_path):
    live = open_target(f"sim://{FIRMWARE / 'xipbench.elf'}")
    try:
        live.resume()
        assert live.state() == "running"
        deadline = time.monotonic() + 30
        while live.read_register("pc") == live.machine.elf.entry and time.monotonic() < deadline:
            time.sleep(0.01)   # until the run thread has taken its first slice
        manifest = take_snapshot(live, tmp_path / "s", RP2350, sizes={"psram": 4096})
        assert manifest["complete"]
        assert live.state() == "running"
        live.halt()
        pc = {r["name"]: r["value"] for r in manifest["registers"]}["pc"]
        assert FLASH.start <= pc < FLASH.end and pc != live.machine.elf.entry   # it ran before it was halted
    finally:
        live.close()


class GoneAfterTheRegisters(DiesOnTheNthBulkRead):
    """The twin, with a fault injected: after its registers were read it answers nothing (a fake, as above)."""

    def __init__(self, target):
        super().__init__(target, 0)

    def read_memory(self, address, size):
        raise TargetError(f"{self.url}: the server closed the connection while waiting for memory")

    def read_register(self, name):
        raise TargetError(f"{self.url}: the server closed the connection while waiting for {name}")


def test_a_target_gone_while_probing_is_not_taken_for_absent_memory(tmp_path):
    live = open_target(f"sim://{FIRMWARE / 'amofault.elf'}")
    try:
        with pytest.raises(TargetError, match="stopped answering while the memory at 0x11000000 was being probed"):
            take_snapshot(GoneAfterTheRegisters(live), tmp_path / "s", RP2350)
        manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
        assert manifest["complete"] is False and manifest["regions"] == [] and len(manifest["registers"]) == 50
    finally:
        live.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(st.sampled_from(["m", "p", "g", "qXfer:features:read:", "qSupported", "Z0,", "c", "?", "H",
                                          "qRcmd,", "vCont?", "X", "M"]).flatmap(
    lambda head: st.text(alphabet="0123456789abcdefxyz,:;-.", max_size=20).map(lambda tail: head + tail)),
    min_size=1, max_size=8))
def test_served_snapshot_survives_malformed_packets(small_snapshot, payloads):
    import socket
    import threading

    from xipscope.rsp.packets import PacketParser, frame
    from xipscope.snapshot.serve import SnapshotServer

    snap = SnapshotTarget(small_snapshot)
    server = SnapshotServer(snap)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            parser = PacketParser()

            def ask(payload: str) -> bytes:
                conn.sendall(frame(payload.encode()))
                while True:
                    items = [i for i in parser.feed(conn.recv(65536)) if not isinstance(i, bytes)]
                    if items:
                        return items[-1].payload

            for payload in payloads:
                if payload[:1] not in ("D", "k"):
                    ask(payload)          # any answer: an error code, an empty reply, data
            assert ask("?") == b"S05"     # ... and the session still works
            assert ask(f"m{SRAM.start:x},4") == snap.read_memory(SRAM.start, 4).hex().encode()
    finally:
        server.close()
        thread.join(timeout=10)
        assert not thread.is_alive()
        snap.close()


def test_snapshot_of_the_twin_through_its_gdb_server(tmp_path):
    """rsp:// in no-ack mode with pipelined reads, and a target description the snapshot keeps verbatim."""
    elf = FIRMWARE / "amofault.elf"
    with twin_gdb_server(elf) as port:
        result = xipscope("snapshot", "--target", f"rsp://127.0.0.1:{port}", "--out", str(tmp_path / "s"),
                          "--size", "psram=1M")
        assert result.returncode == 0, result.stderr
        live = open_target(f"rsp://127.0.0.1:{port}")
        snap = SnapshotTarget(tmp_path / "s")
        try:
            assert snap.manifest["target_description"] == ["target.xml"]
            layout = live.registers            # reads the twin's target.xml
            assert snap.description_file("target.xml") == live.description_files["target.xml"]
            assert [(r.name, r.number) for r in snap.register_layout] == [(r.name, r.number) for r in layout]
            for reg in layout:
                assert snap.read_register(reg.name) == live.read_register(reg.name), reg.name
            assert snap.read_memory(SRAM.start, SRAM.size) == live.read_memory(SRAM.start, SRAM.size)
            assert snap.read_memory(PSRAM.start, 1 << 20) == live.read_memory(PSRAM.start, 1 << 20)
        finally:
            snap.close()
            live.close()
