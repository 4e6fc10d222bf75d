"""DuckDB engine (core/data/duck.py): the same findings, counts and cohort as the pandas path, bounded memory.

Each case writes a file to disk and validates it twice, with ``CHRONOSCOPE_ENGINE=pandas`` and with
``CHRONOSCOPE_ENGINE=duckdb``; the report (every finding but the note naming the engine), the row
accounting and the cohort's frames must be identical, and the DuckDB read must really have happened.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.config import DataConfig
from core.data.duck import EngineConfig
from core.exceptions import DataReadError
from core.data.ingest import validate_data
from core.data.readers import read_table
from tests.helpers.data_files import TARGET, labels_frame, long_rows, to_csv_bytes, write
from tests.helpers.paths import ROOT

SHARED = ROOT.parent / "shared" / "data"


def _findings(report):
    return [(f.level, f.code, f.message, f.count, tuple(f.examples), f.fix) for f in report.findings if f.code != "read"]


def _both(monkeypatch, events, labels=None, **config):
    out = {}
    for engine in ("pandas", "duckdb"):
        monkeypatch.setenv("CHRONOSCOPE_ENGINE", engine)
        out[engine] = validate_data(events, labels, config=DataConfig(**config))
    return out


def _assert_same(out):
    (c1, r1), (c2, r2) = out["pandas"], out["duckdb"]
    notes = [f.message for f in r2.findings if f.code == "read"]
    assert any("Read by DuckDB" in m for m in notes), notes
    assert not any("Read by DuckDB" in f.message for f in r1.findings)
    assert _findings(r1) == _findings(r2)
    assert (r1.rows_read, r1.rows_used, r1.rows_excluded, r1.ok) == (r2.rows_read, r2.rows_used, r2.rows_excluded, r2.ok)
    assert r1.summary == r2.summary
    assert (c1 is None) == (c2 is None)
    if c1 is not None:
        pd.testing.assert_frame_equal(c1.events, c2.events)
        pd.testing.assert_frame_equal(c1.static, c2.static)
        assert c1.fingerprint() == c2.fingerprint()
        if c1.labels is not None:
            pd.testing.assert_series_equal(c1.labels, c2.labels)
        if c1.hour_labels is not None:
            pd.testing.assert_frame_equal(c1.hour_labels, c2.hour_labels)


def _messy() -> pd.DataFrame:
    """Long rows with one of each problem the validation reports."""
    rows = long_rows().astype({"value": object, "time": object, "patient_id": object})
    rows.loc[3, "patient_id"] = ""              # missing patient id
    rows.loc[5, "variable"] = ""                # empty variable name
    rows.loc[7, "value"] = "positive"           # text value
    rows.loc[9, "value"] = "NA"                 # missing value
    rows.loc[11, "time"] = -2.0                 # before admission
    rows.loc[13, "value"] = 400.0               # HR 400: implausible
    rows.loc[15, "time"] = "soon"               # unparseable time
    rows.loc[17, "value"] = "inf"
    rows = pd.concat([rows, rows.iloc[[20, 21]]], ignore_index=True)  # exact duplicates
    return rows


def test_clean_long_csv_with_labels_is_identical(tmp_path, monkeypatch):
    events = write(tmp_path / "events.csv", to_csv_bytes(long_rows()))
    labels = write(tmp_path / "labels.csv", to_csv_bytes(labels_frame()))
    out = _both(monkeypatch, events, labels, target=TARGET)
    _assert_same(out)
    assert out["duckdb"][1].ok


def test_every_problem_is_found_and_counted_alike(tmp_path, monkeypatch):
    events = write(tmp_path / "messy.csv", to_csv_bytes(_messy()))
    labels = write(tmp_path / "labels.csv", to_csv_bytes(labels_frame()))
    out = _both(monkeypatch, events, labels, target=TARGET)
    _assert_same(out)
    codes = {f.code for f in out["duckdb"][1].findings}
    assert {"missing_patient_id", "empty_variable", "non_numeric_value", "missing_value", "negative_time",
            "implausible_value", "bad_time", "duplicate_row"} <= codes, codes
    report = out["duckdb"][1]
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values())


@pytest.mark.parametrize("variant", ["hhmm", "datetime", "tab", "gzip", "crlf", "parquet"])
def test_formats_are_identical(tmp_path, monkeypatch, variant):
    rows = long_rows()
    if variant == "hhmm":
        rows["time"] = [f"{int(t):02d}:{int(round((t % 1) * 60)):02d}" for t in rows["time"]]
    elif variant == "datetime":
        rows["time"] = (pd.Timestamp("2024-03-01 08:00") + pd.to_timedelta(rows["time"], unit="h")).astype(str)
    if variant == "tab":
        path = write(tmp_path / "events.tsv", to_csv_bytes(rows, sep="\t"))
    elif variant == "gzip":
        path = write(tmp_path / "events.csv.gz", gzip.compress(to_csv_bytes(rows)))
    elif variant == "crlf":
        path = write(tmp_path / "events.csv", rows.to_csv(index=False, lineterminator="\r\n").encode())
    elif variant == "parquet":
        path = tmp_path / "events.parquet"
        rows.to_parquet(path, index=False)
    else:
        path = write(tmp_path / "events.csv", to_csv_bytes(rows))
    labels = write(tmp_path / "labels.csv", to_csv_bytes(labels_frame()))
    _assert_same(_both(monkeypatch, path, labels, target=TARGET))


def test_wide_online_table_is_identical(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    n, hours = 12, 10
    frame = pd.DataFrame({
        "Patient_ID": np.repeat([f"p{i}" for i in range(n)], hours),
        "ICULOS": np.tile(np.arange(1, hours + 1), n),
        "HR": np.where(rng.random(n * hours) < 0.3, np.nan, rng.integers(60, 130, n * hours)),
        "Lactate": np.where(rng.random(n * hours) < 0.8, np.nan, rng.normal(2, 0.5, n * hours).round(1)),
        "Age": np.repeat(rng.integers(20, 90, n), hours),
        "SepsisLabel": (np.tile(np.arange(hours), n) > 6) & np.repeat(rng.random(n) < 0.5, hours),
    })
    frame["SepsisLabel"] = frame["SepsisLabel"].astype(int)
    path = write(tmp_path / "hourly.csv", to_csv_bytes(frame))
    _assert_same(_both(monkeypatch, path, None, task="online", target="SepsisLabel"))


def test_a_folder_of_tables_is_one_table(tmp_path, monkeypatch):
    """A folder of CSVs (a new input): read by DuckDB as one table with the rows of a single file."""
    rows = long_rows()
    folder = tmp_path / "parts"
    folder.mkdir()
    ids = rows["patient_id"].unique()
    for k, part in enumerate(np.array_split(ids, 3)):
        write(folder / f"part{k}.csv", to_csv_bytes(rows[rows["patient_id"].isin(part)]))
    labels = write(tmp_path / "labels.csv", to_csv_bytes(labels_frame()))
    single = write(tmp_path / "all.csv", to_csv_bytes(rows))
    monkeypatch.setenv("CHRONOSCOPE_ENGINE", "auto")
    c_folder, r_folder = validate_data(folder, labels, config=DataConfig(target=TARGET))
    c_file, r_file = validate_data(single, labels, config=DataConfig(target=TARGET))
    assert r_folder.ok and any("3 files" in f.message for f in r_folder.findings if f.code == "read")
    assert r_folder.rows_read == r_file.rows_read == len(rows)
    pd.testing.assert_frame_equal(c_folder.events, c_file.events)
    assert c_folder.fingerprint() == c_file.fingerprint()


def test_a_folder_whose_tables_differ_is_refused_with_the_file(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    write(folder / "a.csv", to_csv_bytes(long_rows().head(20)))
    write(folder / "b.csv", to_csv_bytes(long_rows().head(20).rename(columns={"value": "val"})))
    with pytest.raises(DataReadError, match=r"do not share one header: b\.csv starts with"):
        read_table(folder, EngineConfig(engine="auto"))


def test_memory_limit_and_spill_folder_are_used_and_removed(tmp_path, monkeypatch):
    spill = tmp_path / "spill"
    events = write(tmp_path / "events.csv", to_csv_bytes(long_rows()))
    table = read_table(events, EngineConfig(engine="duckdb", memory_limit_mb=300, temp_dir=str(spill)))
    assert any("memory limit 300 MB" in n for n in table.notes)
    assert spill.is_dir() and list(spill.iterdir()) == []      # the session's own folder is gone
    # the environment carries the same settings (what the CLI's --memory-limit and --temp-dir set)
    monkeypatch.setenv("CHRONOSCOPE_MEMORY_LIMIT_MB", "512")
    monkeypatch.setenv("CHRONOSCOPE_TMP_DIR", str(spill))
    cfg = EngineConfig.from_env()
    assert (cfg.limit_mb, cfg.temp_dir) == (512.0, str(spill))


def test_small_files_keep_the_pandas_path_under_auto(tmp_path):
    events = write(tmp_path / "events.csv", to_csv_bytes(long_rows()))
    table = read_table(events, EngineConfig(engine="auto"))
    assert not any("DuckDB" in n for n in table.notes)
    big = read_table(events, EngineConfig(engine="auto", min_mb=0))
    assert any("DuckDB" in n for n in big.notes)
    assert isinstance(big.frame["variable"].dtype, pd.CategoricalDtype)   # one string per variable, not per row


@pytest.mark.parametrize("bad, match", [
    (dict(engine="spark"), "engine must be one of"),
    (dict(memory_limit_mb=10), "at least 64 MB"),
])
def test_bad_engine_settings_say_what_to_give(bad, match):
    with pytest.raises(ValueError, match=match):
        EngineConfig(**bad)


def test_bad_memory_setting_in_the_environment_is_explained(monkeypatch):
    monkeypatch.setenv("CHRONOSCOPE_MEMORY_LIMIT_MB", "lots")
    with pytest.raises(ValueError, match="CHRONOSCOPE_MEMORY_LIMIT_MB='lots' is not a number"):
        EngineConfig.from_env()


@pytest.mark.slow  # real data
@pytest.mark.skipif(not (SHARED / "physionet2012" / "set-a.csv.gz").exists(),
                    reason="PhysioNet 2012 set A is not in ../shared/data (CI provides it)")
def test_set_a_is_identical_with_both_engines(monkeypatch):
    base = SHARED / "physionet2012"
    out = _both(monkeypatch, base / "set-a.csv.gz", base / "outcomes-a.csv", target="In-hospital_death")
    _assert_same(out)
    assert out["duckdb"][0].n_patients == 4000


def test_patient_picker_window_keeps_every_patient_reachable():
    from core.data.explore import patient_window, step_patient
    ids = [f"p{i:06d}" for i in range(100_000)]
    shown = patient_window(ids, "p050000", size=500)
    assert len(shown) == 500 and "p050000" in shown and shown == ids[49_750:50_250]
    assert patient_window(ids, "p099999", size=500)[-1] == "p099999"
    assert patient_window(ids, "nobody", size=500) == ids[:500]
    assert step_patient(ids, "p099999", 1) == "p000000" and step_patient(ids, "p000000", -1) == "p099999"
    assert step_patient(ids, "nobody", 1) == "p000000"
    assert patient_window(ids[:20], "p000003") == ids[:20]


def test_a_session_that_cannot_start_leaves_no_folder(tmp_path, monkeypatch):
    import duckdb

    from core.data import duck

    def refuse(*a, **k):
        raise duckdb.InvalidInputException("no")
    monkeypatch.setattr(duckdb, "connect", refuse)
    with pytest.raises(duckdb.InvalidInputException):
        duck.connect(EngineConfig(engine="duckdb", temp_dir=str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ids", [["1", " 1", "1 ", "\t1", "2", "3"], ["1", " 1", "1 ", "2", " 2", "3"]],
                         ids=["text ids", "ids read as numbers"])
def test_ids_differing_only_by_whitespace_are_reported_alike(tmp_path, monkeypatch, ids):
    """Both engines name the same spellings, whether the ids are read as text or (DuckDB trims) as numbers."""
    lines = ["patient_id,time,variable,value"] + [f"{p},{h},HR,{70 + h}" for p in ids for h in range(3)]
    path = write(tmp_path / "events.csv", ("\n".join(lines) + "\n").encode())
    out = _both(monkeypatch, path)
    _assert_same(out)
    [f] = [f for f in out["duckdb"][1].findings if f.code == "ids_differ_by_whitespace"]
    assert f.examples[0].startswith("patient '1' written as ") and "' 1'" in f.examples[0]
