"""gdb_scripts/xipscope.py in the real gdb-multiarch on the real kernel in QEMU: `xs dmesg`, `xs trap` and `xs snapshot`
against what the xipscope commands print (split from twin/test_gdb_scripts.py: this part boots a kernel)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.gdb_batch import between, gdb_batch


@pytest.mark.kernel
def test_xs_dmesg_equals_xipscope_dmesg(dwarf_qemu):
    elf = dwarf_qemu.build.vmlinux
    cli = subprocess.run([sys.executable, "-m", "xipscope", "dmesg", "--elf", str(elf), "--target", dwarf_qemu.url],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    out = gdb_batch("echo ==begin==\\n", "xs dmesg", "echo ==end==\\n",
                    "echo ==begin-err==\\n", "xs dmesg --level 0-3", "echo ==end-err==\\n", "detach",
                    elf=elf, port=dwarf_qemu.port)
    assert between(out, "==begin==", "==end==") == cli.stdout
    errors = between(out, "==begin-err==", "==end-err==").splitlines()
    assert errors and all(line in cli.stdout.splitlines() for line in errors)
    assert len(errors) < len(cli.stdout.splitlines())


@pytest.mark.kernel
def test_xs_trap_equals_xipscope_trap_after_an_injected_fault(dwarf_kernel, tmp_path):
    """The real kernel in QEMU stopped at handle_exception after a store to unmapped memory (kernel/faults.py):
    `xs trap` reads the same stop through gdb and prints what `xipscope trap` prints over rsp://."""
    from faults import find_instruction, inject_fault
    from qemu import boot_kernel_halted
    from xipscope.elf import load_symbols

    vmlinux = dwarf_kernel.vmlinux
    symbols = load_symbols(vmlinux)
    insn = find_instruction(vmlinux, symbols, "store", "prepare_namespace")
    with boot_kernel_halted(dwarf_kernel, tmp_path) as kernel:
        assert inject_fault(kernel.port, symbols, insn) == 7

        def cli(*extra: str) -> str:
            result = subprocess.run([sys.executable, "-m", "xipscope", "trap", "--target", kernel.url,
                                     "--elf", str(vmlinux), *extra], capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            return result.stdout       # the CLI disconnects without `D`: QEMU stays at the trap vector

        cli_json, cli_auto_json, cli_text = cli("--map", "qemu-virt", "--json"), cli("--json"), cli()
        out = gdb_batch("echo ==json==\\n", "xs trap --json --map qemu-virt", "echo ==auto==\\n", "xs trap --json",
                        "echo ==text==\\n", "xs trap", "echo ==end==\\n", "xs trap --map nosuch",
                        elf=vmlinux, port=kernel.port)
    ours = json.loads(between(out, "==json==", "==auto=="))
    assert ours["mepc"] == insn.address and ours["cause_code"] == 7 and ours["instruction"] == insn.text
    assert ours["source"].startswith("gdb-inferior:")
    assert ours | {"source": kernel.url} == json.loads(cli_json)
    assert json.loads(between(out, "==auto==", "==text==")) | {"source": kernel.url} == json.loads(cli_auto_json)
    assert between(out, "==text==", "==end==") == cli_text
    assert "xs trap: memory map 'nosuch': not a built-in map" in out
    assert "Traceback" not in out and "Python Exception" not in out, out


@pytest.mark.kernel
def test_xs_snapshot_of_the_kernel_gives_the_live_dmesg(dwarf_qemu, tmp_path):
    from xipscope.targets.rsp import RspTarget
    from xipscope.snapshot.read import SnapshotTarget

    elf = dwarf_qemu.build.vmlinux
    snap_dir = tmp_path / "snap"
    out = gdb_batch(f"xs snapshot {snap_dir} --map qemu-virt", elf=elf, port=dwarf_qemu.port, timeout=300)
    assert "xs snapshot: dram: 67108864 bytes from 0x80000000 (probed)" in out, out
    live = subprocess.run([sys.executable, "-m", "xipscope", "dmesg", "--elf", str(elf), "--target", dwarf_qemu.url],
                          capture_output=True, text=True, timeout=120)
    saved = subprocess.run([sys.executable, "-m", "xipscope", "dmesg", "--elf", str(elf), "--target",
                            f"snapshot://{snap_dir}"], capture_output=True, text=True, timeout=120)
    assert live.returncode == 0 and saved.returncode == 0, live.stderr + saved.stderr
    assert saved.stdout == live.stdout and "Kernel panic - not syncing" in saved.stdout
    manifest = json.loads((snap_dir / "manifest.json").read_text())
    assert manifest["complete"] and manifest["elf"]["path"] == str(elf.resolve())
    assert manifest["target_description"] == ["target.xml"]      # gdb's description, numbered as QEMU numbers it
    snap, rsp = SnapshotTarget(snap_dir), RspTarget("127.0.0.1", dwarf_qemu.port)
    try:
        assert sorted((r.name, r.number, r.bits) for r in snap.register_layout) == \
            sorted((r.name, r.number, r.bits) for r in rsp.registers)
        assert len(snap.register_layout) > 200 and snap.read_register("mcause") is not None
    finally:
        snap.close()
        rsp.close()
