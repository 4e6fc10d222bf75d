"""Tests for core.data.ingest / core.data.readers: every input format and every validation rule of issue #2.

Inputs are built in code (``tests/helpers/data_files.py``): a clean long cohort of 30 patients,
corrupted per case. Bad inputs assert the finding's code *and* its message; accepted inputs
assert the row accounting ``rows_read == rows_used + sum(rows_excluded)``.
"""
from __future__ import annotations

import io
import random

import numpy as np
import pandas as pd
import pytest

from core.config import DataConfig
from core.exceptions import ValidationFailed
from core.data.ingest import inspect_columns, load_cohort, parse_time_hours, validate_data
from tests.helpers.data_files import (PN_OUTCOMES_HEADER, TARGET, csv_text, gzip_bytes, labels_frame, long_rows,
                                      patient_ids, physionet_files, to_csv_bytes, write, write_folder, xlsx_bytes,
                                      zip_bytes)

CFG = DataConfig(target=TARGET)
PN_CFG = DataConfig(target="In-hospital_death")


# -- helpers ------------------------------------------------------------------------------

def events(frame: pd.DataFrame, name: str = "events.csv") -> tuple[str, bytes]:
    return (name, to_csv_bytes(frame))


def labels(frame: pd.DataFrame | None = None, name: str = "labels.csv") -> tuple[str, bytes]:
    return (name, to_csv_bytes(labels_frame() if frame is None else frame))


def corrupt(cells: dict[tuple[int, str], object]) -> pd.DataFrame:
    """The clean long cohort with some cells replaced (as text, like a real export)."""
    frame = long_rows().astype({"time": object, "value": object, "variable": object, "patient_id": object})
    for (row, col), v in cells.items():
        frame.at[row, col] = v
    return frame


def assert_accounting(report) -> None:
    assert report.rows_read > 0
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values()), report.to_text()


def finding(report, code: str):
    found = [f for f in report.findings if f.code == code]
    assert found, f"no finding {code!r}; got {sorted(report.codes())}\n{report.to_text()}"
    return found[0]


def assert_accepted(cohort, report, n_patients: int = 30, n_pos: int = 10) -> None:
    assert cohort is not None, report.to_text()
    assert report.ok, report.to_text()
    assert cohort.n_patients == n_patients
    assert int(cohort.labels.loc[cohort.labelled_ids].sum()) == n_pos
    assert_accounting(report)


# -- the clean baseline -------------------------------------------------------------------

def test_clean_long_cohort_is_accepted_without_warnings():
    cohort, report = validate_data(events(long_rows()), labels(), config=CFG)
    assert_accepted(cohort, report)
    assert not report.warnings
    assert cohort.series_variables == ["HR", "MAP", "Temp"]
    assert cohort.static_variables == ["Age", "Gender"]  # given at time 0: static, not series
    assert report.rows_used == 420 and report.rows_excluded == {}
    assert cohort.static.loc["1003", "Age"] == 43.0
    assert list(cohort.events.columns) == ["patient_id", "time_hours", "variable", "value"]
    assert report.summary["positives"] == 10


def test_load_cohort_strict_returns_and_raises():
    assert load_cohort(events(long_rows()), labels(), config=CFG).n_patients == 30
    with pytest.raises(ValidationFailed, match="too_few|Too few") as info:
        load_cohort(events(long_rows(8)), labels(labels_frame(patient_ids(8))), config=CFG)
    assert "too_few" in info.value.report.codes()


# -- formats that must load into the same cohort ------------------------------------------

