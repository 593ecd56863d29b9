"""Files a hostile (or careless) user hands xipscope, each through the real CLI: FIFOs, devices, directories, sparse files
claiming far more than the chip holds, symlinks out of a snapshot or profile directory, damaged manifests and
meta.json, over-wide System.map addresses, absurd UF2 blocks, garbled kernel logs (issue 14).

Every case runs `python -m xipscope ...` in a child with a timeout and its address space capped at 1 GiB, so a
regression shows as a failure (a hang, a MemoryError) rather than as a stuck or swapping machine; and asserts a
non-zero exit with one clear paragraph naming the file or field, and no traceback. The timeouts are generous
ceilings for a loaded machine, not speed measurements: a hang or a quadratic regex blows through them by minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from support.oops_texts import OOPS_61
from xipscope.chip.memory_map import get_memory_map
from xipscope.errors import TargetError
from xipscope.profile.store import SampleWriter, write_meta
from xipscope.snapshot.read import SnapshotTarget
from xipscope.image.uf2 import BLOCK_SIZE, build_uf2

ADDRESS_SPACE_LIMIT = 1 << 30       # the child's RLIMIT_AS: imports (numpy, pandas, pyarrow) fit well under it
TIMEOUT = 120                       # seconds: every command here answers in about one on an idle machine


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


@pytest.fixture()
def run(tmp_path):
    """`run(*args)`: xipscope in a child (cwd tmp_path, its own symbol cache), memory capped, bounded in time."""
    env = dict(os.environ, XIPSCOPE_CACHE=str(tmp_path / "cache"))

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "xipscope", *map(str, args)], capture_output=True, text=True,
                              timeout=TIMEOUT, cwd=tmp_path, env=env, input=stdin, preexec_fn=_limit_memory)
    return run


def refused(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert a non-zero exit with one paragraph of the project's error naming every needle, and no traceback."""
    err = result.stderr
    assert result.returncode == 1, (result.returncode, err[-2000:])
    assert "Traceback" not in err and "MemoryError" not in err, err[-2000:]
    message = err.strip()
    assert message.startswith("xipscope ") and ": error: " in message.splitlines()[0], err
    assert "\n\n" not in message and len(message) < 1500, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# -- crafted files --------------------------------------------------------------------------------------------------

def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def blake2b160(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def make_snapshot(directory: Path, data: bytes = bytes(range(64)), start: int = 0x20000000, name: str = "sram",
                  size: int | None = None) -> Path:
    """A snapshot as `xipscope snapshot` writes one (manifest, rp2350 map, one region file), made by hand."""
    (directory / "regions").mkdir(parents=True)
    (directory / "regions" / f"{name}.bin").write_bytes(data)
    manifest = {"format": "xipscope-snapshot", "version": 1, "complete": True, "error": None,
                "target": "sim://hand-made", "memory_map": get_memory_map("rp2350").to_json(), "elf": None,
                "registers": [], "target_description": [],
                "regions": [{"name": name, "start": start, "size": len(data) if size is None else size,
                             "file": f"regions/{name}.bin", "hash": blake2b160(data)}]}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def edit_manifest(directory: Path, change) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def make_profile(directory: Path, meta: dict | None = None) -> Path:
    writer = SampleWriter(directory)
    for i in range(20):
        writer.add(t_ns=i * 1000, pc=0x10000100 + 4 * (i % 3), halted_ns=100)
    writer.close()
    write_meta(directory, {"target": "rsp://127.0.0.1:1", "map": "rp2350"} if meta is None else meta)
    return directory


# -- snapshots ------------------------------------------------------------------------------------------------------

def test_a_hand_made_snapshot_reads_back(run, tmp_path):
    """The control for the cases below: the snapshot they damage is one xipscope reads."""
    snap = make_snapshot(tmp_path / "snap")
    result = run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16")
    assert result.returncode == 0, result.stderr
    assert "00 01 02 03" in result.stdout.replace("\n", " ").lower() or "00010203" in result.stdout.lower(), \
        result.stdout


def test_snapshot_region_symlinked_out_of_the_directory_is_not_followed(run, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"not yours" * 7 + b"!")          # 64 bytes, so only the symlink check can catch it
    snap = make_snapshot(tmp_path / "snap", data=secret.read_bytes())
    (snap / "regions" / "sram.bin").unlink()
    (snap / "regions" / "sram.bin").symlink_to(secret)
    refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"),
            "regions/sram.bin", "leading out of", str(secret))


