"""core.runs.predict: the CLI and predict_patients give the same numbers; the per-patient table and flags by hand;
the run's label column is never read; risk trajectories end at the stay's risk (CLI --trajectory)."""
import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.config import DataConfig
from core.exceptions import RunError
from core.data.ingest import load_cohort
from core.runs.predict import PredictionResult, data_config_for, predict_patients, risk_trajectories
from core.runs.store import load_run
from tests.helpers.cohorts import make_tiny_cohort, write_long
from tests.helpers.runs import online_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict_core")
    events, labels = write_long(make_tiny_cohort(n_patients=60, seed=3), folder)
    assert main(["train", str(events), "--labels", str(labels), "--target", "died", "--out", str(folder / "run"),
                 "--preset", "test", "--models", "lr,gru", "--bootstrap", "20", "--no-progress"]) == 0
    new, _ = write_long(make_tiny_cohort(n_patients=12, seed=5), folder, prefix="q", labels=False)
    return folder / "run", new, folder


def test_data_config_drops_the_target_and_follows_the_run():
    base = DataConfig(target="died", task="online", horizon_hours=6, sentinel_values=(-1, 999))
    stay = data_config_for(False, base)
    assert (stay.target, stay.task, stay.horizon_hours, stay.sentinel_values) == (None, "stay", None, (-1.0, 999.0))
    online = data_config_for(True)
    assert (online.target, online.task) == (None, "online")


def test_predict_patients_equals_the_cli(trained):
    run_dir, new, folder = trained
    out = folder / "cli.csv"
    assert main(["predict", str(run_dir), str(new), "--out", str(out)]) == 0
    cli = pd.read_csv(out, dtype={"patient_id": str})
    cohort = load_cohort(new, None, config=data_config_for(False))
    seen = []
    res = predict_patients(run_dir, cohort, progress=lambda m, f: seen.append(f))
    assert seen[-1] == 1.0 and res.n_patients == 12 and res.models == ["lr", "gru"]
    pd.testing.assert_frame_equal(res.scores.reset_index(drop=True), cli, check_dtype=False, rtol=0, atol=1e-12)
    # one Run.score over all models gives the same numbers as the per-model loop
    whole = load_run(run_dir).score(cohort)
    np.testing.assert_array_equal(whole["risk"].to_numpy(), res.scores["risk"].to_numpy())


def test_the_runs_own_patients_are_counted(trained):
    run_dir, new, folder = trained
    run = load_run(run_dir)
    own = load_cohort(folder / "events_p.csv", None, config=data_config_for(False))
    res = predict_patients(run, own)
    assert res.seen == {k: len(v) for k, v in run.splits.items()} and sum(res.seen.values()) == 60
    fitted = len(run.splits["train"]) + len(run.splits["validation"])
    assert res.seen_sentence().startswith(f"{fitted} of these 60 patients have the ids of the run's training")
    assert predict_patients(run, load_cohort(new, None, config=data_config_for(False))).seen_sentence() == ""


def test_patients_table_and_flags_by_hand():
    scores = pd.DataFrame({"patient_id": ["a", "b", "c", "a", "b", "c"], "model": ["lr"] * 3 + ["gru"] * 3,
                           "risk": [0.2, 0.9, 0.5, 0.6, 0.1, 0.3], "predicted": [0, 1, 1, 1, 0, 0]})
    res = PredictionResult("r", False, ["lr", "gru"], {"lr": "LR", "gru": "GRU"}, {"lr": 0.5, "gru": 0.6}, scores)
    t = res.patients()
    assert list(t["patient_id"]) == ["b", "c", "a"]                      # highest first-model risk first
    assert list(t["LR flagged"]) == [True, True, False] and list(t["GRU risk"]) == [0.1, 0.3, 0.6]
    assert res.flagged() == {"lr": 2, "gru": 1}


