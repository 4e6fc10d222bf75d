"""``python -m core whatif``: the timeline's what-if from the command line (same numbers as core.analysis.whatif)."""
from __future__ import annotations

import pandas as pd
import pytest

from core.cli import main
from core.commands.whatif import parse_edit
from core.analysis.whatif import Edit, WhatIfError, whatif
from tests.helpers.cohorts import make_tiny_cohort, write_long


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whatif_cli")
    events, labels = write_long(make_tiny_cohort(n_patients=50, seed=4), folder)
    run_dir = folder / "run"
    assert main(["train", str(events), "--labels", str(labels), "--target", "died", "--out", str(run_dir),
                 "--preset", "test", "--models", "lr,gru", "--bootstrap", "20", "--no-progress"]) == 0
    return run_dir, events, folder


@pytest.mark.parametrize("text, expected", [
    ("edit:HR@5=190", Edit("edit", "HR", 5.0, 190.0)),
    ("add:Lactate@10.5=4.2", Edit("add", "Lactate", 10.5, 4.2)),
    ("remove:HR@5", Edit("remove", "HR", 5.0)),
    ("drop:Lactate", Edit("drop_variable", "Lactate")),
    ("STATIC:Age=70", Edit("static", "Age", value=70.0)),
])
def test_parse_edit(text, expected):
    assert parse_edit(text) == expected


@pytest.mark.parametrize("text, match", [
    ("bogus", "is not a change"), ("move:HR@5", "is not a change"), ("edit:HR@5", "needs the new value"),
    ("edit:HR@x=1", "hour"), ("add:HR@3=high", "value"),
])
def test_parse_edit_refuses_with_the_form(text, match):
    with pytest.raises(WhatIfError, match=match):
        parse_edit(text)


def test_cli_writes_the_same_risks_as_core(trained, capsys):
    from core.data.ingest import load_cohort
    from core.config import DataConfig
    from core.runs.store import load_run
    run_dir, events, folder = trained
    cohort = load_cohort(str(events), None, config=DataConfig(target=None))
    pid = str(cohort.patient_ids[0])
    ev = cohort.patient_events(pid)
    hour = float(ev.loc[ev["variable"] == "HR", "time_hours"].iloc[2])
    out = folder / "wi.csv"
    assert main(["whatif", str(run_dir), str(events), "--patient", pid, "--edit", f"edit:HR@{hour}=200",
                 "--out", str(out)]) == 0
    assert "HR at" in capsys.readouterr().out
    table = pd.read_csv(out)
    res = whatif(load_run(run_dir), cohort, pid, [Edit("edit", "HR", hour, 200.0)])
    for name in ("lr", "gru"):
        d = table[table["model"] == name].sort_values("time_hours")
        pd.testing.assert_series_equal(d["what-if risk"].reset_index(drop=True),
                                       res.edited[name].reset_index(drop=True), check_names=False, atol=1e-12)
        before = d[d["time_hours"] < hour]
        assert len(before) and (before["change"].abs() < 1e-12).all()    # nothing before the edited hour moves
        assert (d.loc[d["time_hours"] >= hour, "change"].abs() > 0).any()


@pytest.mark.parametrize("argv, match", [
    (["--patient", "nobody", "--edit", "drop:HR"], "is not in"),
    (["--patient", "p000", "--edit", "drop:Nonsense"], "Unknown variable"),
    (["--patient", "p000"], "at least one --edit"),
    (["--patient", "p000", "--edit", "edit:HR@1000=1"], "outside the run's window"),
])
def test_cli_refusals_exit_2_with_a_message(trained, capsys, argv, match):
    run_dir, events, folder = trained
    assert main(["whatif", str(run_dir), str(events), *argv, "--out", str(folder / "x.csv")]) == 2
    assert match in capsys.readouterr().err
    assert not (folder / "x.csv").exists()
