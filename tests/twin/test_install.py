"""What `pip install` gives a user, run from a directory with no checkout: the twin's example firmware and the gdb
commands, in a fresh venv and in a user install for the Python gdb embeds; and what `make demo` asks of apt.

Each install is real: pip builds the wheel from a copy of this tree (with build isolation, through setup.py's
firmware step) and installs it. Only xipscope's dependencies are not downloaded again: a .pth file in the new
site-packages points at the site-packages of the venv running these tests, as --system-site-packages would point at
the system's (the dependencies are the same wheels either way; what is under test is our package). The tests that
install are marked `install`: two wheel builds take a minute or so on a loaded machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from support.servers import twin_gdb_server

REPO = Path(__file__).resolve().parents[2]
XIPBENCH = REPO / "firmware" / "xipbench.elf"
PY_VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
SYSTEM_PYTHON = "/usr/bin/python3"      # the Python Debian's gdb-multiarch embeds


def source_copy(into: Path) -> Path:
    """This tree as `pip install .` would see it, minus build output and caches (pip builds in the source directory,
    and the worktree is not the place for its build/)."""
    return Path(shutil.copytree(REPO, into, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "out")))


def our_dependencies_pth(site_packages: Path) -> None:
    site_packages.mkdir(parents=True, exist_ok=True)
    (site_packages / "xipscope-test-dependencies.pth").write_text(site.getsitepackages()[0] + "\n")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user with no checkout: no PYTHONPATH into this tree, no venv chosen."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "XIPSCOPE_VENV")}
    return env | extra


def run(*args, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def gdb(*commands: str, cwd: Path, env: dict, timeout: float = 120) -> str:
    args = ["gdb-multiarch", "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off"]
    for command in commands:
        args += ["-ex", command]
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with `pip install <copy of this tree>`; (venv, its site-packages, an empty working directory)."""
    root = tmp_path_factory.mktemp("install-venv")
    home = root / "elsewhere"
    home.mkdir()
    venv = root / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=home)
    site_packages = venv / "lib" / PY_VERSION / "site-packages"
    our_dependencies_pth(site_packages)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", source_copy(root / "src"), cwd=home)
    return venv, site_packages, home


@pytest.fixture(scope="module")
def user_install(tmp_path_factory):
    """`pip install --user` of a copy of this tree with the system python3 (the one gdb embeds), into a private
    PYTHONUSERBASE; (its environment, its site-packages, an empty working directory)."""
    root = tmp_path_factory.mktemp("install-user")
    home = root / "elsewhere"
    home.mkdir()
    env = clean_env(PYTHONUSERBASE=str(root / "userbase"))
    user_site = Path(run(SYSTEM_PYTHON, "-c", "import site; print(site.getusersitepackages())", cwd=home,
                         env=env).stdout.strip())
    our_dependencies_pth(user_site)
    # Debian 12 marks its python3 externally managed; a --user install writes only to PYTHONUSERBASE.
    run(SYSTEM_PYTHON, "-m", "pip", "install", "-q", "--user", "--break-system-packages", "--no-deps",
        source_copy(root / "src"), cwd=home, env=env)
    return env, user_site, home


@pytest.mark.install
def test_the_venv_has_the_package_and_the_firmware_not_this_checkout(venv):
    venv_dir, site_packages, home = venv
    found = run(venv_dir / "bin" / "python", "-c", "import xipscope; print(xipscope.__file__)", cwd=home).stdout
    assert Path(found.strip()) == site_packages / "xipscope" / "__init__.py"
    shipped = sorted(p.name for p in (site_packages / "xipscope" / "firmware").iterdir())
    in_repo = sorted(p.name for p in (REPO / "firmware").iterdir() if p.suffix in (".elf", ".uf2"))
    assert shipped == in_repo and "xipbench.elf" in shipped and "seedlayout.uf2" in shipped
    for name in shipped:
        assert (site_packages / "xipscope" / "firmware" / name).read_bytes() == (REPO / "firmware" / name).read_bytes()
    help_text = run(venv_dir / "bin" / "xipscope", "sim", "--help", cwd=home, env=clean_env(COLUMNS="1000")).stdout
    assert f"xipprobe.elf (in {site_packages / 'xipscope' / 'firmware'})." in help_text, help_text


@pytest.mark.install
def test_xipscope_sim_runs_the_shipped_xipbench_by_its_bare_name(venv):
    venv_dir, site_packages, home = venv
    shipped = site_packages / "xipscope" / "firmware" / "xipbench.elf"
    table = run(venv_dir / "bin" / "xipscope", "sim", "xipbench.elf", "--run", "--quiet-uart", cwd=home).stdout
    assert f"running {shipped}" in table
    work_psram = re.search(r"^work_psram\s+psram\s+(\d+)\s+(\d+)", table, re.M)
    assert work_psram and int(work_psram[1]) == 393442, table    # xipbench's instruction count for that phase
    truth = json.loads(run(venv_dir / "bin" / "xipscope", "sim", "xipbench.elf", "--json", cwd=home).stdout)
    checkout = json.loads(run(sys.executable, "-m", "xipscope", "sim", XIPBENCH, "--json", cwd=REPO,
                              env=clean_env(PYTHONPATH=str(REPO / "toolkit"))).stdout)
    assert truth.pop("firmware") == str(shipped)
    assert checkout.pop("firmware") == str(XIPBENCH)
    assert truth == checkout       # the same firmware, the same model: the same ground truth


