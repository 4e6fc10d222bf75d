"""Tests for the online (hour-by-hour) task shape of core.data.ingest.

Two label sources: a 0/1 column of the events that varies by hour (``SepsisLabel``; a column
in the wide layout, a variable in the long one), or an onset-time column of a labels file with
a horizon. Inputs are small CSV files written to ``tmp_path``; every accepted input also checks
the row accounting ``rows_read == rows_used + sum(rows_excluded)``. One test reads the real
PhysioNet 2019 file and skips when it is absent.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.config import DataConfig
from core.exceptions import ValidationFailed
from core.data.ingest import load_cohort, validate_data
from tests.helpers.paths import ROOT

LABEL = "SepsisLabel"
ONLINE = DataConfig(task="online", target=LABEL)
N_PATIENTS, N_HOURS = 24, 6
REAL_2019 = ROOT.parent / "shared" / "data" / "physionet2019" / "hourly.csv.gz"


# -- builders -----------------------------------------------------------------------------

def pid(i: int) -> str:
    return f"p{100 + i}"


def hour_label(i: int, t: int) -> int:
    """Every fourth patient turns positive at hour 4 (times run 1..6): 6 positive stays of 24."""
    return int(i % 4 == 0 and t >= 4)


def wide_frame(n: int = N_PATIENTS) -> pd.DataFrame:
    """One row per patient-hour, times 1..6; Age/Gender constant per patient; an hourly label."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        for t in range(1, N_HOURS + 1):
            rows.append({"patient_id": pid(i), "time": t, "HR": float(rng.integers(60, 120)),
                         "MAP": float(rng.integers(55, 100)), "Age": 40.0 + i, "Gender": float(i % 2),
                         LABEL: hour_label(i, t)})
    return pd.DataFrame(rows)


def long_frame(n: int = N_PATIENTS) -> pd.DataFrame:
    """The same cohort in the long layout, the label as rows of the variable ``SepsisLabel``."""
    wide = wide_frame(n)
    long = wide.melt(id_vars=["patient_id", "time"], var_name="variable", value_name="value")
    long = long[~long["variable"].isin(["Age", "Gender"]) | (long["time"] == 1)]   # descriptors once, at the start
    return long.sort_values(["patient_id", "time"], kind="stable").reset_index(drop=True)


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "events.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def finding(report, code: str):
    found = [f for f in report.findings if f.code == code]
    assert found, f"no finding {code!r}; got {sorted(report.codes())}\n{report.to_text()}"
    return found[0]


def assert_accounting(report) -> None:
    assert report.rows_read > 0
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values()), report.to_text()


def labels_of(cohort, patient: str) -> list[tuple[float, int]]:
    hl = cohort.hour_labels
    sub = hl[hl["patient_id"] == patient]
    return list(zip(sub["time_hours"].tolist(), sub["label"].tolist()))


# -- source (a): a 0/1 column of the events -----------------------------------------------

def test_wide_label_column_gives_one_label_per_hour(tmp_path):
    cohort, report = validate_data(write_csv(tmp_path, wide_frame()), config=ONLINE)
    assert cohort is not None and report.ok, report.to_text()
    assert cohort.is_online
    assert len(cohort.hour_labels) == N_PATIENTS * N_HOURS
    assert labels_of(cohort, pid(0)) == [(1.0, 0), (2.0, 0), (3.0, 0), (4.0, 1), (5.0, 1), (6.0, 1)]
    assert labels_of(cohort, pid(1)) == [(float(t), 0) for t in range(1, 7)]
    # per-patient labels are the max of the hours; onset = first 1 (+ horizon 0 when unset)
    assert int(cohort.labels.sum()) == 6 and cohort.labels[pid(0)] == 1 and cohort.labels[pid(1)] == 0
    assert cohort.onsets[pid(0)] == 4.0 and np.isnan(cohort.onsets[pid(1)])
    assert len(cohort.row_times) == N_PATIENTS * N_HOURS
    assert report.summary["labelled hours"] == 144
    assert report.summary["positive hours"] == "18 (12.50%)"
    assert report.summary["patients with a positive hour"] == 6
    assert "144 labelled hours" in finding(report, "hour_labels").message
    assert_accounting(report)