def test_snapshot_regions_directory_symlinked_out_is_not_followed(run, tmp_path):
    snap = make_snapshot(tmp_path / "snap")
    elsewhere = tmp_path / "elsewhere"
    (snap / "regions").rename(elsewhere)
    (snap / "regions").symlink_to(elsewhere)
    refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"), "regions/sram.bin", "leading out of")


def test_snapshot_region_fifo_is_refused_not_waited_on(run, tmp_path):
    snap = make_snapshot(tmp_path / "snap")
    (snap / "regions" / "sram.bin").unlink()
    fifo(snap / "regions" / "sram.bin")
    refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"), "regions/sram.bin", "a FIFO")


def test_snapshot_manifest_fifo_and_symlink_out_are_refused(run, tmp_path):
    snap = make_snapshot(tmp_path / "snap")
    (snap / "manifest.json").rename(tmp_path / "manifest.json")
    fifo(snap / "manifest.json")
    refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"), "manifest.json", "a FIFO")
    (snap / "manifest.json").unlink()
    (snap / "manifest.json").symlink_to(tmp_path / "manifest.json")
    refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"), "manifest.json", "leading out of")


def test_sparse_region_claiming_2_40_bytes_is_refused_before_hashing(run, tmp_path):
    snap = make_snapshot(tmp_path / "snap")
    sparse(snap / "regions" / "sram.bin", 1 << 40)      # hashing this would take hours

    def claim(manifest):
        manifest["regions"][0]["size"] = 1 << 40
    edit_manifest(snap, claim)
    refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"),
            "manifest.json", "regions[0].start/size", "32-bit address space", str(1 << 40))


def test_region_larger_than_its_map_window_is_refused(run, tmp_path):
    size = 1 << 20                                       # SRAM is 520 KiB
    snap = make_snapshot(tmp_path / "snap")
    sparse(snap / "regions" / "sram.bin", size)

    def claim(manifest):
        manifest["regions"][0]["size"] = size
    edit_manifest(snap, claim)
    refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"),
            "regions[0].start/size", "inside memory_map's sram (0x20000000..0x20082000)")


@pytest.mark.parametrize("field, value, expected", [
    ("start", "0x20000000", "regions[0].start should be int"),
    ("size", -1, "regions[0].start/size"),
    ("hash", 12, "regions[0].hash should be str"),
    ("file", "/etc/passwd", "regions[0].file should be a path inside the snapshot directory"),
    ("name", "nowhere", "regions[0].name should be the name of a region of memory_map"),
])
def test_manifest_fields_are_checked_with_file_field_and_value(run, tmp_path, field, value, expected):
    snap = make_snapshot(tmp_path / "snap")

    def change(manifest):
        manifest["regions"][0][field] = value
    edit_manifest(snap, change)
    message = refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"), "manifest.json", expected)
    assert repr(value)[:20] in message


def test_memory_map_of_the_manifest_must_fit_the_address_space(run, tmp_path):
    snap = make_snapshot(tmp_path / "snap")

    def widen(manifest):
        manifest["memory_map"]["regions"][-1]["end"] = 1 << 40
    edit_manifest(snap, widen)
    refused(run("dump", "--target", f"snapshot://{snap}", "0x20000000", "16"),
            "memory_map.regions[", "32-bit address space")


