"""Duplicate stays (core.data.duplicates) and the grouping column (DataConfig.group_col).

A file held every stay ten times under different ids: the split put copies on both sides and a
model scored AUROC 0.999 in silence. These tests build such files from the tiny synthetic cohort
(copied under new ids, exactly or with shifted clocks and float noise), and check that validation
blocks them, that a grouping column keeping the copies together makes it a warning, and that the
split and the CV folds then never put one group on two sides.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from core.cli import main
from core.config import DataConfig, SplitConfig
from core.data.duplicates import MIN_ROWS, find_duplicate_stays
from core.exceptions import ValidationFailed
from core.data.ingest import load_cohort, validate_data
from core.training.protocol import patient_folds, split_by_patient
from tests.helpers.cohorts import make_tiny_cohort
from tests.helpers.paths import ROOT

TARGET = "died"
CFG = DataConfig(target=TARGET)
REAL = ROOT.parent / "shared" / "data" / "physionet2012"


# -- helpers ------------------------------------------------------------------------------

def tiny_files(n_copies: int = 1, *, shift_hours: float = 0.0, noise: float = 0.0, flip_labels: bool = False,
               seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tiny cohort as a long events table (Age at each first record) and a labels table, its 40
    stays repeated ``n_copies`` times: copy ``k`` of patient ``i`` is ``p{100 k + i}`` (p17 = p117 = ...),
    with its clock moved by a random shift up to ``shift_hours`` and values times ``1 + noise``.
    Every row carries ``subject_id``, the original stay (constant per patient).
    """
    cohort = make_tiny_cohort()
    ev = cohort.events.astype({"patient_id": str, "variable": str})
    first = ev.groupby("patient_id")["time_hours"].min()
    age = cohort.static["Age"].dropna()
    age_rows = pd.DataFrame({"patient_id": age.index, "time_hours": first.loc[age.index].to_numpy(),
                             "variable": "Age", "value": age.to_numpy()})
    base = pd.concat([ev, age_rows], ignore_index=True)
    number = {p: i for i, p in enumerate(sorted(first.index))}
    rng = np.random.default_rng(seed)
    events, labels = [], []
    for k in range(n_copies):
        part = base.copy()
        part["subject_id"] = "s" + part["patient_id"]
        part["patient_id"] = [f"p{100 * k + number[p]}" for p in part["patient_id"]]
        if k and shift_hours:
            shift = pd.Series(rng.uniform(0.5, shift_hours, len(number)), index=sorted(number))
            part["time_hours"] = part["time_hours"] + shift.loc[part["subject_id"].str[1:]].to_numpy()
        if k and noise:
            part["value"] = part["value"] * (1 + noise * rng.uniform(-1, 1, len(part)))
        events.append(part)
        y = cohort.labels.rename(TARGET)
        lab = pd.DataFrame({"patient_id": [f"p{100 * k + number[p]}" for p in y.index],
                            TARGET: (1 - y if flip_labels and k == 1 else y).to_numpy()})
        labels.append(lab)
    events = pd.concat(events, ignore_index=True).rename(columns={"time_hours": "time"})
    return events[["patient_id", "subject_id", "time", "variable", "value"]], pd.concat(labels, ignore_index=True)


def as_upload(frame: pd.DataFrame, name: str) -> tuple[str, bytes]:
    # repr precision, so float noise survives the CSV
    return (name, frame.to_csv(index=False, float_format="%.17g").encode("utf-8"))


def finding(report, code: str):
    hits = [f for f in report.findings if f.code == code]
    assert hits, f"no {code!r} finding in:\n{report.to_text()}"
    return hits[0]


def assert_accounting(report) -> None:
    assert report.rows_read > 0
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values()), report.to_text()


def group_sets(cohort, splits: dict) -> dict[str, set]:
    return {k: set(cohort.groups.loc[v]) for k, v in splits.items()}