def test_onset_from_a_label_column_adds_the_horizon(tmp_path):
    cohort = load_cohort(write_csv(tmp_path, wide_frame()), config=DataConfig(task="online", target=LABEL,
                                                                              horizon_hours=6))
    assert cohort.onsets[pid(0)] == 10.0 and cohort.onsets[pid(4)] == 10.0
    assert cohort.onsets.isna().sum() == N_PATIENTS - 6


def test_long_label_variable_gives_the_same_labels(tmp_path):
    wide_cohort = load_cohort(write_csv(tmp_path, wide_frame(), "wide.csv"), config=ONLINE)
    cohort, report = validate_data(write_csv(tmp_path, long_frame(), "long.csv"), config=ONLINE)
    assert report.ok, report.to_text()
    pd.testing.assert_frame_equal(cohort.hour_labels, wide_cohort.hour_labels)
    pd.testing.assert_series_equal(cohort.labels, wide_cohort.labels)
    assert LABEL not in cohort.series_variables + cohort.static_variables
    assert cohort.series_variables == ["HR", "MAP"] and cohort.static_variables == ["Age", "Gender"]
    assert_accounting(report)
    assert report.rows_excluded == {}


def test_several_label_rows_at_one_time_take_the_max(tmp_path):
    long = long_frame()
    extra = pd.DataFrame({"patient_id": [pid(1)], "time": [2], "variable": [LABEL], "value": [1]})
    cohort, report = validate_data(write_csv(tmp_path, pd.concat([long, extra], ignore_index=True)), config=ONLINE)
    assert (2.0, 1) in labels_of(cohort, pid(1)) and len(labels_of(cohort, pid(1))) == N_HOURS
    assert cohort.labels[pid(1)] == 1
    assert_accounting(report)


def test_label_column_of_a_long_file(tmp_path):
    """A long file whose rows each carry the hour label as a column."""
    wide = wide_frame()
    long = wide.drop(columns=[LABEL]).melt(id_vars=["patient_id", "time"], var_name="variable", value_name="value")
    long = long.merge(wide[["patient_id", "time", LABEL]], on=["patient_id", "time"])
    cohort, report = validate_data(write_csv(tmp_path, long), config=ONLINE)
    assert report.ok, report.to_text()
    assert labels_of(cohort, pid(0)) == [(1.0, 0), (2.0, 0), (3.0, 0), (4.0, 1), (5.0, 1), (6.0, 1)]
    assert LABEL not in cohort.series_variables + cohort.static_variables
    assert_accounting(report)


def test_label_is_never_a_feature_even_when_constant_per_patient(tmp_path):
    """A label given once per patient at the first record looks static; it must not become one."""
    long = long_frame()
    long = long[(long["variable"] != LABEL) | (long["time"] == 1)]
    cohort, report = validate_data(write_csv(tmp_path, long), config=ONLINE)
    assert LABEL not in cohort.series_variables + cohort.static_variables
    assert cohort.static_variables == ["Age", "Gender"]
    f = finding(report, "hour_label_constant")
    assert f.level == "warning" and "never changes within a patient" in f.message
    assert "--task stay" in f.fix and f.count == N_PATIENTS and f.unit == "patients"
    assert_accounting(report)


def test_constant_wide_label_warns_once_per_stay(tmp_path):
    wide = wide_frame()
    wide[LABEL] = [int(int(p[1:]) % 4 == 0) for p in wide["patient_id"]]
    cohort, report = validate_data(write_csv(tmp_path, wide), config=ONLINE)
    assert "once-per-stay" in finding(report, "hour_label_constant").message
    assert LABEL not in cohort.series_variables + cohort.static_variables


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_label_listed_as_static_variable_is_refused(tmp_path, layout):
    frame = wide_frame() if layout == "wide" else long_frame()
    config = DataConfig(task="online", target=LABEL, static_variables=("Age", "Gender", LABEL))
    cohort, report = validate_data(write_csv(tmp_path, frame), config=config)
    f = finding(report, "label_is_static")
    assert f.level == "error" and "a label column is never a feature" in f.message and "--static" in f.fix
    assert not report.ok
    assert LABEL not in cohort.series_variables + cohort.static_variables


