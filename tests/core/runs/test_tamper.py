"""Tamper evidence of saved runs: every edit, swap, added file or planted pickle is refused by name.

Each tamper is tried twice where it matters: as is (the file's SHA-256 no longer matches manifest.json),
and with manifest.json rewritten to match (``rehash_manifest``: someone who edits the manifest too), where
the model checks (class, parts, finite parameters, feature width and names) must still refuse it.
"""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.config import EvaluationConfig
from core.exceptions import RunError
from core.training.experiment import run_experiment
from core.runs.store import MANIFEST, RunSummary, copy_run, find_run, list_runs, load_run, save_run, verify_run
from tests.helpers.cohorts import make_tiny_cohort, write_long
from tests.helpers.runs import copy_folder, file_sha256, rehash_manifest


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cohort = make_tiny_cohort(n_patients=60, seed=1)
    res = run_experiment(cohort, ["lr", "gbm", "gru"], preset="test", evaluation=EvaluationConfig(n_bootstrap=20))
    folder = save_run(res, tmp_path_factory.mktemp("runs") / "r1")
    return cohort, res, folder


@pytest.fixture(scope="module")
def other_features(tmp_path_factory):
    """A run of lr on other features: the same cohort without Lactate (fewer columns)."""
    from core.data.cohort import make_cohort
    c = make_tiny_cohort(n_patients=60, seed=2)
    cohort = make_cohort(c.events[c.events["variable"] != "Lactate"], c.static, c.labels, target="died")
    res = run_experiment(cohort, ["lr"], preset="test", evaluation=EvaluationConfig(n_bootstrap=0))
    return save_run(res, tmp_path_factory.mktemp("other") / "r2")


# -- the tampers of the security probe --------------------------------------------------------------
def _dummy_lr(folder):
    import skops.io as sio
    from sklearn.dummy import DummyClassifier
    X = np.zeros((4, 3))
    sio.dump(DummyClassifier(strategy="constant", constant=0).fit(X, [0, 1, 0, 1]), folder / "models" / "lr.skops")


def _zeroed_lr(folder):
    import skops.io as sio
    model = load_run(folder).models["lr"]
    model[-1].coef_[:] = 0.0
    sio.dump(model, folder / "models" / "lr.skops")


def _nan_gru(folder):
    import torch
    path = folder / "models" / "gru.pt"
    state = torch.load(path, weights_only=True)
    first = next(k for k, t in state.items() if t.is_floating_point())
    state[first][...] = float("nan")
    torch.save(state, path)


def _inf_gbm(folder):
    import skops.io as sio
    model = load_run(folder).models["gbm"]
    model._predictors[0][0].nodes["value"][:] = np.inf
    sio.dump(model, folder / "models" / "gbm.skops")


def _forged_metrics(folder):
    m = json.loads((folder / "metrics.json").read_text())
    for d in m["models"].values():
        d["auroc"] = 0.999
    (folder / "metrics.json").write_text(json.dumps(m))


def _zero_thresholds(folder):
    c = json.loads((folder / "config.json").read_text())
    c["thresholds"] = {k: 0.0 for k in c["thresholds"]}
    (folder / "config.json").write_text(json.dumps(c))


def _edited_predictions(folder):
    p = pd.read_parquet(folder / "predictions.parquet")
    p["risk"] = p["y_true"].astype(float)          # a perfect leaderboard: AUROC 1.000
    p.to_parquet(folder / "predictions.parquet", index=False)


def _swapped_variables(folder):
    meta = json.loads((folder / "features.json").read_text())
    v = meta["variables"]
    v[0], v[1] = v[1], v[0]
    (folder / "features.json").write_text(json.dumps(meta))


TAMPERS = [  # (edit, file named in the message, message when the manifest is rewritten too, or None)
    (_dummy_lr, "models/lr.skops", "DummyClassifier"),
    (_zeroed_lr, "models/lr.skops", "all zero"),
    (_nan_gru, "models/gru.pt", "NaN or infinite"),
    (_inf_gbm, "models/gbm.skops", "NaN or infinite"),
    (_forged_metrics, "metrics.json", None),
    (_zero_thresholds, "config.json", None),
    (_edited_predictions, "predictions.parquet", None),
    (_swapped_variables, "features.json", "feature names"),
]


@pytest.mark.parametrize("edit, file, _", TAMPERS, ids=[t[0].__name__.strip("_") for t in TAMPERS])
def test_tampered_file_is_refused_by_name(saved, tmp_path, edit, file, _):
    folder = copy_folder(saved[2], tmp_path)
    edit(folder)
    with pytest.raises(RunError, match=rf"{file} in the run folder .* was changed after the run was saved.*"
                                       "restore the run from a backup"):
        load_run(folder)
    with pytest.raises(RunError, match=file):
        verify_run(folder)


