"""Analyses attached to a saved run (core.runs.store.attach_files): listed in its manifest, refused when changed."""
import json
import shutil

import pytest

from core.config import EvaluationConfig
from core.exceptions import RunError
from core.training.experiment import run_experiment
from core.runs.store import (ANALYSES, MANIFEST, attach_files, copy_run, list_attached, load_run, read_attached, save_run,
                       verify_run)
from tests.helpers.cohorts import make_tiny_cohort


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cohort = make_tiny_cohort(n_patients=40, seed=3)
    res = run_experiment(cohort, ["lr"], preset="test", evaluation=EvaluationConfig(n_bootstrap=0))
    return save_run(res, tmp_path_factory.mktemp("runs") / "r")


def _fresh(saved, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(saved, dst)
    return dst


def test_attached_file_is_listed_verified_and_copied(saved, tmp_path):
    run = _fresh(saved, tmp_path)
    assert list_attached(run) == [] and read_attached(run, "timeorder.json") is None
    assert attach_files(run, {"timeorder.json": '{"a": 1}'}) == [f"{ANALYSES}/timeorder.json"]
    manifest = json.loads((run / MANIFEST).read_text())
    assert f"{ANALYSES}/timeorder.json" in manifest["files"]
    verify_run(run)
    load_run(run)
    assert read_attached(run, "timeorder.json") == b'{"a": 1}'
    attach_files(run, {"timeorder.json": b'{"a": 2}', "explain-lr.json": b"{}"})     # replaced, and one more
    assert read_attached(run, "timeorder.json") == b'{"a": 2}'
    assert list_attached(run) == ["explain-lr.json", "timeorder.json"]
    copied = copy_run(run, tmp_path / "copy")
    assert read_attached(copied, "explain-lr.json") == b"{}"
    assert not [p for p in run.parent.iterdir() if p.name.startswith(f".{run.name}") and p.suffix != ".lock"]


def test_changed_or_planted_analysis_is_refused(saved, tmp_path):
    run = _fresh(saved, tmp_path)
    attach_files(run, {"timeorder.json": "{}"})
    (run / ANALYSES / "timeorder.json").write_text('{"verdict": "forged"}')
    with pytest.raises(RunError, match="analyses/timeorder.json.*changed"):
        read_attached(run, "timeorder.json")
    with pytest.raises(RunError, match="changed"):
        attach_files(run, {"other.json": "{}"})          # a changed run is never extended
    run2 = _fresh(saved, tmp_path / "b")
    (run2 / ANALYSES).mkdir()
    (run2 / ANALYSES / "timeorder.json").write_text("{}")
    with pytest.raises(RunError, match="not listed"):
        verify_run(run2)


@pytest.mark.parametrize("name", ["../x.json", "a/b.json", ".hidden", "", "x" * 200, "a b.json"])
def test_attach_refuses_names_that_are_not_plain_files(saved, tmp_path, name):
    run = _fresh(saved, tmp_path)
    with pytest.raises(RunError, match="plain file name"):
        attach_files(run, {name: "{}"})