@pytest.mark.parametrize("bad", [2, "yes"])
def test_label_values_not_0_1_are_refused(tmp_path, bad):
    wide = wide_frame().astype({LABEL: object})
    wide.loc[7, LABEL] = bad          # file line 9: patient p101, time 2
    _, report = validate_data(write_csv(tmp_path, wide), config=ONLINE)
    f = finding(report, "hour_label_not_binary")
    assert f.level == "error" and f"not 0/1 ({bad!r})" in f.message
    assert f.count == 1 and f.examples[0].startswith("row 9: patient_id='p101'")
    assert "--target" in f.fix
    assert not report.ok


def test_empty_labels_are_not_scored_and_counted(tmp_path):
    wide = wide_frame().astype({LABEL: object})
    wide.loc[[2, 3, 10], LABEL] = ""
    cohort, report = validate_data(write_csv(tmp_path, wide), config=ONLINE)
    f = finding(report, "hour_label_missing")
    assert f.level == "warning" and f.count == 3 and "not scored" in f.message
    assert f.examples[0].startswith("row 4:")
    assert report.ok, report.to_text()
    assert len(cohort.hour_labels) == N_PATIENTS * N_HOURS - 3
    assert len(cohort.row_times) == N_PATIENTS * N_HOURS          # the hours still exist
    assert (3.0, 0) not in labels_of(cohort, pid(0))
    assert_accounting(report)


def test_all_empty_wide_rows_are_hours_and_counted_as_used(tmp_path):
    wide = wide_frame().astype(object)
    value_cols = ["HR", "MAP", "Age", "Gender"]
    wide.loc[1, value_cols] = ""                 # measurements empty, label given
    wide.loc[8, value_cols + [LABEL]] = ""       # every value empty, label too
    wide.loc[20, "time"] = "soon"                # a row with a bad time: excluded and counted
    cohort, report = validate_data(write_csv(tmp_path, wide), config=ONLINE)
    rt = set(zip(cohort.row_times["patient_id"], cohort.row_times["time_hours"]))
    assert (pid(0), 2.0) in rt and (pid(1), 3.0) in rt
    assert (pid(3), 3.0) not in rt and len(rt) == N_PATIENTS * N_HOURS - 1
    assert report.rows_excluded.get("bad_time", 0) > 0
    assert (2.0, 0) in labels_of(cohort, pid(0)) and (3.0, 0) not in labels_of(cohort, pid(1))
    assert_accounting(report)
    # stay task, same file (label column dropped): empty rows hold no observation, accounting holds
    stay_cohort, stay_report = validate_data(write_csv(tmp_path, wide.drop(columns=[LABEL]), "stay.csv"))
    assert stay_cohort.row_times is None and stay_cohort.hour_labels is None
    assert_accounting(stay_report)
    assert stay_report.rows_read < report.rows_read


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_online_without_target_still_has_row_times(tmp_path, layout):
    """Prediction time: new patients are loaded without a target."""
    frame = wide_frame().drop(columns=[LABEL]).astype(object)
    frame.loc[4, ["HR", "MAP", "Age", "Gender"]] = ""
    if layout == "long":
        frame = frame.melt(id_vars=["patient_id", "time"], var_name="variable", value_name="value")
        frame = frame[frame["value"] != ""]
    cohort, report = validate_data(write_csv(tmp_path, frame), config=DataConfig(task="online"))
    assert report.ok, report.to_text()
    assert cohort.hour_labels is None and cohort.labels is None
    expected = N_PATIENTS * N_HOURS - (1 if layout == "long" else 0)   # long: the empty row is absent
    assert len(cohort.row_times) == expected
    assert report.summary["hours (distinct row times)"] == expected
    assert_accounting(report)


def test_too_few_patients_checked_on_per_patient_max(tmp_path):
    _, report = validate_data(write_csv(tmp_path, wide_frame(n=8)), config=ONLINE)
    f = finding(report, "too_few")
    assert "8 patients, 2 positive, 6 negative" in f.message


def test_all_negative_hours_are_one_class(tmp_path):
    wide = wide_frame()
    wide[LABEL] = 0
    _, report = validate_data(write_csv(tmp_path, wide), config=ONLINE)
    assert finding(report, "one_class").level == "error"


# -- source (b): an onset-time column of a labels file ------------------------------------