def _parquet(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def _iso(frame: pd.DataFrame, sep: str = "T") -> pd.DataFrame:
    # each patient admitted on a different day: hours count from each patient's first record
    start = {p: pd.Timestamp("2024-01-01 08:00") + pd.Timedelta(days=i, minutes=17 * i)
             for i, p in enumerate(patient_ids())}
    return frame.assign(time=[(start[p] + pd.Timedelta(hours=t)).isoformat(sep=sep)
                              for p, t in zip(frame.patient_id, frame.time)])


def _renamed_temp(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(variable=frame["variable"].replace({"Temp": "Température"}))


FORMATS = {
    "csv": lambda ev: events(ev),
    "csv_gz": lambda ev: ("events.csv.gz", gzip_bytes(to_csv_bytes(ev))),
    "parquet": lambda ev: ("events.parquet", _parquet(ev)),
    "parquet_gz": lambda ev: ("events.parquet.gz", gzip_bytes(_parquet(ev))),
    "zip_one_csv": lambda ev: ("events.zip", zip_bytes({"events.csv": to_csv_bytes(ev)})),
    "semicolon_decimal_comma": lambda ev: ("events.csv", csv_text(ev, sep=";", decimal=",").encode()),
    "tab": lambda ev: ("events.tsv", csv_text(ev, sep="\t").encode()),
    "utf8_bom": lambda ev: ("events.csv", b"\xef\xbb\xbf" + to_csv_bytes(ev)),
    "crlf": lambda ev: ("events.csv", csv_text(ev, line_end="\r\n").encode()),
    "latin1": lambda ev: ("events.csv", csv_text(_renamed_temp(ev)).encode("latin-1")),
    "latin1_semicolon_crlf": lambda ev: ("events.csv", csv_text(_renamed_temp(ev), sep=";", decimal=",",
                                                                 line_end="\r\n").encode("latin-1")),
    "bom_semicolon_crlf": lambda ev: ("events.csv", b"\xef\xbb\xbf" + csv_text(
        _renamed_temp(ev), sep=";", decimal=",", line_end="\r\n").encode()),
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_file_format_loads_the_same_cohort(fmt):
    ev = long_rows()
    ref, _ = validate_data(events(ev), labels(), config=CFG)
    cohort, report = validate_data(FORMATS[fmt](ev), labels(), config=CFG)
    assert_accepted(cohort, report)
    assert report.rows_used == 420
    assert len(cohort.series_variables) == 3 and cohort.static_variables == ["Age", "Gender"]
    if "latin1" in fmt or fmt == "bom_semicolon_crlf":
        assert "Température" in cohort.series_variables  # é decoded, not mangled
    np.testing.assert_allclose(np.sort(cohort.events["value"].to_numpy()), np.sort(ref.events["value"].to_numpy()))
    np.testing.assert_allclose(cohort.events["time_hours"].to_numpy(), ref.events["time_hours"].to_numpy())


@pytest.mark.parametrize("fmt, note", [("utf8_bom", "UTF-8 with BOM"), ("latin1", "Latin-1"),
                                       ("crlf", "CRLF"), ("semicolon_decimal_comma", "decimal commas")])
def test_read_notes_say_what_was_detected(fmt, note):
    _, report = validate_data(FORMATS[fmt](long_rows()), labels(), config=CFG)
    assert any(note in f.message for f in report.findings if f.code == "read"), report.to_text()


@pytest.mark.parametrize("time_format, make_time, expected", [
    ("hours", lambda p, t: t + 0.5, [0.5, 1.5, 2.5, 3.5]),
    ("hhmm", lambda p, t: f"{int(t):02d}:30", [0.5, 1.5, 2.5, 3.5]),
    ("hhmmss", lambda p, t: f"{int(t):02d}:30:36", [0.51, 1.51, 2.51, 3.51]),
])
def test_elapsed_time_formats(time_format, make_time, expected):
    ev = long_rows()
    ev["time"] = [make_time(p, t) for p, t in zip(ev.patient_id, ev.time)]
    cohort, report = validate_data(events(ev), labels(), config=CFG)
    assert_accepted(cohort, report)
    np.testing.assert_allclose(sorted(cohort.events["time_hours"].unique()), expected)


@pytest.mark.parametrize("sep", ["T", " "])
def test_iso_datetimes_become_hours_since_each_patients_first_record(sep):
    cohort, report = validate_data(events(_iso(long_rows(), sep)), labels(), config=CFG)
    assert_accepted(cohort, report)
    assert any("date-times" in f.message for f in report.findings if f.code == "time_format")
    t = cohort.events.groupby("patient_id", observed=True)["time_hours"]
    np.testing.assert_allclose(t.min(), 0.0)
    np.testing.assert_allclose(t.max(), 3.0)


@pytest.mark.parametrize("tz", [None, "Europe/Paris"])
def test_parquet_datetime_column(tz):
    ev = _iso(long_rows())
    ev["time"] = pd.to_datetime(ev["time"])
    if tz:
        ev["time"] = ev["time"].dt.tz_localize(tz)
    cohort, report = validate_data(("events.parquet", _parquet(ev)), labels(), config=CFG)
    assert_accepted(cohort, report)
    assert cohort.events["time_hours"].max() == 3.0


def test_parse_time_hours_directly():
    pids = pd.Series(["a"] * 6)
    hours, fmt = parse_time_hours(pd.Series(["00:00", "01:30", "12:00", "24:15", "47:59", "01:75"]), pids)
    assert fmt == "hhmm"
    np.testing.assert_allclose(hours[:5], [0.0, 1.5, 12.0, 24.25, 47 + 59 / 60])
    assert np.isnan(hours[5])  # 75 minutes is not a time
    pids = pd.Series(["a", "a", "b"])
    hours, fmt = parse_time_hours(pd.Series(["2024-01-01T10:00", "2024-01-01T12:30", "2024-03-01T00:00"]), pids)
    assert fmt == "datetime"
    np.testing.assert_allclose(hours, [0.0, 2.5, 0.0])


def test_wide_layout_with_constant_column_as_static():
    ev = long_rows()
    wide = ev.pivot_table(index=["patient_id", "time"], columns="variable", values="value").reset_index()
    wide["Age"] = wide.groupby("patient_id")["Age"].transform("first")  # repeated on every row
    wide = wide.drop(columns=["Gender"])
    wide["unit_id"] = 3.0  # constant within every patient, unknown name
    wide.loc[wide.index % 7 == 0, "HR"] = np.nan  # sparse: an empty cell means "not measured"
    cohort, report = validate_data(events(wide, "wide.csv"), labels(), config=CFG)
    assert_accepted(cohort, report)
    assert report.summary["format"].endswith("wide layout")
    assert cohort.series_variables == ["HR", "MAP", "Temp"]
    assert set(cohort.static_variables) == {"Age", "unit_id"}
    assert "Age" not in cohort.series_variables and "unit_id" not in cohort.series_variables
    assert cohort.static.loc["1005", "Age"] == 45.0
    assert "static_columns" in report.codes()


def test_wide_layout_sets_aside_outcome_columns_and_counts_their_cells():
    wide = long_rows().pivot_table(index=["patient_id", "time"], columns="variable", values="value").reset_index()
    wide["Age"] = wide.groupby("patient_id")["Age"].transform("first")
    wide = wide.drop(columns=["Gender"])
    wide["length_of_stay"] = np.where(wide.index % 2 == 0, 4.0, 5.0)
    cohort, report = validate_data(events(wide, "wide.csv"), labels(), config=CFG)
    assert_accepted(cohort, report)
    f = finding(report, "leakage_columns")
    assert f.level == "warning" and "length_of_stay" in f.message and "never be used as features" in f.message
    assert report.rows_excluded["leakage_columns"] == len(wide)
    assert "length_of_stay" not in cohort.series_variables + cohort.static_variables


def test_labels_from_a_constant_column_of_the_events():
    ev = long_rows().merge(labels_frame(), on="patient_id")
    cohort, report = validate_data(events(ev), None, config=CFG)
    assert_accepted(cohort, report)
    assert "target_in_events" in report.codes()
    assert TARGET not in cohort.series_variables + cohort.static_variables


def test_labels_column_that_changes_within_a_patient_is_refused():
    ev = long_rows().merge(labels_frame(), on="patient_id")
    ev.loc[3, TARGET] = 1 - ev.loc[3, TARGET]
    _, report = validate_data(events(ev), None, config=CFG)
    f = finding(report, "target_not_constant")
    assert f.level == "error" and "changes within a patient" in f.message and f.examples == ("patient 1000",)
    assert "--labels" in f.fix
    assert "no_target" not in report.codes()  # the column exists: no contradictory "not found" message


def test_column_overrides_for_nonstandard_names():
    ev = long_rows().rename(columns={"patient_id": "Kennung", "time": "Zeit", "variable": "Messgroesse",
                                     "value": "Wert"})
    _, report = validate_data(events(ev), labels(), config=CFG)
    assert "columns" in report.codes() and not report.ok
    cfg = DataConfig(target=TARGET, patient_col="Kennung", time_col="Zeit", variable_col="Messgroesse",
                     value_col="Wert")
    cohort, report = validate_data(events(ev), labels(), config=cfg)
    assert_accepted(cohort, report)
    assert inspect_columns(events(ev), labels(), config=cfg)["mapping"].patient == "Kennung"


@pytest.mark.parametrize("names", [("subject_id", "charttime", "label", "valuenum"),
                                   ("RecordID", "Hours", "Parameter", "Value")])
def test_common_column_names_are_auto_detected(names):
    ev = long_rows()
    ev.columns = list(names)
    ev[names[1]] = ev[names[1]] if names[1] == "Hours" else _iso(long_rows())["time"]
    cohort, report = validate_data(events(ev), labels(), config=CFG)
    assert_accepted(cohort, report)
    out = inspect_columns(events(ev), labels())
    assert out["mapping"].patient == names[0] and out["target_guess"] == TARGET


def test_override_naming_a_missing_column_lists_the_columns_found():
    cohort, report = validate_data(events(long_rows()), labels(), config=DataConfig(target=TARGET, patient_col="pid"))
    assert cohort is None
    f = finding(report, "columns")
    assert f.level == "error"
    assert "'pid'" in f.message and "--patient-col" in f.message
    assert "Columns found: 'patient_id', 'time', 'variable', 'value'" in f.message


def test_unrecognised_columns_are_refused_with_the_columns_found():
    cohort, report = validate_data(("events.csv", b"a,b,c\n1,2,3\n4,5,6\n"), None)
    assert cohort is None
    f = finding(report, "columns")
    assert "No patient id column" in f.message and "'a', 'b', 'c'" in f.message and "--patient-col" in f.message


# -- PhysioNet 2012 layout ----------------------------------------------------------------

def _check_physionet(cohort, report):
    assert_accepted(cohort, report)
    assert report.summary["format"].startswith("physionet")
    assert cohort.static_variables == ["Age", "Gender", "Height", "ICUType", "Weight"]
    assert cohort.series_variables == ["HR", "Temp", "Weight"]  # Weight re-measured: stays a series too
    assert "RecordID" not in cohort.series_variables
    assert np.isnan(cohort.static.loc["132539", "Height"])  # -1 = unknown
    assert cohort.static.loc["132540", "Height"] == 171.0
    assert finding(report, "static_sentinel").level == "warning"
    leak = finding(report, "leakage_outcomes")
    assert "Length_of_stay" in leak.message and "Survival" in leak.message and "never used as features" in leak.message
    features = set(cohort.static_variables) | set(cohort.series_variables)
    assert not features & {"Length_of_stay", "Survival", "SAPS-I", "SOFA", "In-hospital_death"}
    assert {"Length_of_stay", "Survival"} <= set(cohort.other_outcomes.columns)


def test_physionet_folder(tmp_path):
    root = write_folder(tmp_path / "physionet", physionet_files())
    assert (root / "set-a" / "132539.txt").read_text().startswith("Time,Parameter,Value\n00:00,RecordID,132539\n")
    assert (root / "Outcomes-a.txt").read_text().startswith(PN_OUTCOMES_HEADER)
    _check_physionet(*validate_data(root, None, config=PN_CFG))


def test_physionet_zip_path_and_upload(tmp_path):
    content = zip_bytes(physionet_files())
    _check_physionet(*validate_data(("set-a.zip", content), None, config=PN_CFG))
    _check_physionet(*validate_data(write(tmp_path / "set-a.zip", content), None, config=PN_CFG))


def test_physionet_outcome_target_is_guessed():
    out = inspect_columns(("set-a.zip", zip_bytes(physionet_files())))
    assert out["error"] is None and out["target_guess"] == "In-hospital_death"
    assert out["mapping"].layout == "long"


def test_physionet_files_with_bom_crlf_and_latin1_are_read():
    files = physionet_files()
    files["set-a/132540.txt"] = b"\xef\xbb\xbf" + files["set-a/132540.txt"].replace(b"\n", b"\r\n")
    files["set-a/132541.txt"] = files["set-a/132541.txt"].replace(b"Temp", "Temp\u00e9".encode("latin-1"))
    cohort, report = validate_data(("set-a.zip", zip_bytes(files)), None, config=PN_CFG)
    assert_accepted(cohort, report)
    assert "Temp\u00e9" in cohort.series_variables and "132540" in cohort.patient_ids


def test_malformed_physionet_file_is_named_not_a_traceback():
    files = physionet_files()
    files["set-a/132540.txt"] += b"01:00,HR,80,extra\n"
    cohort, report = validate_data(("set-a.zip", zip_bytes(files)), None, config=PN_CFG)
    assert cohort is None
    f = finding(report, "unreadable_events")
    assert "132540.txt" in f.message and "Time,Parameter,Value" in f.message and "line 17" in f.message


# -- files that cannot be read ------------------------------------------------------------

GOOD_GZ = gzip_bytes(to_csv_bytes(long_rows()))
UNREADABLE = {
    "random_bytes": (("events.csv", random.Random(0).randbytes(4096)), "binary"),
    "random_high_bytes": (("events.csv", bytes(range(128, 256)) * 16), "not readable text"),
    "truncated_gzip": (("events.csv.gz", GOOD_GZ[: len(GOOD_GZ) // 2]), "gzip"),
    "xlsx_saved_as_csv": (("events.csv", xlsx_bytes()), "Excel workbook"),
    "xls_saved_as_csv": (("events.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512)), "Excel"),
    "html_saved_as_csv": (("events.csv", b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
                                         b"<body>Please log in</body></html>\n"), "web page"),
    "empty_file": (("events.csv", b""), "empty"),
    "blank_lines": (("events.csv", b"\n \n\n"), "blank lines"),
    "header_only": (("events.csv", b"patient_id,time,variable,value\n"), "no data rows"),
    "header_only_crlf": (("events.csv", b"patient_id,time,variable,value\r\n\r\n"), "no data rows"),
    "one_column": (("events.csv", b"hello\nworld\n"), "only one column"),
    "ragged_rows": (("events.csv", b"patient_id,time,variable,value\n1,0,HR,80\n1,1,HR,80,5,6\n"), "malformed"),
    "corrupt_parquet": (("events.parquet", b"PAR1" + bytes(64)), "Parquet"),
    "corrupt_zip": (("events.zip", zip_bytes({"a.csv": b"1,2\n"})[:30]), "zip"),
    "zip_without_tables": (("events.zip", zip_bytes({"notes.bin": b"123"})), "no .txt/.csv"),
    "empty_gzip": (("events.csv.gz", gzip_bytes(b"")), "empty"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_events_are_refused_with_the_reason(case):
    source, needle = UNREADABLE[case]
    cohort, report = validate_data(source, labels(), config=CFG)
    assert cohort is None and not report.ok
    f = finding(report, "unreadable_events")
    assert f.level == "error"
    assert needle in f.message, f.message
    assert source[0] in f.message  # where
    assert f.fix


def test_unreadable_labels_and_missing_paths(tmp_path):
    _, report = validate_data(events(long_rows()), ("labels.csv", b""), config=CFG)
    assert "empty" in finding(report, "unreadable_labels").message and not report.ok
    _, report = validate_data(tmp_path / "nope.csv", None)
    assert "File not found" in finding(report, "unreadable_events").message
    (tmp_path / "empty_dir").mkdir()
    _, report = validate_data(tmp_path / "empty_dir", None)
    assert "no .txt or .csv" in finding(report, "unreadable_events").message


def test_reading_never_modifies_the_input(tmp_path):
    paths = [write(tmp_path / "events.csv", to_csv_bytes(long_rows())),
             write(tmp_path / "labels.csv", to_csv_bytes(labels_frame())),
             write(tmp_path / "bad.csv.gz", GOOD_GZ[:100])]
    folder = write_folder(tmp_path / "pn", physionet_files(5))
    paths += sorted(p for p in folder.rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in paths}
    validate_data(paths[0], paths[1], config=CFG)
    validate_data(paths[2], None)
    validate_data(folder, None)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in paths} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv.gz", "events.csv", "labels.csv", "pn"]


# -- row-level problems: excluded, counted, explained --------------------------------------

ROW_CASES = {
    # case: (cells to corrupt, code, message needle, n excluded, example needle)
    "non_numeric_value": ({(5, "value"): "abc", (9, "value"): "high"}, "non_numeric_value", "not a number", 2,
                          "value_raw='abc'"),
    "nan_value": ({(5, "value"): "nan", (6, "value"): ""}, "missing_value", "NaN", 2, "row 7"),
    "inf_value": ({(5, "value"): "inf", (6, "value"): "-inf"}, "infinite_value", "infinite", 2, "inf"),
    "unparseable_time": ({(5, "time"): "soon", (9, "time"): "x"}, "bad_time", "could not be parsed", 2,
                         "time_raw='soon'"),
    "negative_time": ({(5, "time"): -2.0, (9, "time"): -5.0}, "negative_time", "negative time", 2, "row 7"),
    "absurd_time": ({(5, "time"): 1e6}, "absurd_time", "absurd time", 1, "1000000.0"),
    "empty_variable": ({(5, "variable"): "", (9, "variable"): "  "}, "empty_variable", "empty variable name", 2,
                       "row 7"),
    "missing_patient_id": ({(5, "patient_id"): ""}, "missing_patient_id", "without a patient id", 1, "row 7"),
    "sentinel_in_series": ({(5, "value"): -1.0, (9, "value"): -1}, "sentinel_value", "unknown", 2, "value=-1.0"),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_bad_rows_are_excluded_counted_and_explained(case):
    cells, code, needle, n, example = ROW_CASES[case]
    cohort, report = validate_data(events(corrupt(cells)), labels(), config=CFG)
    assert_accepted(cohort, report)  # messy but usable: accepted with a warning
    f = finding(report, code)
    assert f.level == "warning"
    assert needle in f.message and "excluded" in f.message, f.message
    assert f.count == n and report.rows_excluded == {code: n}
    assert any(example in e for e in f.examples), f.examples  # where: row number / value
    assert any("row" in e or "patient" in e for e in f.examples)
    assert f.fix  # how to fix
    assert len(cohort.events) + 60 == 420 - n


def test_example_rows_are_file_lines():
    _, report = validate_data(events(corrupt({(0 + 5, "value"): "abc"})), labels(), config=CFG)
    # data row index 5 sits on line 7 (header is line 1)
    assert finding(report, "non_numeric_value").examples[0].startswith("row 7: patient_id='1000'")


def test_mostly_unparseable_times_are_an_error():
    ev = long_rows().assign(time="later")
    cohort, report = validate_data(events(ev), labels(), config=CFG)
    assert cohort is None and not report.ok
    f = finding(report, "time_unparseable")
    assert f.level == "error" and "could not be parsed" in f.message and "--time-format" in f.fix
    assert report.rows_excluded["bad_time"] == 420 and report.rows_read == 420


def test_duplicate_rows_are_kept_once_and_counted():
    ev = long_rows()
    ev = pd.concat([ev, ev.iloc[[5, 6, 7]]], ignore_index=True)
    cohort, report = validate_data(events(ev), labels(), config=CFG)
    assert_accepted(cohort, report)
    f = finding(report, "duplicate_row")
    assert f.level == "warning" and "duplicate" in f.message.lower() and f.count == 3
    assert f.examples[0].startswith("row 422")
    assert report.rows_excluded == {"duplicate_row": 3} and len(cohort.events) == 360


def test_sentinel_kept_when_the_variable_has_real_negative_values():
    extra = pd.DataFrame({"patient_id": ["1000", "1001", "1002"], "time": 1.0, "variable": "BaseExcess",
                          "value": [-1.0, -3.0, 2.0]})
    cohort, report = validate_data(events(pd.concat([long_rows(), extra], ignore_index=True)), labels(), config=CFG)
    assert_accepted(cohort, report)
    assert "sentinel_value" not in report.codes()
    be = cohort.events[cohort.events["variable"] == "BaseExcess"]["value"]
    assert sorted(be) == [-3.0, -1.0, 2.0]


def test_sentinel_in_static_becomes_missing():
    cohort, report = validate_data(events(corrupt({(0, "value"): -1.0})), labels(), config=CFG)  # row 0: Age
    assert_accepted(cohort, report)
    f = finding(report, "static_sentinel")
    assert f.level == "warning" and "Age" in f.message and f.examples == ("patient 1000",) and "--sentinel" in f.fix
    assert np.isnan(cohort.static.loc["1000", "Age"])


def test_sentinel_handling_can_be_disabled():
    cells = {(0, "value"): -1.0, (5, "value"): -1.0}
    # with 'unknown' codes off, -1 is just a value: implausible for Age, so kept only when asked
    cohort, report = validate_data(events(corrupt(cells)), labels(),
                                   config=DataConfig(target=TARGET, sentinel_values=(), keep_implausible=True))
    assert_accepted(cohort, report)
    assert not {"sentinel_value", "static_sentinel"} & report.codes()
    assert cohort.static.loc["1000", "Age"] == -1.0
    assert report.rows_excluded == {}
    _, strict = validate_data(events(corrupt(cells)), labels(), config=DataConfig(target=TARGET, sentinel_values=()))
    assert strict.rows_excluded.get("implausible_value", 0) >= 1


def test_custom_sentinel_value():
    cohort, report = validate_data(events(corrupt({(5, "value"): -99.0})), labels(),
                                   config=DataConfig(target=TARGET, sentinel_values=(-99,)))
    assert_accepted(cohort, report)
    assert "-99" in finding(report, "sentinel_value").message and report.rows_excluded == {"sentinel_value": 1}


def test_outcome_like_variable_in_events_is_excluded_and_counted():
    leak = pd.DataFrame({"patient_id": patient_ids()[:4], "time": 2.0, "variable": "mortality", "value": 1.0})
    cohort, report = validate_data(events(pd.concat([long_rows(), leak], ignore_index=True)), labels(), config=CFG)
    assert_accepted(cohort, report)
    f = finding(report, "leakage_variable")
    assert "mortality" in f.message and "never become features" in f.message and f.count == 4
    assert report.rows_excluded == {"leakage_variable": 4}
    assert "mortality" not in cohort.series_variables + cohort.static_variables


# -- labels and target ---------------------------------------------------------------------

def test_outcome_columns_of_labels_file_never_become_features():
    lab = labels_frame().assign(length_of_stay=5, survival=-1)
    cohort, report = validate_data(events(long_rows()), labels(lab), config=CFG)
    assert_accepted(cohort, report)
    f = finding(report, "leakage_outcomes")
    assert f.level == "warning" and "length_of_stay" in f.message and "survival" in f.message
    assert "never used as features" in f.message
    assert not {"length_of_stay", "survival"} & set(cohort.static.columns)
    assert not {"length_of_stay", "survival"} & set(cohort.events["variable"].astype(str))
    assert list(cohort.other_outcomes.columns) == ["length_of_stay", "survival"]


def test_patients_without_labels_are_kept_but_reported():
    lab = labels_frame(patient_ids()[:27])
    cohort, report = validate_data(events(long_rows()), labels(lab), config=CFG)
    assert report.ok and cohort.n_patients == 30 and len(cohort.labelled_ids) == 27
    f = finding(report, "patients_without_labels")
    assert f.level == "warning" and f.count == 3 and f.unit == "patients"
    assert f.examples == ("patient 1027", "patient 1028", "patient 1029") and "labels file" in f.fix
    assert_accounting(report)


def test_labels_without_patients_are_reported():
    lab = labels_frame(patient_ids() + ["9998", "9999"])
    cohort, report = validate_data(events(long_rows()), labels(lab), config=CFG)
    assert_accepted(cohort, report)
    f = finding(report, "labels_without_patients")
    assert f.count == 2 and "no data in the events file" in f.message and "patient 9998" in f.examples


def test_labels_matching_no_patient_is_an_error():
    lab = pd.DataFrame({"patient_id": ["a", "b"], TARGET: [0, 1]})
    _, report = validate_data(events(long_rows()), labels(lab), config=CFG)
    f = finding(report, "ids_disjoint")
    assert f.level == "error" and "No patient id of the labels file matches" in f.message and "same patient id" in f.fix


def test_empty_label_is_unlabelled_not_guessed():
    lab = labels_frame().astype({TARGET: object})
    lab.loc[[1, 2], TARGET] = ""
    cohort, report = validate_data(events(long_rows()), labels(lab), config=CFG)
    assert report.ok and len(cohort.labelled_ids) == 28
    assert finding(report, "label_missing").count == 2


@pytest.mark.parametrize("values, code, needle", [
    ([i % 3 for i in range(30)], "target_not_binary", "3 distinct values (0, 1, 2)"),
    ([1 + (i % 3 == 0) for i in range(30)], "target_not_binary", "two values [1, 2], not 0/1"),
    (["b" if i % 3 == 0 else "a" for i in range(30)], "target_not_numeric", "not 0/1"),
    ([0] * 30, "one_class", "single class"),
    ([1 if i < 3 else 0 for i in range(30)], "too_few", "3 positive"),
])
def test_target_must_be_binary_with_two_classes(values, code, needle):
    lab = labels_frame().assign(**{TARGET: values})
    _, report = validate_data(events(long_rows()), labels(lab), config=CFG)
    assert not report.ok
    f = finding(report, code)
    assert f.level == "error" and needle in f.message and TARGET in f.message and f.fix


def test_text_labels_yes_no_are_read_as_binary():
    lab = labels_frame().assign(**{TARGET: ["died" if i % 3 == 0 else "alive" for i in range(30)]})
    cohort, report = validate_data(events(long_rows()), labels(lab), config=CFG)
    assert_accepted(cohort, report)
    assert "target_text" in report.codes()


def test_too_few_patients_to_train_and_test():
    _, report = validate_data(events(long_rows(12)), labels(labels_frame(patient_ids(12))), config=CFG)
    f = finding(report, "too_few")
    assert f.level == "error" and "12 patients" in f.message and "at least 20 patients" in f.message
    assert_accounting(report)


@pytest.mark.parametrize("cfg, lab, code, needle", [
    (DataConfig(target="zzz"), None, "no_target", "'zzz' is neither a column"),
    (DataConfig(target="zzz"), "labels", "no_target", "'zzz' is not in labels.csv"),
    (DataConfig(target=TARGET, label_patient_col="who"), "labels", "labels_columns", "'who'"),
])
def test_target_or_label_columns_not_found(cfg, lab, code, needle):
    _, report = validate_data(events(long_rows()), labels() if lab else None, config=cfg)
    f = finding(report, code)
    assert f.level == "error" and needle in f.message and f.fix


def test_no_target_means_exploration_only():
    cohort, report = validate_data(events(long_rows()), None, config=DataConfig())
    assert cohort is not None and cohort.labels is None and report.ok
    assert report.summary["target"] == "none (exploration only)"


@pytest.mark.parametrize("stamp", ["0130-01-01", "0505-01-01 00:00", "9999-12-31T23:59", "00:c0"])
def test_out_of_range_datetimes_are_unparseable_not_a_crash(stamp):
    """Found by fuzzing: pandas may infer a coarse unit for odd years and overflow in arithmetic."""
    raw = pd.Series(["2024-01-01T00:00", stamp, "2024-01-01T02:30"])
    hours, fmt = parse_time_hours(raw, pd.Series(["a", "a", "a"]), "datetime")
    assert fmt == "datetime" and hours.dtype == np.float64 and not np.isinf(hours).any()
    frame = long_rows()
    frame["time"] = "2024-01-01T00:00"
    frame.loc[3, "time"] = stamp
    cohort, report = validate_data(events(frame), labels(), config=DataConfig(target=TARGET, time_format="datetime"))
    assert cohort is not None
    assert_accounting(report)
    assert report.codes() & {"bad_time", "absurd_time"}   # the odd row is reported, not silently kept


# -- ids that differ only by surrounding whitespace (issue 21, item 7) ----------------------------------------

_PADDED = ["1", " 1", "1 ", "\t1"] + [str(i) for i in range(2, 14)]      # 16 spellings, 13 patients


def _padded_csv(ids: list[str], sep: str = ",", value: str = "80") -> bytes:
    lines = [sep.join(["patient_id", "time", "variable", "value"])]
    lines += [sep.join([p, str(h), "HR", value]) for p in ids for h in range(2)]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("ids, sep, value, parser", [
    (_PADDED, ",", "80", "text ids (pyarrow)"),
    (["1", " 1", "1 "] + [str(i) for i in range(2, 14)], ",", "80", "ids read as numbers (pyarrow)"),
    (_PADDED, ";", "80,5", "decimal commas (pandas' C parser, which skips leading spaces)"),
    ([f"p{i}" for i in range(1, 14)] + [" p1", "p1 ", "\tp1"], "|", "80", "pipe-delimited text ids"),
])
def test_ids_differing_only_by_whitespace_are_reported_before_they_are_merged(ids, sep, value, parser):
    cohort, report = validate_data(("events.csv", _padded_csv(ids, sep, value)))
    assert cohort is not None and cohort.n_patients == 13, parser
    f = finding(report, "ids_differ_by_whitespace")
    n_extra = len(ids) - 13
    assert f.level == "warning" and f.count == n_extra and f.unit == "ids"
    assert f"{n_extra + 1} spellings became 1 patient" in f.message
    key = "'1'" if "1" in ids else "'p1'"
    assert f.examples[0].startswith(f"patient {key} written as "), f.examples
    assert all(repr(v) in f.examples[0] for v in ids if v.strip() == key.strip("'")), f.examples
    assert_accounting(report)


def test_ids_padded_alike_everywhere_are_not_a_finding():
    cohort, report = validate_data(("events.csv", _padded_csv([" a", " b", " c"])))
    assert cohort is not None and cohort.n_patients == 3 and "ids_differ_by_whitespace" not in report.codes()


def test_cli_prints_the_whitespace_id_warning(tmp_path, capsys):
    from core.cli import main
    path = write(tmp_path / "events.csv", _padded_csv(_PADDED))
    main(["validate", str(path)])
    out = capsys.readouterr().out
    assert "differ from another id only by spaces or tabs" in out and "16 spellings became 1 patient" not in out
    assert "4 spellings became 1 patient" in out
