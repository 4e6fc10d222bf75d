import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from core.config import EvaluationConfig
from core.exceptions import RunError
from core.training.experiment import run_experiment
from core.runs.store import list_runs, load_run, save_run


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from tests.helpers.cohorts import make_tiny_cohort
    cohort = make_tiny_cohort(n_patients=60, seed=1)
    res = run_experiment(cohort, ["lr", "gbm", "lstm"], preset="test",
                         evaluation=EvaluationConfig(n_bootstrap=100))
    folder = save_run(res, tmp_path_factory.mktemp("runs") / "r1")
    return cohort, res, folder


def test_round_trip_scores_identically(saved):
    cohort, res, folder = saved
    run = load_run(folder)
    assert set(run.models) == set(res.models)
    ids = res.splits["test"]
    fs_old = res.builder.transform(cohort, ids)
    fs_new = run.features(cohort, ids)
    np.testing.assert_array_equal(fs_old.X_seq, fs_new.X_seq)
    scores = run.score(cohort, ids)
    assert list(scores.columns) == ["patient_id", "model", "risk", "predicted"]
    for name, ev in res.test.items():
        got = scores[scores["model"] == name].set_index("patient_id").loc[ev.patient_ids, "risk"].to_numpy()
        np.testing.assert_allclose(got, ev.y_proba, rtol=1e-6)
        assert run.thresholds[name] == pytest.approx(ev.threshold)
    results, comps = run.evaluations()
    assert results["lr"].metrics["auroc"] == pytest.approx(res.test["lr"].metrics["auroc"])
    assert results["lr"].ci["auroc"] == pytest.approx(res.test["lr"].ci["auroc"])
    assert len(comps) == len(res.comparisons)
    assert set(run.splits) == {"train", "validation", "test"}
    assert list_runs(folder.parent)[0]["name"] == "r1"
    assert json.loads((folder / "metrics.json").read_text())["reference"] == res.reference


