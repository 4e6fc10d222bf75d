"""Nothing computed twice: identical requests (same data, settings, seed, code) reuse the saved result."""
from __future__ import annotations

import json

import pytest

from core.cli import main
from core.training.experiment import training_request
from core.service.jobs import JobManager
from core.runs.reuse import request_key
from core.runs.store import find_run, list_runs
from core.service import GatesRequest, TrainRequest
from tests.helpers.cohorts import make_tiny_cohort, write_long


def test_the_request_key_covers_data_settings_seed_and_scope():
    a, b = make_tiny_cohort(40, seed=1), make_tiny_cohort(40, seed=2)
    key = training_request(a, ["lr"], preset="test")["request"]
    assert key == training_request(a, ("lr",), preset="test")["request"]          # same request, any spelling
    assert key == training_request(make_tiny_cohort(40, seed=1), ["lr"], preset="test")["request"]
    assert key != training_request(b, ["lr"], preset="test")["request"]            # other data
    assert key != training_request(a, ["lr"], preset="test", random_state=1)["request"]
    assert key != training_request(a, ["lr", "gru"], preset="test")["request"]
    assert key != training_request(a, ["lr"], preset="quick")["request"]
    assert key != training_request(a, ["lr"], preset="test", refit=True)["request"]
    assert request_key("x", "f", {"a": 1}) != request_key("x", "f", {"a": 1}, scope="another user")


@pytest.fixture(scope="module")
def manager():
    m = JobManager(slots=1)
    yield m
    m.shutdown()


def test_an_identical_training_job_reopens_the_saved_run(manager, tmp_path):
    cohort = make_tiny_cohort(60, seed=4)
    def train(name, seed=0):
        return TrainRequest(models=("lr",), preset="test", seed=seed, out=str(tmp_path / name),
                            reuse_dirs=(str(tmp_path),))
    first = manager.wait(manager.submit(train("a"), cohort), timeout=120)
    assert first.state == "done" and not first.reused_from
    second = manager.wait(manager.submit(train("b"), cohort), timeout=120)
    assert second.state == "done" and second.reused_from == "a", second
    summary = manager.result(second.id)
    assert summary.reused and summary.folder.name == "a"
    assert not (tmp_path / "b").exists()                                  # no duplicate run folder
    other = manager.wait(manager.submit(train("c", seed=1), cohort), timeout=120)
    assert not other.reused_from and (tmp_path / "c" / "config.json").exists()   # another seed: trained
    assert [r["name"] for r in list_runs(tmp_path)] == ["c", "a"]
    assert find_run(tmp_path, training_request(cohort, ["lr"], preset="test")["request"]) == tmp_path / "a"


def test_an_identical_job_reuses_the_finished_result_and_a_running_one_is_shared(manager, tmp_path):
    cohort = make_tiny_cohort(60, seed=5)
    request = GatesRequest(cells=("gru",), max_patients=40, max_epochs=2, hidden_size=4, random_state=0)
    jid = manager.submit(request, cohort)
    assert manager.submit(request, cohort) == jid                         # running: the same job, not a second
    assert manager.wait(jid, timeout=120).state == "done"
    again = manager.submit(request, cohort)
    info = manager.get(again)
    assert again != jid and info.state == "done" and info.reused_from == jid
    assert manager.result(again) is manager.result(jid)
    other = manager.submit(GatesRequest(cells=("gru",), max_patients=40, max_epochs=2, hidden_size=4,
                                        random_state=1), cohort)
    assert manager.get(other).reused_from == ""
    manager.cancel(other)


def test_list_runs_shows_identical_runs_once(tmp_path):
    for name, created, request in (("old", "2026-01-01T00:00:00", "k1"), ("dup", "2026-01-02T00:00:00", "k1"),
                                   ("new", "2026-01-03T00:00:00", "k2"), ("legacy", "2025-01-01T00:00:00", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"created": created, "request": request}))
        (tmp_path / name / "manifest.json").write_text("{}")      # a complete run (list_runs needs both)
    assert [r["name"] for r in list_runs(tmp_path)] == ["new", "old", "legacy"]
    assert len(list_runs(tmp_path, duplicates=True)) == 4
    assert find_run(tmp_path, "k1") == tmp_path / "old"


def test_cli_train_reuse_answers_from_the_saved_run(tmp_path, capsys):
    events, labels = write_long(make_tiny_cohort(n_patients=60, seed=3), tmp_path)
    argv = ["train", str(events), "--labels", str(labels), "--target", "died", "--preset", "test",
            "--models", "lr", "--bootstrap", "20", "--no-progress"]
    assert main(argv + ["--out", str(tmp_path / "runs" / "one")]) == 0
    first = (tmp_path / "runs" / "one" / "metrics.json").read_text()
    capsys.readouterr()
    assert main(argv + ["--out", str(tmp_path / "runs" / "one"), "--reuse"]) == 0     # --out itself
    assert "nothing was retrained" in capsys.readouterr().out
    assert main(argv + ["--out", str(tmp_path / "runs" / "two"), "--reuse"]) == 0     # a run beside --out
    out = capsys.readouterr().out
    assert "nothing was retrained" in out and "Copied to" in out
    assert (tmp_path / "runs" / "two" / "metrics.json").read_text() == first
    assert main(argv + ["--out", str(tmp_path / "runs" / "three"), "--reuse", "--seed", "1"]) == 0
    assert "nothing was retrained" not in capsys.readouterr().out                     # another seed: trained


def test_cli_timeorder_reuse_prints_the_saved_verdict(tmp_path, capsys):
    events, labels = write_long(make_tiny_cohort(n_patients=80, seed=6), tmp_path)
    argv = ["timeorder", str(events), "--labels", str(labels), "--target", "died", "--preset", "test",
            "--models", "lr,gru", "--horizons", "12", "--bootstrap", "20", "--out", str(tmp_path / "to"),
            "--no-progress"]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "to" / "timeorder.json").read_text())
    assert saved["request"]
    capsys.readouterr()
    assert main(argv + ["--reuse"]) == 0
    out = capsys.readouterr().out
    assert "nothing was recomputed" in out and saved["verdict"] in out
    assert main(argv + ["--reuse", "--seed", "2"]) == 0
    assert "nothing was recomputed" not in capsys.readouterr().out
