"""Forged runs (issue 21, item 4): a run's files are checked, not trusted.

Each forgery rewrites the manifest to match (``rehash_manifest``: hashes and sizes), as an attacker who can edit a
run can; the schema checks must still refuse it, naming the file and the field, from the library
(RunError) and from the CLI (exit 2 with the message, no traceback).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from core.cli import main
from core.config import EvaluationConfig
from core.exceptions import RunError
from core.training.experiment import run_experiment
from core.runs.runfiles import MAX_DEPTH, parse_json, read_json_file
from core.runs.store import MANIFEST, load_run, save_run, verify_run
from tests.helpers.cohorts import make_tiny_cohort, write_long
from tests.helpers.runs import copy_folder, rehash_manifest


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cohort = make_tiny_cohort(n_patients=60, seed=1)
    res = run_experiment(cohort, ["lr", "gru"], preset="test", evaluation=EvaluationConfig(n_bootstrap=10))
    return save_run(res, tmp_path_factory.mktemp("runs") / "r1")


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    ev, _ = write_long(make_tiny_cohort(n_patients=10, seed=9), tmp_path_factory.mktemp("ev"), prefix="u",
                        labels=False)
    return ev


def _edit_json(folder, rel, edit):
    path = folder / rel
    value = json.loads(path.read_text())
    new = edit(value)
    path.write_text(new if isinstance(new, str) else json.dumps(value if new is None else new))


def _set(path, value):
    """An edit setting ``a.b.c`` of a JSON object to ``value``."""
    def edit(d):
        target = d
        keys = path.split(".")
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
        return d
    return edit


_DEEP = "[" * 100_000 + "]" * 100_000

#: (file, edit, what the message must say); every edit is followed by a rewritten manifest.
FORGERIES = {
    "config_list": ("config.json", lambda d: [1, 2, 3], "config.json: the file holds list"),
    "config_deep": ("config.json", lambda d: _DEEP, "config.json: the JSON is nested more than"),
    "config_nested_field": ("config.json", _set("target", json.loads("[" * 40 + "]" * 40)),
                            "config.json: the JSON is nested more than"),
    "models_5": ("config.json", _set("models", 5), "config.json: models = 5 is not a list"),
    "unknown_model": ("config.json", _set("models", ["lr", "evil"]), "config.json: models[1] = 'evil' is not one of"),
    "threshold_abc": ("config.json", _set("thresholds.lr", "abc"), "config.json: thresholds.lr = 'abc' is not a number"),
    "threshold_nan": ("config.json", lambda d: json.dumps(_set("thresholds.lr", float("nan"))(d)),
                      "config.json: not valid JSON (NaN is not a number in strict JSON)"),
    "threshold_2": ("config.json", _set("thresholds.gru", 2.0), "config.json: thresholds.gru = 2 is outside [0, 1]"),
    "threshold_missing": ("config.json", lambda d: d["thresholds"].pop("gru") and d,
                          "config.json: thresholds.gru is missing"),
    "bin_hours_tiny": ("config.json", _set("features.bin_hours", 1e-7),
                       "config.json: features.bin_hours = 1e-07 is outside [0.01667, 87600] hours"),
    "window_huge": ("config.json", _set("features.window_hours", 1e12),
                    "config.json: features.window_hours = 1e+12 is outside [0.01667, 87600] hours"),
    "too_many_steps": ("config.json", lambda d: _set("features.bin_hours", 0.02)(_set("features.window_hours",
                                                                                     80000.0)(d)),
                       "config.json: features.window_hours / bin_hours"),
    "unknown_task": ("config.json", _set("task", "hourly"), "config.json: task = 'hourly' is not one of stay, online"),
    "seed_negative": ("config.json", _set("random_state", -5), "config.json: random_state = -5 is outside"),
    "features_bin_tiny": ("features.json", _set("config.bin_hours", 1e-7),
                          "features.json: config.bin_hours = 1e-07 is outside [0.01667, 87600] hours"),
    "features_variables": ("features.json", _set("variables", "HR"), "features.json: variables = 'HR' is not a list"),
    "split_numbers": ("split.json", _set("test", 7), "split.json: test = 7 is not a list"),
    "metrics_ci": ("metrics.json", _set("models.lr.auroc_ci", 5), "metrics.json: models.lr.auroc_ci = 5 is not a [low, high] pair"),
    "versions_list": ("versions.json", lambda d: [1], "versions.json: the file holds list"),
    "report_rows": ("data_report.json", _set("report.rows_read", "many"),
                    "data_report.json: report.rows_read = 'many' is not a whole number"),
    "gru_hidden": ("models/gru.json", _set("params.hidden_size", 4000),
                   "models/gru.json: params.hidden_size = 4000 with 1 layer(s) and 1 seed(s) needs at least"),
    "gru_param": ("models/gru.json", _set("params.evil", 1), "models/gru.json: params.evil = 1 is not a field"),
    "gru_layers": ("models/gru.json", _set("params.num_layers", 10**9), "models/gru.json: params.num_layers = "
                                                                       "1000000000 is outside [1, 16]"),
    "manifest_models": (MANIFEST, _set("models.lr.input_kind", 3), "manifest.json: models.lr.input_kind = 3 is not text"),
}


@pytest.mark.parametrize("case", list(FORGERIES))
def test_a_forged_file_is_refused_naming_file_and_field(saved, tmp_path, case):
    rel, edit, message = FORGERIES[case]
    folder = copy_folder(saved, tmp_path)
    _edit_json(folder, rel, edit)
    if rel != MANIFEST:
        rehash_manifest(folder)
    with pytest.raises(RunError) as err:
        load_run(folder)
    assert message in str(err.value)
    assert "the run was edited" in str(err.value) and "restore the run from a backup" in str(err.value)


def test_a_deeply_nested_manifest_is_refused_not_a_recursion_error(saved, tmp_path):
    folder = copy_folder(saved, tmp_path)
    (folder / MANIFEST).write_text(_DEEP)
    with pytest.raises(RunError, match=f"manifest.json: the JSON is nested more than {MAX_DEPTH} levels"):
        verify_run(folder)


def test_the_reader_limits_size_and_depth_and_refuses_nan(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"a": [[[[1]]]]}))
    assert read_json_file(path, name="x.json") == {"a": [[[[1]]]]}
    with pytest.raises(RunError, match="x.json: the JSON is nested more than 3 levels"):
        read_json_file(path, name="x.json", max_depth=3)
    with pytest.raises(RunError, match=r"x.json: 16 bytes, more than such a file can hold \(10 bytes\)"):
        read_json_file(path, name="x.json", max_bytes=10)
    with pytest.raises(RunError, match="Infinity is not a number in strict JSON"):
        parse_json("[Infinity]", name="y.json")
    with pytest.raises(RunError, match="not valid JSON"):
        parse_json(b"\xff\xfe", name="y.json")


def test_a_huge_sparse_file_is_refused_before_it_is_hashed(saved, tmp_path):
    """Sparse zeros in place of the network's weights: refused by their size, without reading them: 600 MiB with
    the manifest as saved (the recorded size differs), 2 GiB with the manifest recording it (over the bound)."""
    folder = copy_folder(saved, tmp_path)
    os.truncate(folder / "models" / "gru.pt", 600 * 2**20)
    start = time.perf_counter()
    with pytest.raises(RunError, match=r"models/gru.pt .* is 629,145,600 bytes, not the .* bytes it had"):
        verify_run(folder)
    os.truncate(folder / "models" / "gru.pt", 2 * 2**30)
    m = json.loads((folder / MANIFEST).read_text())
    m["sizes"]["models/gru.pt"] = 2 * 2**30                 # a forger records the size (but cannot hash 2 GiB fast)
    (folder / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(RunError, match=r"models/gru.pt .* more than such a file of a run can hold"):
        verify_run(folder)
    assert time.perf_counter() - start < 1.0


def test_forged_feature_arrays_and_predictions_are_refused(saved, tmp_path):
    folder = copy_folder(saved, tmp_path)
    with np.load(folder / "features.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["mean"] = np.zeros(10**6)
    np.savez(folder / "features.npz", **arrays)
    rehash_manifest(folder)
    with pytest.raises(RunError, match=r"features.npz: mean = float64 \(1000000,\) is not 3 numbers"):
        load_run(folder)
    import pandas as pd
    folder = copy_folder(saved, tmp_path, "p")
    preds = pd.read_parquet(folder / "predictions.parquet")
    pd.concat([preds] * 50).to_parquet(folder / "predictions.parquet")
    rehash_manifest(folder)
    with pytest.raises(RunError, match="predictions.parquet holds .* rows, more than the run's validation and test"):
        load_run(folder)
    folder = copy_folder(saved, tmp_path, "q")
    preds.assign(risk=np.nan).to_parquet(folder / "predictions.parquet")
    rehash_manifest(folder)
    with pytest.raises(RunError, match=r"predictions: a row's risk \(not a number in \[0, 1\]\)"):
        load_run(folder)


@pytest.mark.parametrize("command", ["predict", "report", "explain"])
@pytest.mark.parametrize("case", ["models_5", "threshold_abc", "bin_hours_tiny", "config_list"])
def test_cli_refuses_a_forged_run_with_exit_2(saved, events, tmp_path, capsys, command, case):
    rel, edit, message = FORGERIES[case]
    folder = copy_folder(saved, tmp_path)
    _edit_json(folder, rel, edit)
    rehash_manifest(folder)
    out = tmp_path / ("o.html" if command == "report" else "o.csv")
    args = {"predict": [str(folder), str(events), "--out", str(out)],
            "report": [str(folder), "--out", str(out)],
            "explain": [str(folder), str(events), "--model", "lr", "--out", str(out)]}[command]
    rc = main([command, *args])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert message in err
    assert not out.exists()


def test_cli_deep_manifest_is_exit_2_in_a_fresh_interpreter(saved, events, tmp_path):
    folder = copy_folder(saved, tmp_path)
    (folder / MANIFEST).write_text(_DEEP)
    proc = subprocess.run([sys.executable, "-m", "core", "predict", str(folder), str(events), "--out",
                           str(tmp_path / "o.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "manifest.json: the JSON is nested more than" in proc.stderr


def test_huge_predictions_of_a_run_without_recorded_sizes_are_refused_before_hashing(saved, tmp_path):
    """A run saved before sizes were recorded: the predictions' bound comes from its config and split (1 KiB per
    validation and test row and model, + 64 MiB), so 2 GiB of sparse zeros are refused without hashing them."""
    folder = copy_folder(saved, tmp_path)
    m = json.loads((folder / MANIFEST).read_text())
    del m["sizes"]
    (folder / MANIFEST).write_text(json.dumps(m))
    verify_run(folder)                                    # such a run is still valid
    os.truncate(folder / "predictions.csv", 2 * 2**30)
    start = time.perf_counter()
    with pytest.raises(RunError, match=r"predictions.csv .* 2,147,483,648 bytes, more than such a file of a run can "
                                       r"hold \(67,1\d\d,\d\d\d\)"):
        verify_run(folder)
    assert time.perf_counter() - start < 1.0
