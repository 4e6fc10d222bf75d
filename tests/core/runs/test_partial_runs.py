"""Nothing half-written is listed or kept (issue 21, item 5): staging folders of killed saves are never listed
and are removed before a save (the server's side: tests/app/test_server_cleanup.py)."""
import os
import shutil
from pathlib import Path

import pytest

from core.config import EvaluationConfig
from core.training.experiment import run_experiment
from core.runs.store import attach_files, list_runs, load_run, remove_partial_runs, save_run
from tests.helpers.cohorts import make_tiny_cohort
from tests.helpers.runs import dead_pid


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    res = run_experiment(make_tiny_cohort(n_patients=60, seed=1), ["lr"], preset="test",
                         evaluation=EvaluationConfig(n_bootstrap=0))
    return res, save_run(res, tmp_path_factory.mktemp("runs") / "r1")


def _stage(root: Path, source: Path, name: str, pid: int, *, complete: bool = True) -> Path:
    """A staging folder as a killed save leaves it (a copy of a run, maybe without features.json)."""
    staging = root / f".{name}.partial-{pid}"
    shutil.copytree(source, staging)
    if not complete:
        (staging / "features.json").unlink()
    return staging


def test_staging_and_hidden_folders_are_never_listed(saved, tmp_path):
    _, run = saved
    root = tmp_path / "runs"
    shutil.copytree(run, root / "kept")
    _stage(root, run, "killed", dead_pid())
    _stage(root, run, "half", os.getpid(), complete=False)
    shutil.copytree(run, root / ".hidden")
    assert [r["name"] for r in list_runs(root)] == ["kept"]
    assert [r["name"] for r in list_runs(root, duplicates=True)] == ["kept"]


def test_stale_staging_is_removed_and_a_save_under_way_is_kept(saved, tmp_path):
    _, run = saved
    root = tmp_path / "runs"
    shutil.copytree(run, root / "kept")
    dead = dead_pid()
    stale = _stage(root, run, "killed", dead, complete=False)
    live = _stage(root, run, "saving", os.getpid())
    part = root / "kept" / "analyses"
    part.mkdir()
    (part / f".timeorder.json.part-{dead}").write_text("{")           # a killed attach_files
    assert remove_partial_runs(root) == 2
    assert not stale.exists() and not (part / f".timeorder.json.part-{dead}").exists()
    assert live.exists()                                              # its process (this one) is alive
    assert remove_partial_runs(root, os.getpid()) == 1 and not live.exists()
    load_run(root / "kept")                                           # the run itself is untouched


def test_a_save_first_removes_what_killed_saves_left(saved, tmp_path):
    res, run = saved
    root = tmp_path / "runs"
    stale = _stage(root, run, "killed", dead_pid(), complete=False)
    save_run(res, root / "new")
    assert not stale.exists() and [r["name"] for r in list_runs(root)] == ["new"]
    attach_files(root / "new", {"note.json": "{}"})
    load_run(root / "new")
