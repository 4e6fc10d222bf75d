"""Explanations of a saved run: one model on demand, kept as a file of the run, read back exactly."""
from __future__ import annotations

import json
import shutil
from dataclasses import fields, replace

import numpy as np
import pandas as pd
import pytest

from core.analysis import explain as ex
from core.data.cohort import make_cohort
from core.config import EvaluationConfig
from core.exceptions import CohortError, RunError
from core.training.experiment import run_experiment
from core.plots import patient_attribution_figure
from core.runs.store import ANALYSES, attach_files, list_attached, load_run, save_run, verify_run
from tests.helpers.cohorts import make_online_cohort, make_tiny_cohort

#: the keys the HTML report reads from every attached explain-*.json (kept exactly).
REPORT_KEYS = ("model", "label", "method", "n_patients", "importance")


@pytest.fixture(scope="module")
def stay(tmp_path_factory):
    cohort = make_tiny_cohort(n_patients=40, seed=3)
    res = run_experiment(cohort, ["lr", "gbm", "gru"], preset="test", evaluation=EvaluationConfig(n_bootstrap=0))
    return cohort, load_run(save_run(res, tmp_path_factory.mktemp("runs") / "stay"))


@pytest.fixture(scope="module")
def online(tmp_path_factory):
    cohort = make_online_cohort(n_patients=40, seed=2)
    res = run_experiment(cohort, ["lr", "gru"], preset="test", evaluation=EvaluationConfig(n_bootstrap=0))
    return cohort, load_run(save_run(res, tmp_path_factory.mktemp("runs") / "online"))


@pytest.fixture(scope="module")
def explained(stay):
    cohort, run = stay
    return {n: ex.explain_run_model(run, n, cohort, n_patients=4) for n in ("lr", "gru")}


def _fresh(run, tmp_path):
    dst = tmp_path / run.folder.name
    shutil.copytree(run.folder, dst)
    return dst


def assert_same_result(a: ex.ExplanationResult, b: ex.ExplanationResult) -> None:
    """Every field equal; arrays exactly (NaN where NaN)."""
    for f in fields(ex.ExplanationResult):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray), f.name
            if x.dtype == object:
                assert list(x) == list(y) and y.dtype == object, f.name
            else:
                np.testing.assert_allclose(y, x, rtol=0, atol=0, err_msg=f.name)
                assert y.shape == x.shape, f.name
        elif isinstance(x, float):
            assert (np.isnan(x) and np.isnan(y)) or x == y, f.name
        else:
            assert x == y and type(x) is type(y), f.name


# -- ExplanationResult.to_dict / from_dict -----------------------------------------------------------
@pytest.mark.parametrize("name", ["lr", "gru"])
def test_result_round_trips_through_strict_json(explained, name):
    res = explained[name]
    text = json.dumps(res.to_dict(), allow_nan=False)
    back = ex.ExplanationResult.from_dict(json.loads(text))
    assert_same_result(res, back)
    assert back.is_time_resolved == (name == "gru")
    assert back.importance().equals(res.importance())


def test_nonfinite_values_and_empty_results_round_trip(explained):
    res = explained["gru"]
    attr = res.attributions.copy()
    attr[0, :3] = [np.nan, np.inf, -np.inf]
    ta = res.time_attributions.copy()
    ta[1, 0, 0] = np.nan
    odd = replace(res, attributions=attr, time_attributions=ta, base_value=float("-inf"),
                  additivity_error=float("nan"), extra={**res.extra, "note": (1, float("inf"))})
    d = json.loads(json.dumps(odd.to_dict(), allow_nan=False))
    assert d["attributions"][0][:3] == [None, "inf", "-inf"] and d["base_value"] == "-inf"
    back = ex.ExplanationResult.from_dict(d)
    assert_same_result(replace(odd, extra={**odd.extra, "note": [1, float("inf")]}), back)
    empty = replace(res, patient_ids=res.patient_ids[:0], attributions=res.attributions[:0],
                    predictions=res.predictions[:0], time_attributions=res.time_attributions[:0])
    assert_same_result(empty, ex.ExplanationResult.from_dict(json.loads(json.dumps(empty.to_dict()))))