def assert_groups_apart(cohort, splits: dict) -> None:
    sets = group_sets(cohort, splits)
    assert not sets["train"] & sets["test"]
    assert not sets["train"] & sets["validation"]
    assert not sets["validation"] & sets["test"]
    assert sum(len(v) for v in splits.values()) == len(cohort.labelled_ids)


# -- detection ------------------------------------------------------------------------------

def test_ten_copies_are_a_blocking_error_with_examples():
    events, labels = tiny_files(10)
    cohort, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=CFG)
    assert not report.ok
    f = finding(report, "duplicate_stays")
    assert f.level == "error"
    assert f.count == 400 and f.unit == "patients"
    assert "40 stays appear under several patient ids" in f.message and "360 of them copies" in f.message
    assert f.examples[0].startswith("p0 = p100 = p200 = p300 = p400") and "(10 ids)" in f.examples[0]
    assert len(f.examples) == 3
    assert "--group-col" in f.fix and "Remove the copies" in f.fix
    assert "contradictory_copies" not in report.codes()
    with pytest.raises(ValidationFailed, match="several patient ids"):
        load_cohort(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=CFG)


def test_near_identical_copies_are_caught():
    """Clocks shifted by up to 30 h (relative times equal) and values with float noise far below 6 digits."""
    events, labels = tiny_files(2, shift_hours=30.0, noise=1e-11)
    copy = events["patient_id"].str.len() == 4                 # p100..p139
    assert not np.allclose(events.loc[copy, "time"].to_numpy()[:50], events.loc[~copy, "time"].to_numpy()[:50])
    assert (events.loc[copy, "value"].to_numpy() != events.loc[~copy, "value"].to_numpy()).any()
    cohort, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=CFG)
    f = finding(report, "duplicate_stays")
    assert f.level == "error" and f.count == 80
    found = find_duplicate_stays(cohort.events, cohort.static)
    assert found.n_groups == 40
    assert ("p17", "p117") in found.groups


def test_a_changed_value_or_static_attribute_is_not_a_copy():
    events, labels = tiny_files(2)
    hr = events.index[(events["patient_id"] == "p117") & (events["variable"] == "HR")][0]
    events.loc[hr, "value"] += 1.0
    age = events.index[(events["patient_id"] == "p105") & (events["variable"] == "Age")][0]
    events.loc[age, "value"] += 0.5
    cohort, _ = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=CFG)
    groups = find_duplicate_stays(cohort.events, cohort.static).groups
    assert len(groups) == 38
    assert ("p17", "p117") not in groups and ("p5", "p105") not in groups and ("p4", "p104") in groups


def test_distinct_patients_give_no_finding():
    events, labels = tiny_files(1)
    cohort, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=CFG)
    assert report.ok, report.to_text()
    assert not {"duplicate_stays", "contradictory_copies"} & report.codes()
    assert find_duplicate_stays(cohort.events, cohort.static).n_groups == 0


def test_short_identical_stays_are_not_considered():
    ev = pd.DataFrame({"patient_id": pd.Categorical(["a", "a", "b", "b"]), "time_hours": [0.0, 1.0, 3.0, 4.0],
                       "variable": pd.Categorical(["HR"] * 4), "value": [80.0, 82.0, 80.0, 82.0]})
    assert MIN_ROWS == 3
    assert find_duplicate_stays(ev).n_groups == 0
    assert find_duplicate_stays(ev, min_rows=2).groups == (("a", "b"),)


@pytest.mark.slow  # real data
@pytest.mark.skipif(not (REAL / "set-a.csv.gz").exists(), reason="PhysioNet 2012 set A not in ../shared/data")
def test_real_set_a_has_no_duplicate_stays():
    cohort, report = validate_data(REAL / "set-a.csv.gz", REAL / "outcomes-a.csv",
                                   config=DataConfig(target="in_hospital_death"))
    assert cohort.n_patients == 4000
    assert not {"duplicate_stays", "contradictory_copies"} & report.codes()


