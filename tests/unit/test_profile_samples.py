"""The sample files: parts written incrementally are readable alone, in order, whatever happens after them."""

import pytest

from xipscope.errors import FormatError
from xipscope.profile.store import SampleWriter, read_meta, read_samples, write_meta


def test_round_trip_in_parts(tmp_path):
    writer = SampleWriter(tmp_path, flush_rows=3, flush_seconds=3600)   # parts by count only
    for i in range(7):
        writer.add(t_ns=i * 1000, pc=0x10000000 + 4 * i, halted_ns=50, xip_hit=i, xip_acc=2 * i,
                   stack=[0x10000100, 0x10000200] if i % 2 else None)
    # Two full parts are on disk before close: a crash now would keep 6 samples.
    assert len(read_samples(tmp_path)) == 6
    writer.close()
    frame = read_samples(tmp_path)
    assert list(frame["pc"]) == [0x10000000 + 4 * i for i in range(7)]
    assert list(frame["xip_acc"]) == [2 * i for i in range(7)]
    assert list(frame["stack"][1]) == [0x10000100, 0x10000200] and frame["stack"][0] is None


def test_counters_may_be_absent(tmp_path):
    writer = SampleWriter(tmp_path)
    writer.add(t_ns=0, pc=0x80000000, halted_ns=10)
    writer.close()
    frame = read_samples(tmp_path)
    assert frame["xip_hit"].isna().all()


def test_clear_errors(tmp_path):
    with pytest.raises(FormatError, match="no samples"):
        read_samples(tmp_path)
    with pytest.raises(FormatError, match="no meta.json"):
        read_meta(tmp_path)
    writer = SampleWriter(tmp_path)
    writer.add(t_ns=0, pc=1, halted_ns=1)
    writer.close()
    with pytest.raises(FormatError, match="already holds samples"):
        SampleWriter(tmp_path)
    (tmp_path / "samples" / "part-000001.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(FormatError, match="part-000001.parquet: not a readable sample part"):
        read_samples(tmp_path)
    (tmp_path / "meta.json").write_text("[1]")
    with pytest.raises(FormatError, match="expected a JSON object"):
        read_meta(tmp_path)
    write_meta(tmp_path, {"rate_hz": 1000})
    assert read_meta(tmp_path) == {"rate_hz": 1000}


def test_parts_without_the_mcycle_column_read_as_null(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # A part as SampleWriter wrote it before the mcycle column existed.
    (tmp_path / "samples").mkdir()
    old = pa.table({"t_ns": [0, 10], "pc": [1, 2], "halted_ns": [5, 5], "xip_hit": [None, None],
                    "xip_acc": [None, None], "stack": pa.array([None, None], pa.list_(pa.int64()))})
    pq.write_table(old, tmp_path / "samples" / "part-000000.parquet")
    frame = read_samples(tmp_path)
    assert list(frame["pc"]) == [1, 2] and frame["mcycle"].isna().all()


def test_mcycle_round_trip(tmp_path):
    writer = SampleWriter(tmp_path)
    writer.add(t_ns=0, pc=1, halted_ns=1, mcycle=0xFFFFFFF0)
    writer.add(t_ns=1, pc=2, halted_ns=1, mcycle=0x10)
    writer.close()
    assert list(read_samples(tmp_path)["mcycle"]) == [0xFFFFFFF0, 0x10]
