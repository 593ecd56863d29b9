"""The HTML report opens in a real browser (Debian's headless Chromium) with every plot loaded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xipscope.profile.report import write_report

REPO = Path(__file__).resolve().parent.parent
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


def images_in_chromium(page: Path, profile_dir: Path) -> list:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed for this test: `make deps` installs it (APT_PACKAGES)"
    check = page.with_name("check-" + page.name)
    check.write_text(page.read_text() + CHECK_SCRIPT)
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile_dir}",
         "--virtual-time-budget=5000", "--dump-dom", check.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="xipscope-check">(.*?)</pre>', result.stdout, re.S)
    assert found, f"chromium printed no check result (exit {result.returncode}): {result.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


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
