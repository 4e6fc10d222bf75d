"""A run's manifest: the SHA-256 of every file of the run and what each model is, written last and checked first.

``manifest.json`` is::

    {"format": 1, "algorithm": "sha256",
     "files": {"config.json": "<hex>", "models/lr.skops": "<hex>", ...},      # every file but itself
     "sizes": {"config.json": 947, ...},                                       # bytes (runs saved since issue 21)
     "models": {"lr": {"files": ["models/lr.skops"], "class": "sklearn.pipeline.Pipeline",
                       "components": [...], "input_kind": "tabular", "n_features": 120,
                       "feature_names_sha256": "<hex of the JSON list of the builder's names>"}, ...},
     "refit": {...}}                                                             # the same for models/refit/

:func:`verify_run` (called by :func:`core.runs.store.load_run`, :func:`core.runs.store.copy_run` and
:func:`core.runs.store.match_run_folder`) refuses a run with a missing, changed or linked file, or an unlisted
file in the run's own places (the top level, ``models/``, ``models/refit/``, ``analyses/``; only ``cv.csv`` /
``cv.json`` of ``train --cv`` may be added at the top). Runs saved without a manifest (older versions) are
refused. The manifest is not signed: it shows edits and swapped files (its recorded sizes before any hashing),
but not someone who rewrites it too; so every JSON file of a run is read with :mod:`core.runs.runfiles` (size
and depth limits, strict JSON) and checked against its schema before use, and the model checks still refuse
other classes and NaN weights.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from core.exceptions import RunError
from core.features import FeatureBuilder
from core.runs.export import jsonable
from core.runs.runfiles import RESTORE, check_config, check_manifest, check_split, read_json_file, size_limit

__all__ = ["MANIFEST", "RUN_EXTRAS", "ANALYSES", "verify_run", "write_manifest", "sha256_file", "names_sha256",
           "feature_names"]

#: the run's file of file hashes and model descriptions, written last.
MANIFEST = "manifest.json"
#: top-level files a command may add to a complete run after saving it (``train --cv``); never read by load_run.
RUN_EXTRAS = frozenset({"cv.csv", "cv.json"})
#: the folder of a run that holds analyses computed on it after it was saved (time order, explanations,
#: cross-validation): files of the run like any other, listed in its manifest (:func:`core.runs.attached.attach_files`).
ANALYSES = "analyses"


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def names_sha256(names) -> str:
    """The SHA-256 (hex) of the JSON list of ``names`` as str: what a model's manifest entry records of its features."""
    return hashlib.sha256(json.dumps([str(n) for n in names]).encode()).hexdigest()


def feature_names(builder: FeatureBuilder, input_kind: str) -> list:
    """The names of the columns (tabular) or channels (sequence) a model of ``input_kind`` reads."""
    return list(builder.seq_names if input_kind == "sequence" else builder.tab_names)


def write_manifest(folder: Path, models: dict, refit: dict) -> None:
    """Write ``folder``'s manifest: the SHA-256 and size of every other file in it, and the model entries.

    Parameters
    ----------
    folder : Path
        A run folder (or its staging folder) holding every other file of the run already.
    models, refit : dict of str to dict
        The manifest entry of each model, and of each refitted model (empty without ``train --refit``).
    """
    paths = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST]
    files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in paths}
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in paths}
    doc = {"format": 1, "algorithm": "sha256", "files": files, "sizes": sizes, "models": models, "refit": refit}
    (folder / MANIFEST).write_text(json.dumps(jsonable(doc), indent=2, allow_nan=False))


def _inside(folder: Path, rel) -> Path:
    """``folder / rel`` for a manifest entry, refusing absolute paths and ``..`` (nothing outside is read)."""
    parts = str(rel).split("/")
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or any(
            p in ("", ".", "..") for p in parts):
        raise RunError(f"{MANIFEST} of the run {folder} lists {rel!r}, which is not a file inside the run folder: "
                       f"the manifest was edited. {RESTORE}")
    return folder.joinpath(*parts)


def _read_manifest(folder: Path) -> dict:
    if not (folder / MANIFEST).is_file():
        if (folder / "config.json").is_file():
            raise RunError(f"The run {folder} was saved by an older version without a manifest ({MANIFEST}), so "
                           "its files cannot be checked for changes and it is refused: retrain it "
                           f"(python -m core train ... --out {folder}).")
        raise RunError(f"{folder} is not a complete run folder (it has no config.json and no {MANIFEST}). Pass "
                       "the --out folder of a finished `python -m core train` (e.g. runs/my_run), or train again.")
    if (folder / MANIFEST).is_symlink():
        raise RunError(f"{MANIFEST} in the run folder {folder} is a link, not the file the run saved. {RESTORE}")
    return check_manifest(read_json_file(folder / MANIFEST, name=MANIFEST))