@pytest.mark.install
def test_profile_finds_the_shipped_elf_by_its_bare_name(venv):
    venv_dir, site_packages, home = venv
    run(venv_dir / "bin" / "xipscope", "profile", "--target", "sim://xipbench.elf", "--elf", "xipbench.elf",
        "--samples", "100", "--out", "bare-name-profile", cwd=home)
    meta = json.loads((home / "bare-name-profile" / "meta.json").read_text())
    assert meta["samples"] == 100 and meta["elf"] == str(site_packages / "xipscope" / "firmware" / "xipbench.elf")


@pytest.mark.install
def test_sim_url_and_flash_image_find_the_shipped_copies(venv):
    venv_dir, site_packages, home = venv
    script = ("from xipscope.targets import open_target\n"
              "t = open_target('sim://xipprobe.elf?flash=seedlayout.uf2')\n"
              "print(t.machine.firmware)\n"
              "print(t.machine.flash_image)\n"
              "print(t.read_memory(0x10010000, 64).hex())\n")
    out = run(venv_dir / "bin" / "python", "-c", script, cwd=home).stdout.splitlines()
    firmware_dir = site_packages / "xipscope" / "firmware"
    assert out[0] == str(firmware_dir / "xipprobe.elf")
    assert out[1].startswith(f"{firmware_dir / 'seedlayout.uf2'} (UF2")
    # The same flash as the checkout's files give: seedlayout's dtb partition (a placeholder device tree) at 64 KiB.
    from xipscope.targets import open_target
    checkout = open_target(f"sim://{REPO / 'firmware' / 'xipprobe.elf'}?flash={REPO / 'firmware' / 'seedlayout.uf2'}")
    try:
        assert out[2] == checkout.read_memory(0x10010000, 64).hex()
    finally:
        checkout.close()
    assert out[2].startswith("d00dfeed")        # the flattened device tree's magic


@pytest.mark.install
def test_gdb_sources_the_path_xipscope_gdb_script_prints_and_xs_reads_the_twin(venv):
    venv_dir, site_packages, home = venv
    script = run(venv_dir / "bin" / "xipscope", "gdb-script", cwd=home).stdout.strip()
    assert script == str(site_packages / "xipscope" / "gdb" / "script.py")
    env = clean_env(PYTHONUSERBASE=str(home / "no-user-site"))
    with twin_gdb_server(XIPBENCH) as port:
        out = gdb(f"file {XIPBENCH}", f"source {script}", f"target remote 127.0.0.1:{port}",
                  "python import xipscope; print('xipscope from', xipscope.__file__)",
                  "break work_flash", "continue", "xs xip", "finish", "xs xip", "xs region $pc", "detach",
                  cwd=home, env=env)
    assert f"xipscope from {site_packages / 'xipscope' / '__init__.py'}" in out, out
    moved = re.search(r"since the last xs xip: (\d+) hits of (\d+) accesses, hit rate ([\d.]+)%", out)
    # flash-fit: 64 passes over 512 words of a 4 KiB table that fits the cache, plus the loop's own fetches
    assert moved and int(moved[2]) >= 64 * 512 and float(moved[3]) > 95.0, out
    assert re.search(r"0x100[0-9a-f]{5}: flash \+0x[0-9a-f]+ \(xip-flash, through the XIP cache", out), out
    assert "Traceback" not in out and "Python Exception" not in out, out


@pytest.mark.install
def test_gdb_names_the_missing_libraries_when_it_imports_xipscope_without_them(venv):
    venv_dir, site_packages, home = venv
    # The venv's site-packages as a plain path: its .pth (our dependencies) is not read, as when PYTHONPATH names it.
    out = gdb(f"python import sys; sys.path.insert(0, {str(site_packages)!r})", "python import xipscope.gdb",
              "xs region 0", cwd=home, env=clean_env(PYTHONUSERBASE=str(home / "no-user-site")))
    assert (f"xipscope.gdb: gdb's Python 3.11 imports xipscope from {site_packages / 'xipscope'} but not elftools, "
            "numpy, capstone, pandas, pyarrow, matplotlib") in out, out
    assert 'Undefined command: "xs"' in out, out


@pytest.mark.install
def test_python_import_xipscope_gdb_in_gdb_with_a_user_install(user_install):
    env, user_site, home = user_install
    with twin_gdb_server(XIPBENCH) as port:
        out = gdb(f"file {XIPBENCH}", "python import xipscope.gdb", f"target remote 127.0.0.1:{port}",
                  "python import xipscope; print('xipscope from', xipscope.__file__)",
                  "xs region 0x11000040", "break work_flash", "continue", "xs xip", "detach", cwd=home, env=env)
    assert f"xipscope from {user_site / 'xipscope' / '__init__.py'}" in out, out
    assert "0x11000040: psram +0x40 (xip-psram, through the XIP cache, no atomics" in out, out
    assert re.search(r"^CTR_HIT \d+  CTR_ACC \d+  hit rate", out, re.M), out
    assert "Traceback" not in out and "Python Exception" not in out, out


def apt_packages_make_would_check(target: str) -> set[str]:
    """The Debian packages `make TARGET` would install if missing, read from its dry run (`make -n` runs nothing)."""
    dry_run = subprocess.run(["make", "-n", "-C", str(REPO), target], capture_output=True, text=True, timeout=60,
                             env=clean_env())
    assert dry_run.returncode == 0, dry_run.stderr
    return {package for packages in re.findall(r"for p in ([^;]*); do dpkg -s", dry_run.stdout)
            for package in packages.split()}


def test_make_demo_installs_no_debian_package_beyond_python3_venv():
    assert apt_packages_make_would_check("demo") == {"python3-venv"}
    everything = apt_packages_make_would_check("deps")      # what make test needs: the dry run does see them
    assert {"qemu-system-misc", "gdb-multiarch", "python3-venv"} <= everything
