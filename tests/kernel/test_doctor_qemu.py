"""`xipscope doctor` on the real rv32 Linux kernel in QEMU after its panic (split from twin/test_doctor.py: this part
boots a kernel)."""

from __future__ import annotations

from xipscope.chip.memory_map import get_memory_map
from xipscope.doctor import diagnose
from xipscope.elf.symbols import load_symbols


def text(finding) -> str:
    return "\n".join([finding.title, *finding.evidence, finding.advice])


def test_names_the_panic_loop_on_the_qemu_kernel(dwarf_qemu, dwarf_kernel):
    from xipscope.targets import open_target

    t = open_target(dwarf_qemu.url)
    try:
        d = diagnose(t, load_symbols(dwarf_kernel.vmlinux), get_memory_map("qemu-virt"))
    finally:
        t.close()
    assert [f.id for f in d.findings] == ["panic-loop"]
    body = text(d.findings[0])
    # The halt may land in the delay loop or in the timer interrupt's entry; either way the frame chain runs
    # through panic() (called from mount_block_root: no root fs), and the samples sit in the delay loop.
    chain = next(line for line in body.splitlines() if line.startswith("call chain (frame pointers): "))
    assert " <- panic <- mount_block_root <- " in chain
    assert "__delay" in next(line for line in body.splitlines() if line.startswith("PC samples in: "))
    assert d.findings[0].title == "the kernel panicked: the core spins in panic()'s delay loop"
    assert any("qemu-virt map has no QMI" in n for n in d.evidence.notes)
    assert not any("QMI" in c or "XIP cache" in c for c in d.checked)