@pytest.mark.parametrize("edit, file, deeper", [t for t in TAMPERS if t[2]], ids=[t[0].__name__.strip("_")
                                                                                  for t in TAMPERS if t[2]])
def test_tampered_model_is_refused_even_with_a_rewritten_manifest(saved, tmp_path, edit, file, deeper):
    folder = copy_folder(saved[2], tmp_path)
    edit(folder)
    rehash_manifest(folder)
    verify_run(folder)                               # the hashes match now: only the model checks are left
    with pytest.raises(RunError, match=deeper) as err:
        load_run(folder)
    assert "restore the run from a backup" in str(err.value)
    if file.startswith("models/"):
        assert file in str(err.value)


def test_model_from_a_run_with_other_features_is_refused(saved, other_features, tmp_path):
    folder = copy_folder(saved[2], tmp_path)
    shutil.copy(other_features / "models" / "lr.skops", folder / "models" / "lr.skops")
    with pytest.raises(RunError, match="models/lr.skops in the run folder .* was changed"):
        load_run(folder)
    rehash_manifest(folder)
    with pytest.raises(RunError, match=r"'lr' \(models/lr.skops\) .* expects \d+ inputs but the run's feature builder"):
        load_run(folder)


def test_leaderboard_of_edited_predictions_is_never_shown(saved, tmp_path):
    folder = copy_folder(saved[2], tmp_path)
    _edited_predictions(folder)
    with pytest.raises(RunError, match="predictions.parquet"):
        RunSummary.from_run(load_run(folder))
    assert RunSummary.from_run(load_run(saved[2])).leaderboard()["auroc"].max() < 1.0


@pytest.mark.parametrize("rel", ["models/evil.pt", "models/refit/lr.skops", "models/lr.pkl", "evil.pkl",
                                 "models/extra/x.pt"])
def test_added_file_is_refused(saved, tmp_path, rel):
    folder = copy_folder(saved[2], tmp_path)
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "models" / "gru.pt", path)
    shown = "/".join(rel.split("/")[:2]) if rel.startswith("models/extra") else rel
    with pytest.raises(RunError, match=f"{shown} in the run folder .* is not listed in manifest.json"):
        load_run(folder)


def test_cv_results_beside_the_run_are_allowed(saved, tmp_path):
    folder = copy_folder(saved[2], tmp_path)
    (folder / "cv.json").write_text("{}")
    (folder / "cv.csv").write_text("model,auroc\n")
    assert set(load_run(folder).models) == {"lr", "gbm", "gru"}


class _Marker:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("target, rehash", [("models/gru.pt", False), ("models/gru.pt", True),
                                            ("models/evil.pt", False), ("models/lr.skops", False),
                                            ("models/lr.skops", True)])
def test_planted_pickle_is_never_executed(saved, tmp_path, target, rehash):
    import pickle

    import torch
    folder = copy_folder(saved[2], tmp_path)
    marker = tmp_path / "pwned"
    if target.endswith(".pt"):
        torch.save({"weight": _Marker(marker)}, folder / target)
    else:
        (folder / target).write_bytes(pickle.dumps(_Marker(marker)))
    if rehash:
        rehash_manifest(folder)
    with pytest.raises(RunError, match=target.split("/")[-1].split(".")[0]):
        load_run(folder)
    assert not marker.exists()
    if not rehash:                                   # copy_run checks the files (hashes, added files) too
        with pytest.raises(RunError, match=target):
            copy_run(folder, tmp_path / "copy")
        assert not (tmp_path / "copy").exists()
    assert not marker.exists()


