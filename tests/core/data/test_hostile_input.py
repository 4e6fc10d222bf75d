"""Bad and hostile input ends as our own error or a finding with where and how to fix, never a
traceback, minutes of work or a silent drop (the reproducers of a security probe, one test each).

Limits are patched small (a 1 MB inflation cap, a 10-column table) so that every test runs in
well under a second and never allocates more than a few MB.
"""
from __future__ import annotations

import gzip
import io
import time
import tracemalloc
import zipfile
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.data import readers
from core.cli import main
from core.config import DataConfig
from core.exceptions import DataReadError
from core.data.ingest import inspect_columns, validate_data
from core.data.readers import read_table
from core.data.validation import MAX_SHOWN_CHARS

HEADER = "patient_id,time,variable,value\n"


def rows(n_patients: int = 5, n_hours: int = 6) -> str:
    return "".join(f"p{i},{h},HR,{70 + h}\n" for i in range(n_patients) for h in range(n_hours))


def csv_bytes(n_patients: int = 5, n_hours: int = 6) -> bytes:
    return (HEADER + rows(n_patients, n_hours)).encode()


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def zeros_gzip(n_mb: int) -> bytes:
    """A gzip of ``n_mb`` MB of zeros, compressed in steps (never ``n_mb`` MB in memory)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join([comp.compress(block) for _ in range(n_mb)] + [comp.flush()])


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def unreadable(source, **kw) -> str:
    """The message of the blocking ``unreadable_events`` finding (and no cohort)."""
    cohort, report = validate_data(source, **kw)
    assert cohort is None and not report.ok
    [finding] = [f for f in report.errors if f.code == "unreadable_events"]
    return finding.message


def assert_accounting(report) -> None:
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values())


@pytest.fixture
def cap_1mb(monkeypatch):
    monkeypatch.setattr(readers, "MAX_INFLATED_MB", 1)


# -- 1. decompression bombs and NUL bytes -------------------------------------------------

def test_zip_member_inflating_past_the_cap_is_refused_with_the_limit_and_how_to_raise_it(cap_1mb):
    bomb = zipped({"events.csv": HEADER.encode() + b"p1,1,HR,80\n" * 400_000})  # 4.4 MB inflated, 20 kB zipped
    message = unreadable(("bomb.zip", bomb))
    assert "bomb.zip" in message and "more than 1 MB" in message and "CHRONOSCOPE_MAX_INFLATED_MB" in message


def test_gzip_of_valid_rows_past_the_cap_is_refused(monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_MAX_INFLATED_MB", "1")
    big = gzip.compress(HEADER.encode() + b"p1,1,HR,80\n" * 200_000)  # 2.2 MB of valid rows
    assert "more than 1 MB" in unreadable(("events.csv.gz", big))
    monkeypatch.setenv("CHRONOSCOPE_MAX_INFLATED_MB", "8")
    cohort, report = validate_data(("events.csv.gz", big))
    assert cohort is not None and report.rows_read == 200_000


def test_inflation_is_streamed_and_stops_at_the_cap(cap_1mb):
    bomb = zeros_gzip(64)  # 64 MB of zeros in 64 kB
    tracemalloc.start()
    try:
        with pytest.raises(DataReadError, match="more than 1 MB"):
            read_table(("zeros.csv.gz", bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MB: inflation is not bounded by the cap"


def test_the_cap_is_shared_by_every_file_of_a_zip(cap_1mb):
    files = {f"set-a/{i}.txt": b"Time,Parameter,Value\n" + b"00:00,HR,80\n" * 40_000 for i in range(3)}
    assert "more than 1 MB" in unreadable(("set-a.zip", zipped(files)))  # 0.5 MB each, 1.5 MB in all


def test_parquet_that_inflates_past_the_cap_is_refused_before_reading(cap_1mb):
    n = 300_000
    table = pa.table({"patient_id": ["p1"] * n, "time": [1.0] * n, "variable": ["HR"] * n, "value": [80.0] * n})
    message = unreadable(("big.parquet", parquet_bytes(table)))
    assert "big.parquet" in message and "CHRONOSCOPE_MAX_INFLATED_MB" in message


def test_archives_nested_three_deep_are_refused():
    inner = gzip.compress(zipped({"events.csv": csv_bytes()}))
    message = unreadable(("outer.zip", zipped({"events.csv.gz": inner})))
    assert "nested" in message


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_a_bad_limit_in_the_environment_is_named(monkeypatch, value):
    monkeypatch.setenv("CHRONOSCOPE_MAX_INFLATED_MB", value)
    with pytest.raises(DataReadError, match="CHRONOSCOPE_MAX_INFLATED_MB must be a positive number"):
        read_table(("events.csv.gz", gzip.compress(csv_bytes())))


def test_nul_byte_after_the_first_4kb_is_refused_with_its_offset_and_line():
    content = csv_bytes(40, 30) + b"p1,1,HR,8\x000\n"
    assert content.index(b"\x00") > 4096
    message = unreadable(("nul.csv", content))
    assert f"byte {content.index(chr(0).encode()):,}" in message and "line 1,202" in message


def test_utf16_file_is_named():
    assert "UTF-16" in unreadable(("events.csv", csv_bytes().decode().encode("utf-16")))


# -- 2. very wide tables and very many variables ---------------------------------------------

def test_100000_columns_are_refused_in_well_under_a_second():
    header = "patient_id,time," + ",".join(f"v{i}" for i in range(100_000))
    row = "p1,1," + ",".join("1" for _ in range(100_000))
    content = f"{header}\n{row}\n{row}\n".encode()
    start = time.perf_counter()
    message = unreadable(("wide.csv", content))
    assert time.perf_counter() - start < 2.0
    assert "100,002 columns" in message and "5,000" in message and "CHRONOSCOPE_MAX_COLUMNS" in message
    assert "100,002 columns" in inspect_columns(("wide.csv", content))["error"]


def test_column_limit_applies_to_parquet_and_is_configurable(monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_MAX_COLUMNS", "10")
    table = pa.table({"patient_id": ["p1", "p2"], "time": [0, 1], **{f"v{i}": [1.0, 2.0] for i in range(10)}})
    assert "12 columns, more than the limit of 10" in unreadable(("wide.parquet", parquet_bytes(table)))


def test_very_many_variables_in_long_format_are_refused_quickly():
    content = (HEADER + "".join(f"p{i % 10},{i % 24},item{i},{i % 50}\n" for i in range(20_000))).encode()
    start = time.perf_counter()
    cohort, report = validate_data(("long.csv", content))
    assert time.perf_counter() - start < 2.0
    assert cohort is None
    [f] = [f for f in report.errors if f.code == "too_many_variables"]
    assert "20,000 distinct variables" in f.message and "CHRONOSCOPE_MAX_VARIABLES" in f.message
    assert "--variable-col" in f.message


def test_variable_limit_is_configurable(monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_MAX_VARIABLES", "3")
    content = (HEADER + "".join(f"p{i % 5},{i % 3},v{i % 4},{70 + i % 9}\n" for i in range(40))).encode()
    _, report = validate_data(("long.csv", content))
    assert "too_many_variables" in report.codes()
    monkeypatch.setenv("CHRONOSCOPE_MAX_VARIABLES", "4")
    cohort, report = validate_data(("long.csv", content))
    assert cohort is not None and "too_many_variables" not in report.codes()


# -- 3. long cells are cut in every message ---------------------------------------------------

def _short(report) -> None:
    for f in report.findings:
        assert len(f.message) < 4100 and len(f.fix) < 4100
        for e in f.examples:
            assert len(e) <= 3 * MAX_SHOWN_CHARS + 40, e[:200]


def test_a_huge_cell_is_cut_in_the_examples_with_its_length():
    huge = "9" * 1_000_000 + "x"
    content = csv_bytes() + f"p1,1,HR,{huge}\n".encode()
    cohort, report = validate_data(("huge.csv", content))
    assert cohort is not None
    [f] = [f for f in report.findings if f.code == "non_numeric_value"]
    assert "1,000,001 characters" in f.examples[0] and "…" in f.examples[0]
    _short(report)
    assert len(report.to_text()) < 10_000


def test_a_huge_patient_id_and_column_name_are_cut():
    huge = "p" * 500_000
    content = csv_bytes() + f"{huge},1,HR,abc\n".encode()
    cohort, report = validate_data(("huge.csv", content), config=DataConfig(layout="long"))
    assert cohort is not None
    _short(report)
    header = ("h" * 300_000 + ",b,c\n1,2,3\n4,5,6\n").encode()
    info = inspect_columns(("cols.csv", header))
    assert info["error"] is not None and len(info["error"]) < 3000 and "300,000 characters" in info["error"]
    _, report = validate_data(("cols.csv", header))
    _short(report)


# -- 4. inputs that used to raise a traceback --------------------------------------------------

def test_bom_followed_by_latin1_bytes_is_refused_by_line():
    content = b"\xef\xbb\xbf" + (HEADER + "p\xe91,1,HR,80\np\xe91,2,HR,81\n").encode("latin-1")
    message = unreadable(("bom.csv", content))
    assert "mixes two text encodings" in message and "line(s) 2, 3" in message and "UTF-8" in message


def test_physionet_zip_with_a_lowercase_header_is_read():
    files = {f"set-a/{rid}.txt": f"time,parameter,value\n00:00,recordid,{rid}\n00:10,HR,80\n01:00,HR,82\n".encode()
             for rid in (132539, 132540, 132541)}
    cohort, report = validate_data(("set-a.zip", zipped(files)))
    assert cohort is not None and sorted(cohort.patient_ids) == ["132539", "132540", "132541"]
    assert "recordid" not in {str(v).lower() for v in cohort.series_variables}
    assert_accounting(report)


@pytest.mark.parametrize("content", [csv_bytes(), (HEADER + "p1,,HR,80\np2,,HR,81\n").encode()],
                         ids=["numeric_times", "empty_times"])
def test_time_format_hhmm_on_times_that_are_not_hhmm_is_a_finding(content):
    cohort, report = validate_data(("events.csv", content), config=DataConfig(time_format="hhmm"))
    assert cohort is None
    [f] = [f for f in report.errors if f.code == "time_unparseable"]
    assert "could not be parsed as hhmm" in f.message and "--time-format" in f.fix


def test_cli_time_format_hhmm_on_numeric_times_exits_2(tmp_path, capsys):
    path = tmp_path / "events.csv"
    path.write_bytes(csv_bytes())
    assert main(["validate", str(path), "--time-format", "hhmm"]) == 2
    out = capsys.readouterr()
    assert "could not be parsed as hhmm" in out.out and "Traceback" not in out.out + out.err


def _pq_events(patient_id: pa.Array, time_col: pa.Array | None = None) -> tuple[str, bytes]:
    n = len(patient_id)
    time_col = time_col if time_col is not None else pa.array([float(i % 3) for i in range(n)])
    return ("events.parquet", parquet_bytes(pa.table({"patient_id": patient_id, "time": time_col,
                                                      "variable": ["HR"] * n, "value": [80.0] * n})))


def test_parquet_binary_ids_are_read_as_text():
    cohort, report = validate_data(_pq_events(pa.array([b"a", b"b"] * 3, pa.binary())))
    assert cohort is not None and sorted(cohort.patient_ids) == ["a", "b"]
    assert_accounting(report)


def test_parquet_binary_ids_that_are_not_text_are_refused():
    message = unreadable(_pq_events(pa.array([b"\xff\xfe", b"\x00"] * 3, pa.binary())))
    assert "'patient_id'" in message and "binary data that is not UTF-8" in message


def test_parquet_list_ids_are_refused():
    message = unreadable(_pq_events(pa.array([[1], [2, 3]] * 3)))
    assert "['patient_id']" in message and "lists" in message


def test_parquet_all_null_timestamps_are_a_finding():
    cohort, report = validate_data(_pq_events(pa.array(["a", "b"] * 3), pa.array([None] * 6, pa.timestamp("us"))))
    assert cohort is None
    assert "time_unparseable" in report.codes() and report.rows_excluded == {"bad_time": 6}


def test_parquet_named_index_is_kept_not_dropped():
    import pandas as pd
    frame = pd.DataFrame({"patient_id": ["a", "a", "b"], "time": [0.0, 1.0, 0.0], "variable": "HR",
                          "value": [80.0, 81.0, 82.0]}).set_index("patient_id")
    buf = io.BytesIO()
    frame.to_parquet(buf)
    cohort, _ = validate_data(("events.parquet", buf.getvalue()))
    assert cohort is not None and sorted(cohort.patient_ids) == ["a", "b"]


# -- 5. mixed encodings ------------------------------------------------------------------------

def test_one_latin1_line_in_a_utf8_file_is_refused_with_its_line():
    content = (HEADER + "pé1,1,HR,80\n" * 3).encode() + "pé1,4,HR,80\n".encode("latin-1")
    message = unreadable(("mixed.csv", content))
    assert "line(s) 5 " in message and "byte 0xe9" in message and "Re-save the whole file as UTF-8" in message


def test_a_file_entirely_in_latin1_is_still_read():
    content = (HEADER + "pé1,1,HR,80\npé1,2,HR,81\npé2,1,HR,82\n").encode("latin-1")
    cohort, report = validate_data(("latin.csv", content))
    assert cohort is not None and "pé1" in cohort.patient_ids
    assert any("Latin-1" in f.message for f in report.findings)


# -- 6. duplicate headers ----------------------------------------------------------------------

@pytest.mark.parametrize("header", ["patient_id,time,HR,HR", "patient_id,time,HR, HR", '"patient_id","time","HR","HR"'])
def test_duplicate_header_is_a_blocking_error_naming_the_column(header):
    message = unreadable(("dup.csv", f"{header}\np1,1,80,81\np1,2,80,81\n".encode()))
    assert "'HR' appears more than once" in message and "columns 3 and 4" in message


def test_duplicate_header_in_the_labels_file_is_named():
    labels = ("labels.csv", b"patient_id,died,died\np0,1,0\np1,0,0\n")
    _, report = validate_data(("events.csv", csv_bytes()), labels, config=DataConfig(target="died"))
    [f] = [f for f in report.errors if f.code == "unreadable_labels"]
    assert "'died' appears more than once" in f.message


# -- 7. an outlier date-time does not anchor the patient's clock -----------------------------

def test_year_0001_is_excluded_and_the_real_rows_kept():
    content = (HEADER + "p1,0001-01-01 00:00,HR,80\n"
               + "".join(f"p1,2024-01-01 {h:02d}:00,HR,{70 + h}\n" for h in range(12))).encode()
    cohort, report = validate_data(("dates.csv", content))
    assert cohort is not None and len(cohort.events) == 12
    assert cohort.events["time_hours"].tolist() == [float(h) for h in range(12)]
    assert report.rows_excluded == {"absurd_time": 1}
    [f] = [f for f in report.findings if f.code == "absurd_time"]
    assert "before 1900" in f.message and f.examples[0].startswith("row 2:")
    assert_accounting(report)


def test_a_date_far_before_the_patient_bulk_is_excluded():
    content = (HEADER + "p1,2015-03-01 00:00,HR,80\n"
               + "".join(f"p1,2024-01-01 {h:02d}:00,HR,{70 + h}\n" for h in range(5))
               + "".join(f"p2,2024-02-01 {h:02d}:00,HR,{70 + h}\n" for h in range(3))).encode()
    cohort, report = validate_data(("dates.csv", content))
    assert cohort is not None and len(cohort.events) == 8
    assert report.rows_excluded == {"absurd_time": 1}
    assert_accounting(report)
