#!/usr/bin/env python3
"""Build the rv32 nommu Linux test kernels from Debian's kernel source packages, cached by a hash of their inputs.

    python3 kernel/build.py dwarf nodwarf-wrap     # builds what is missing, prints one result dir per variant

The QEMU kernels (dwarf, nodwarf-wrap) are Linux 6.1 (linux-source-6.1): nommu_virt_defconfig + 32-bit.config +
common.config + <variant>.config, for qemu-system-riscv32 -M virt.
The RP2350 kernels (pico2, pico2-stock) are Linux 6.12 (linux-source-6.12) with our patches in patches/pico2/, each
guarded by a Kconfig option of ours: tinyconfig + 32-bit.config + pico2.config (+ pico2-stock.config, which turns the
atomics patches off), plus a device tree (dts/pico2.dts compiled with dtc to pico2.dtb). Configured like the real
ports (linux-on-rp2350.md): rv32ima without C, nommu M-mode, RAM at 0x11000000, earlycon on the PL011.

Results (Image, vmlinux, System.map, .config, and pico2.dtb for the RP2350 kernels) land in
$XIPSCOPE_CACHE/kernel/<variant>-<key>/ (default ~/.cache/xipscope); the key hashes the source tarball, the patches,
the fragments, the Kconfig fix-ups and make targets below, the device tree and the compiler (and dtc) version, so a
second run on the same machine builds nothing. The build tree stays in .../kernel-build/ for `make scripts_gdb` (the
lx-dmesg benchmark). Each patched source tree is extracted on its own, keyed by the tarball and every patch.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CROSS = "riscv64-linux-gnu-"
PRODUCTS = ("Image", "vmlinux", "System.map", ".config")
DTB = "pico2.dtb"
RECIPE = "1"   # bump when a change here changes what gets built

# 6.1 can't configure a 32-bit M-mode kernel as shipped (later kernels fixed both upstream):
# ARCH_RV32I forces MMU on, and PAGE_OFFSET has no !MMU default for 32-bit.
KCONFIG_FIXUPS = (
    ("arch/riscv/Kconfig",
     "\tselect GENERIC_LIB_UCMPDI2\n\tselect MMU\n\nconfig ARCH_RV64I",
     "\tselect GENERIC_LIB_UCMPDI2\n\nconfig ARCH_RV64I"),
    ("arch/riscv/Kconfig",
     "\tdefault 0xC0000000 if 32BIT\n\tdefault 0x80000000 if 64BIT && !MMU",
     "\tdefault 0x80000000 if !MMU\n\tdefault 0xC0000000 if 32BIT"),
)


@dataclass(frozen=True)
class Source:
    """A Debian kernel source tarball, and what is done to it once extracted (fix-ups, then patches in order)."""
    name: str
    fixups: tuple = ()
    patches: tuple[Path, ...] = ()

    @property
    def tarball(self) -> Path:
        return Path(f"/usr/src/{self.name}.tar.xz")


@dataclass(frozen=True)
class Variant:
    name: str
    source: Source
    base: str                    # the make target that writes the starting .config
    fragments: tuple[str, ...]   # files in kernel/, laid over base + 32-bit.config in this order (later ones win)
    targets: tuple[str, ...]
    dts: Path | None = None      # compiled to DTB beside the kernel


LINUX_6_1 = Source("linux-source-6.1", KCONFIG_FIXUPS)
# 6.12 configures a 32-bit M-mode kernel as shipped; what the RP2350 needs beyond that is in our patches.
LINUX_6_12_PICO2 = Source("linux-source-6.12", (), tuple(sorted((HERE / "patches" / "pico2").glob("*.patch"))))
PICO2_DTS = HERE / "dts" / "pico2.dts"

VARIANTS = {v.name: v for v in (
    Variant("dwarf", LINUX_6_1, "nommu_virt_defconfig", ("common.config", "dwarf.config"),
            ("Image", "vmlinux", "scripts_gdb")),
    Variant("nodwarf-wrap", LINUX_6_1, "nommu_virt_defconfig", ("common.config", "nodwarf-wrap.config"),
            ("Image", "vmlinux")),
    Variant("pico2", LINUX_6_12_PICO2, "tinyconfig", ("pico2.config",), ("Image", "vmlinux"), PICO2_DTS),
    Variant("pico2-stock", LINUX_6_12_PICO2, "tinyconfig", ("pico2.config", "pico2-stock.config"),
            ("Image", "vmlinux"), PICO2_DTS),
)}


def cache_root() -> Path:
    # The same rule as xipscope.disk_cache.cache_root; repeated because this script runs on the system python3, before
    # (and without) the package being installed.
    return Path(os.environ.get("XIPSCOPE_CACHE") or Path.home() / ".cache" / "xipscope")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tarball_digest(source: Source) -> str:
    """The tarball's hash, remembered beside its size and mtime so we hash 140 MB once per install."""
    if not source.tarball.exists():
        raise SystemExit(f"{source.tarball} not found: install the Debian package {source.name} (make deps)")
    st = source.tarball.stat()
    memo = cache_root() / "kernel-src" / f"tarball-{st.st_size}-{int(st.st_mtime)}.sha256"
    if memo.exists():
        return memo.read_text().strip()
    digest = file_sha256(source.tarball)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(digest + "\n")
    return digest