def test_from_dict_refuses_incomplete_or_misshapen(explained):
    d = explained["lr"].to_dict()
    with pytest.raises(ValueError, match="attributions missing"):
        ex.ExplanationResult.from_dict({k: v for k, v in d.items() if k != "attributions"})
    with pytest.raises(ValueError, match="do not fit the shape"):
        ex.ExplanationResult.from_dict({**d, "predictions": d["predictions"][:-1]})


# -- file names, saving, loading, listing -----------------------------------------------------------
def test_explanation_file_names():
    assert ex.explanation_file("gru", 50) == "explain-gru-n50.json"
    assert ex.explanation_file("gru", 50, None) == "explain-gru-n50.json"
    assert ex.explanation_file("lr", 100, 24.0) == "explain-lr-n100-h24.json"
    assert ex.explanation_file("grud", 5, 24.5) == "explain-grud-n5-h24.5.json"
    assert ex.explanation_file("svm", 1, 1e6) == "explain-svm-n1-h1000000.json"


@pytest.mark.parametrize("args, match", [(("../x", 5, None), "registry model name"), (("gru", 0, None), "n_patients"),
                                         (("gru", 2.5, None), "n_patients"), (("gru", 5, -1.0), "hour must be"),
                                         (("gru", 5, float("nan")), "hour must be")])
def test_explanation_file_refuses_bad_identity(args, match):
    with pytest.raises(ValueError, match=match):
        ex.explanation_file(*args)


def test_saved_file_is_the_runs_and_reads_back_exactly(stay, explained, tmp_path):
    cohort, run = stay
    folder = _fresh(run, tmp_path)
    fp = cohort.fingerprint()
    assert ex.saved_explanations(folder) == [] and ex.load_explanation(folder, "gru", 4) is None
    assert ex.save_explanation(folder, explained["gru"], n_patients=4, hour=None, data_fingerprint=fp) \
        == "explain-gru-n4.json"
    ex.save_explanation(folder, explained["lr"], n_patients=4, hour=None, data_fingerprint=fp)
    verify_run(folder)                                           # listed in the manifest, hashes match
    assert list_attached(folder) == ["explain-gru-n4.json", "explain-lr-n4.json"]
    assert_same_result(explained["gru"], ex.load_explanation(folder, "gru", 4, None, data_fingerprint=fp))
    assert ex.load_explanation(folder, "gru", 4, data_fingerprint="other data") is None
    assert ex.load_explanation(folder, "gru", 5) is None and ex.load_explanation(folder, "rf", 4) is None

    doc = json.loads((folder / ANALYSES / "explain-gru-n4.json").read_text())
    assert set(REPORT_KEYS) <= set(doc) and set(doc) == {*ex.SAVED_KEYS, "importance", "result"}
    res = explained["gru"]
    assert (doc["model"], doc["label"], doc["method"], doc["n_patients"]) == ("gru", res.label, res.method, 4)
    assert (doc["run"], doc["hour"], doc["data_fingerprint"], doc["n_explained"]) == (folder.name, None, fp, 4)
    assert list(doc["importance"]) == list(res.importance().index)          # largest first
    assert list(doc["importance"].values()) == res.importance().tolist()
    assert doc["seconds"] == res.extra["wall_seconds"] >= res.seconds

    listed = ex.saved_explanations(folder)
    assert sorted(m["file"] for m in listed) == ["explain-gru-n4.json", "explain-lr-n4.json"]
    for m in listed:
        assert set(m) == {*ex.SAVED_KEYS, "file"} and m["n_patients"] == 4 and m["hour"] is None
        assert m["label"] == explained[m["model"]].label and m["seconds"] > 0


