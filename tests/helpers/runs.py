"""Saved runs for the tests: the shared tiny run, an online run, and the tools of the tamper tests.

``train_tiny_run`` makes the run behind the session fixture ``trained_run`` (tests/conftest.py): the tiny
cohort (60 patients, seed 3) written as a long upload and trained through the CLI with the test preset. Tests
read it; a test that changes a run works on a copy (``core.runs.store.copy_run`` or ``copy_folder``).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.cli import main
from core.runs.store import MANIFEST
from tests.helpers.cohorts import make_online_cohort, make_tiny_cohort, write_long

__all__ = ["TrainedRun", "TINY_RUN_MODELS", "train_tiny_run", "online_run", "copy_folder", "file_sha256",
           "rehash_manifest", "dead_pid"]

TINY_RUN_MODELS = ("lr", "gbm", "gru")


@dataclass(frozen=True)
class TrainedRun:
    """A run trained by the CLI on files of the tiny cohort.

    Attributes
    ----------
    folder : Path
        Holds ``events_p.csv``, ``outcomes_p.csv`` and ``runs/tiny`` (nothing else).
    events, labels : Path
        The long events file and the outcomes file (target ``died``) the run was trained on.
    run_dir : Path
        The saved run (``folder / "runs" / "tiny"``).
    returncode : int
        The exit status of ``python -m core train``.
    """

    folder: Path
    events: Path
    labels: Path
    run_dir: Path
    returncode: int


def train_tiny_run(folder: Path) -> TrainedRun:
    """``python -m core train`` (in-process) of ``lr, gbm, gru`` at the test preset with 50 bootstrap resamples on
    ``make_tiny_cohort(n_patients=60, seed=3)`` written to ``folder`` by :func:`write_long`."""
    events, labels = write_long(make_tiny_cohort(n_patients=60, seed=3), folder)
    run_dir = folder / "runs" / "tiny"
    rc = main(["train", str(events), "--labels", str(labels), "--target", "died", "--out", str(run_dir),
               "--preset", "test", "--models", ",".join(TINY_RUN_MODELS), "--bootstrap", "50", "--no-progress"])
    return TrainedRun(folder, events, labels, run_dir, rc)


def online_run(folder: Path) -> tuple[Path, Path]:
    """An online run (lr, gru; CLI) trained on a wide hourly file with a SepsisLabel column; (run folder, file)."""
    cohort = make_online_cohort(n_patients=40, seed=2)
    wide = cohort.events.pivot_table(index=["patient_id", "time_hours"], columns="variable", values="value").reset_index()
    hours = cohort.hour_labels.set_index(["patient_id", "time_hours"])["label"]
    wide["SepsisLabel"] = hours.reindex(pd.MultiIndex.from_frame(wide[["patient_id", "time_hours"]])).fillna(0).to_numpy()
    events = folder / "hourly.csv"
    wide.rename(columns={"time_hours": "time"}).to_csv(events, index=False)
    run_dir = folder / "runs" / "online"
    assert main(["train", str(events), "--task", "online", "--target", "SepsisLabel", "--horizon-hours", "6",
                 "--out", str(run_dir), "--preset", "test", "--models", "lr,gru", "--bootstrap", "20",
                 "--no-progress"]) == 0
    return run_dir, events


def copy_folder(folder: Path, tmp_path: Path, name: str = "t") -> Path:
    """A plain copy of the run ``folder`` at ``tmp_path / name`` (byte for byte, nothing checked), to tamper with."""
    dst = tmp_path / name
    shutil.copytree(folder, dst)
    return dst


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as manifest.json records it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rehash_manifest(folder: Path) -> None:
    """Rewrite manifest.json so that every listed file (and every file now in models/) hashes and sizes as it is."""
    m = json.loads((folder / MANIFEST).read_text())
    rels = set(m["files"]) | {p.relative_to(folder).as_posix() for p in (folder / "models").glob("*") if p.is_file()}
    m["files"] = {r: file_sha256(folder / r) for r in sorted(rels)}
    m["sizes"] = {r: (folder / r).stat().st_size for r in sorted(rels)}
    (folder / MANIFEST).write_text(json.dumps(m))


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