def test_missing_file_and_bad_manifest_entries(saved, tmp_path):
    folder = copy_folder(saved[2], tmp_path)
    (folder / "models" / "gru.json").unlink()
    with pytest.raises(RunError, match="models/gru.json is missing from the run folder"):
        load_run(folder)
    folder = copy_folder(saved[2], tmp_path, "t2")
    m = json.loads((folder / MANIFEST).read_text())
    m["files"]["../outside.txt"] = "0" * 64
    (folder / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(RunError, match="not a file inside the run folder"):
        load_run(folder)
    folder = copy_folder(saved[2], tmp_path, "t3")
    (folder / MANIFEST).write_text("[]")
    with pytest.raises(RunError, match="manifest.json: the file holds list"):
        load_run(folder)


def test_linked_file_is_refused(saved, tmp_path):
    folder = copy_folder(saved[2], tmp_path)
    real = tmp_path / "metrics_elsewhere.json"
    shutil.move(folder / "metrics.json", real)
    (folder / "metrics.json").symlink_to(real)          # the same bytes, but not the run's own file
    with pytest.raises(RunError, match="metrics.json in the run folder .* is a link"):
        load_run(folder)


def test_run_without_manifest_is_refused_and_not_listed(saved, tmp_path):
    folder = copy_folder(saved[2], tmp_path / "runs", "old")
    (folder / MANIFEST).unlink()
    with pytest.raises(RunError, match="saved by an older version without a manifest.*retrain"):
        load_run(folder)
    assert list_runs(tmp_path / "runs") == []
    request = json.loads((folder / "config.json").read_text())["request"]
    assert find_run(tmp_path / "runs", request) is None
    copy_folder(saved[2], tmp_path / "runs", "new")
    assert [r["name"] for r in list_runs(tmp_path / "runs")] == ["new"]
    assert find_run(tmp_path / "runs", request) == tmp_path / "runs" / "new"


def test_untouched_run_loads_and_scores_identically(saved, tmp_path):
    cohort, res, folder = saved
    m = json.loads((folder / MANIFEST).read_text())
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(m["files"]) == on_disk
    assert all(file_sha256(folder / r) == h for r, h in m["files"].items())
    assert m["models"]["lr"]["class"] == "sklearn.pipeline.Pipeline"
    assert m["models"]["gru"]["class"] == "core.models.recurrent.RecurrentClassifier"
    assert m["models"]["gru"]["files"] == ["models/gru.pt", "models/gru.json"]
    assert m["models"]["lr"]["n_features"] == len(res.builder.tab_names)
    assert m["models"]["gru"]["input_kind"] == "sequence"
    copied = copy_run(folder, tmp_path / "copied")           # byte-for-byte: the manifest stays valid
    for run in (load_run(folder), load_run(copied)):
        scores = run.score(cohort, res.splits["test"])
        for name, ev in res.test.items():
            got = scores[scores["model"] == name].set_index("patient_id").loc[ev.patient_ids, "risk"].to_numpy()
            np.testing.assert_allclose(got, ev.y_proba, rtol=1e-6)


def test_nan_risk_is_refused_naming_patient_and_model(saved):
    cohort, res, folder = saved
    run = load_run(folder)
    ids = [str(i) for i in res.splits["test"][:3]]
    lr = run.models["lr"][-1]
    coef = lr.coef_.copy()
    try:
        lr.coef_[:] = np.nan                       # a model that gives NaN for every patient
        with pytest.raises(RunError, match=r"Model 'lr' of the run r1 gave no valid risk .* 3 patient") as err:
            run.score(cohort, ids)
        assert all(i in str(err.value) for i in ids)
    finally:
        lr.coef_[:] = coef
    assert run.score(cohort, ids)["risk"].notna().all()


# -- the CLI: exit 2 with the message, never a traceback ----------------------------------------------
@pytest.fixture(scope="module")
def events(saved, tmp_path_factory):
    ev, _ = write_long(make_tiny_cohort(n_patients=10, seed=9), tmp_path_factory.mktemp("ev"), prefix="u",
                        labels=False)
    return ev


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_cli_refuses_a_tampered_run(saved, events, tmp_path, capsys, command):
    folder = copy_folder(saved[2], tmp_path)
    _dummy_lr(folder)
    extra = ["--model", "lr"] if command == "explain" else []
    rc = main([command, str(folder), str(events), "--out", str(tmp_path / "o.csv"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "models/lr.skops" in err and "restore the run from a backup" in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("command", ["predict", "explain"])
@pytest.mark.parametrize("out", ["folder", "under_a_file"])
def test_cli_bad_out_path_is_exit_2(saved, events, tmp_path, capsys, command, out):
    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("x")
    path = tmp_path / "folder" if out == "folder" else tmp_path / "a_file" / "p.csv"
    extra = ["--model", "lr"] if command == "explain" else []
    rc = main([command, str(saved[2]), str(events), "--out", str(path), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert ("is an existing folder" if out == "folder" else "which is a file, not a folder") in err


def test_cli_predict_nan_risk_is_exit_2(saved, events, tmp_path, capsys, monkeypatch):
    import core.runs.store

    original = core.runs.store.load_run

    def broken(*args, **kwargs):
        run = original(*args, **kwargs)
        run.models["lr"][-1].coef_[:] = np.nan
        return run

    monkeypatch.setattr(core.runs.store, "load_run", broken)
    out = tmp_path / "p.csv"
    rc = main(["predict", str(saved[2]), str(events), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "'lr'" in err and "u000" in err
    assert not out.exists()                            # no file with empty risks and predicted=0
