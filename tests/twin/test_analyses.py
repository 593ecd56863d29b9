"""The analyses/ scripts rebuild their figures from saved sample files; here on small profiles of the twin (a model)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "analyses"))

import hit_rate_vs_working_set as ws  # noqa: E402
import xip_vs_psram_vs_sram as xps  # noqa: E402


def test_xip_vs_psram_vs_sram_phases(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "analyses" / "xip_vs_psram_vs_sram.py"), str(tmp_path),
                             "--collect", "--every", "4000"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "xip_vs_psram_vs_sram.png").stat().st_size > 10_000
    # Rebuilt from the saved samples alone, as a reader of the repository would.
    table = xps.phases(tmp_path)
    assert list(table["name"]) == ["flash-fit", "flash-thrash", "sram-fit", "sram-thrash", "psram-fit",
                                   "psram-thrash"]
    assert list(table["category"]) == ["flash (cached)"] * 2 + ["sram"] * 2 + ["psram (cached)"] * 2
    for _, row in table.iterrows():
        if row["category"] == "sram":
            assert row["accesses"] == 0 and math.isnan(row["hit_rate"])       # SRAM code on SRAM data
        else:
            assert row["hit_rate"] == pytest.approx(row["exact_hit_rate"], abs=0.01)
        # A phase's sampled extent misses at most one sampling interval at each end.
        assert row["duration_ms"] == pytest.approx(row["exact_ms"], abs=2 * 1.5 * 4000 / 150e3)
    thrash = table.set_index("name")
    assert thrash.loc["psram-thrash", "duration_ms"] > thrash.loc["flash-thrash", "duration_ms"]


def test_hit_rate_against_working_set(tmp_path):
    ws.collect(tmp_path, sizes_kib=(4, 32), accesses=8192, every=1000)
    table = ws.hit_rates(tmp_path)
    assert list(table.index) == [4.0, 32.0]
    for size, row in table.iterrows():
        assert row["hit_rate"] == pytest.approx(row["exact_hit_rate"], abs=0.01), size
    assert table.loc[4.0, "hit_rate"] > 0.98          # fits the 16 KiB cache: only cold misses
    assert table.loc[32.0, "hit_rate"] < 0.9          # twice the cache: data reads miss
    assert ws.plot(table, tmp_path / "f.png").stat().st_size > 10_000
