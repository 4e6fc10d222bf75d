import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from tests.helpers.cohorts import make_tiny_cohort, write_long


@pytest.fixture(scope="module")
def trained(trained_run, tmp_path_factory):
    """The session's run (``python -m core train`` of lr, gbm, gru on the tiny cohort; tests/conftest.py), with
    its input files copied into a folder of this module's own, where the tests write theirs."""
    folder = tmp_path_factory.mktemp("cli")
    for path in (trained_run.events, trained_run.labels):
        shutil.copy(path, folder / path.name)
    return folder, trained_run.run_dir, trained_run.returncode


def test_train_writes_run(trained):
    _, run_dir, rc = trained
    assert rc == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["models"]) == {"lr", "gbm", "gru"}
    for m in metrics["models"].values():
        assert {"auroc", "auprc", "brier", "threshold", "train_seconds", "auroc_ci"} <= set(m)
    for f in ("config.json", "split.json", "versions.json", "predictions.csv", "features.json", "features.npz",
              "models/lr.skops", "models/gru.pt", "models/gru.json"):
        assert (run_dir / f).exists(), f


def test_predict_unseen_patients(trained, capsys):
    folder, run_dir, _ = trained
    events, _ = write_long(make_tiny_cohort(n_patients=25, seed=9), folder, prefix="u", labels=False)
    out = folder / "pred.csv"
    assert main(["predict", str(run_dir), str(events), "--out", str(out)]) == 0
    pred = pd.read_csv(out, dtype={"patient_id": str})
    assert list(pred.columns) == ["patient_id", "model", "risk", "predicted"]
    assert len(pred) == 25 * 3 and pred["patient_id"].str.startswith("u").all()
    assert pred["risk"].between(0, 1).all() and set(pred["predicted"]) <= {0, 1}
    thr = json.loads((run_dir / "config.json").read_text())["thresholds"]
    for name, g in pred.groupby("model"):
        np.testing.assert_array_equal(g["predicted"], (g["risk"] >= thr[name]).astype(int))


@pytest.mark.parametrize("argv, match", [
    (["predict", "{folder}/nope", "{events}", "--out", "{folder}/x.csv"], "does not exist"),
    (["train", "{folder}/missing.csv", "--target", "died", "--out", "{folder}/r2"], "not found|No such|missing"),
    (["train", "{events}", "--labels", "{labels}", "--target", "died", "--out", "{folder}/r3",
      "--models", "lr,xgboost"], "Choose from"),
    (["train", "{events}", "--out", "{folder}/r4"], "--target"),
])
def test_bad_input_exit_2_without_traceback(trained, argv, match, capsys):
    folder, _, _ = trained
    fmt = {"folder": folder, "events": folder / "events_p.csv", "labels": folder / "outcomes_p.csv"}
    assert main([a.format(**fmt) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    import re
    assert re.search(match, err), err


def test_corrupt_run_exit_2(trained, tmp_path, capsys):
    import shutil
    folder, run_dir, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    (bad / "models" / "gru.pt").write_bytes(b"not torch")
    rc = main(["predict", str(bad), str(folder / "events_p.csv"), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "gru" in err


def test_module_entry_point_exit_code(tmp_path):
    """``python -m core`` itself (fresh interpreter): bad input -> exit 2, message, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "core", "predict", str(tmp_path / "none"), "x.csv", "--out",
                           str(tmp_path / "p.csv")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "does not exist" in proc.stderr


def test_train_cross_validation_writes_fold_results(trained, tmp_path, capsys):
    folder, _, _ = trained
    out = tmp_path / "cv_run"
    rc = main(["train", str(folder / "events_p.csv"), "--labels", str(folder / "outcomes_p.csv"), "--target", "died",
               "--out", str(out), "--preset", "test", "--models", "lr,gru", "--bootstrap", "20", "--cv", "2",
               "--no-progress"])
    assert rc == 0
    from core.runs.store import verify_run
    assert "analyses/cv.json" in verify_run(out)["files"]          # kept with the run, in its manifest
    folds = pd.read_csv(out / "analyses" / "cv.csv")
    assert len(folds) == 2 * 2 and set(folds["model"]) == {"lr", "gru"} and folds["auroc"].between(0, 1).all()
    summary = json.loads((out / "analyses" / "cv.json").read_text())
    assert summary["n_folds"] == 2
    np.testing.assert_allclose(summary["models"]["lr"]["auroc_mean"],
                               folds.loc[folds["model"] == "lr", "auroc"].mean(), atol=1e-4)
    assert "2-fold cross-validation" in capsys.readouterr().out
    assert main(["train", str(folder / "events_p.csv"), "--labels", str(folder / "outcomes_p.csv"), "--target",
                 "died", "--out", str(tmp_path / "cv_bad"), "--preset", "test", "--models", "lr", "--cv", "1",
                 "--no-progress"]) == 2
