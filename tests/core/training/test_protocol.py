"""The contract of core.training.protocol: split by patient -> features fitted on the training patients -> fit ->
threshold on the validation patients -> score the test patients.

Each test holds one promise of the module docstring against an independent computation: the builder learns
nothing from other patients, each threshold is ``choose_threshold`` of the model's validation risks, the test
metrics are ``evaluate`` of its test risks, every model is fitted and scored on the same patients, and the labels
never reach the features.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import core.training.protocol as protocol
from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.data.cohort import make_cohort
from core.evaluation.metrics import choose_threshold, evaluate
from core.models import registry
from core.training.protocol import predict_units, run_protocol, split_by_patient
from tests.helpers.cohorts import make_tiny_cohort

FEATURES = FeatureConfig(window_hours=6)
EVALUATION = EvaluationConfig(n_bootstrap=20)
MODELS = ("lr", "gbm", "gru")                 # a tabular pipeline, a tree ensemble, a sequence model
BUILDER_STATE = ("variables_", "clip_lo_", "clip_hi_", "mean_", "std_", "static_columns_", "static_mean_",
                 "static_std_", "n_train_")


def _run(cohort, splits, names=MODELS):
    return run_protocol(cohort, [registry.get(n) for n in names], splits, features=FEATURES, evaluation=EVALUATION,
                        preset="test", random_state=0)


def _labels(cohort, ids) -> np.ndarray:
    return cohort.labels.loc[ids].to_numpy().astype(int)


def _with(cohort, events=None, static=None, labels=None):
    """``cohort`` with some of its frames replaced (the rest shared)."""
    return make_cohort(cohort.events if events is None else events, cohort.static if static is None else static,
                       cohort.labels if labels is None else labels, target="died")


@pytest.fixture(scope="module")
def cohort():
    return make_tiny_cohort(n_patients=80, seed=7)


@pytest.fixture(scope="module")
def splits(cohort):
    return split_by_patient(cohort, SplitConfig(random_state=0))


@pytest.fixture(scope="module")
def fits(cohort, splits):
    """The protocol's result, and what each model's fit was given (``fit_in_stages`` spied: model name, X, y)."""
    seen = []
    real = protocol.fit_in_stages

    def spy(model, X, y, report):
        seen.append((type(model).__name__, np.array(X, copy=True), np.array(y, copy=True)))
        return real(model, X, y, report)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(protocol, "fit_in_stages", spy)
        result = _run(cohort, splits)
    return result, dict(zip(MODELS, seen))


def test_the_builder_learns_from_the_training_patients_only(cohort, splits, fits):
    """Values, a variable and static attributes only test patients have change nothing the builder learned,
    nor any model's validation risks, nor its threshold."""
    result, _ = fits
    test = set(splits["test"])
    ev = cohort.events.copy()
    ev["variable"] = ev["variable"].astype(str)
    in_test = ev["patient_id"].astype(str).isin(test).to_numpy()
    ev.loc[in_test & (ev["variable"] == "HR").to_numpy(), "value"] += 1000.0          # far outside any training value
    extra = pd.DataFrame({"patient_id": sorted(test), "time_hours": 1.0, "variable": "OnlyTest", "value": 5.0})
    static = cohort.static.copy()
    static.loc[static.index.isin(test), "Age"] = 150.0
    changed = _run(_with(cohort, events=pd.concat([ev, extra], ignore_index=True), static=static), splits)
    for attr in BUILDER_STATE:
        a, b = getattr(result.builder, attr), getattr(changed.builder, attr)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(b, a, err_msg=attr)
        else:
            assert b == a, attr
    assert "OnlyTest" not in changed.builder.variables_
    for name in MODELS:
        np.testing.assert_array_equal(changed.validation[name].y_proba, result.validation[name].y_proba, err_msg=name)
        assert changed.test[name].threshold == result.test[name].threshold
        assert not np.array_equal(changed.test[name].y_proba, result.test[name].y_proba)     # the change was seen


def test_each_threshold_is_chosen_on_the_models_validation_risks(cohort, splits, fits):
    result, _ = fits
    val = result.features["validation"]
    y_val = _labels(cohort, splits["validation"])
    for name in MODELS:
        risks = predict_units(result.models[name], registry.get(name).input_kind, val)
        np.testing.assert_array_equal(result.validation[name].y_proba, risks)
        expected = choose_threshold(y_val, risks, EVALUATION.threshold_rule, EVALUATION.target_sensitivity)
        assert result.validation[name].threshold == expected
        assert result.test[name].threshold == expected                 # applied unchanged to the test patients


def test_test_metrics_are_evaluate_of_the_test_risks(cohort, splits, fits):
    result, _ = fits
    test = result.features["test"]
    y_test = _labels(cohort, splits["test"])
    for name in MODELS:
        risks = predict_units(result.models[name], registry.get(name).input_kind, test)
        got = result.test[name]
        want = evaluate(name, y_test, risks, got.threshold, test.unit_ids, EVALUATION, idx=result.bootstrap)
        np.testing.assert_array_equal(got.y_proba, risks)
        np.testing.assert_array_equal(got.y_true, y_test)
        assert got.metrics.keys() == want.metrics.keys()
        np.testing.assert_array_equal(list(got.metrics.values()), list(want.metrics.values()), err_msg=name)
        assert got.ci == want.ci, name
    assert result.bootstrap is not None and result.bootstrap.shape == (EVALUATION.n_bootstrap, len(y_test))


def test_every_model_is_fitted_and_scored_on_the_same_patients(cohort, splits, fits):
    result, given = fits
    assert not set(splits["train"]) & set(splits["validation"]) and not set(splits["train"]) & set(splits["test"])
    assert not set(splits["validation"]) & set(splits["test"])
    train = result.features["train"]
    np.testing.assert_array_equal(train.patient_ids, splits["train"])
    y_train = _labels(cohort, splits["train"])
    for name in MODELS:
        _, X, y = given[name]
        view = train.X_seq if registry.get(name).input_kind == "sequence" else train.X_tab
        np.testing.assert_array_equal(X, view, err_msg=name)               # the training patients' rows, in order
        np.testing.assert_array_equal(y, y_train, err_msg=name)
        for split in ("validation", "test"):
            res = getattr(result, split)[name]
            np.testing.assert_array_equal(res.patient_ids, splits[split], err_msg=f"{name} {split}")
            np.testing.assert_array_equal(res.y_true, _labels(cohort, splits[split]), err_msg=f"{name} {split}")


def test_the_labels_never_enter_the_features(cohort, splits, fits):
    """Every patient's outcome flipped: the same builder and the same features for every split."""
    result, _ = fits
    flipped = _run(_with(cohort, labels=1 - cohort.labels), splits, names=("lr",))
    for attr in BUILDER_STATE:
        a, b = getattr(result.builder, attr), getattr(flipped.builder, attr)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, attr
    for split, fs in result.features.items():
        other = flipped.features[split]
        np.testing.assert_array_equal(other.X_tab, fs.X_tab, err_msg=split)
        np.testing.assert_array_equal(other.X_seq, fs.X_seq, err_msg=split)
        assert other.tab_names == fs.tab_names and other.seq_names == fs.seq_names
    for split in ("validation", "test"):                                      # the outcomes did change
        np.testing.assert_array_equal(getattr(flipped, split)["lr"].y_true, 1 - getattr(result, split)["lr"].y_true)