def onset_files(tmp_path: Path, onsets: dict[str, object], n: int = N_PATIENTS) -> tuple[Path, Path]:
    """Events without a label (times 1..10 for p100, 1..6 otherwise) and a labels file of onsets."""
    wide = wide_frame(n).drop(columns=[LABEL])
    extra = pd.DataFrame({"patient_id": pid(0), "time": range(7, 11), "HR": 80.0, "MAP": 70.0, "Age": 40.0,
                          "Gender": 0.0})
    wide = pd.concat([wide, extra], ignore_index=True)
    lab = pd.DataFrame({"patient_id": list(onsets), "onset_hours": list(onsets.values())})
    return write_csv(tmp_path, wide), write_csv(tmp_path, lab, "labels.csv")


def default_onsets(**over) -> dict[str, object]:
    """p100 has onset 5 h after its first record; every fourth other patient onset 4 h; the rest never."""
    out: dict[str, object] = {pid(i): (4.0 if i % 4 == 0 else "") for i in range(N_PATIENTS)}
    out[pid(0)] = 5.0
    out.update(over)
    return out


ONSET_CFG = DataConfig(task="online", target="onset_hours", horizon_hours=2)


def test_onset_window_gives_exact_hour_labels(tmp_path):
    events, labels = onset_files(tmp_path, default_onsets())
    cohort, report = validate_data(events, labels, config=ONSET_CFG)
    assert report.ok, report.to_text()
    # p100: times 1..10, first record at 1, onset 5 h later (t = 6), H = 2:
    # rel 0,1,2 -> 0; rel 3,4 (t = 4, 5) -> 1; rel >= 5 (t = 6..10) left out.
    assert labels_of(cohort, pid(0)) == [(1.0, 0), (2.0, 0), (3.0, 0), (4.0, 1), (5.0, 1)]
    assert labels_of(cohort, pid(4)) == [(1.0, 0), (2.0, 0), (3.0, 1), (4.0, 1)]     # onset 4: t 5, 6 out
    assert labels_of(cohort, pid(1)) == [(float(t), 0) for t in range(1, 7)]        # never: all 0
    assert cohort.onsets[pid(0)] == 6.0 and cohort.onsets[pid(4)] == 5.0 and np.isnan(cohort.onsets[pid(1)])
    assert int(cohort.labels.sum()) == 6
    # left-out hours: 5 for p100, 2 for each of the 5 other positives
    f = finding(report, "hours_after_onset")
    assert f.count == 15 and "15 hours at or after onset were left out" in f.message
    assert report.summary["hours left out (at or after onset)"] == 15
    assert report.summary["labelled hours"] == len(cohort.row_times) - 15
    assert len(cohort.row_times) == N_PATIENTS * N_HOURS + 4
    assert "onset_hours" not in cohort.series_variables + cohort.static_variables
    assert_accounting(report)


def test_onset_needs_a_horizon(tmp_path):
    events, labels = onset_files(tmp_path, default_onsets())
    _, report = validate_data(events, labels, config=DataConfig(task="online", target="onset_hours"))
    f = finding(report, "horizon_missing")
    assert f.level == "error" and "needs a horizon" in f.message and "--horizon-hours 6" in f.fix
    with pytest.raises(ValidationFailed, match="--horizon-hours 6"):
        load_cohort(events, labels, config=DataConfig(task="online", target="onset_hours"))


def test_onset_that_is_not_a_number_is_refused(tmp_path):
    events, labels = onset_files(tmp_path, default_onsets(p105="soon"))
    _, report = validate_data(events, labels, config=ONSET_CFG)
    f = finding(report, "onset_not_numeric")
    assert f.level == "error" and f.count == 1 and f.examples == ("patient p105: onset_hours='soon'",)
    with pytest.raises(ValidationFailed, match="not a number of hours"):
        load_cohort(events, labels, config=ONSET_CFG)


def test_negative_onset_is_refused(tmp_path):
    events, labels = onset_files(tmp_path, default_onsets(p103=-2.0))
    _, report = validate_data(events, labels, config=ONSET_CFG)
    f = finding(report, "onset_negative")
    assert f.level == "error" and f.examples == ("patient p103: onset_hours=-2.0",) and ">= 0" in f.fix