def verify_run(run_dir: str | Path) -> dict:
    """Check a run folder against its ``manifest.json``; return the manifest.

    Every listed file must exist, be a plain file (no link) and have its recorded SHA-256; the run's own
    places (the top level, ``models/``, ``models/refit/``) must hold nothing unlisted (only
    :data:`RUN_EXTRAS` may be added at the top). Nothing is deserialised here.

    Raises
    ------
    RunError
        No folder; no manifest (a run saved by an older version); a missing, changed, linked or added
        file. The message names the file and says how to fix it.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        raise RunError(f"Run folder {folder} does not exist. Pass the --out folder of a finished "
                       "`python -m core train` (e.g. runs/my_run).")
    manifest = _read_manifest(folder)
    files, sizes = manifest["files"], manifest.get("sizes", {})
    paths = {}
    for rel in files:                                  # first what costs nothing: links, missing files, sizes
        path = _inside(folder, rel)
        if path.is_symlink() or any(p.is_symlink() for p in path.parents if folder in p.parents):
            raise RunError(f"{rel} in the run folder {folder} is a link, not the file the run saved. {RESTORE}")
        if not path.is_file():
            raise RunError(f"{rel} is missing from the run folder {folder} ({MANIFEST} lists it). The folder is "
                           f"incomplete. {RESTORE}")
        paths[rel] = path
    _refuse_unlisted(folder, set(files) | {MANIFEST})
    derived = _prediction_limit(folder) if {"predictions.csv", "predictions.parquet"} & set(files) else None
    for rel, path in paths.items():
        size, limit = path.stat().st_size, size_limit(rel)
        if derived is not None and rel in ("predictions.csv", "predictions.parquet"):
            limit = min(limit, derived)
        if size > limit or (rel in sizes and size != sizes[rel]):
            what = (f"{size:,} bytes, more than such a file of a run can hold ({limit:,})" if size > limit else
                    f"{size:,} bytes, not the {sizes[rel]:,} bytes it had when the run was saved")
            raise RunError(f"{rel} in the run folder {folder} is {what}: it was changed after the run was saved, "
                           f"so it is not trusted and the run is refused (nothing was read). {RESTORE}")
    for rel, path in paths.items():                    # then the hashes
        if sha256_file(path) != files[rel]:
            raise RunError(f"{rel} in the run folder {folder} was changed after the run was saved (its SHA-256 "
                           f"does not match {MANIFEST}), so it is not trusted and the run is refused. {RESTORE}")
    return manifest


def _prediction_limit(folder: Path) -> int | None:
    """The most bytes the run's predictions can take: 1 KiB per row (an id, a time, split, model, risk, label)
    for each validation and test patient (x steps, online) and model, plus 64 MiB; ``None`` when config.json or
    split.json cannot say (their own checks refuse them later). Read before anything is hashed, so a huge
    predictions file of a run saved without recorded sizes is refused at once too."""
    try:
        config = check_config(read_json_file(folder / "config.json", name="config.json"))
        split = check_split(read_json_file(folder / "split.json", name="split.json"))
    except RunError:
        return None
    features = config["features"]
    steps = 1 if config.get("task", "stay") == "stay" else int(np.ceil(
        float(features.get("window_hours", 48.0)) / float(features.get("bin_hours", 1.0)) - 1e-9))
    rows = (len(split["validation"]) + len(split["test"])) * len(config["models"]) * steps
    return 64 * 2**20 + 1024 * rows


def _refuse_unlisted(folder: Path, listed: set) -> None:
    """RunError when the run's own places hold a file or folder its manifest does not list."""
    for place in (folder, folder / "models", folder / "models" / "refit", folder / ANALYSES):
        if place.is_symlink():
            raise RunError(f"{place.relative_to(folder).as_posix()} in the run folder {folder} is a link, not the "
                           f"folder the run saved. {RESTORE}")
        if not place.is_dir():
            continue
        for p in sorted(place.iterdir()):
            rel = p.relative_to(folder).as_posix()
            own_dir = rel in ("models", "models/refit", ANALYSES) and p.is_dir() and not p.is_symlink()
            extra = place == folder and rel in RUN_EXTRAS and p.is_file() and not p.is_symlink()
            if rel in listed or own_dir or extra:
                continue
            raise RunError(f"{rel} in the run folder {folder} is not listed in {MANIFEST}: it was added after the "
                           "run was saved, and the run is refused rather than risk reading it. Delete "
                           f"{rel}, or restore the run from a backup (or train it again).")