def compiler_version() -> str:
    return subprocess.run([CROSS + "gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def dtc_version() -> str:
    return subprocess.run(["dtc", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def variant_key(variant: Variant, source_digest: str) -> str:
    """Hash of everything that shapes the products (not of this script, so tidying it doesn't force a rebuild)."""
    h = hashlib.sha256()
    for part in (RECIPE, source_digest, compiler_version(), repr(variant.source.fixups), repr(list(variant.targets))):
        h.update(part.encode())
    for name in variant.fragments:
        h.update((HERE / name).read_bytes())
    # Parts the QEMU kernels never had are hashed only where present, so those kernels keep their keys and caches.
    if variant.source.patches:
        h.update(tree_key(variant.source, source_digest).encode())
    if variant.base != "nommu_virt_defconfig":
        h.update(variant.base.encode())
    if variant.dts:
        h.update(variant.dts.read_bytes())
        h.update(dtc_version().encode())
    return h.hexdigest()[:16]


def tree_key(source: Source, source_digest: str) -> str:
    """Names a source tree: the tarball, and for a patched tree every patch, so each patch set gets a tree of its own."""
    if not source.patches:
        return source_digest   # the unpatched 6.1 tree keeps the name it always had
    h = hashlib.sha256(source_digest.encode())
    h.update(repr(source.fixups).encode())
    for patch in source.patches:
        h.update(patch.name.encode())
        h.update(patch.read_bytes())
    return h.hexdigest()


def prepared_source(source: Source, source_digest: str) -> Path:
    """The extracted, fixed-up and patched source tree (shared by the variants built from it; builds are out of tree)."""
    root = cache_root() / "kernel-src" / tree_key(source, source_digest)[:16]
    tree = root / source.name
    done = root / ".prepared"
    if done.exists():
        return tree
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    print(f"extracting {source.tarball} ...", file=sys.stderr)
    with tarfile.open(source.tarball) as tar:
        tar.extractall(root, filter="tar") if hasattr(tarfile, "tar_filter") else tar.extractall(root)
    for rel, old, new in source.fixups:
        path = tree / rel
        text = path.read_text()
        if old not in text:
            raise SystemExit(f"{path}: expected text for the Kconfig fix-up not found; has {source.name} changed?\n{old}")
        path.write_text(text.replace(old, new, 1))
    for patch in source.patches:
        applied = subprocess.run(["patch", "-p1", "--forward", "--batch", "-s", "-d", str(tree), "-i", str(patch)],
                                 capture_output=True, text=True)
        if applied.returncode != 0:
            raise SystemExit(f"{patch.name} does not apply to {source.name} ({source.tarball}); was the package "
                             f"updated? Refresh the patch against it.\n{applied.stdout}{applied.stderr}")
    done.write_text("ok\n")
    return tree


def make_command(tree: Path, out: Path, *targets: str) -> list[str]:
    return ["make", "-C", str(tree), f"O={out}", "ARCH=riscv", f"CROSS_COMPILE={CROSS}", f"-j{os.cpu_count() or 2}",
            *targets]


def make(tree: Path, out: Path, *targets: str) -> None:
    subprocess.run(make_command(tree, out, "-s", *targets), check=True)


PROGRESS_EVERY_S = 10       # a progress line this often (a terminal's line is redrawn in place every second)


def make_with_progress(tree: Path, out: Path, name: str, *targets: str) -> None:
    """make, showing how far it got: kbuild's short lines ("  CC      kernel/fork.o") counted as steps, against the
    count the previous build of this variant took (kept in the cache), with the elapsed time. Errors go through."""
    counts = cache_root() / "kernel" / "build-steps.json"
    try:
        known = json.loads(counts.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    expected = known.get(name)
    cmd = make_command(tree, out, *targets)
    start = time.monotonic()
    steps, shown = 0, start
    tty = sys.stderr.isatty()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, errors="replace") as proc:
        for line in proc.stdout:
            if line.startswith("  ") and line[2:3].isupper():       # a kbuild step; make's own chatter is not
                steps += 1
            now = time.monotonic()
            if now - shown >= (1 if tty else PROGRESS_EVERY_S):
                shown = now
                of = f" of about {expected:,}" if expected else ""
                print(f"{chr(13) if tty else ''}building {name}: {steps:,}{of} steps, {int(now - start) // 60} min "
                      f"{int(now - start) % 60:02d} s", end="" if tty else "\n", file=sys.stderr, flush=True)
    if tty:
        print(file=sys.stderr)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    counts.write_text(json.dumps(known | {name: steps}) + "\n")
    print(f"built {name}: {steps:,} steps in {int(time.monotonic() - start)} s", file=sys.stderr)


def check_config(config: Path, fragments: list[Path]) -> None:
    """Every option the fragments ask for (a later fragment overriding an earlier one, as merge_config.sh does) must
    have survived olddefconfig; a silent drop would test the wrong kernel."""
    wanted: dict[str, tuple[str, str]] = {}   # option -> (line asked for, fragment asking)
    for frag in fragments:
        for line in frag.read_text().splitlines():
            line = line.strip()
            if line.startswith("CONFIG_"):
                wanted[line.split("=", 1)[0]] = (line, frag.name)
            elif line.startswith("# CONFIG_") and line.endswith("is not set"):
                wanted[line.split()[1]] = (line, frag.name)
    have = set(config.read_text().splitlines())
    for name, (line, frag) in wanted.items():
        if line.startswith("#"):
            if any(h.startswith(name + "=") for h in have):
                raise SystemExit(f"{frag}: {name} should be off but the config has it on")
        elif line not in have:
            raise SystemExit(f"{frag}: {line} did not stick in {config}; check its dependencies")


@contextlib.contextmanager
def build_lock():
    """One build at a time per machine: two test runs (or a test run and a bench) must not share a build tree."""
    path = cache_root() / "kernel-build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def products(variant: Variant) -> tuple[str, ...]:
    return PRODUCTS + ((DTB,) if variant.dts else ())


def build(name: str) -> Path:
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    variant = VARIANTS[name]
    digest = tarball_digest(variant.source)
    key = variant_key(variant, digest)
    result = cache_root() / "kernel" / f"{name}-{key}"
    if all((result / p).exists() for p in products(variant)):
        return result
    with build_lock():
        if all((result / p).exists() for p in products(variant)):
            return result   # built by whoever held the lock before us
        return _build(variant, digest, result)


def _build(variant: Variant, digest: str, result: Path) -> Path:
    key = result.name.rsplit("-", 1)[1]
    tree = prepared_source(variant.source, digest)
    out = cache_root() / "kernel-build" / f"{variant.name}-{key}"
    out.mkdir(parents=True, exist_ok=True)
    fragments = [HERE / name for name in variant.fragments]
    print(f"configuring {variant.name} in {out} ...", file=sys.stderr)
    make(tree, out, variant.base)
    subprocess.run([str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(out), str(out / ".config"),
                    str(tree / "arch/riscv/configs/32-bit.config"), *map(str, fragments)],
                   check=True, stdout=subprocess.DEVNULL)
    make(tree, out, "olddefconfig")
    check_config(out / ".config", fragments)
    print(f"building {variant.name} (a few minutes on 2 cores) ...", file=sys.stderr)
    make_with_progress(tree, out, variant.name, *variant.targets)
    staging = result.with_name(result.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for product, src in zip(PRODUCTS, ("arch/riscv/boot/Image", "vmlinux", "System.map", ".config")):
        shutil.copy2(out / src, staging / product)
    if variant.dts:
        subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(staging / DTB), str(variant.dts)], check=True)
    (staging / "build-dir").write_text(str(out) + "\n")
    staging.rename(result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", default=list(VARIANTS), help=f"default: all ({', '.join(VARIANTS)})")
    args = parser.parse_args()
    for variant in args.variants:
        print(build(variant))


if __name__ == "__main__":
    main()