def test_online_patients_table_by_hand():
    scores = pd.DataFrame({"patient_id": ["a", "a", "a", "b", "b"], "time": [2.0, 0.0, 1.0, 0.0, 1.0],
                           "model": "lr", "risk": [0.1, 0.2, 0.7, 0.3, 0.4], "predicted": [0, 0, 1, 0, 0]})
    res = PredictionResult("r", True, ["lr"], {"lr": "LR"}, {"lr": 0.5}, scores)
    t = res.patients().set_index("patient_id")
    assert t.loc["a", "LR risk (last hour)"] == 0.1 and t.loc["a", "LR highest risk"] == 0.7    # hour 2 is last
    assert t.loc["a", "LR first flagged hour"] == 1.0 and np.isnan(t.loc["b", "LR first flagged hour"])
    assert t.loc["a", "LR flagged hours"] == 1 and not t.loc["b", "LR flagged"]


def test_the_runs_label_column_is_never_a_feature(trained):
    """The same patients with their outcome as an extra variable 'died' (the run's target) get the same risks."""
    run_dir, new, folder = trained
    rows = pd.read_csv(new)
    leaked = pd.concat([rows, pd.DataFrame({"patient_id": rows["patient_id"].unique(), "time": "00:00",
                                            "variable": "died", "value": 1.0})])
    path = folder / "leaked.csv"
    leaked.to_csv(path, index=False)
    cfg = data_config_for(False)
    a = predict_patients(run_dir, load_cohort(new, None, config=cfg))
    cohort = load_cohort(path, None, config=cfg)
    b = predict_patients(run_dir, cohort)
    np.testing.assert_array_equal(a.scores["risk"].to_numpy(), b.scores["risk"].to_numpy())
    assert "died" not in set(cohort.series_variables) | set(cohort.static_variables)


def test_trajectories_end_at_the_stays_risk_and_the_cli_writes_them(trained):
    run_dir, new, folder = trained
    run = load_run(run_dir)
    cohort = load_cohort(new, None, config=data_config_for(False))
    traj = risk_trajectories(run, cohort)
    assert list(traj.columns) == ["patient_id", "time_hours", "model", "risk", "predicted"]
    last = traj.groupby(["patient_id", "model"]).tail(1).set_index(["patient_id", "model"])["risk"]
    stay = run.score(cohort).set_index(["patient_id", "model"])["risk"]
    np.testing.assert_allclose(last.sort_index().to_numpy(), stay.sort_index().to_numpy(), rtol=0, atol=1e-6)
    assert (traj["predicted"] == (traj["risk"] >= traj["model"].map(run.thresholds))).all()
    one = traj[(traj["patient_id"] == "q000") & (traj["model"] == "gru")]
    table = run.risk_table(cohort, "q000")
    np.testing.assert_array_equal(one["risk"].to_numpy(), table["gru"].to_numpy())
    out = folder / "traj.csv"
    assert main(["predict", str(run_dir), str(new), "--out", str(out), "--trajectory"]) == 0
    cli = pd.read_csv(out, dtype={"patient_id": str})
    pd.testing.assert_frame_equal(cli, traj, check_dtype=False, rtol=0, atol=1e-12)


def test_trajectory_of_an_online_run_is_refused(tmp_path):
    run_dir, events = online_run(tmp_path)
    assert main(["predict", str(run_dir), str(events), "--out", str(tmp_path / "x.csv"), "--trajectory"]) == 2
    with pytest.raises(RunError, match="predicts every hour"):
        risk_trajectories(load_run(run_dir), load_cohort(events, None, config=data_config_for(True)))