def test_resaving_replaces_and_listing_is_newest_first(stay, explained, tmp_path):
    cohort, run = stay
    folder = _fresh(run, tmp_path)
    ex.save_explanation(folder, explained["lr"], n_patients=4, hour=None, data_fingerprint="a")
    ex.save_explanation(folder, explained["gru"], n_patients=4, hour=None, data_fingerprint="a")
    ex.save_explanation(folder, explained["lr"], n_patients=4, hour=None, data_fingerprint="b")
    assert list_attached(folder) == ["explain-gru-n4.json", "explain-lr-n4.json"]
    listed = ex.saved_explanations(folder)
    assert [m["file"] for m in listed] == ["explain-lr-n4.json", "explain-gru-n4.json"]      # lr saved again last
    assert listed[0]["saved"] > listed[1]["saved"]
    assert {m["file"]: m["data_fingerprint"] for m in listed} == {"explain-gru-n4.json": "a", "explain-lr-n4.json": "b"}


def test_foreign_or_changed_files(stay, explained, tmp_path):
    cohort, run = stay
    folder = _fresh(run, tmp_path)
    attach_files(folder, {"explain-rf-n4.json": "{}", "timeorder.json": "{}"})
    ex.save_explanation(folder, explained["lr"], n_patients=4, hour=None, data_fingerprint="a")
    with pytest.warns(UserWarning, match="explain-rf-n4.json is not an explanation"):
        assert [m["file"] for m in ex.saved_explanations(folder)] == ["explain-lr-n4.json"]
    with pytest.raises(RunError, match="Explain the model again"):
        ex.load_explanation(folder, "rf", 4)
    path = folder / ANALYSES / "explain-lr-n4.json"
    path.write_text(path.read_text().replace('"n_patients":4', '"n_patients":5'))
    with pytest.raises(RunError, match="changed after the run was saved"):
        ex.load_explanation(folder, "lr", 4)
    with pytest.raises(RunError, match="changed after the run was saved"):
        ex.saved_explanations(folder)


# -- explain_run_model --------------------------------------------------------------------------------
def test_run_model_explains_the_first_test_patients(stay, explained):
    cohort, run = stay
    res = explained["lr"]
    assert list(res.patient_ids) == [str(p) for p in run.splits["test"][:4]]
    same = ex.explain_model(run, "lr", cohort, list(res.patient_ids))
    np.testing.assert_allclose(res.attributions, same.attributions, rtol=0, atol=1e-12)
    seen = []
    one = ex.explain_run_model(str(run.folder), "gbm", cohort.subset(list(run.splits["test"][2:])), n_patients=50,
                               progress=lambda msg, f: seen.append((msg, f)))
    assert list(one.patient_ids) == [str(p) for p in run.splits["test"][2:]]          # all there are
    assert [f for _, f in seen] == [0.0, 1.0] and "explaining" in seen[0][0]


def test_run_model_online_explains_patients_still_in_the_stay(online):
    cohort, run = online
    hour = 20.0
    res = ex.explain_run_model(run, "gru", cohort, n_patients=3, hour=hour)
    still = ex.patients_at_hour(run, cohort, [str(p) for p in run.splits["test"]], hour)
    assert list(res.patient_ids) == still[:3] and len(still) < len(run.splits["test"])
    assert res.time_attributions.shape[1] == int(hour) + 1
    with pytest.raises(RunError, match="pass the hour to explain"):
        ex.explain_run_model(run, "gru", cohort, n_patients=3)
    with pytest.raises(CohortError, match="pick an earlier hour"):
        ex.explain_run_model(run, "lr", cohort, n_patients=3, hour=29.0)


