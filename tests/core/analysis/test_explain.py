"""Explanations: attributions land on the planted variable (and window), one result shape, CLI round trip."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import NotFittedError

from core.analysis import explain as ex
from core.exceptions import CohortError, RunError
from core.models import registry
from core.models.recurrent import RecurrentClassifier
from tests.helpers.explain import SIGNAL, WINDOW, fitted_run, planted_cohort
from tests.helpers.paths import ROOT



@pytest.fixture(scope="module")
def planted():
    cohort = planted_cohort(n=200)
    models = {"lr": registry.get("lr").make(preset="test", random_state=0),
              "svm": registry.get("svm").make(preset="test", random_state=0),
              "rf": RandomForestClassifier(n_estimators=20, min_samples_leaf=3, random_state=0),
              "gbm": HistGradientBoostingClassifier(max_iter=20, random_state=0),
              "gru": RecurrentClassifier(cell="gru", hidden_size=8, max_epochs=25, patience=25, lr=1e-2,
                                         dropout=0.0, batch_size=32, random_state=0)}
    run = fitted_run(cohort, models, n_train=150)
    results = {n: ex.explain_model(run, n, cohort, nsamples=None, random_state=0) for n in models}
    return cohort, run, results


@pytest.mark.parametrize("name", ["lr", "svm", "rf", "gbm", "gru"])
def test_attribution_lands_on_planted_variable(planted, name):
    _, _, results = planted
    res = results[name]
    imp = res.importance()
    assert imp.index[0] == SIGNAL, imp
    assert imp.iloc[0] > 3 * imp.iloc[1], imp


def test_sequence_attribution_lands_in_planted_window(planted):
    res = planted[2]["gru"]
    ti = res.time_importance()
    lac = ti.loc[SIGNAL]
    inside = lac[(lac.index >= WINDOW[0]) & (lac.index < WINDOW[1])].sum()
    assert inside > 0.8 * lac.sum(), lac


@pytest.mark.parametrize("name", ["lr", "svm", "rf", "gbm", "gru"])
def test_result_shapes_and_consistency(planted, name):
    cohort, run, results = planted
    res = results[name]
    n, V = len(run.splits["test"]), len(res.variables)
    assert res.attributions.shape == (n, V) and res.predictions.shape == (n,)
    assert list(res.patient_ids) == list(run.splits["test"])
    assert set(res.variables) == {"HR", "MAP", "Temp", SIGNAL, "Age"}
    assert res.output in ("probability", "log-odds") and res.method and res.seconds >= 0
    err = np.max(np.abs(res.attributions.sum(1) + res.base_value - res.predictions))
    assert res.additivity_error == pytest.approx(err)
    if name == "gru":
        T = run.builder.config.n_steps
        assert res.time_attributions.shape == (n, T, V) and res.times_hours.shape == (T,)
        np.testing.assert_allclose(res.time_attributions.sum(1), res.attributions, atol=1e-10)
        assert res.additivity_error < 0.05            # integrated gradients: only the quadrature error
    else:
        assert res.time_attributions is None and res.times_hours is None
        assert res.additivity_error < 1e-6            # exact explainers and constrained Kernel SHAP
    # the explained output is the model's own output
    model, fs = run.models[name], run.builder.transform(cohort, res.patient_ids)
    X = fs.X_seq if name == "gru" else fs.X_tab
    expected = model.decision_function(X) if res.output == "log-odds" else model.predict_proba(X)[:, 1]
    np.testing.assert_allclose(res.predictions, np.ravel(expected), rtol=1e-5, atol=1e-6)


def test_long_frame_times_empty_for_tabular(planted):
    gbm, gru = planted[2]["gbm"], planted[2]["gru"]
    f = gbm.to_frame()
    assert list(f.columns) == ["patient_id", "time", "variable", "attribution"]
    assert f["time"].isna().all() and len(f) == gbm.attributions.size
    g = gru.to_frame()
    assert g["time"].notna().all() and len(g) == gru.time_attributions.size
    one = gru.patient(gru.patient_ids[0])
    assert one["attribution"].sum() == pytest.approx(gru.attributions[0].sum())
    with pytest.raises(CohortError, match="not explained"):
        gru.patient("nobody")


def test_compare_importance_and_agreement(planted):
    results = list(planted[2].values())
    table = ex.compare_importance(results)
    assert list(table.columns) == [r.model_name for r in results]
    np.testing.assert_allclose(table.sum(axis=0), 1.0)
    assert table.index[0] == SIGNAL
    agree = ex.importance_agreement(table)
    np.testing.assert_allclose(agree.to_numpy(), agree.to_numpy().T)
    np.testing.assert_allclose(np.diag(agree), 1.0)
    assert ((agree.to_numpy() >= -1) & (agree.to_numpy() <= 1)).all()


def test_compare_refuses_different_patients(planted):
    cohort, run, results = planted
    other = ex.explain_model(run, "gbm", cohort, list(run.splits["test"][:5]))
    with pytest.raises(ValueError, match="same patient_ids"):
        ex.compare_importance([results["lr"], other])


def test_bad_inputs(planted):
    cohort, run, _ = planted
    with pytest.raises(RunError, match="choose one of: lr, svm"):
        ex.explain_model(run, "lstm", cohort, ["p000"])
    with pytest.raises(CohortError, match="Unknown patient"):
        ex.explain_model(run, "gbm", cohort, ["nobody"])
    with pytest.raises(ValueError, match="background must be between"):
        ex.explain_model(run, "lr", cohort, ["p000"], background=0)
    fs = run.builder.transform(cohort, ["p000"])
    with pytest.raises(NotFittedError):
        ex.explain(registry.get("rf").make(preset="test"), fs)


def test_core_explain_never_imports_streamlit():
    code = "import sys, core.analysis.explain, core.commands.explain; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.fixture(scope="module")
def trained_run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain_cli")
    cohort = planted_cohort(n=60, seed=1)
    ev = cohort.events.rename(columns={"time_hours": "time"})
    st = cohort.static.reset_index().assign(time=0.0).melt(id_vars=["patient_id", "time"], var_name="variable")
    events = pd.concat([ev, st[["patient_id", "time", "variable", "value"]]], ignore_index=True)
    events.to_csv(tmp / "events.csv", index=False)
    cohort.labels.rename("died").rename_axis("patient_id").reset_index().to_csv(tmp / "labels.csv", index=False)
    rc = _cli("train", str(tmp / "events.csv"), "--labels", str(tmp / "labels.csv"), "--target", "died",
              "--out", str(tmp / "run"), "--models", "lr,gru", "--preset", "test", "--bootstrap", "0",
              "--no-progress")
    assert rc.returncode == 0, rc.stdout + rc.stderr
    return tmp


def _cli(*args):
    """Run ``python -m core ...`` in-process (same code path as the console, without a new interpreter)."""
    import contextlib
    import io
    from types import SimpleNamespace

    from core.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.mark.parametrize("model", ["lr", "gru"])
def test_cli_round_trip(trained_run_dir, model):
    tmp = trained_run_dir
    out = tmp / f"attr_{model}.csv"
    rc = _cli("explain", str(tmp / "run"), str(tmp / "events.csv"), "--model", model, "--patients", "p001,p002",
              "--out", str(out))
    assert rc.returncode == 0, rc.stdout + rc.stderr
    df = pd.read_csv(out, dtype={"patient_id": str})
    assert list(df.columns) == ["patient_id", "time", "variable", "attribution"]
    assert set(df["patient_id"]) == {"p001", "p002"}
    assert pd.api.types.is_float_dtype(df["attribution"]) and (df["attribution"] < 0).any()
    if model == "lr":
        assert df["time"].isna().all()
    else:
        assert pd.api.types.is_float_dtype(df["time"]) and df["time"].notna().all()


def test_cli_bad_model_and_patient_exit_2(trained_run_dir):
    tmp = trained_run_dir
    rc = _cli("explain", str(tmp / "run"), str(tmp / "events.csv"), "--model", "xgboost", "--out",
              str(tmp / "x.csv"))
    assert rc.returncode == 2 and "Traceback" not in rc.stderr
    assert "choose one of: lr, gru" in rc.stderr
    rc = _cli("explain", str(tmp / "run"), str(tmp / "events.csv"), "--model", "lr", "--patients", "zz9",
              "--out", str(tmp / "x.csv"))
    assert rc.returncode == 2 and "Traceback" not in rc.stderr and "Unknown patient" in rc.stderr
