"""The HTML report opens in a real browser (Debian's headless Chromium) with every plot loaded."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xipscope.profile.report import write_report

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "analyses"))
from twin_profile import profile_twin  # noqa: E402

# Appended to a copy of the page: after load, list every image with its decoded size (0 x 0 = not loaded).
CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const out = document.createElement('pre');
  out.id = 'xipscope-check';
  out.textContent = JSON.stringify([...document.images].map(i => [i.getAttribute('src'), i.naturalWidth,
                                                                  i.naturalHeight]));
  document.body.appendChild(out);
});
</script>"""


# After load, every flame graph frame as drawn: its name, its rect's rendered box, its label; and every annotated
# source row as shown: function, file, line, the samples cell and the source text.
RENDERED_SCRIPT = """<script>
window.addEventListener('load', () => {
  const out = document.createElement('pre');
  out.id = 'xipscope-check';
  const box = r => { const b = r.getBoundingClientRect(); return [b.x, b.y, b.width, b.height]; };
  out.textContent = JSON.stringify({
    frames: [...document.querySelectorAll('svg.flame g.frame')].map(g => [g.dataset.name,
             ...box(g.querySelector('rect')), g.querySelector('text') ? g.querySelector('text').textContent : '']),
    source: [...document.querySelectorAll('table.src tr[data-line]')].map(tr => [
             tr.closest('table').dataset.function, tr.dataset.file, Number(tr.dataset.line),
             tr.cells[0].textContent, tr.querySelector('td.code').textContent])});
  document.body.appendChild(out);
});
</script>"""


def run_in_chromium(page: Path, script: str, profile_dir: Path):
    """Open a copy of PAGE with SCRIPT appended in headless Chromium; the JSON the script put in #xipscope-check."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed for this test: `make deps` installs it (APT_PACKAGES)"
    check = page.with_name("check-" + page.name)
    check.write_text(page.read_text() + script)
    # The background-networking flags keep Chromium from dialling out of a closed network at every start.
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile_dir}", "--virtual-time-budget=5000", "--dump-dom", check.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="xipscope-check">(.*?)</pre>', result.stdout, re.S)
    assert found, f"chromium printed no check result (exit {result.returncode}): {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def images_in_chromium(page: Path, profile_dir: Path) -> list:
    return run_in_chromium(page, CHECK_SCRIPT, profile_dir)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory):
    profile = tmp_path_factory.mktemp("xipbench")
    profile_twin(REPO / "firmware" / "xipbench.elf", profile, every=2000)
    return write_report(profile)


def test_report_renders_with_its_plots(report_page, tmp_path):
    images = images_in_chromium(report_page, tmp_path / "chromium")
    assert sorted(src for src, _, _ in images) == ["hit_rate_over_time.png", "regions_over_time.png",
                                                  "top_functions.png"]
    for src, width, height in images:
        assert width == 900 and height > 300, (src, width, height)   # figures are 9 in wide at 100 dpi


def test_the_check_sees_a_missing_plot(report_page, tmp_path):
    broken = tmp_path / "report.html"
    broken.write_text(report_page.read_text())       # a copy without its PNGs beside it
    images = images_in_chromium(broken, tmp_path / "chromium")
    assert len(images) == 3 and all(width == 0 for _, width, _ in images)


# --- the flame graph and the annotated source ----------------------------------------------------------------------

def collapsed_counts(text: str) -> dict[str, int]:
    return {stack: int(count) for stack, _, count in (line.rpartition(" ") for line in text.splitlines())}


def collapsed_from_frames(frames: list, total: int) -> dict[str, int]:
    """Read the flame graph back as collapsed stacks, from the rendered geometry only: a frame's caller is the frame
    one row below whose span holds it, its own samples are its width less its callees', in samples of the root's
    width."""
    rows: dict[float, list] = {}
    for name, x, y, width, height, _label in frames:
        rows.setdefault(round(y), []).append([name, x, width, None])
    levels = [rows[y] for y in sorted(rows, reverse=True)]        # the root at the bottom
    assert [f[0] for f in levels[0]] == ["all"], levels[0]
    root_width = levels[0][0][2]
    levels[0][0][3] = ""
    out: dict[str, int] = {}
    own: dict[int, float] = {id(levels[0][0]): root_width}
    for below, level in zip(levels, levels[1:]):
        for frame in level:
            name, x, width, _ = frame
            callers = [c for c in below if c[1] - 0.01 <= x and x + width <= c[1] + c[2] + 0.01]
            assert len(callers) == 1, (name, x, width, below)
            caller = callers[0]
            frame[3] = f"{caller[3]};{name}" if caller[3] else name
            own[id(caller)] -= width
            own[id(frame)] = width
    for level in levels[1:]:
        for frame in level:
            samples = own[id(frame)] / root_width * total
            assert abs(samples - round(samples)) < 0.01, (frame, samples)
            if round(samples):
                out[frame[3]] = round(samples)
    return out


@pytest.fixture(scope="module")
def stacks_report(tmp_path_factory):
    """xipbench profiled on the in-process twin (a model) with --stacks, as `xipscope profile` does it. xipbench is
    built without frame pointers, so its stacks are one frame deep; the nesting is tested on a synthetic profile.
    At 500 samples/s of the twin's paced 1 MHz clock, 400 samples span 0.8 M simulated cycles: past _start's copy
    loops into work_flash, whatever the host's load (each sample lands at its scheduled simulated cycle)."""
    from xipscope.chip.memory_map import get_memory_map
    from xipscope.elf.symbols import load_symbols
    from xipscope.profile.sampler import sample_profile
    from xipscope.targets import open_target

    xipbench = REPO / "firmware" / "xipbench.elf"
    out = tmp_path_factory.mktemp("stacks")
    target = open_target(f"sim://{xipbench}")
    try:
        sample_profile(target, out, memory_map=get_memory_map("rp2350"), samples=400, rate_hz=500, stacks=True,
                       cycles=True, symbols=load_symbols(xipbench), elf=xipbench)
    finally:
        target.close()
    return write_report(out)