def test_target_description_symlinked_out_is_not_served(tmp_path):
    """What `xipscope serve` hands gdb as tdesc/target.xml: never a file outside the snapshot."""
    snap = make_snapshot(tmp_path / "snap")
    (snap / "tdesc").mkdir()
    secret = tmp_path / "secret.xml"
    secret.write_text("<target>not yours</target>")
    (snap / "tdesc" / "target.xml").symlink_to(secret)
    edit_manifest(snap, lambda m: m.update(target_description=["target.xml"]))
    target = SnapshotTarget(snap)
    try:
        with pytest.raises(TargetError, match="leading out of"):
            target.description_file("target.xml")
    finally:
        target.close()


# -- RAM images (--dump) and ELFs -------------------------------------------------------------------------------------

def test_dump_of_a_fifo_or_a_device_is_refused(run, tmp_path):
    refused(run("dump", "--dump", f"{fifo(tmp_path / 'ram.fifo')}@0x20000000", "0x20000000", "16"),
            "ram.fifo", "a RAM image, a regular file; found a FIFO")
    refused(run("dump", "--dump", "/dev/zero@0x20000000", "0x20000000", "16"), "/dev/zero", "a character device")
    refused(run("dump", "--dump", f"{tmp_path}@0x20000000", "0x20000000", "16"), str(tmp_path), "a directory")


def test_dump_past_the_address_space_is_refused(run, tmp_path):
    image = sparse(tmp_path / "ram.bin", 1 << 30)
    refused(run("dump", "--dump", f"{image}@0xd0000000", "0xd0000000", "16"), "ram.bin", "1,073,741,824 bytes")
    refused(run("dump", "--dump", f"{image}@0x100000000", "0xd0000000", "16"), "0x100000000",
            "32-bit address space")


@pytest.mark.parametrize("make, expected", [
    (lambda d: "/dev/zero", "a character device"),
    (lambda d: fifo(d / "vmlinux"), "a FIFO"),
    (lambda d: d, "a directory"),
    (lambda d: sparse(d / "vmlinux", 1 << 30), "larger than 134,217,728 bytes"),
])
def test_elf_that_is_not_a_sane_regular_file_is_refused(run, tmp_path, make, expected):
    ram = tmp_path / "ram.bin"
    ram.write_bytes(bytes(64))
    elf = make(tmp_path)
    refused(run("dump", "--dump", f"{ram}@0x20000000", "--elf", elf, "0x20000000", "16"), str(elf), expected)
    refused(run("trap", "--oops", "-", "--elf", elf, stdin=OOPS_61), str(elf), expected)


@pytest.mark.parametrize("make, expected", [
    (lambda d: "/dev/zero", "a character device"),
    (lambda d: fifo(d / "fw.elf"), "a FIFO"),
])
def test_twin_firmware_that_is_not_a_regular_file_is_refused(run, tmp_path, make, expected):
    firmware = make(tmp_path)
    refused(run("sim", firmware, "--run"), str(firmware), expected)


def test_system_map_address_wider_than_64_bits(run, tmp_path):
    smap = tmp_path / "System.map"
    smap.write_text("80000000 T _start\n1" + "0" * 20 + " T too_wide\n")
    refused(run("trap", "--oops", "-", "--elf", smap, stdin=OOPS_61),
            "System.map:2", "100000000000000000000", "wider than 64 bits")


def test_system_map_too_large_to_be_a_kernels(run, tmp_path):
    smap = tmp_path / "System.map"
    line = b"80000000 T a\n"
    smap.write_bytes(line * ((17 << 20) // len(line)))
    refused(run("trap", "--oops", "-", "--elf", smap, stdin=OOPS_61), "System.map", "larger than 16,777,216 bytes")


# -- flash images ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, expected", [
    (lambda d: "/dev/zero", "a character device"),
    (lambda d: fifo(d / "flash.bin"), "a FIFO"),
    (lambda d: d, "a directory"),
    (lambda d: sparse(d / "flash.bin", 1 << 30), "1,073,741,824 bytes is larger than 16,777,216 bytes"),
    (lambda d: sparse(d / "flash.uf2", 1 << 30), "is larger than 33,554,432 bytes"),
])
def test_image_of_what_is_no_flash_image_is_refused(run, tmp_path, make, expected):
    path = make(tmp_path)
    refused(run("image", path), str(path), expected)


