"""Plausibility: impossible values are reported per variable and excluded (or kept when asked)."""
from __future__ import annotations

import pandas as pd
import pytest

from core.cli import main
from core.config import DataConfig
from core.data.ingest import validate_data
from core.data.plausibility import implausible_mask, lookup, unit_of

IMPOSSIBLE = [("pH", 735.0), ("Temp", -17.8), ("HR", 0.0), ("Height", 1.8), ("MAP", 0.0)]


def _write(tmp_path, extra=()):
    rows = []
    for i in range(30):
        pid = f"p{i:02d}"
        for h in range(4):
            rows += [(pid, h, "HR", 80 + i), (pid, h, "Temp", 37.0), (pid, h, "MAP", 75.0),
                     (pid, h, "pH", 7.38), (pid, h, "Mystery", -500.0 + h)]
    rows += [("p00", 1.5, v, x) for v, x in IMPOSSIBLE] + list(extra)
    events = tmp_path / "events.csv"
    pd.DataFrame(rows, columns=["patient_id", "time", "variable", "value"]).to_csv(events, index=False)
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"patient_id": [f"p{i:02d}" for i in range(30)], "died": [i % 3 == 0 for i in range(30)]}
                 ).astype({"died": int}).to_csv(labels, index=False)
    return events, labels, len(rows)


def test_impossible_values_are_reported_per_variable_and_excluded(tmp_path):
    events, labels, n_rows = _write(tmp_path)
    cohort, report = validate_data(events, labels, config=DataConfig(target="died", time_format="hours"))
    found = {f.message.split(":")[0]: f for f in report.findings if f.code == "implausible_value"}
    assert set(found) == {v for v, _ in IMPOSSIBLE}
    assert "6.5 to 8" in found["pH"].message and "735" in found["pH"].examples[0]
    assert "25 to 45 °C" in found["Temp"].message
    assert report.rows_excluded["implausible_value"] == len(IMPOSSIBLE)
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values())     # nothing silently lost
    ev = cohort.events
    p0 = ev[ev["patient_id"] == "p00"]
    assert not ((p0["variable"] == "pH") & (p0["value"] > 8)).any()
    assert (ev["variable"] == "Mystery").sum() == 120          # unknown variables are left alone
    assert report.ok


def test_keeping_implausible_values_keeps_and_still_reports_them(tmp_path):
    events, labels, _ = _write(tmp_path)
    cohort, report = validate_data(events, labels, config=DataConfig(target="died", time_format="hours",
                                                                     keep_implausible=True))
    assert "implausible_value" not in report.rows_excluded
    assert len([f for f in report.findings if f.code == "implausible_kept"]) == len(IMPOSSIBLE)
    ev = cohort.events
    assert ((ev["variable"] == "pH") & (ev["value"] == 735.0)).sum() == 1


def test_unknown_codes_stay_with_the_sentinel_rule(tmp_path):
    events, labels, _ = _write(tmp_path, extra=[("p01", 0.0, "HR", -1.0)])
    _, report = validate_data(events, labels, config=DataConfig(target="died", time_format="hours"))
    assert report.rows_excluded["sentinel_value"] == 1
    assert report.rows_excluded["implausible_value"] == len(IMPOSSIBLE)


def test_the_cli_option_keeps_them(tmp_path, capsys):
    events, labels, _ = _write(tmp_path)
    assert main(["validate", str(events), "--labels", str(labels), "--target", "died"]) == 0
    assert "outside the plausible range" in capsys.readouterr().out
    assert main(["validate", str(events), "--labels", str(labels), "--target", "died", "--keep-implausible"]) == 0
    assert "(kept, as asked)" in capsys.readouterr().out


@pytest.mark.parametrize("name,unit", [("HR", "bpm"), ("heart_rate", "bpm"), ("NISysABP", "mmHg"), ("O2Sat", "%"),
                                       ("Potassium", "mmol/L"), ("Mystery", "")])
def test_synonyms_and_units(name, unit):
    assert unit_of(name) == unit
    assert (lookup(name) is None) == (unit == "")


def test_mask_skips_unknown_variables_and_codes():
    mask = implausible_mask(["HR", "HR", "HR", "Mystery", "Temp"], [0.0, 80.0, -1.0, 1e9, 50.0], skip_values=(-1.0,))
    assert mask.tolist() == [True, False, False, False, True]