def test_flame_graph_renders_the_collapsed_stacks(stacks_report, tmp_path):
    rendered = run_in_chromium(stacks_report, RENDERED_SCRIPT, tmp_path / "chromium")
    collapsed = collapsed_counts((stacks_report.parent / "stacks.collapsed").read_text())
    total = sum(collapsed.values())
    assert total == 400 and collapsed.get("work_flash", 0) > 200, collapsed      # xipbench starts in work_flash
    assert collapsed_from_frames(rendered["frames"], total) == collapsed
    root = rendered["frames"][0]
    assert root[0] == "all" and root[3] == 1000                       # the full width of the svg, as drawn
    labels = {name: label for name, *_box, label in rendered["frames"]}
    assert labels["work_flash"] == "work_flash"                       # a wide frame shows its whole name


def test_annotated_source_shows_the_hottest_function_lines(stacks_report, tmp_path):
    import pandas as pd

    rendered = run_in_chromium(stacks_report, RENDERED_SCRIPT, tmp_path / "chromium")
    by_function = pd.read_csv(stacks_report.parent / "by_function.csv", index_col=0)
    by_line = pd.read_csv(stacks_report.parent / "by_line.csv", index_col=0)
    hottest = by_function.index[0]
    assert hottest == "work_flash"
    rows = [r for r in rendered["source"] if r[0] == hottest]
    sampled = {f"{file}:{line}": int(cell) for _f, file, line, cell, _text in rows if cell}
    expected = by_line[by_line["function"] == hottest]["samples"].to_dict()
    assert sampled == expected and sum(expected.values()) == by_function.loc[hottest, "samples"]
    # The DEFINE_WORK line that expands into work_flash, with the source text read from the checkout.
    assert [text for _f, _file, line, _cell, text in rows if line == 25] == [
        'DEFINE_WORK(work_flash, ".text.work_flash")']


