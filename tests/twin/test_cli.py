"""The `xipscope` command line itself: every command's --help works and shows an example; --target's help names every
scheme open_target knows; building the parser for one command imports no other command and no application."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xipscope.cli import COMMANDS, main
from xipscope.targets import SCHEMES

TOOLKIT = Path(__file__).resolve().parents[2] / "toolkit"
NAMES = [name for name, _module, _help in COMMANDS]


def help_text(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_every_command_help_exits_0_with_an_example(capsys, name):
    text = help_text(capsys, [name, "--help"])
    assert text.startswith(f"usage: xipscope {name}")
    examples = text[text.index("\nexample"):]
    # At least one whole command line a user can copy, kept as written (not re-wrapped into the prose).
    assert re.search(rf"^  (xipscope {re.escape(name)}|.*\$\(xipscope {re.escape(name)}\)).*$", examples, re.M), text


def test_top_level_help_lists_every_command(capsys):
    text = help_text(capsys, ["--help"])
    for name in NAMES:
        assert re.search(rf"^    {re.escape(name)}\b", text, re.M), name
    assert "\n  xipscope dmesg --elf vmlinux --target rsp://127.0.0.1:1234\n" in text


def test_target_help_names_every_scheme(capsys):
    # One table (target.SCHEMES) for every command that takes --target: no command's help omits a scheme.
    with_target = []
    for name in NAMES:
        text = help_text(capsys, [name, "--help"])
        if "--target URL" not in text:
            continue
        with_target.append(name)
        flat = " ".join(text.split())
        for scheme in SCHEMES:
            assert f"{scheme}://" in flat, (name, scheme)
    assert set(with_target) == {"dmesg", "trap", "profile", "top", "probe-latency", "doctor", "snapshot", "image",
                                "dump"}


def imported_for(argv: list[str]) -> list[str]:
    code = ("import json, sys\n"
            "from xipscope.cli import build_parser\n"
            f"build_parser({argv!r})\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('xipscope'))))")
    env = dict(os.environ, PYTHONPATH=str(TOOLKIT))
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_the_dmesg_parser_imports_no_other_command_and_no_application():
    modules = imported_for(["dmesg", "--help"])
    assert "xipscope.cli.dmesg" in modules
    other_commands = [f"xipscope.cli.{m}" for _n, m, _h in COMMANDS if m not in ("dmesg", "options")]
    assert not set(other_commands) & set(modules)
    for application in ("xipscope.profile", "xipscope.doctor", "xipscope.trap", "xipscope.snapshot.take", "xipscope.sim",
                        "xipscope.linux.printk", "xipscope.dump", "xipscope.image"):
        assert application not in modules, application


def test_the_top_level_parser_imports_no_command():
    modules = imported_for(["--help"])
    assert [m for m in modules if m.startswith("xipscope.cli.")] == []


def test_unknown_command_is_refused_with_the_list(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'bogus'" in err and "'dmesg'" in err and "'gdb-script'" in err


def test_a_bad_level_is_an_argument_error_naming_the_levels(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["dmesg", "--elf", "vmlinux", "--dump", "ram.bin@0x80000000", "--level", "loud"])
    assert exit_.value.code == 2
    assert "unknown level 'loud'" in capsys.readouterr().err


def test_the_console_script_and_python_m_run_the_same_main():
    # pyproject's [project.scripts] names xipscope.cli:main; `python -m xipscope` runs __main__, which calls it.
    pyproject = (TOOLKIT.parent / "pyproject.toml").read_text()
    assert 'xipscope = "xipscope.cli:main"' in pyproject
    env = dict(os.environ, PYTHONPATH=str(TOOLKIT))
    out = subprocess.run([sys.executable, "-m", "xipscope", "gdb-script"], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert Path(out.strip()) == TOOLKIT / "xipscope" / "gdb" / "script.py"


FIRMWARE = TOOLKIT.parent / "firmware"


def test_every_elf_option_finds_the_shipped_firmware_by_its_bare_name(tmp_path, monkeypatch):
    # Every command that takes --elf parses it through options.add_elf; parse each one's --elf from a directory
    # without the file.
    from xipscope.cli import build_parser

    monkeypatch.chdir(tmp_path)
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    names = [name for name, sub in subparsers.choices.items() if any(a.dest == "elf" for a in sub._actions)]
    assert {"profile", "top", "trap", "doctor", "dump", "snapshot", "image", "dmesg", "report"} <= set(names)
    for name in names:
        elf = next(a for a in subparsers.choices[name]._actions if a.dest == "elf")
        assert elf.type("xipbench.elf") == str(FIRMWARE / "xipbench.elf"), name
    (tmp_path / "xipbench.elf").write_bytes(b"mine")                  # a file of that name here is the one meant
    assert elf.type("xipbench.elf") == "xipbench.elf"
    assert elf.type("nothing-shipped.elf") == "nothing-shipped.elf"   # not shipped: left for the command to refuse
    assert elf.type("sub/xipbench.elf") == "sub/xipbench.elf"         # a path is never redirected


def test_profile_and_dump_run_from_a_directory_without_the_firmware(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(TOOLKIT))
    common = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "timeout": 300}
    dump = subprocess.run([sys.executable, "-m", "xipscope", "dump", "0x10000000", "16", "--target",
                           "sim://xipbench.elf", "--elf", "xipbench.elf"], **common)
    assert dump.returncode == 0, dump.stderr
    assert "<_start>" in dump.stdout, dump.stdout                      # the ELF's symbols label the line
    profile = subprocess.run([sys.executable, "-m", "xipscope", "profile", "--target", "sim://xipbench.elf",
                              "--elf", "xipbench.elf", "--samples", "100", "--out", "prof"], **common)
    assert profile.returncode == 0, profile.stderr
    meta = json.loads((tmp_path / "prof" / "meta.json").read_text())
    assert meta["samples"] == 100 and meta["elf"] == str(FIRMWARE / "xipbench.elf")