def test_loads_on_a_fresh_interpreter_without_streamlit(saved):
    cohort, res, folder = saved
    code = textwrap.dedent(f"""
        import sys
        from core.runs.store import load_run
        run = load_run({str(folder)!r})
        print(sorted(run.models))
        assert "streamlit" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "lstm" in out.stdout


def test_missing_and_corrupt_runs(saved, tmp_path):
    import shutil
    _, _, folder = saved
    with pytest.raises(RunError, match="does not exist"):
        load_run(tmp_path / "nothing")
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / "split.json").unlink()
    with pytest.raises(RunError, match="split.json is missing"):
        load_run(bad)
    bad2 = tmp_path / "bad2"
    shutil.copytree(folder, bad2)
    (bad2 / "models" / "lr.skops").write_bytes(b"junk")
    with pytest.raises(RunError, match="lr"):
        load_run(bad2)


def test_untrusted_skops_types_are_refused(saved, tmp_path):
    import shutil

    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    _, _, folder = saved
    bad = tmp_path / "evil"
    shutil.copytree(folder, bad)
    sio.dump(Pipeline([("f", FunctionTransformer(json.dumps))]), bad / "models" / "lr.skops")
    with pytest.raises(RunError, match="trusted"):
        load_run(bad)


def test_a_stay_run_gives_each_patient_a_risk_trajectory(saved):
    """The risk from the data up to each hour; the last point is the stay's own risk; past hours only."""
    cohort, res, folder = saved
    run = load_run(folder)
    pid = str(res.splits["test"][0])
    table = run.risk_table(cohort, pid)
    assert list(table.columns) == ["time_hours", "lr", "gbm", "lstm"]
    assert table["time_hours"].is_monotonic_increasing and table["time_hours"].iloc[-1] <= run.builder.config.window_hours
    stay = run.score(cohort, [pid]).set_index("model")["risk"]
    for name in ("lr", "gbm", "lstm"):
        assert abs(table[name].iloc[-1] - stay[name]) < 1e-6, name
        assert table[name].between(0, 1).all()
    # the risk at hour h does not change when data after h change
    ev = cohort.patient_events(pid)
    h = float(table["time_hours"].iloc[len(table) // 2])
    later = ev["time_hours"] > h
    assert later.any()
    edited = ev.assign(value=np.where(later, ev["value"] * 3 + 50, ev["value"]))
    static = cohort.static.loc[[pid]]
    moved = run.risk_trajectory(edited, static)
    before = table[table["time_hours"] <= h].set_index("time_hours")
    after = moved[moved["time_hours"] <= h].set_index("time_hours")
    pd.testing.assert_frame_equal(before, after)
    assert not np.allclose(moved["lr"].iloc[-1], table["lr"].iloc[-1])      # but the end of the stay does


def _modes(folder):
    import stat
    paths = [folder, *folder.rglob("*")]
    return ({stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_dir()},
            {stat.S_IMODE(p.stat().st_mode) for p in paths if p.is_file()})


def test_run_folders_are_owner_only(saved, tmp_path):
    """save_run and copy_run: directories 0700, files 0600, whatever the umask; also when replacing a run."""
    import os

    from core.runs.store import copy_run
    _, res, folder = saved
    assert _modes(folder) == ({0o700}, {0o600})
    old = os.umask(0o000)
    try:
        (tmp_path / "again").mkdir(mode=0o777)
        os.chmod(tmp_path / "again", 0o777)
        again = save_run(res, tmp_path / "again")            # into an existing, world-writable folder
        copied = copy_run(folder, tmp_path / "copied")
    finally:
        os.umask(old)
    assert _modes(again) == ({0o700}, {0o600})
    assert _modes(copied) == ({0o700}, {0o600})
    assert (again / "manifest.json").exists() and load_run(again).models


def test_delete_run_removes_a_run_and_refuses_anything_else(saved, tmp_path):
    import shutil

    from core.runs.store import delete_run
    _, _, folder = saved
    root = tmp_path / "runs"
    shutil.copytree(folder, root / "r1")
    shutil.copytree(folder, root / "r2")
    (root / "notes").mkdir()
    (root / "notes" / "keep.txt").write_text("x")
    (root / ".r3.partial-1").mkdir()
    (root / ".r3.partial-1" / "config.json").write_text("{}")
    outside = tmp_path / "outside"
    shutil.copytree(folder, outside)
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "sub").mkdir()
    shutil.copytree(folder, root / "sub" / "deep")
    refused = {root / "link": "is a link", root / "notes": "not a run folder", outside: "not a run folder directly",
               root / "r1" / ".." / ".." / "outside": "not a run folder directly", root / "sub" / "deep":
               "not a run folder directly", root: "not a run folder directly", root / "r1" / "models": "directly",
               root / ".r3.partial-1": "hidden", root / "nothing": "no config.json"}
    for path, match in refused.items():
        with pytest.raises(RunError, match=match):
            delete_run(path, root)
    with pytest.raises(RunError, match="does not exist"):
        delete_run(root / "r1", tmp_path / "no_root")
    assert (outside / "config.json").exists() and (root / "notes" / "keep.txt").exists()
    assert (root / "sub" / "deep" / "config.json").exists() and (root / "r1" / "models").is_dir()
    (root / "r1" / "models" / "escape").symlink_to(outside, target_is_directory=True)   # links: removed, not followed
    delete_run(root / "r1", root)
    assert not (root / "r1").exists() and (outside / "models").is_dir()
    delete_run(root / ".." / "runs" / "r2", root)
    assert not (root / "r2").exists()
    assert [r["name"] for r in list_runs(root)] == ["link"]      # only the (refused) link is left


def test_the_best_model_is_chosen_on_validation_and_each_patient_has_its_split(trained_run):
    from core.runs.store import load_run
    run = load_run(trained_run.run_dir)
    val = {n: run.metrics["models"][n]["validation_auroc"] for n in run.models}
    assert run.best_model == max(val, key=val.get)
    for part, ids in run.splits.items():
        assert run.split_of(ids[0]) == part
    assert run.split_of("never-seen") is None