def test_renamed_variables_are_matched_and_score_exactly_as_the_originals(trained, tmp_path, capsys):
    """Another source's names (a synonym, another spelling, and one only the user can pair) give the same risks."""
    run_dir, new, folder = trained
    original = tmp_path / "original.csv"
    assert main(["predict", str(run_dir), str(new), "--out", str(original)]) == 0
    renamed = tmp_path / "renamed_events.csv"
    rows = pd.read_csv(new, dtype={"patient_id": str})
    rows["variable"] = rows["variable"].replace({"HR": "Heart Rate", "Temp": "temperature", "Lactate": "Lac",
                                                 "Age": "age"})
    rows.to_csv(renamed, index=False)
    capsys.readouterr()
    out = tmp_path / "mapped.csv"
    assert main(["predict", str(run_dir), str(renamed), "--out", str(out), "--map", "Lac=Lactate"]) == 0
    err = capsys.readouterr().err
    for line in ("mapped: Lac -> Lactate (your mapping)", "mapped: Heart Rate -> HR (synonym)",
                 "mapped: temperature -> Temp (synonym)", "mapped: age -> Age (same name, other spelling)"):
        assert line in err, err
    assert "missing" not in err                                     # every variable of the run was found
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(original))
    # the same through predict_patients (the Predict page's path), which reports the mapping
    res = predict_patients(run_dir, load_cohort(renamed, None, config=data_config_for(False)),
                           mapping={"Lac": "Lactate"})
    assert res.mapping.as_dict() == {"Lac": "Lactate", "Heart Rate": "HR", "temperature": "Temp", "age": "Age"}
    # without the user's pair, Lactate is missing: it matters to these models, so scoring is refused, naming it;
    # a bad pair is exit 2 with a message
    assert main(["predict", str(run_dir), str(renamed), "--out", str(tmp_path / "m2.csv")]) == 2
    assert "Lactate (" in capsys.readouterr().err
    assert main(["predict", str(run_dir), str(renamed), "--out", str(tmp_path / "m3.csv"), "--map", "Lac"]) == 2
    assert "--map 'Lac' is not NEW=RUN" in capsys.readouterr().err
    assert main(["predict", str(run_dir), str(renamed), "--out", str(tmp_path / "m3.csv"), "--map", "X=Lactate"]) == 2
    assert "'X', which is not a variable of these data" in capsys.readouterr().err


def test_scoring_is_refused_when_a_models_important_variables_are_missing(trained, tmp_path, capsys):
    """The run's importance (saved in metrics.json) weighs the missing variables: HR carries most of what the
    tiny cohort's models rely on, so data without it are refused, naming it; --allow-missing goes on, and says so."""
    from core.analysis.importance import importance_shares
    run_dir, new, folder = trained
    run = load_run(run_dir)
    importance = run.metrics["importance"]
    assert set(importance) == {"lr", "gru"} and set(importance["lr"]) == {"HR", "Temp", "Lactate", "Age"}
    assert importance_shares(importance["lr"])["HR"] > 0.2
    rows = pd.read_csv(new, dtype={"patient_id": str})
    no_hr = tmp_path / "no_hr.csv"
    rows[rows["variable"] != "HR"].to_csv(no_hr, index=False)
    out = tmp_path / "p.csv"
    assert main(["predict", str(run_dir), str(no_hr), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "carry more than 20% of what some models" in err and "HR (" in err and "--allow-missing" in err
    assert not out.exists()
    assert main(["predict", str(run_dir), str(no_hr), "--out", str(out), "--allow-missing"]) == 0
    assert "Scored anyway (--allow-missing)" in capsys.readouterr().err
    scored = pd.read_csv(out)
    assert scored["missing_importance"].between(0.2, 1).any()
    # a variable that matters little (Age, for these models) is only reported, not refused
    small = min(("Age", "Temp", "Lactate"), key=lambda v: max(importance_shares(importance[m])[v] for m in importance))
    rows[rows["variable"] != small].to_csv(tmp_path / "no_small.csv", index=False)
    if max(importance_shares(importance[m])[small] for m in importance) <= 0.2:
        assert main(["predict", str(run_dir), str(tmp_path / "no_small.csv"), "--out", str(tmp_path / "q.csv")]) == 0