def test_flame_graph_nests_callees_on_their_callers(tmp_path):
    from xipscope.elf.symbols import load_symbols
    from xipscope.profile.store import SampleWriter, write_meta

    xipbench = REPO / "firmware" / "xipbench.elf"
    s = load_symbols(xipbench)
    main_ra, phase_ra = s.address_of("main") + 0x20, s.address_of("phase") + 0x10
    # uart_puts+0 is its loop (common.c:17), uart_puts+8 the uart_putc inlined into it (common.c:10).
    rows = ([("work_flash", 4, [phase_ra, main_ra])] * 5 + [("uart_puts", 0, [phase_ra, main_ra])] * 3
            + [("uart_puts", 8, [phase_ra, main_ra])] + [("main", 4, [])] * 2 + [("copy_words", 4, [main_ra])] * 1
            + [("work_sram", 4, [phase_ra, main_ra])])
    writer = SampleWriter(tmp_path / "p")
    for i, (function, offset, stack) in enumerate(rows):
        writer.add(i * 1000, s.address_of(function) + offset, 10, None, None, stack)
    writer.close()
    write_meta(tmp_path / "p", {"map": "rp2350", "target": "synthetic", "elf": str(xipbench)})
    page = write_report(tmp_path / "p")
    collapsed = collapsed_counts((page.parent / "stacks.collapsed").read_text())
    assert collapsed == {"main;phase;work_flash": 5, "main;phase;uart_puts": 4, "main": 2, "main;copy_words": 1,
                         "main;phase;work_sram": 1}
    rendered = run_in_chromium(page, RENDERED_SCRIPT, tmp_path / "chromium")
    assert collapsed_from_frames(rendered["frames"], 13) == collapsed
    # The second hottest function's source: every line of uart_puts and of the uart_putc inlined into it (both in
    # common.c), the sampled ones with their counts.
    puts = [(line, cell, text.strip()) for f, _file, line, cell, text in rendered["source"] if f == "uart_puts"]
    assert puts[0] == (9, "", "{") and puts[-1] == (19, "", "}") and [p[0] for p in puts] == list(range(9, 20))
    assert [p for p in puts if p[1]] == [(10, "1", "while (REG32(RP_UART0_BASE + RP_PL011_FR) & RP_PL011_FR_TXFF)"),
                                         (17, "3", "while (*s)")]
    assert {f for f, *_ in rendered["source"]} == {"work_flash", "uart_puts", "main"}     # the three hottest
    # Callees side by side in name order under their caller, as flamegraph.pl draws them.
    phase_row = sorted((x, name) for name, x, y, *_ in rendered["frames"] if name in ("work_flash", "uart_puts",
                                                                                      "work_sram"))
    assert [name for _x, name in phase_row] == ["uart_puts", "work_flash", "work_sram"]
    assert "https://" not in page.read_text().split("<h2>Files</h2>")[0]     # self-contained: nothing to fetch


def test_lines_carry_the_misses_of_the_intervals_beside_their_samples(tmp_path):
    from xipscope.elf.symbols import load_symbols
    from xipscope.profile import analysis as an
    from xipscope.profile.store import SampleWriter, write_meta

    xipbench = REPO / "firmware" / "xipbench.elf"
    s = load_symbols(xipbench)
    # Counter readings (hits, accesses): intervals of 10, 40 and 0 misses, then one with a counter going backwards
    # (unknown, attributed to nobody).
    rows = [("work_flash", 0, 0), ("work_flash", 90, 100), ("work_sram", 250, 300), ("work_sram", 250, 300),
            ("work_sram", 0, 0)]
    writer = SampleWriter(tmp_path)
    for i, (function, hit, acc) in enumerate(rows):
        writer.add(i * 1000, s.address_of(function) + 4, 10, hit, acc, None)
    writer.close()
    write_meta(tmp_path, {"map": "rp2350", "target": "synthetic", "elf": str(xipbench)})
    frame = an.load_profile(tmp_path).samples
    assert an.misses_by_sample(frame).tolist() == [5, 25, 20, 0, 0]
    by_line = an.share_by_line(frame)
    assert by_line["misses"].to_dict() == {"firmware/firmware/xipbench.c:25": 30,
                                           "firmware/firmware/xipbench.c:26": 20}
    page = write_report(tmp_path).read_text()
    assert re.search(r"data-line='25' data-samples='2'><td>2</td><td>40.0%</td><td>30</td><td>25</td>", page)
