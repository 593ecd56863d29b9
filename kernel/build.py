#!/usr/bin/env python3
"""Build the rv32 nommu Linux 6.1 test kernels from Debian's linux-source-6.1, cached by a hash of their inputs.

    python3 kernel/build.py dwarf nodwarf-wrap     # builds what is missing, prints one result dir per variant

Each variant is nommu_virt_defconfig + 32-bit.config + common.config + <variant>.config. Results (Image, vmlinux,
System.map, .config) land in $XIPSCOPE_CACHE/kernel/<variant>-<key>/ (default ~/.cache/xipscope); the key hashes the
source tarball, the fragments, the Kconfig fix-ups and make targets below and the compiler version, so a second run on the
same machine builds nothing. The build tree stays in .../kernel-build/ for `make scripts_gdb` (the lx-dmesg benchmark).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
CROSS = "riscv64-linux-gnu-"
VARIANTS = ("dwarf", "nodwarf-wrap")
PRODUCTS = ("Image", "vmlinux", "System.map", ".config")
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


def cache_root() -> Path:
    # The same rule as xipscope.cache.cache_root; repeated because this script runs on the system python3, before
    # (and without) the package being installed.
    return Path(os.environ.get("XIPSCOPE_CACHE") or Path.home() / ".cache" / "xipscope")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tarball_digest() -> str:
    """The tarball's hash, remembered beside its size and mtime so we hash 140 MB once per install."""
    st = TARBALL.stat()
    memo = cache_root() / "kernel-src" / f"tarball-{st.st_size}-{int(st.st_mtime)}.sha256"
    if memo.exists():
        return memo.read_text().strip()
    digest = file_sha256(TARBALL)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(digest + "\n")
    return digest


def compiler_version() -> str:
    return subprocess.run([CROSS + "gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def variant_key(variant: str, source_digest: str) -> str:
    """Hash of everything that shapes the products (not of this script, so tidying it doesn't force a rebuild)."""
    h = hashlib.sha256()
    for part in (RECIPE, source_digest, compiler_version(), repr(KCONFIG_FIXUPS), repr(make_targets(variant))):
        h.update(part.encode())
    for name in ("common.config", f"{variant}.config"):
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


def make_targets(variant: str) -> list[str]:
    return ["Image", "vmlinux"] + (["scripts_gdb"] if variant == "dwarf" else [])


def prepared_source(source_digest: str) -> Path:
    """The extracted, fixed-up source tree (shared by every variant; builds are out of tree)."""
    root = cache_root() / "kernel-src" / source_digest[:16]
    tree = root / "linux-source-6.1"
    done = root / ".prepared"
    if done.exists():
        return tree
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    print(f"extracting {TARBALL} ...", file=sys.stderr)
    with tarfile.open(TARBALL) as tar:
        tar.extractall(root, filter="tar") if hasattr(tarfile, "tar_filter") else tar.extractall(root)
    for rel, old, new in KCONFIG_FIXUPS:
        path = tree / rel
        text = path.read_text()
        if old not in text:
            raise SystemExit(f"{path}: expected text for the Kconfig fix-up not found; has linux-source-6.1 changed?\n{old}")
        path.write_text(text.replace(old, new, 1))
    done.write_text("ok\n")
    return tree


def make(tree: Path, out: Path, *targets: str) -> None:
    cmd = ["make", "-s", "-C", str(tree), f"O={out}", "ARCH=riscv", f"CROSS_COMPILE={CROSS}",
           f"-j{os.cpu_count() or 2}", *targets]
    subprocess.run(cmd, check=True)


def check_config(config: Path, fragments: list[Path]) -> None:
    """Every option a fragment asks for must have survived olddefconfig; a silent drop would test the wrong kernel."""
    have = set(config.read_text().splitlines())
    for frag in fragments:
        for line in frag.read_text().splitlines():
            wanted = line.strip()
            if wanted.startswith("CONFIG_") or wanted.startswith("# CONFIG_"):
                if wanted.startswith("#") and wanted.endswith("is not set"):
                    name = wanted.split()[1]
                    if any(h.startswith(name + "=") for h in have):
                        raise SystemExit(f"{frag.name}: {name} should be off but the config has it on")
                elif wanted not in have:
                    raise SystemExit(f"{frag.name}: {wanted} did not stick in {config}; check its dependencies")


@contextlib.contextmanager
def build_lock():
    """One build at a time per machine: two test runs (or a test run and a bench) must not share a build tree."""
    path = cache_root() / "kernel-build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def build(variant: str) -> Path:
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    digest = tarball_digest()
    key = variant_key(variant, digest)
    result = cache_root() / "kernel" / f"{variant}-{key}"
    if all((result / p).exists() for p in PRODUCTS):
        return result
    with build_lock():
        if all((result / p).exists() for p in PRODUCTS):
            return result   # built by whoever held the lock before us
        return _build(variant, digest, result)


def _build(variant: str, digest: str, result: Path) -> Path:
    key = result.name.rsplit("-", 1)[1]
    tree = prepared_source(digest)
    out = cache_root() / "kernel-build" / f"{variant}-{key}"
    out.mkdir(parents=True, exist_ok=True)
    fragments = [HERE / "common.config", HERE / f"{variant}.config"]
    print(f"configuring {variant} in {out} ...", file=sys.stderr)
    make(tree, out, "nommu_virt_defconfig")
    subprocess.run([str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(out), str(out / ".config"),
                    str(tree / "arch/riscv/configs/32-bit.config"), *map(str, fragments)],
                   check=True, stdout=subprocess.DEVNULL)
    make(tree, out, "olddefconfig")
    check_config(out / ".config", fragments)
    print(f"building {variant} (a few minutes on 2 cores) ...", file=sys.stderr)
    make(tree, out, *make_targets(variant))
    staging = result.with_name(result.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for product, src in zip(PRODUCTS, ("arch/riscv/boot/Image", "vmlinux", "System.map", ".config")):
        shutil.copy2(out / src, staging / product)
    (staging / "build-dir").write_text(str(out) + "\n")
    staging.rename(result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    for variant in args.variants:
        print(build(variant))


if __name__ == "__main__":
    main()