def test_copies_with_different_labels_are_named():
    events, labels = tiny_files(2, flip_labels=True)
    _, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=CFG)
    f = finding(report, "contradictory_copies")
    assert f.count == 80
    assert f.examples[0] == "p0 (label 0) = p100 (label 1)"


def test_without_a_target_duplicates_are_a_warning():
    events, _ = tiny_files(3)
    _, report = validate_data(as_upload(events, "events.csv"))
    f = finding(report, "duplicate_stays")
    assert f.level == "warning" and "exploring" in f.message
    assert "duplicate_stays" not in {e.code for e in report.errors}


def test_cli_validate_exits_2_on_duplicates(tmp_path, capsys):
    events, labels = tiny_files(10)
    ev_path, lab_path = tmp_path / "events.csv", tmp_path / "labels.csv"
    events.to_csv(ev_path, index=False)
    labels.to_csv(lab_path, index=False)
    assert main(["validate", str(ev_path), "--labels", str(lab_path), "--target", TARGET]) == 2
    out = capsys.readouterr().out
    assert "40 stays appear under several patient ids" in out and "p0 = p100 = p200" in out
    assert "--group-col" in out and "NOT usable for training" in out
    code = main(["validate", str(ev_path), "--labels", str(lab_path), "--target", TARGET, "--group-col", "subject_id"])
    assert code == 0, capsys.readouterr().out


# -- grouping column -----------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["long", "wide"])
def test_group_col_keeping_copies_together_is_a_warning_and_the_split_keeps_groups_apart(layout):
    events, labels = tiny_files(10, shift_hours=5.0)
    if layout == "wide":
        events = events.pivot_table(index=["patient_id", "subject_id", "time"], columns="variable",
                                    values="value").reset_index()
    cfg = DataConfig(target=TARGET, group_col="subject_id", layout=layout)
    cohort, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=cfg)
    assert report.ok, report.to_text()
    f = finding(report, "duplicate_stays")
    assert f.level == "warning" and "'subject_id'" in f.message
    assert_accounting(report)
    assert "subject_id" not in cohort.series_variables + cohort.static_variables
    assert "Age" in cohort.static_variables
    assert report.summary["groups (subject_id)"] == 40
    assert cohort.groups.loc["p117"] == cohort.groups.loc["p17"] == "sp017"
    for seed in range(3):
        splits = split_by_patient(cohort, SplitConfig(random_state=seed))
        assert_groups_apart(cohort, splits)
    again = split_by_patient(cohort, SplitConfig(random_state=2))
    assert all((again[k] == splits[k]).all() for k in splits)
    for fold in patient_folds(cohort, 3):
        assert_groups_apart(cohort, fold)


def test_group_col_split_keeps_the_prevalence_and_sizes_close():
    events, labels = tiny_files(5)
    cfg = DataConfig(target=TARGET, group_col="subject_id")
    cohort, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=cfg)
    splits = split_by_patient(cohort, SplitConfig(validation_size=0.2, test_size=0.2))
    y = cohort.labels
    for k, frac in (("train", 0.6), ("validation", 0.2), ("test", 0.2)):
        assert abs(len(splits[k]) / 200 - frac) < 0.06, (k, len(splits[k]))
        assert abs(y.loc[splits[k]].mean() - y.mean()) < 0.15


def test_copies_split_by_the_group_col_are_still_an_error():
    """A grouping column that does not hold the copies together (each copy its own subject) leaks."""
    events, labels = tiny_files(3)
    events["subject_id"] = "s" + events["patient_id"]
    cfg = DataConfig(target=TARGET, group_col="subject_id")
    _, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=cfg)
    f = finding(report, "duplicate_stays")
    assert f.level == "error" and "40 of these sets span several groups of 'subject_id'" in f.message