def test_run_model_refusals_say_how_to_fix(stay):
    cohort, run = stay
    with pytest.raises(RunError, match="choose one of: lr, gbm, gru"):
        ex.explain_run_model(run, "svm", cohort, n_patients=4)
    train_only = cohort.subset(list(run.splits["train"]))
    with pytest.raises(RunError, match="None of the .* test patients .* Load the data the run was trained on"):
        ex.explain_run_model(run, "lr", train_only, n_patients=4)
    other = make_cohort(pd.DataFrame({"patient_id": ["a", "b"], "time_hours": [0.0, 1.0], "variable": ["Foo"] * 2,
                                      "value": [1.0, 2.0]}))
    with pytest.raises(RunError, match="None of its .* variables"):
        ex.explain_run_model(run, "lr", other, n_patients=4)
    with pytest.raises(ValueError, match="n_patients"):
        ex.explain_run_model(run, "lr", cohort, n_patients=0)
    with pytest.raises(ValueError, match="hour is for online runs"):
        ex.explain_run_model(run, "lr", cohort, n_patients=4, hour=3.0)


# -- estimate_explain_seconds ---------------------------------------------------------------------------
def test_estimate_scales_the_nearest_measurement_by_hand():
    records = [{"model": "gru", "n_patients": 100, "seconds": 8.0},
               {"model": "gru", "n_patients": 400, "seconds": 40.0},
               {"model": "gru", "n_patients": 20, "seconds": 3.0},
               {"model": "lr", "n_patients": 100, "seconds": 0.5},
               {"model": "gru", "n_patients": 0, "seconds": 1.0},          # unusable: ignored
               {"model": "gru", "n_patients": 300, "seconds": None},
               {"model": "gbm", "n_patients": 50, "n_explained": 25, "seconds": 2.0}]
    assert ex.estimate_explain_seconds(records, "gru", 200) == pytest.approx(16.0)      # 100 is nearest: 8 * 2
    assert ex.estimate_explain_seconds(records, "gru", 300) == pytest.approx(30.0)      # 400: 40 * 3/4
    assert ex.estimate_explain_seconds(records, "gru", 250) == pytest.approx(25.0)      # tie 100/400: the larger
    assert ex.estimate_explain_seconds(records, "gru", 10) == pytest.approx(1.5)        # 20 (same budget side)
    assert ex.estimate_explain_seconds(records, "gru", 60) == pytest.approx(4.8)        # 100, not 20 (budget)
    assert ex.estimate_explain_seconds(records, "lr", 50) == pytest.approx(0.25)
    assert ex.estimate_explain_seconds(records, "gbm", 50) == pytest.approx(4.0)        # 25 were timed
    assert ex.estimate_explain_seconds(records, "svm", 50) is None
    assert ex.estimate_explain_seconds([], "gru", 50) is None
    with pytest.raises(ValueError, match="n_patients"):
        ex.estimate_explain_seconds(records, "gru", 0)


# -- risk over time: Run.risk_table is the one function ------------------------------------------------------
def test_patient_figure_draws_a_risk_table(stay, explained):
    cohort, run = stay
    res = explained["gru"]
    pid = str(res.patient_ids[0])
    risk = run.risk_table(cohort, pid)
    assert {"lr", "gbm", "gru"} <= set(risk.columns)            # stay run: classical models too
    fig = patient_attribution_figure(cohort.patient_events(pid), risk, res, pid)
    lines = [t for t in fig.data if t.type == "scatter" and t.name in ("lr", "gbm", "gru")]
    assert [t.name for t in lines] == ["lr", "gbm", "gru"]                   # the explained model on top
    assert lines[-1].line.width == 3 and all(t.line.width == 1 and t.opacity < 1 for t in lines[:-1])
    np.testing.assert_allclose(lines[-1].y, risk["gru"])
    only = patient_attribution_figure(cohort.patient_events(pid), risk[["time_hours", "gru"]], res, pid)
    assert [t.name for t in only.data if t.type == "scatter" and t.name == "gru"] == ["gru"]
    assert not hasattr(ex, "risk_over_time")
