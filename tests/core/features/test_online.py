"""The online task shape: per-hour features, causality, labels never features, one protocol, CLI."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.data.cohort import make_cohort
from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.training.experiment import run_experiment
from core.features import FeatureBuilder
from core.models import registry
from core.training.protocol import predict_units, run_protocol, split_by_patient
from tests.helpers.cohorts import make_online_cohort, wide_csv

ONLINE = FeatureConfig(task="online", window_hours=40, lookback_hours=(3, 6))
MODELS = ("lr", "gbm", "gru", "grud")


@pytest.fixture(scope="module")
def cohort():
    return make_online_cohort(90, seed=1, max_hours=30)


@pytest.fixture(scope="module")
def fitted(cohort):
    splits = split_by_patient(cohort, SplitConfig(random_state=0))
    # causal max-pooling on, as in the quick and full presets, so the causality test covers it
    return run_protocol(cohort, [registry.get(n) for n in MODELS], splits, features=ONLINE,
                        evaluation=EvaluationConfig(n_bootstrap=50), preset="test", random_state=0,
                        model_params={"gru": {"pooling": "max"}, "grud": {"pooling": "max"}})


def _hand_cohort():
    """One patient, HR at hours 0, 1, 4 (values 60, 70, 100) and a label at every hour 0..5."""
    ev = pd.DataFrame({"patient_id": ["a"] * 3, "time_hours": [0.0, 1.0, 4.0], "variable": ["HR"] * 3,
                       "value": [60.0, 70.0, 100.0]})
    hl = pd.DataFrame({"patient_id": ["a"] * 6, "time_hours": np.arange(6.0), "label": [0, 0, 0, 0, 1, 1]})
    return make_cohort(ev, hour_labels=hl, target="event")


def test_online_tabular_features_by_hand():
    c = _hand_cohort()
    fb = FeatureBuilder(FeatureConfig(task="online", window_hours=10, lookback_hours=(2,), clip_quantile=0)).fit(
        c, ["a"])
    fs = fb.transform(c, ["a"])
    assert fs.online and fs.X_tab.shape[0] == 6
    np.testing.assert_array_equal(fs.unit_time, np.arange(6.0))
    col = {n: fs.X_tab[:, i] for i, n in enumerate(fs.tab_names)}
    np.testing.assert_allclose(col["HR:last"], [60, 70, 70, 70, 100, 100])
    np.testing.assert_allclose(col["HR:hours_since_last"], [0, 0, 1, 2, 0, 1])
    np.testing.assert_allclose(col["HR:count"], [1, 2, 2, 2, 3, 3])
    # last 2 hours = steps t-1, t
    np.testing.assert_allclose(col["HR:min_2h"], [60, 60, 70, np.nan, 100, 100])
    np.testing.assert_allclose(col["HR:max_2h"], [60, 70, 70, np.nan, 100, 100])
    np.testing.assert_allclose(col["HR:mean_2h"], [60, 65, 70, np.nan, 100, 100])
    np.testing.assert_allclose(col["time:hours_since_admission"], np.arange(6.0))
    np.testing.assert_array_equal(fb.targets(c, fs), [0, 0, 0, 0, 1, 1])
    assert fs.step_targets(fb.targets(c, fs)).shape == (1, 10)


def test_label_is_never_a_feature(cohort):
    fb = FeatureBuilder(ONLINE).fit(cohort, cohort.labelled_ids)
    assert "event" not in fb.variables_ and not any("event" in n for n in fb.tab_names + fb.seq_names)
    flipped = replace(cohort, hour_labels=cohort.hour_labels.assign(label=1 - cohort.hour_labels["label"]))
    a, b = fb.transform(cohort), fb.transform(flipped)
    np.testing.assert_array_equal(a.X_tab, b.X_tab)
    np.testing.assert_array_equal(a.X_seq, b.X_seq)


def _bump(cohort, patient: str, hour: float, delta: float = 40.0):
    """A copy with every value of ``patient`` at ``hour`` raised by ``delta`` and a new Lactate there."""
    ev = cohort.events.copy()
    hit = (ev["patient_id"].astype(str) == patient) & (ev["time_hours"] >= hour) & (ev["time_hours"] < hour + 1)
    ev.loc[hit, "value"] += delta
    extra = pd.DataFrame({"patient_id": [patient], "time_hours": [hour + 0.2], "variable": ["Lactate"],
                          "value": [9.0]})
    ev = pd.concat([ev.astype({"patient_id": str, "variable": str}), extra], ignore_index=True)
    return make_cohort(ev, cohort.static, hour_labels=cohort.hour_labels, target=cohort.target,
                       onsets=cohort.onsets, row_times=cohort.row_times)


@pytest.mark.parametrize("name", MODELS)
def test_changing_hour_t_never_changes_an_earlier_risk(cohort, fitted, name):
    """Causality: data at hour t changes risks at t or later only, for every model of the registry used."""
    patient = str(fitted.splits["test"][0])
    hours = cohort.hour_labels.loc[cohort.hour_labels["patient_id"] == patient, "time_hours"].to_numpy()
    t = float(hours[len(hours) // 2])
    before = fitted.builder.transform(cohort, [patient])
    after = fitted.builder.transform(_bump(cohort, patient, t), [patient])
    spec = registry.get(name)
    r0 = predict_units(fitted.models[name], spec.input_kind, before)
    r1 = predict_units(fitted.models[name], spec.input_kind, after)
    early = before.unit_time < t
    assert early.sum() >= 3
    np.testing.assert_array_equal(r0[early], r1[early])
    if spec.input_kind == "tabular":
        np.testing.assert_array_equal(before.X_tab[early], after.X_tab[early])
        assert not np.array_equal(before.X_tab[~early], after.X_tab[~early], equal_nan=True)


def test_both_families_scored_on_the_same_patient_hours(fitted):
    ref = fitted.test["lr"]
    assert ref.times is not None and len(ref.y_true) > len(fitted.splits["test"])
    for name in MODELS:
        ev = fitted.test[name]
        np.testing.assert_array_equal(ev.patient_ids, ref.patient_ids)
        np.testing.assert_array_equal(ev.times, ref.times)
        np.testing.assert_array_equal(ev.y_true, ref.y_true)
        assert {"alarmed_before_onset", "median_warning_hours", "false_alarms_per_patient_day"} <= set(ev.extra)
        lo, hi = ev.ci["auroc"]
        assert lo <= ev.metrics["auroc"] <= hi
    assert fitted.clusters is not None and fitted.bootstrap is None
    comp = fitted.compare("gru", "lr")
    assert np.isnan(comp.p_delong) and np.isfinite(comp.p_bootstrap)


def test_recurrent_bucketing_matches_unbucketed_prediction(fitted):
    fs = fitted.features["test"]
    model = fitted.models["gru"]
    full = model.predict_proba_over_time(fs.X_seq)
    cut = model.predict_proba_over_time(fs.X_seq, lengths=fs.lengths)
    valid = np.arange(fs.X_seq.shape[1])[None, :] < fs.lengths[:, None]
    np.testing.assert_allclose(cut[valid], full[valid], rtol=1e-6, atol=1e-7)


def test_refit_keeps_test_metrics_and_thresholds(cohort):
    kw = dict(preset="test", features=ONLINE, evaluation=EvaluationConfig(n_bootstrap=20), random_state=0)
    plain = run_experiment(cohort, ["lr", "gru"], **kw)
    refit = run_experiment(cohort, ["lr", "gru"], refit=True, **kw)
    assert set(refit.refit) == {"lr", "gru"} and not plain.refit
    for name in ("lr", "gru"):
        assert refit.test[name].metrics == plain.test[name].metrics
        assert refit.test[name].threshold == plain.test[name].threshold
    best = int(np.median([h["best_epoch"] for h in refit.models["gru"].history_])) + 1
    assert refit.refit["gru"].max_epochs == best and refit.refit["gru"].validation_fraction == 0.0


def test_cli_online_train_and_predict(cohort, tmp_path, capsys):
    w = wide_csv(cohort, tmp_path / "hourly.csv")
    run = tmp_path / "run"
    rc = main(["train", str(tmp_path / "hourly.csv"), "--task", "online", "--target", "Event", "--out", str(run),
               "--models", "lr,gru", "--preset", "test", "--max-hours", "40", "--bootstrap", "20", "--refit",
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "patient-hours" in out and "alarmed before onset" in out     # the one leaderboard (RunSummary)
    preds = pd.read_csv(run / "predictions.csv")
    assert {"patient_id", "time", "split", "model", "risk", "predicted", "y_true"} <= set(preds.columns)
    new = w.drop(columns=["Event"]).head(40)
    new.to_csv(tmp_path / "new.csv", index=False)
    rc = main(["predict", str(run), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv")])
    out = capsys.readouterr().out
    assert rc == 0 and "refitted" in out
    p = pd.read_csv(tmp_path / "p.csv", dtype={"patient_id": str})
    assert list(p.columns) == ["patient_id", "time", "model", "risk", "predicted"]
    assert len(p) == 2 * len(new)           # every hour with a row, per model
    got = p[p.model == "lr"][["patient_id", "time"]].to_numpy().tolist()
    assert got == new[["patient_id", "time"]].to_numpy().tolist()
    # the label column in the file to score is never read: the same risks with or without it
    w.head(40).to_csv(tmp_path / "with_label.csv", index=False)
    assert main(["predict", str(run), str(tmp_path / "with_label.csv"), "--out", str(tmp_path / "q.csv")]) == 0
    pd.testing.assert_frame_equal(p, pd.read_csv(tmp_path / "q.csv", dtype={"patient_id": str}))


def test_cli_online_onset_labels(cohort, tmp_path, capsys):
    wide_csv(cohort, tmp_path / "hourly.csv")
    pd.read_csv(tmp_path / "hourly.csv").drop(columns=["Event"]).to_csv(tmp_path / "events.csv", index=False)
    onset = cohort.onsets.rename("onset_hour").rename_axis("patient_id").reset_index()
    onset.to_csv(tmp_path / "onsets.csv", index=False)
    rc = main(["train", str(tmp_path / "events.csv"), "--labels", str(tmp_path / "onsets.csv"), "--task", "online",
               "--target", "onset_hour", "--horizon-hours", "6", "--out", str(tmp_path / "run"), "--models", "lr",
               "--preset", "test", "--max-hours", "40", "--bootstrap", "20", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    preds = pd.read_parquet(tmp_path / "run" / "predictions.parquet")
    assert preds["y_true"].sum() > 0 and len(preds) > 2 * len(set(preds["patient_id"]))


def test_explain_one_patient_hour_matches_the_scored_risk(cohort, fitted):
    """Online explanations explain exactly the risk that was scored at that hour, for every family."""
    from core.analysis.explain import explain_models
    from core.training.protocol import predict_units
    patient = str(fitted.splits["test"][1])
    fs = fitted.builder.transform(cohort, [patient])       # the scored risk of every hour (as Run.risk_table)
    table = pd.DataFrame({"time_hours": fs.unit_time, **{n: predict_units(m, registry.get(n).input_kind, fs)
                                                         for n, m in fitted.models.items()}})
    hour = float(table["time_hours"].iloc[len(table) // 2])
    results = explain_models(fitted, list(MODELS), cohort, [patient], hour=hour)
    row = table[table["time_hours"] == hour].iloc[0]
    for res in results:
        p = res.predictions[0]
        risk = 1 / (1 + np.exp(-p)) if res.output == "log-odds" else p
        np.testing.assert_allclose(risk, row[res.model_name], rtol=1e-4, atol=1e-6)
        assert res.additivity_error < 0.02
        if res.time_attributions is not None:
            assert res.time_attributions.shape[1] == int(hour) + 1     # hours up to and including this one
    with pytest.raises(Exception, match="pick an earlier hour"):
        explain_models(fitted, ["lr"], cohort, [patient], hour=39.0)


def test_shuffle_moves_each_hours_label_with_its_data(cohort):
    from core.analysis.timeorder import shuffle_time_bins
    shuffled = shuffle_time_bins(cohort, window_hours=40, random_state=3)

    def pairs(c, pid):
        ev = c.events[c.events["patient_id"].astype(str) == pid]
        hr = ev[ev["variable"].astype(str) == "HR"].set_index(np.floor(ev.loc[ev["variable"].astype(str) == "HR",
                                                                                "time_hours"]))["value"]
        hl = c.hour_labels[c.hour_labels["patient_id"] == pid]
        return sorted(zip(hl["label"], hr.reindex(np.floor(hl["time_hours"].to_numpy())).round(9)))

    moved = 0
    for pid in map(str, cohort.labelled_ids[:20]):
        assert pairs(cohort, pid) == pairs(shuffled, pid)
        moved += not np.array_equal(cohort.hour_labels.loc[cohort.hour_labels["patient_id"] == pid, "label"],
                                    shuffled.hour_labels.loc[shuffled.hour_labels["patient_id"] == pid, "label"])
    assert moved > 0


def test_timeorder_on_the_online_task(cohort):
    import json

    from core.analysis.timeorder import TimeOrderConfig, run_timeorder
    res = run_timeorder(cohort, TimeOrderConfig(models=("lr", "gru"), horizons_hours=(6, 12), features=ONLINE,
                                                preset="test", evaluation=EvaluationConfig(n_bootstrap=30)))
    assert res.verdict.startswith("Online task")
    assert set(res.horizons["hours"]) == {6.0, 12.0, 40.0}
    full = res.horizons[res.horizons["hours"] == 40.0].set_index("model")["auroc"]
    assert np.isclose(full["gru"], res.ablation.auroc_ordered)
    assert res.gap is not None and np.isnan(res.gap.delong_p) and "bootstrap over patients" in res.gap.verdict
    json.dumps(res.to_dict())


def test_run_folder_reused_without_refit_drops_the_old_refits(cohort, tmp_path):
    from core.runs.store import load_run, save_run
    kw = dict(preset="test", features=ONLINE, evaluation=EvaluationConfig(n_bootstrap=20), random_state=0)
    save_run(run_experiment(cohort, ["lr"], refit=True, **kw), tmp_path / "run")
    assert load_run(tmp_path / "run").refitted
    save_run(run_experiment(cohort, ["lr"], **kw), tmp_path / "run")
    assert not load_run(tmp_path / "run").refitted


def test_run_whose_model_does_not_fit_its_features_is_refused(cohort, tmp_path):
    import json

    from core.exceptions import RunError
    from core.runs.store import load_run, save_run
    folder = save_run(run_experiment(cohort, ["gru"], preset="test", features=ONLINE,
                                     evaluation=EvaluationConfig(n_bootstrap=20)), tmp_path / "run")
    meta = json.loads((folder / "features.json").read_text())
    meta["config"]["task"] = "stay"                # a builder that makes other features than the model's
    (folder / "features.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="Train it again"):
        load_run(folder)