def test_onset_after_the_last_record_warns(tmp_path):
    events, labels = onset_files(tmp_path, default_onsets(p101=30.0, p102=5.0))
    cohort, report = validate_data(events, labels, config=ONSET_CFG)
    f = finding(report, "onset_after_data")
    assert f.level == "warning" and f.count == 1 and f.examples == ("patient p101: onset 30 h, last record at 5 h",)
    assert labels_of(cohort, pid(1)) == [(float(t), 0) for t in range(1, 7)]        # window beyond the data
    # p102: onset 5 h = its last record (rel 5): not after it, and that hour is left out
    assert labels_of(cohort, pid(2)) == [(1.0, 0), (2.0, 0), (3.0, 0), (4.0, 1), (5.0, 1)]
    assert report.ok, report.to_text()


def test_onset_labels_file_patient_checks(tmp_path):
    onsets = default_onsets(p999=3.0)
    del onsets[pid(23)]
    events, labels = onset_files(tmp_path, onsets)
    cohort, report = validate_data(events, labels, config=ONSET_CFG)
    assert finding(report, "labels_without_patients").examples == ("patient p999",)
    assert finding(report, "patients_without_labels").examples == ("patient p123",)
    assert pid(23) not in cohort.labels.index


# -- the stay task is unchanged -----------------------------------------------------------

def test_stay_task_refuses_an_hourly_label_and_points_to_online(tmp_path):
    cohort, report = validate_data(write_csv(tmp_path, wide_frame()), config=DataConfig(target=LABEL))
    f = finding(report, "target_not_constant")
    assert f.level == "error" and "changes within a patient" in f.message
    assert "--labels" in f.fix and "--task online" in f.fix
    assert cohort.hour_labels is None and cohort.row_times is None and cohort.onsets is None


def test_stay_task_on_a_constant_column_is_unchanged(tmp_path):
    wide = wide_frame()
    wide[LABEL] = [int(int(p[1:]) % 4 == 0) for p in wide["patient_id"]]
    cohort, report = validate_data(write_csv(tmp_path, wide), config=DataConfig(target=LABEL))
    assert report.ok, report.to_text()
    assert "target_in_events" in report.codes() and not cohort.is_online and cohort.row_times is None
    assert "labelled hours" not in report.summary and "task" not in report.summary
    assert int(cohort.labels.sum()) == 6
    assert report.rows_read == N_PATIENTS * N_HOURS * 4               # filled cells only: no hour entries
    assert_accounting(report)


# -- CLI ----------------------------------------------------------------------------------

def test_cli_validate_online(tmp_path, capsys):
    path = write_csv(tmp_path, wide_frame())
    assert main(["validate", str(path), "--task", "online", "--target", LABEL, "--horizon-hours", "6"]) == 0
    out = capsys.readouterr().out
    assert "labelled hours: 144" in out and "positive hours: 18 (12.50%)" in out
    assert "patients with a positive hour: 6" in out and "OK" in out
    assert main(["validate", str(path), "--target", LABEL]) == 2                   # stay task by default
    assert "--task online" in capsys.readouterr().out


def test_cli_bad_task_options_are_clean_errors(tmp_path, capsys):
    path = write_csv(tmp_path, wide_frame())
    assert main(["validate", str(path), "--task", "online", "--target", LABEL, "--horizon-hours", "-1"]) == 2
    assert "horizon_hours must be >= 0" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        main(["validate", str(path), "--task", "hourly"])
    assert err.value.code == 2
    assert "invalid choice: 'hourly'" in capsys.readouterr().err


# -- the real PhysioNet 2019 file ---------------------------------------------------------

@pytest.mark.slow  # real data
@pytest.mark.skipif(not REAL_2019.exists(), reason=f"PhysioNet 2019 sample not found at {REAL_2019}")
def test_real_physionet_2019_online():
    start = time.perf_counter()
    cohort = load_cohort(REAL_2019, config=ONLINE)
    seconds = time.perf_counter() - start
    assert len(cohort.hour_labels) == 246_838
    assert int(cohort.hour_labels["label"].sum()) == 3_339
    assert int(cohort.labels.sum()) == 354 and cohort.n_patients == 6_490
    assert len(cohort.row_times) == 246_838                           # every input row is an hour
    assert LABEL not in cohort.series_variables + cohort.static_variables
    assert cohort.static_variables == ["Age", "Gender"]
    assert int(cohort.onsets.notna().sum()) == 354
    report = cohort.report
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values())
    assert seconds < 60, f"loading took {seconds:.1f} s"