def test_the_target_choices_are_the_binary_and_onset_columns(tmp_path):
    from core.data.ingest import inspect_columns
    events, labels, _ = _write(tmp_path)
    lab = pd.read_csv(labels)
    lab["length_of_stay"] = range(len(lab))
    lab["survival"] = 1000.0
    lab["onset_hour"] = [None] * 29 + [5.0]
    lab.to_csv(labels, index=False)
    info = inspect_columns(str(events), str(labels))
    assert dict(info["target_choices"]) == {"died": "0/1", "onset_hour": "onset"}
    assert info["target_guess"] == "died"


@pytest.mark.parametrize("keep", [False, True])
def test_wide_static_columns_are_checked_too(tmp_path, keep):
    """A 2019-style wide file: Age is a static column (constant per patient); an age of 250 is reported."""
    rows = []
    for i in range(20):
        age = 250.0 if i == 3 else 40.0 + i
        rows += [{"patient_id": f"p{i:02d}", "ICULOS": h, "HR": 80.0 + h, "Age": age, "Gender": i % 2,
                  "SepsisLabel": int(i % 4 == 0 and h >= 3)} for h in range(5)]
    path = tmp_path / "wide.csv"
    frame = pd.DataFrame(rows)
    frame.to_csv(path, index=False)
    before = path.read_bytes()
    cohort, report = validate_data(path, config=DataConfig(target="SepsisLabel", task="online",
                                                           time_col="ICULOS", time_format="hours",
                                                           keep_implausible=keep))
    code = "implausible_kept" if keep else "implausible_value"
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1 and found[0].message.startswith("Age: 5 value(s) outside the plausible range 0 to 120")
    assert "250" in found[0].examples[0]
    assert (cohort.static.loc["p03", "Age"] == 250.0) if keep else pd.isna(cohort.static.loc["p03", "Age"])
    assert cohort.static.loc["p04", "Age"] == 44.0
    assert report.rows_excluded.get("implausible_value", 0) == (0 if keep else 5)
    assert report.rows_read == report.rows_used + sum(report.rows_excluded.values())
    assert path.read_bytes() == before                              # the user's file is untouched


def test_timeline_opens_with_labs_as_well_as_vitals():
    from core.data.cohort import make_cohort
    from core.data.explore import default_timeline_variables
    rows = [("p1", h, v, 80.0) for h in range(48) for v in ("HR", "MAP", "Temp", "SaO2", "RespRate", "SysABP")]
    rows += [("p1", 6.0, "Lactate", 2.1), ("p1", 12.0, "Lactate", 3.4), ("p1", 6.0, "WBC", 12.0), ("p1", 3.0, "Mystery", 1.0)]
    cohort = make_cohort(pd.DataFrame(rows, columns=["patient_id", "time_hours", "variable", "value"]))
    chosen = default_timeline_variables(cohort, "p1")
    assert "Lactate" in chosen and "WBC" in chosen and "HR" in chosen and len(chosen) == 7
    assert chosen.index("HR") < chosen.index("Lactate")              # vitals first, then labs


def test_edited_code_meanings_replace_the_built_in_ones():
    from core.data.plausibility import code_table, codes_from_table, describe_value
    table = code_table(["Gender", "Age"])
    assert set(table["variable"]) == {"Gender"} and len(table) == 2
    table.loc[table["code"] == 1.0, "meaning"] = "man"
    table.loc[len(table)] = ["Site", 3, "hospital C"]
    table.loc[len(table)] = ["", 1, "ignored"]
    codes = codes_from_table(table)
    assert describe_value("Gender", 1.0, codes) == "man" and describe_value("Site", 3.0, codes) == "hospital C"
    assert describe_value("Gender", 1.0) == "male"                   # the built-in table is unchanged


def test_a_label_per_hour_in_a_wide_file_is_offered_as_the_online_target(tmp_path):
    from core.data.ingest import inspect_columns
    rows = [{"patient_id": f"p{i}", "ICULOS": h, "HR": 80 + h, "Gender": i % 2, "SepsisLabel": int(i == 0 and h > 2)}
            for i in range(6) for h in range(5)]
    path = tmp_path / "wide.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    info = inspect_columns(path)
    assert dict(info["target_choices"]) == {"Gender": "0/1", "SepsisLabel": "hourly"}
    assert info["target_guess"] == "SepsisLabel"
