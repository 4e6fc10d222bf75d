"""core.runs.pair and ``python -m core compare``: two runs paired on their common test patients."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.cli import main
from core.config import SplitConfig
from core.evaluation.metrics import delong_test
from core.evaluation.multiplicity import holm
from core.exceptions import RunError
from core.runs.pair import compare_runs
from core.runs.store import load_run, save_run
from core.training.experiment import run_experiment
from tests.helpers.cohorts import make_online_cohort, make_tiny_cohort


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    cohort = make_tiny_cohort(160, seed=4)
    out = {}
    for name, models, kwargs in (("a", ["lr", "gru"], {}), ("b", ["lr", "gbm", "gru"], {"random_state": 3}),
                                 ("other_split", ["lr"], {"split": SplitConfig(random_state=7)})):
        save_run(run_experiment(cohort, models, preset="test", **kwargs), root / name)
        out[name] = load_run(root / name)
    labels = cohort.labels.copy()
    labels[:] = 1 - labels.to_numpy()                       # another outcome on the same patients
    flipped = make_tiny_cohort(160, seed=4)
    flipped.labels = labels
    save_run(run_experiment(flipped, ["lr"], preset="test"), root / "flipped")
    out["flipped"] = load_run(root / "flipped")
    out["root"] = root
    return out


def test_models_both_runs_have_are_paired_on_the_same_test_patients(runs):
    a, b = runs["a"], runs["b"]
    pair = compare_runs(a, b)
    assert list(pair.table["model"]) == ["logistic regression", "GRU"]            # gbm is only in b
    assert pair.same_data and pair.n_patients == pair.n_test_a == pair.n_test_b   # same data, same split
    for name, row in zip(("lr", "gru"), pair.table.itertuples(index=False)):
        # the number shown twice is the same number: each run's own test AUROC
        assert row[1] == pytest.approx(a.metrics["models"][name]["auroc"], abs=1e-12)
        assert row[2] == pytest.approx(b.metrics["models"][name]["auroc"], abs=1e-12)
        ta = a.predictions.query("split == 'test' and model == @name").sort_values("patient_id")
        tb = b.predictions.query("split == 'test' and model == @name").sort_values("patient_id")
        assert row[1] == pytest.approx(roc_auc_score(ta["y_true"], ta["risk"]), abs=1e-12)
        d = delong_test(ta["y_true"].to_numpy(), tb["risk"].to_numpy(), ta["risk"].to_numpy())
        assert row.difference == pytest.approx(row[2] - row[1], abs=1e-12) == pytest.approx(d["difference"])
        assert row.p == pytest.approx(d["p_value"]) and row[4] <= row.difference <= row[5]
    np.testing.assert_allclose(pair.table["p (Holm)"], holm(pair.table["p"]))
    assert "B minus A; p-values Holm-adjusted over the 2 model(s)" in pair.sentence()


def test_another_split_compares_only_the_common_test_patients(runs):
    pair = compare_runs(runs["a"], runs["other_split"])
    common = set(runs["a"].splits["test"]) & set(runs["other_split"].splits["test"])
    assert 0 < pair.n_patients == len(common) < pair.n_test_a
    assert "only the patients that were test patients in both are compared" in pair.sentence()


def test_refusals_say_why(runs):
    with pytest.raises(RunError, match="different labels .* different outcomes"):
        compare_runs(runs["a"], runs["flipped"])
    one_class = runs["root"] / "one_class"                     # a run whose test patients share one outcome
    from core.runs.store import copy_run
    copy_run(runs["root"] / "other_split", one_class)
    r = load_run(one_class)
    a = runs["a"]
    keep = set(a.predictions.query("split == 'test' and y_true == 1")["patient_id"])
    object.__setattr__(r, "predictions", r.predictions[r.predictions["patient_id"].isin(keep)
                                                       | (r.predictions["split"] != "test")])
    with pytest.raises(RunError, match="all have the same outcome"):
        compare_runs(a, r)
    online = runs["root"] / "online"
    save_run(run_experiment(make_online_cohort(40), ["gru"], preset="test"), online)
    with pytest.raises(RunError, match="every hour"):
        compare_runs(runs["a"], load_run(online))
    save_run(run_experiment(make_tiny_cohort(160, seed=4), ["gbm"], preset="test"), runs["root"] / "gbm")
    with pytest.raises(RunError, match="no model in common"):
        compare_runs(runs["a"], load_run(runs["root"] / "gbm"))


def test_online_runs_are_paired_by_patient_hour_with_a_patient_bootstrap(tmp_path):
    cohort = make_online_cohort(60)
    for name, models in (("a", ["lr"]), ("b", ["lr", "gru"])):
        save_run(run_experiment(cohort, models, preset="test", random_state=1 if name == "b" else 0), tmp_path / name)
    pair = compare_runs(load_run(tmp_path / "a"), load_run(tmp_path / "b"))
    assert pair.online and pair.n_rows > pair.n_patients and list(pair.table["model"]) == ["logistic regression"]
    assert np.isfinite(pair.table["p"]).all()                  # from the patient bootstrap, not DeLong on hours


def test_the_cli_prints_and_writes_the_table(runs, tmp_path, capsys):
    out = tmp_path / "pair.csv"
    assert main(["compare", str(runs["root"] / "a"), str(runs["root"] / "b"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "logistic regression: A " in text and "Holm p=" in text
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["model", "auroc A", "auroc B", "difference"] and len(table) == 2
    assert main(["compare", str(runs["root"] / "a"), str(runs["root"] / "flipped")]) == 2
    assert "different outcomes" in capsys.readouterr().err
