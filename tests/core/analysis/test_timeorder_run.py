"""The time-order analysis of a saved run (issue 19): the run's split, builder and models, so the ordered arm
and the gap are exactly the run's metrics.json; the result is kept with the run, read back, shown in the
report (with the run's attached explanations, never a server path); the CLI's ``--run``."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from html import escape as html_escape

import pytest

from core.cli import main
from core.config import EvaluationConfig, FeatureConfig
from core.exceptions import RunError
from core.training.experiment import run_experiment
from core.runs.report import build_report
from core.runs.store import attach_files, list_attached, load_run, save_run
from core.analysis.timeorder import (TimeOrderConfig, TimeOrderResult, load_timeorder, run_timeorder, save_timeorder)
from tests.helpers.cohorts import make_online_cohort, make_planted_order_cohort

STAY = dict(make=lambda seed=0: make_planted_order_cohort(120, seed=seed), features=FeatureConfig(window_hours=12),
            horizons=(6,))
ONLINE = dict(make=lambda seed=0: make_online_cohort(60, seed=seed),
              features=FeatureConfig(task="online", window_hours=30), horizons=(10,))


def _analysed(shape: dict, folder):
    cohort = shape["make"]()
    res = run_experiment(cohort, ["lr", "gru"], preset="test", features=shape["features"],
                         evaluation=EvaluationConfig(n_bootstrap=20))
    run = load_run(save_run(res, folder))
    result = run_timeorder(cohort, TimeOrderConfig.for_run(run, horizons_hours=shape["horizons"]), run=run)
    return cohort, run, result


@pytest.fixture(scope="module")
def stay(tmp_path_factory):
    return ("stay", *_analysed(STAY, tmp_path_factory.mktemp("runs") / "stay"))


@pytest.fixture(scope="module")
def online(tmp_path_factory):
    return ("online", *_analysed(ONLINE, tmp_path_factory.mktemp("runs") / "online"))


@pytest.fixture(params=["stay", "online"])
def analysed(request):
    """Both task shapes: ``(kind, cohort, run, result)``."""
    return request.getfixturevalue(request.param)


# -- the analysis is the run's ---------------------------------------------------------------------
def test_ordered_arm_and_gap_are_the_runs_metrics(analysed):
    _, _, run, r = analysed
    m = run.metrics["models"]
    assert r.ablation.model == "gru"
    assert r.ablation.auroc_ordered == pytest.approx(m["gru"]["auroc"], abs=1e-9)
    assert r.gap is not None
    assert r.gap.auroc_sequence == pytest.approx(m[r.gap.sequence_model]["auroc"], abs=1e-9)
    assert r.gap.auroc_order_free == pytest.approx(m[r.gap.order_free_model]["auroc"], abs=1e-9)
    full = r.horizons[r.horizons["hours"] == r.config.window_hours].set_index("model")
    for name in ("lr", "gru"):                     # every full-horizon point, with the run's CI
        assert full.loc[name, "auroc"] == pytest.approx(m[name]["auroc"], abs=1e-9)
        assert [full.loc[name, "auroc_low"], full.loc[name, "auroc_high"]] == pytest.approx(m[name]["auroc_ci"])
    assert r.tiers.auroc["order_free"] == pytest.approx(m[r.tiers.model]["auroc"], abs=1e-9)


def test_split_source_and_settings_are_the_runs(analysed):
    _, _, run, r = analysed
    assert r.n_patients == {k: len(v) for k, v in run.splits.items()}
    assert len(r.ablation.y_true) == r.ablation.n_test
    assert r.run == run.name and r.run_request == run.config["request"]
    assert r.data_fingerprint == run.config["fingerprint"] and r.notes == ()
    c = r.config
    assert c.models == ("lr", "gru") and c.preset == "test" and c.sequence_params == () and c.max_patients is None
    assert c.features == run.builder.config and c.evaluation.n_bootstrap == 20
    assert sorted(r.horizons["hours"].unique()) == [float(h) for h in c.hours()]


def test_early_models_are_refitted_at_shorter_horizons_and_the_gap_keeps_every_model(stay):
    _, cohort, run, _ = stay
    r = run_timeorder(cohort, TimeOrderConfig.for_run(run, horizons_hours=(6,), tiers=False, models=("gru",)),
                      run=run)
    assert set(r.horizons[r.horizons["hours"] == 6.0]["model"]) == {"gru"}
    assert set(r.horizons[r.horizons["hours"] == 12.0]["model"]) == {"lr", "gru"}
    assert r.gap.order_free_model == "lr"
    with pytest.raises(ValueError, match="early_models"):
        TimeOrderConfig.for_run(run, models=("gbm",))


def test_other_data_and_contradicting_configs_are_refused(analysed):
    kind, cohort, run, _ = analysed
    other = (STAY if kind == "stay" else ONLINE)["make"](seed=1)
    with pytest.raises(RunError, match="trained on other data.*load the data it was trained on"):
        run_timeorder(other, TimeOrderConfig.for_run(run), run=run)
    cfg = TimeOrderConfig.for_run(run)
    for change in ({"preset": "quick"}, {"random_state": 3}, {"models": ("lr",)},
                   {"sequence_params": (("n_seeds", 3),)}, {"max_patients": 100}):
        with pytest.raises(RunError, match=f"contradicts the run.*{next(iter(change))}.*for_run"):
            run_timeorder(cohort, replace(cfg, **change), run=run)


def test_an_ablation_model_the_run_lacks_is_trained_on_its_split_and_said(tmp_path):
    cohort = STAY["make"]()
    res = run_experiment(cohort, ["lr", "rnn"], preset="test", features=STAY["features"],
                         evaluation=EvaluationConfig(n_bootstrap=20))
    run = load_run(save_run(res, tmp_path / "r"))
    r = run_timeorder(cohort, TimeOrderConfig.for_run(run, model="gru", horizons_hours=(12,), tiers=False), run=run)
    assert r.ablation.model == "gru" and len(r.notes) == 1 and "not among the run's models" in r.notes[0]
    assert r.notes[0] in r.verdict
    assert r.gap.sequence_model == "rnn"
    assert r.gap.auroc_sequence == pytest.approx(run.metrics["models"]["rnn"]["auroc"], abs=1e-9)


def test_a_refitted_run_is_analysed_with_the_models_that_made_its_numbers(tmp_path):
    from sklearn.metrics import roc_auc_score
    from core.training.protocol import predict_units
    from core.analysis.timeorder import shuffle_time_bins
    cohort = STAY["make"]()
    res = run_experiment(cohort, ["lr", "gru"], preset="test", features=STAY["features"],
                         evaluation=EvaluationConfig(n_bootstrap=20), refit=True)
    run = load_run(save_run(res, tmp_path / "r"))
    assert run.refitted                              # run.models are the refits on training + validation patients
    r = run_timeorder(cohort, TimeOrderConfig.for_run(run, horizons_hours=(12,), tiers=False), run=run)
    assert r.ablation.auroc_ordered == pytest.approx(run.metrics["models"]["gru"]["auroc"], abs=1e-9)
    # the "ordered model on shuffled hours" arm is the model fitted on training patients, as the saved risks
    shuffled = shuffle_time_bins(cohort, window_hours=12, bin_hours=1.0, random_state=0,
                                 variables=run.builder.variables_)
    fs = run.builder.transform(shuffled, run.splits["test"])
    p = predict_units(res.models["gru"], "sequence", fs)
    assert r.ablation.auroc_shuffled_test == pytest.approx(roc_auc_score(r.ablation.y_true, p), abs=1e-9)


# -- JSON, kept with the run --------------------------------------------------------------------
def test_json_roundtrip_draws_every_figure(analysed):
    from core import plots
    _, _, _, r = analysed
    d = json.loads(json.dumps(r.to_dict()))
    back = TimeOrderResult.from_dict(d)
    assert json.loads(json.dumps(back.to_dict())) == d
    assert back.config == r.config and back.run == r.run
    cols = ["model", "hours", "auroc", "auroc_low", "auroc_high", "auprc", "kind", "label"]
    assert back.horizons[cols].equals(r.horizons[cols])
    assert back.ablation.ci.keys() == r.ablation.ci.keys() and back.tiers.ci.keys() == r.tiers.ci.keys()
    for fig in (plots.ablation_figure(back.ablation), plots.horizon_figure(back.horizons, "auprc"),
                plots.timeorder_forest_figure(back), plots.tiers_figure(back.tiers, back.missingness)):
        assert fig.data
    assert back.tiers.table().equals(r.tiers.table())
    with pytest.raises(ValueError, match="not a time-order result"):
        TimeOrderResult.from_dict({"verdict": "x"})


def test_saved_with_the_run_and_read_back(analysed, tmp_path):
    _, _, run, r = analysed
    folder = shutil.copytree(run.folder, tmp_path / run.name)
    assert load_timeorder(folder) is None
    assert save_timeorder(folder, r) == "analyses/timeorder.json"
    assert "timeorder.json" in list_attached(folder)
    assert load_timeorder(folder).to_dict() == TimeOrderResult.from_dict(json.loads(json.dumps(r.to_dict()))).to_dict()
    load_run(folder)                                 # still a valid run: the manifest covers the new file
    with pytest.raises(RunError, match="belongs to no run"):    # an analysis with its own split is not the run's
        save_timeorder(folder, replace(r, run="", run_request=""))
    with pytest.raises(RunError, match="not the run"):
        save_timeorder(folder, replace(r, run_request="0" * 16))


# -- the report -----------------------------------------------------------------------------------
def test_report_reads_the_attached_analysis_and_explanations_without_server_paths(stay, tmp_path):
    _, _, run, r = stay
    folder = shutil.copytree(run.folder, tmp_path / "runs" / "my_run")
    save_timeorder(folder, replace(r, run="my_run"))
    importance = {f"var{i}": float(i) for i in range(12)} | {"<b>HR</b>": 99.0}
    attach_files(folder, {"explain-gru.json": json.dumps({"model": "gru", "label": "GRU", "method": "integrated "
                                                          "gradients", "n_patients": 20, "n_explained": 18, "hour": None,
                                                          "importance": importance}),
                          "cv.json": json.dumps({"n_folds": 3, "preset": "test", "seed": 0, "models": {
                              "lr": {"auroc_mean": 0.777, "auroc_std": 0.01, "auprc_mean": 0.5, "auprc_std": 0.02}}})})
    html = build_report(load_run(folder), n_bootstrap=0)
    assert str(tmp_path) not in html and "my_run" in html
    section = html.split('id="timeorder"')[1].split("</section>")[0]
    assert html_escape(r.verdict, quote=True) in section and "this run's split" in section
    explain = html.split('id="explain"')[1].split("</section>")[0]
    assert "&lt;b&gt;HR&lt;/b&gt;" in explain and "var11<" in explain and "var3<" in explain
    assert "var2<" not in explain and "var0<" not in explain           # the top 10 only
    assert "integrated gradients, over 18 test patients (analyses/explain-gru.json)" in explain
    assert "Not computed" not in explain
    assert "0.777" in html.split('id="cv"')[1].split("</section>")[0]


def test_report_lists_an_explanation_saved_by_core_explain(stay, tmp_path):
    from core.analysis.explain import explain_run_model, save_explanation
    _, cohort, run, _ = stay
    folder = shutil.copytree(run.folder, tmp_path / "runs" / "explained")
    res = explain_run_model(str(folder), "lr", cohort, n_patients=8)
    save_explanation(folder, res, n_patients=8, hour=None, data_fingerprint=cohort.fingerprint())
    explain = build_report(load_run(folder), n_bootstrap=0).split('id="explain"')[1].split("</section>")[0]
    assert "<h3>logistic regression</h3>" in explain and "explain-lr-n8.json" in explain
    assert explain.count("<tr><td>") == len(run.builder.variables_) + len(run.builder.static_columns_)  # all < 10


def test_report_of_a_run_without_analyses_says_how_to_compute_them(online, tmp_path):
    _, _, run, _ = online
    folder = shutil.copytree(run.folder, tmp_path / "runs" / "bare")
    html = build_report(load_run(folder), n_bootstrap=0)
    assert str(tmp_path) not in html
    assert "python -m core timeorder DATA --run bare" in html and "python -m core explain bare" in html


# -- CLI ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    c = make_planted_order_cohort(120)
    c.events.rename(columns={"time_hours": "time"}).to_csv(d / "events.csv", index=False)
    c.labels.rename("died").rename_axis("patient_id").reset_index().to_csv(d / "labels.csv", index=False)
    data = [str(d / "events.csv"), "--labels", str(d / "labels.csv"), "--target", "died"]
    assert main(["train", *data, "--out", str(d / "run"), "--preset", "test", "--models", "lr,gru",
                 "--window-hours", "12", "--bootstrap", "20", "--no-progress"]) == 0
    return d, data


def test_cli_run_writes_the_runs_numbers_and_attaches_them(cli_run, capsys):
    d, data = cli_run
    rc = main(["timeorder", *data, "--run", str(d / "run"), "--out", str(d / "out"), "--horizons", "6",
               "--no-tiers", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-2000:]
    out = json.loads((d / "out" / "timeorder.json").read_text())
    metrics = json.loads((d / "run" / "metrics.json").read_text())["models"]
    assert out["ablation"]["auroc_ordered"] == pytest.approx(metrics["gru"]["auroc"], abs=1e-9)
    assert out["gap"]["auroc_sequence"] == pytest.approx(metrics[out["gap"]["sequence_model"]]["auroc"], abs=1e-9)
    assert out["run"] == "run" and out["config"]["preset"] == "test" and out["tiers"] is None
    attached = load_timeorder(d / "run")
    assert attached is not None and attached.ablation.auroc_ordered == out["ablation"]["auroc_ordered"]
    assert "Attached to the run run" in captured.out


@pytest.mark.parametrize("extra, flag", [(["--preset", "full"], "--preset"), (["--models", "lr"], "--models"),
                                         (["--seed", "2"], "--seed"), (["--max-patients", "60"], "--max-patients"),
                                         (["--window-hours", "24"], "--window-hours")])
def test_cli_run_refuses_the_options_a_run_decides(cli_run, tmp_path, capsys, extra, flag):
    d, data = cli_run
    rc = main(["timeorder", *data, "--run", str(d / "run"), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and flag in err and "cannot be set with --run" in err and "Traceback" not in err


def test_cli_run_on_other_data_exits_2(cli_run, tmp_path, capsys):
    d, _ = cli_run
    other = make_planted_order_cohort(120, seed=5)
    other.events.rename(columns={"time_hours": "time"}).to_csv(tmp_path / "e.csv", index=False)
    other.labels.rename("died").rename_axis("patient_id").reset_index().to_csv(tmp_path / "l.csv", index=False)
    rc = main(["timeorder", str(tmp_path / "e.csv"), "--labels", str(tmp_path / "l.csv"), "--target", "died",
               "--run", str(d / "run"), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "trained on other data" in err and not (tmp_path / "o" / "timeorder.json").exists()