def test_image_placed_past_the_flash_window_is_refused(run, tmp_path):
    image = tmp_path / "flash.bin"
    image.write_bytes(b"\xff" * (9 << 20))
    refused(run("image", f"{image}@0x10800000"), "flash.bin", "run past the 16 MiB flash window")


def test_uf2_with_absurd_block_numbers_is_refused(run, tmp_path):
    blocks = bytearray(build_uf2([(0x10000000, b"\x13" * 512)], "rp2350-riscv"))
    blocks[20:24] = (7).to_bytes(4, "little")            # block 0 says it is number 7 ...
    blocks[24:28] = (2).to_bytes(4, "little")            # ... of 2
    uf2 = tmp_path / "fw.uf2"
    uf2.write_bytes(blocks)
    assert len(blocks) == 2 * BLOCK_SIZE
    refused(run("image", uf2), "fw.uf2", "block 0", "numbered 7 of 2")


# -- profiles and report ----------------------------------------------------------------------------------------------

def test_a_hand_made_profile_reports(run, tmp_path):
    """The control for the cases below (and proof the report fits the child's memory cap)."""
    profile = make_profile(tmp_path / "prof")
    result = run("report", profile)
    assert result.returncode == 0, result.stderr
    assert (profile / "report" / "report.html").is_file()


@pytest.mark.parametrize("meta, expected", [
    (b'{"target": "rsp://\xff\xfe"}', "should be UTF-8 text; found byte 0xff at offset 18"),
    ({"elf": 12345}, "elf should be the path of the ELF that ran (a string), found 12345"),
    ({"elf_sha256": "abc"}, "elf_sha256 should be 64 lower-case hex digits"),
    ({"registers": {"pc": "0x10"}}, "registers should be an object of register names"),
    ({"map": ["rp2350"]}, "map should be a memory map name or TOML path"),
    (b"[" * 100000, "not JSON"),
])
def test_damaged_meta_json_names_the_key(run, tmp_path, meta, expected):
    profile = make_profile(tmp_path / "prof")
    if isinstance(meta, bytes):
        (profile / "meta.json").write_bytes(meta)
    else:
        write_meta(profile, meta)
    refused(run("report", profile), "meta.json", expected)


def test_meta_json_and_parts_that_are_not_regular_files_inside(run, tmp_path):
    profile = make_profile(tmp_path / "prof")
    (profile / "meta.json").rename(tmp_path / "meta.json")
    fifo(profile / "meta.json")
    refused(run("report", profile), "meta.json", "a FIFO")
    (profile / "meta.json").unlink()
    (profile / "meta.json").symlink_to(tmp_path / "meta.json")
    refused(run("report", profile), "meta.json", "leading out of")
    (profile / "meta.json").unlink()
    (tmp_path / "meta.json").rename(profile / "meta.json")

    part = next((profile / "samples").glob("part-*.parquet"))
    part.rename(tmp_path / "part.parquet")
    part.symlink_to(tmp_path / "part.parquet")
    refused(run("report", profile), part.name, "leading out of")
    part.unlink()
    fifo(part)
    refused(run("report", profile), part.name, "a FIFO")


def test_report_is_not_written_through_a_symlink_leaving_the_profile(run, tmp_path):
    profile = make_profile(tmp_path / "prof")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (profile / "report").symlink_to(elsewhere)
    refused(run("report", profile), "prof/report", "leads out of", str(elsewhere))
    assert list(elsewhere.iterdir()) == []


def test_report_is_not_written_through_a_file_symlink_in_its_directory(run, tmp_path):
    profile = make_profile(tmp_path / "prof")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (profile / "report").mkdir()
    (profile / "report" / "summary.json").symlink_to(victim)
    refused(run("report", profile), "summary.json", "symlink leading out of")
    assert victim.read_text() == "keep me"


