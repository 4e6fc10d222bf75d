"""core.runs.external and ``python -m core evaluate``: a run measured on labelled data from elsewhere."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.cli import main
from core.config import DataConfig, EvaluationConfig
from core.data.ingest import load_cohort
from core.evaluation.bootstrap import bootstrap_indices
from core.evaluation.calibration import calibration_intercept_slope
from core.exceptions import CohortError
from core.runs.external import validate_external
from core.runs.store import load_run, save_run
from core.training.experiment import run_experiment
from tests.helpers.cohorts import make_online_cohort, make_tiny_cohort, write_long


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("external")
    events, labels = write_long(make_tiny_cohort(n_patients=120, seed=3), folder)
    assert main(["train", str(events), "--labels", str(labels), "--target", "died", "--out", str(folder / "run"),
                 "--preset", "test", "--models", "lr,gbm", "--bootstrap", "50", "--no-progress"]) == 0
    new_events, new_labels = write_long(make_tiny_cohort(n_patients=150, seed=8), folder, prefix="q")
    return folder / "run", new_events, new_labels, folder


def test_the_cli_writes_metrics_with_intervals_calibration_subgroups_and_shift(trained, tmp_path, capsys):
    run_dir, events, labels, _ = trained
    out = tmp_path / "ext"
    assert main(["evaluate", str(run_dir), str(events), "--labels", str(labels), "--target", "died", "--out", str(out),
                 "--bootstrap", "200", "--seed", "5"]) == 0
    text = capsys.readouterr().out
    assert "logistic regression: AUROC" in text and "internal" in text
    metrics = json.loads((out / "metrics.json").read_text())
    run = load_run(run_dir)
    preds = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str})
    for name in ("lr", "gbm"):
        m = metrics["models"][name]
        assert set(run.metrics["models"][name]) - {"train_seconds", "validation_auroc"} <= set(m)   # the run's keys
        d = preds[preds["model"] == name]
        y, p = d["y_true"].to_numpy(), d["risk"].to_numpy()
        assert m["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
        idx = bootstrap_indices(len(y), 200, 5)                    # an independent interval on the same resamples
        aucs = [roc_auc_score(y[i], p[i]) for i in idx if 0 < y[i].sum() < len(i)]
        assert m["auroc_ci"] == pytest.approx(list(np.percentile(aucs, [2.5, 97.5])), abs=1e-9)
        cal = calibration_intercept_slope(y, p)
        assert m["calibration_slope"] == pytest.approx(cal["calibration_slope"])
        assert m["internal_auroc"] == run.metrics["models"][name]["auroc"]
        assert m["auroc_difference"] == pytest.approx(m["auroc"] - m["internal_auroc"])
        assert m["threshold"] == pytest.approx(run.thresholds[name])
        assert (d["predicted"].to_numpy() == (p >= run.thresholds[name])).all()
    assert metrics["n_patients"]["external"] == 150
    sub = pd.read_csv(out / "subgroups.csv")
    for _, d in sub.groupby(["model", "attribute"]):
        assert d["n"].sum() == 150
    shift = pd.read_csv(out / "shift.csv")
    assert set(shift["variable"]) == {"HR", "Temp", "Lactate", "Age"} and shift["smd"].abs().is_monotonic_decreasing
    from core.runs.report import build_report                  # kept with the run: its report shows it
    html = build_report(load_run(run_dir))
    assert "External validation" in html and f"{metrics['models']['lr']['auroc']:.3f}" in html


def test_the_runs_own_test_patients_give_the_runs_own_numbers(trained):
    run_dir, _, _, folder = trained
    run = load_run(run_dir)
    cohort = load_cohort(folder / "events_p.csv", folder / "outcomes_p.csv", config=DataConfig(target="died"))
    own = validate_external(run, cohort.subset(run.splits["test"]), config=EvaluationConfig(n_bootstrap=50))
    for name in ("lr", "gbm"):
        assert own.results[name].metrics["auroc"] == pytest.approx(run.metrics["models"][name]["auroc"], abs=1e-12)
        assert own.metrics_dict()["models"][name]["auroc_difference"] == pytest.approx(0, abs=1e-12)
    whole = validate_external(run, cohort, config=EvaluationConfig(n_bootstrap=50))     # the whole training file:
    assert whole.n_patients == len(run.splits["test"])                  # its training/validation patients left out
    assert whole.results["lr"].metrics["auroc"] == own.results["lr"].metrics["auroc"]
    assert "own training or validation patients (by id): left out" in whole.warnings[0]
    with pytest.raises(CohortError, match="Every labelled patient here is one of run"):
        validate_external(run, cohort.subset(run.splits["train"]))
    moments = run.builder.value_moments(cohort, run.splits["train"])       # what fit measured, measured again
    np.testing.assert_allclose(moments["series"][:, 0], run.builder.mean_, rtol=1e-12)
    np.testing.assert_allclose(moments["series"][:, 1], run.builder.std_, rtol=1e-12)


def test_renamed_variables_are_mapped_and_no_labels_is_a_message(trained, tmp_path, capsys):
    run_dir, events, labels, _ = trained
    rows = pd.read_csv(events, dtype={"patient_id": str})
    rows["variable"] = rows["variable"].replace({"HR": "Heart Rate", "Lactate": "Lac"})
    renamed = tmp_path / "renamed.csv"
    rows.to_csv(renamed, index=False)
    base, mapped = tmp_path / "a", tmp_path / "b"
    args = ["--labels", str(labels), "--target", "died", "--bootstrap", "20"]
    assert main(["evaluate", str(run_dir), str(events), "--out", str(base), *args]) == 0
    assert main(["evaluate", str(run_dir), str(renamed), "--out", str(mapped), "--map", "Lac=Lactate", *args]) == 0
    assert "mapped: Heart Rate -> HR (synonym)" in capsys.readouterr().err
    a, b = (json.loads((f / "metrics.json").read_text())["models"]["lr"] for f in (base, mapped))
    assert a["auroc"] == b["auroc"] and a["auroc_ci"] == b["auroc_ci"]
    assert main(["evaluate", str(run_dir), str(events), "--out", str(tmp_path / "c")]) == 2
    assert "needs the outcome" in capsys.readouterr().err


def test_an_online_run_is_measured_per_hour_with_alarms(tmp_path):
    save_run(run_experiment(make_online_cohort(80, seed=1), ["lr"], preset="test"), tmp_path / "online")
    run = load_run(tmp_path / "online")
    new = make_online_cohort(50, seed=9)
    ext = validate_external(run, new, config=EvaluationConfig(n_bootstrap=50))
    m = ext.metrics_dict()["models"]["lr"]
    assert ext.online and "alarmed_before_onset" in m and len(m["auroc_ci"]) == 2
    assert ext.metrics_dict()["n_rows"] > ext.n_patients
    with pytest.raises(CohortError, match="label per hour"):
        validate_external(run, make_tiny_cohort(30))