def test_group_col_varying_within_a_patient_is_an_error():
    events, labels = tiny_files(1)
    rows = events.index[events["patient_id"] == "p3"][:2]
    events.loc[rows, "subject_id"] = "other"
    cfg = DataConfig(target=TARGET, group_col="subject_id")
    cohort, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=cfg)
    f = finding(report, "group_not_constant")
    assert f.level == "error" and f.count == 1 and f.examples[0].startswith("patient p3: ")
    assert "'other'" in f.examples[0] and not report.ok
    assert cohort.groups is None


def test_group_col_missing_or_empty_is_an_error():
    events, labels = tiny_files(1)
    cfg = DataConfig(target=TARGET, group_col="subject")
    cohort, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=cfg)
    assert cohort is None and "given with --group-col is not in the events file" in finding(report, "columns").message
    events.loc[events["patient_id"] == "p8", "subject_id"] = ""
    cfg = DataConfig(target=TARGET, group_col="subject_id")
    _, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=cfg)
    f = finding(report, "group_missing")
    assert f.level == "error" and f.examples == ("patient p8",)
    with pytest.raises(ValueError, match="group_col"):
        DataConfig(group_col="")


def test_group_col_is_never_detected_as_the_patient_column():
    """``subject_id`` is a patient-id name; given with --group-col it only groups (the stays stay apart)."""
    events, labels = tiny_files(2)
    events = events.rename(columns={"patient_id": "stay_id"})
    labels = labels.rename(columns={"patient_id": "stay_id"})
    cfg = DataConfig(target=TARGET, group_col="subject_id")
    cohort, report = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"), config=cfg)
    assert report.ok, report.to_text()
    assert cohort.n_patients == 80 and cohort.groups.nunique() == 40
    assert report.summary["columns"].startswith("patient='stay_id'")


def test_row_accounting_holds_with_a_group_col():
    events, labels = tiny_files(2)
    events.loc[3, "value"] = np.nan                             # one excluded row, for the sum to mean something
    for layout, frame in (("long", events), ("wide", events.pivot_table(
            index=["patient_id", "subject_id", "time"], columns="variable", values="value").reset_index())):
        cfg = DataConfig(target=TARGET, group_col="subject_id", layout=layout)
        _, report = validate_data(as_upload(frame, "events.csv"), as_upload(labels, "labels.csv"), config=cfg)
        assert_accounting(report)
        assert report.rows_read == (len(frame) if layout == "long" else
                                    int(frame.drop(columns=["patient_id", "subject_id", "time"]).notna().sum().sum()))


def test_subset_keeps_the_groups():
    events, labels = tiny_files(2)
    cohort, _ = validate_data(as_upload(events, "events.csv"), as_upload(labels, "labels.csv"),
                              config=DataConfig(target=TARGET, group_col="subject_id"))
    small = cohort.subset(["p1", "p101", "p7"])
    assert small.groups.to_dict() == {"p1": "sp001", "p101": "sp001", "p7": "sp007"}
    assert replace(small, groups=None).fingerprint() != small.fingerprint()


def test_without_groups_the_split_is_the_plain_stratified_one():
    """Saved runs depend on it: no grouping column, the same patients as train_test_split always gave."""
    cohort = make_tiny_cohort(120)
    assert cohort.groups is None
    cfg = SplitConfig(random_state=3)
    ids = cohort.labelled_ids
    y = cohort.labels.loc[ids].to_numpy()
    rest, test = train_test_split(ids, test_size=cfg.test_size, stratify=y, random_state=3)
    train, val = train_test_split(rest, test_size=cfg.validation_size / (1 - cfg.test_size),
                                  stratify=cohort.labels.loc[rest].to_numpy(), random_state=4)
    got = split_by_patient(cohort, cfg)
    assert list(got["test"]) == sorted(test) and list(got["train"]) == sorted(train)
    assert list(got["validation"]) == sorted(val)