def test_compare_is_not_written_through_a_file_symlink_in_its_directory(run, tmp_path):
    profile = make_profile(tmp_path / "prof")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "summary.json").symlink_to(victim)
    refused(run("compare", profile, profile, "--out", tmp_path / "cmp"), "summary.json", "symlink leading out of")
    assert victim.read_text() == "keep me"


# -- kernel logs ----------------------------------------------------------------------------------------------------

def test_oops_with_150_kb_lines_decodes(run, tmp_path):
    """A garbled 150 KB line after the panic and in the trace: the two patterns that backtracked quadratically
    (minutes per line) now take linear time, and the oops decodes as without them."""
    pad = " " * 150_000
    log = tmp_path / "console.log"
    log.write_text(OOPS_61 + "Kernel panic - not syncing: x" + pad + "y\n" + "[<80131234>] x" + pad + "y\n")
    smap = tmp_path / "System.map"
    smap.write_text("80001000 T ret_from_exception\n8012c780 T kernel_init\n801311e0 T prepare_namespace\n"
                    "80131400 T rest_init\n")
    result = run("trap", "--oops", log, "--elf", smap, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert (report["cause_code"], report["mepc"], report["function"]) == (7, 0x80131234, "prepare_namespace+0x54")


def test_oops_file_that_is_not_a_regular_file(run, tmp_path):
    smap = tmp_path / "System.map"
    smap.write_text("80000000 T _start\n")
    refused(run("trap", "--oops", "/dev/zero", "--elf", smap), "/dev/zero", "a character device", "--oops -")
    refused(run("trap", "--oops", fifo(tmp_path / "log"), "--elf", smap), "log", "a FIFO")


# -- memory maps ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ('[[region]]\nname = "a"\nstart = "0x10"\nend = 32\nkind = "sram"\n', "region #0: start should be an integer"),
    ('[[region]]\nname = "a"\nstart = 0\nend = 0x10000000000\nkind = "sram"\n', "32-bit address space"),
    ('region = 3\n', "'region' should be an array of [[region]] tables"),
    ('[[region]]\nname = "a"\nstart = 0\nend = 16\nkind = "sram"\n'
     '[[region]]\nname = "a"\nstart = 16\nend = 32\nkind = "sram"\n', "is already taken"),
])
def test_toml_maps_are_checked_field_by_field(run, tmp_path, text, expected):
    board = tmp_path / "board.toml"
    board.write_text(text)
    ram = tmp_path / "ram.bin"
    ram.write_bytes(bytes(64))
    refused(run("dump", "--dump", f"{ram}@0x0", "--map", board, "0x0", "16"), "board.toml", expected)


def test_toml_map_fifo_is_refused(run, tmp_path):
    ram = tmp_path / "ram.bin"
    ram.write_bytes(bytes(64))
    board = fifo(tmp_path / "board.toml")
    refused(run("dump", "--dump", f"{ram}@0x0", "--map", board, "0x0", "16"), "board.toml", "a FIFO")


def test_snapshot_of_a_map_with_a_hostile_region_name_stays_in_its_directory(tmp_path):
    """A user's TOML map may name a region `../../escape`: the writer must not use that as a file name."""
    from xipscope.chip.memory_map import get_memory_map as load_map
    from xipscope.snapshot.take import take_snapshot
    from xipscope.targets import open_target

    board = tmp_path / "board.toml"
    board.write_text('[[region]]\nname = "../../escape"\nstart = 0x20000000\nend = 0x20082000\nkind = "sram"\n')
    target = open_target(f"sim://{Path(__file__).resolve().parents[2] / 'firmware' / 'amofault.elf'}")
    try:
        manifest = take_snapshot(target, tmp_path / "deep" / "snap", load_map(board), sizes={"../../escape": 4096})
    finally:
        target.close()
    assert [r["file"] for r in manifest["regions"]] == ["regions/region-0.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.toml", "deep"]
    snap = SnapshotTarget(tmp_path / "deep" / "snap")
    try:
        assert len(snap.read_memory(0x20000000, 4096)) == 4096
    finally:
        snap.close()
