"""A run's files are checked, not trusted: one JSON reader with size and depth limits, and the schema of
every JSON file of a run, checked before anything uses it.

The manifest of a run (:mod:`core.runs.store`) shows edits, but whoever can edit a run can rewrite the manifest
too. So every JSON file of a run goes through :func:`read_json_file` (a size limit per file, strict JSON
only: no ``NaN`` or ``Infinity``, at most :data:`MAX_DEPTH` levels of brackets) and then through its
``check_*`` function here: types, finite numbers and ranges (hours between a minute and ten years,
thresholds in [0, 1], known model names, known task shapes). Anything else is refused with a
:class:`~core.exceptions.RunError` naming the file and the field, e.g.::

    config.json: features.bin_hours = 1e-07 is outside [0.0167, 87600] hours; the run was edited (or is
    damaged) and is refused. Train it again (retrain), or restore the run from a backup.

:func:`size_limit` is the most bytes each file of a run may hold; :func:`core.runs.store.verify_run` compares every
file's size with it (and with the size the manifest recorded) before hashing anything.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import fields
from pathlib import Path

from core.config import SUMMARIES, TASKS, EvaluationConfig, FeatureConfig, SplitConfig
from core.exceptions import CoreError, RunError

__all__ = ["read_json_file", "parse_json", "size_limit", "check_hours", "check_config", "check_manifest",
           "check_feature_meta", "check_split", "check_metrics", "check_versions", "check_data_report",
           "check_recurrent_meta", "check_timeorder", "HOURS_MIN", "HOURS_MAX", "MAX_STEPS", "MAX_DEPTH",
           "MAX_SEED", "MAX_JSON_BYTES", "RESTORE"]

#: the shortest and the longest span of hours a run may use: a minute and ten years.
HOURS_MIN, HOURS_MAX = 1.0 / 60.0, 24.0 * 365 * 10
#: most sequence steps of a run (``window_hours / bin_hours``): ten years of hours.
MAX_STEPS = 87_600
#: seeds are what numpy and scikit-learn accept: 0 ... 2**32 - 1.
MAX_SEED = 2**32 - 1
#: most levels of brackets in a JSON file of a run (ours use at most 6).
MAX_DEPTH = 32
#: most bytes of a small JSON file of a run (config, manifest, metrics, features.json, ...).
MAX_JSON_BYTES = 16 * 2**20
#: most patients (ids in split.json) and variables a run may hold.
_MAX_PATIENTS, _MAX_VARIABLES = 20_000_000, 100_000
_MIB, _GIB = 2**20, 2**30
#: the fix every refusal of a run's file ends with.
RESTORE = "Train it again (retrain), or restore the run from a backup."
_EDITED = f"the run was edited (or is damaged) and is refused. {RESTORE}"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# --------------------------------------------------------------------------------------------
# how large each file of a run may be
# --------------------------------------------------------------------------------------------
def size_limit(rel: str) -> int:
    """The most bytes the file ``rel`` (a path inside a run folder, ``"models/lr.skops"``) can hold.

    Small JSON files 16 MiB; ``split.json`` 1 GiB (20 M patient ids); predictions 8 GiB (validation and
    test rows of every model); a scikit-learn model 4 GiB, a network's weights 1 GiB; ``features.npz`` 64 MiB; attached analyses and
    cross-validation 256 MiB; anything else 16 MiB. Far above any real run (the demo's largest file is 1.4
    MB), so only a file a run could not hold is refused before it is hashed.
    """
    name = rel.rsplit("/", 1)[-1]
    if rel == "split.json":
        return _GIB
    if rel in ("predictions.csv", "predictions.parquet"):
        return 8 * _GIB
    if rel.startswith("models/") and name.endswith(".skops"):
        return 4 * _GIB
    if rel.startswith("models/") and name.endswith(".pt"):
        return _GIB
    if rel == "features.npz":
        return 64 * _MIB
    if rel.startswith("analyses/") or rel in ("cv.csv", "cv.json"):
        return 256 * _MIB
    return MAX_JSON_BYTES


# --------------------------------------------------------------------------------------------
# the one JSON reader
# --------------------------------------------------------------------------------------------
def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number in strict JSON")


def _too_deep(obj, max_depth: int) -> bool:
    """Whether ``obj`` nests lists and dicts more than ``max_depth`` levels (iterative: no recursion)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def parse_json(raw: bytes | str, *, name: str, max_depth: int = MAX_DEPTH, allow_nan: bool = False,
               error: type[CoreError] = RunError, fix: str = _EDITED):
    """Parse ``raw`` as strict JSON nested at most ``max_depth`` levels.

    Parameters
    ----------
    raw : bytes or str
        UTF-8 text.
    name : str
        What the text is, for the message (``"config.json"``).
    max_depth : int
        Most levels of brackets (``[[1]]`` is 2).
    allow_nan : bool
        Accept the non-standard ``NaN`` / ``Infinity`` (files our code writes never hold them).
    error, fix
        The error raised and the sentence that ends its message.

    Raises
    ------
    error
        Not UTF-8, not JSON, ``NaN`` / ``Infinity`` where not allowed, or nested too deeply.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else str(raw)
        obj = json.loads(text, parse_constant=None if allow_nan else _refuse_constant)
    except RecursionError:
        raise error(f"{name}: the JSON is nested more than {max_depth} levels deep; {fix}") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise error(f"{name}: not valid JSON ({err}); {fix}") from None
    if _too_deep(obj, max_depth):
        raise error(f"{name}: the JSON is nested more than {max_depth} levels deep; {fix}")
    return obj


def read_json_file(path: str | Path, *, name: str | None = None, max_bytes: int | None = None,
                   max_depth: int = MAX_DEPTH, allow_nan: bool = False, error: type[CoreError] = RunError,
                   fix: str = _EDITED):
    """Read the JSON file ``path``: at most ``max_bytes`` (default :func:`size_limit` of ``name``), strict JSON
    nested at most ``max_depth`` levels (:func:`parse_json`).

    Raises
    ------
    error (RunError by default)
        The file is missing, unreadable, too large, not JSON or nested too deeply; the message names it.
    """
    path = Path(path)
    name = name or path.name
    limit = size_limit(name) if max_bytes is None else int(max_bytes)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise error(f"{name}: {size:,} bytes, more than such a file can hold ({limit:,} bytes); {fix}")
            raw = fh.read(limit + 1)
    except FileNotFoundError:
        raise error(f"{name} is missing (looked for {path}); {fix}") from None
    except IsADirectoryError:
        raise error(f"{name} is a folder, not a file ({path}); {fix}") from None
    except OSError as err:
        raise error(f"{name} cannot be read ({err.strerror or err}); {fix}") from None
    if len(raw) > limit:
        raise error(f"{name}: more than such a file can hold ({limit:,} bytes); {fix}")
    return parse_json(raw, name=name, max_depth=max_depth, allow_nan=allow_nan, error=error, fix=fix)


# --------------------------------------------------------------------------------------------
# field checks: every refusal names the file and the field
# --------------------------------------------------------------------------------------------
def _show(value) -> str:
    text = repr(value) if not isinstance(value, float) else f"{value:g}"
    return text if len(text) <= 60 else text[:57] + "..."


class _File:
    """The checks of one file; ``fail`` raises the RunError naming the file and the field."""

    def __init__(self, name: str, error: type[CoreError] = RunError, fix: str = _EDITED) -> None:
        self.name, self.error, self.fix = name, error, fix

    def fail(self, field: str, value, what: str):
        where = f"{field} = {_show(value)}" if field else f"the file holds {type(value).__name__} {_show(value)}, it"
        raise self.error(f"{self.name}: {where} {what}; {self.fix}")

    def missing(self, field: str):
        raise self.error(f"{self.name}: {field} is missing; {self.fix}")

    def obj(self, value, field: str = "") -> dict:
        if not isinstance(value, dict):
            self.fail(field, value, "is not a JSON object ({...})")
        return value

    def get(self, d: dict, key: str, field: str, *, required: bool = True):
        if key not in d:
            if required:
                self.missing(field)
            return None
        return d[key]

    def number(self, value, field: str, lo: float, hi: float, *, unit: str = "", integer: bool = False,
               lo_open: bool = False, hi_open: bool = False, none: bool = False):
        if value is None and none:
            return None
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            self.fail(field, value, f"is not {'a whole number' if integer else 'a number'}")
        if not math.isfinite(value):
            self.fail(field, value, "is not a finite number")
        below = value <= lo if lo_open else value < lo
        above = value >= hi if hi_open else value > hi
        if below or above:
            left, right = "(" if lo_open else "[", ")" if hi_open else "]"
            self.fail(field, value, f"is outside {left}{lo:.4g}, {hi:.6g}{right}{' ' + unit if unit else ''}")
        return value

    def hours(self, value, field: str):
        return self.number(value, field, HOURS_MIN, HOURS_MAX, unit="hours")

    def seed(self, value, field: str, *, none: bool = False):
        return self.number(value, field, 0, MAX_SEED, integer=True, none=none)

    def text(self, value, field: str, *, choices=None, none: bool = False, max_len: int = 10_000):
        if value is None and none:
            return None
        if not isinstance(value, str):
            self.fail(field, value, "is not text")
        if len(value) > max_len:
            self.fail(field, value, f"is longer than {max_len:,} characters")
        if choices is not None and value not in choices:
            self.fail(field, value, f"is not one of {', '.join(map(str, choices))}")
        return value

    def flag(self, value, field: str):
        if not isinstance(value, bool):
            self.fail(field, value, "is not true or false")
        return value

    def texts(self, value, field: str, *, max_items: int, unique: bool = False, choices=None,
              min_items: int = 0) -> list:
        if not isinstance(value, list):
            self.fail(field, value, "is not a list")
        if not min_items <= len(value) <= max_items:
            self.fail(field, f"{len(value)} items", f"is not between {min_items} and {max_items:,} items")
        for i, v in enumerate(value):
            self.text(v, f"{field}[{i}]", choices=choices)
        if unique and len(set(value)) != len(value):
            self.fail(field, value, "repeats an item")
        return value

    def known_model(self, name, field: str) -> str:
        from core.models import registry
        return self.text(name, field, choices=registry.names())


def _known_keys(f: _File, d: dict, field: str, allowed) -> None:
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        f.fail(f"{field}.{unknown[0]}" if field else unknown[0], d[unknown[0]], "is not a field of this file")


def check_hours(value, what: str) -> float:
    """``value`` as hours in [:data:`HOURS_MIN`, :data:`HOURS_MAX`] (a minute to ten years); ValueError naming
    ``what`` otherwise (for command-line arguments and pages)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of hours; got {value!r}. Example: {what} 48.") from None
    if not (math.isfinite(v) and HOURS_MIN <= v <= HOURS_MAX):
        raise ValueError(f"{what} must be between a minute ({HOURS_MIN:.4g} h) and ten years ({HOURS_MAX:g} h); "
                         f"got {value}. Example: {what} 48.")
    return v


# --------------------------------------------------------------------------------------------
# the configs inside config.json and features.json
# --------------------------------------------------------------------------------------------
def _construct(f: _File, cls, d: dict, field: str):
    """``cls(**d)``, its own checks' refusal as a message naming the file and the field."""
    try:
        return cls(**d)
    except (TypeError, ValueError) as err:
        raise f.error(f"{f.name}: {field} is not a valid setting ({err}); {f.fix}") from None


def _feature_config(f: _File, value, field: str) -> FeatureConfig:
    d = f.obj(value, field)
    _known_keys(f, d, field, [x.name for x in fields(FeatureConfig)])
    for key in ("window_hours", "bin_hours", "delta_cap_hours"):
        if key in d:
            f.hours(d[key], f"{field}.{key}")
    for key in ("lookback_hours", "recent_hours"):
        if key in d:
            if not isinstance(d[key], list) or not 1 <= len(d[key]) <= 64:
                f.fail(f"{field}.{key}", d[key], "is not a list of 1 to 64 hours")
            for i, h in enumerate(d[key]):
                f.hours(h, f"{field}.{key}[{i}]")
    if "clip_quantile" in d:
        f.number(d["clip_quantile"], f"{field}.clip_quantile", 0.0, 0.5, hi_open=True)
    if "include_static" in d:
        f.flag(d["include_static"], f"{field}.include_static")
    if "task" in d:
        f.text(d["task"], f"{field}.task", choices=TASKS)
    if "summaries" in d:
        f.text(d["summaries"], f"{field}.summaries", choices=SUMMARIES)
    if "n_subwindows" in d:
        f.number(d["n_subwindows"], f"{field}.n_subwindows", 1, 48, integer=True)
    window = d.get("window_hours", FeatureConfig.window_hours)
    bin_hours = d.get("bin_hours", FeatureConfig.bin_hours)
    if window / bin_hours > MAX_STEPS:
        f.fail(f"{field}.window_hours / bin_hours", window / bin_hours,
               f"steps are more than {MAX_STEPS:,} (ten years of hours)")
    return _construct(f, FeatureConfig, {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}, field)


def _split_config(f: _File, value, field: str) -> SplitConfig:
    d = f.obj(value, field)
    _known_keys(f, d, field, [x.name for x in fields(SplitConfig)])
    for key in ("validation_size", "test_size"):
        if key in d:
            f.number(d[key], f"{field}.{key}", 0.0, 1.0, lo_open=True, hi_open=True)
    if "random_state" in d:
        f.seed(d["random_state"], f"{field}.random_state")
    return _construct(f, SplitConfig, d, field)


def _evaluation_config(f: _File, value, field: str) -> EvaluationConfig:
    d = f.obj(value, field)
    _known_keys(f, d, field, [x.name for x in fields(EvaluationConfig)])
    if "threshold_rule" in d:
        f.text(d["threshold_rule"], f"{field}.threshold_rule", choices=("se_ppv", "youden", "sensitivity"))
    if "target_sensitivity" in d:
        f.number(d["target_sensitivity"], f"{field}.target_sensitivity", 0.0, 1.0, lo_open=True, hi_open=True)
    if "n_bootstrap" in d:
        f.number(d["n_bootstrap"], f"{field}.n_bootstrap", 0, 100_000, integer=True)
    if "ci_level" in d:
        f.number(d["ci_level"], f"{field}.ci_level", 0.5, 1.0, lo_open=True, hi_open=True)
    if "random_state" in d:
        f.seed(d["random_state"], f"{field}.random_state")
    return _construct(f, EvaluationConfig, d, field)


# --------------------------------------------------------------------------------------------
# each JSON file of a run
# --------------------------------------------------------------------------------------------
def check_config(value, name: str = "config.json") -> dict:
    """``config.json`` of a run: preset, seed, known models, task, the feature / split / evaluation configs
    (hours between a minute and ten years), a threshold in [0, 1] for every model. Returns it unchanged.

    Raises
    ------
    RunError
        Naming the file and the first field that is wrong.
    """
    from core.models.base import PRESETS
    f = _File(name)
    d = f.obj(value)
    if "format" in d and d["format"] != 1:
        f.fail("format", d["format"], "is not 1 (a run of another version)")
    f.text(f.get(d, "preset", "preset"), "preset", choices=PRESETS)
    f.seed(f.get(d, "random_state", "random_state"), "random_state")
    models = f.get(d, "models", "models")
    from core.models import registry
    f.texts(models, "models", max_items=len(registry.names()), min_items=1, unique=True, choices=registry.names())
    f.text(d.get("target"), "target", none=True)
    task = f.text(d.get("task", "stay"), "task", choices=TASKS)
    features = _feature_config(f, f.get(d, "features", "features"), "features")
    if features.task != task:
        f.fail("features.task", features.task, f"differs from task = {task!r}")
    if "split" in d:
        _split_config(f, d["split"], "split")
    if "evaluation" in d:
        _evaluation_config(f, d["evaluation"], "evaluation")
    if "refit" in d:
        f.flag(d["refit"], "refit")
    for key in ("request", "fingerprint", "created"):
        f.text(d.get(key), key, none=True, max_len=200)
    f.text(d.get("reference"), "reference", none=True, choices=models if d.get("reference") is not None else None)
    thresholds = f.obj(f.get(d, "thresholds", "thresholds"), "thresholds")
    _known_keys(f, thresholds, "thresholds", models)
    for m in models:
        if m not in thresholds:
            f.missing(f"thresholds.{m}")
        f.number(thresholds[m], f"thresholds.{m}", 0.0, 1.0)
    return d


def _model_entries(f: _File, value, field: str, files: dict) -> dict:
    from core.models.base import INPUT_KINDS
    d = f.obj(value, field)
    for name, entry in d.items():
        where = f"{field}.{name}"
        f.known_model(name, f"{field} (a model name)")
        e = f.obj(entry, where)
        listed = f.texts(f.get(e, "files", f"{where}.files"), f"{where}.files", max_items=8, min_items=1)
        for i, rel in enumerate(listed):
            if rel not in files:
                f.fail(f"{where}.files[{i}]", rel, "is not one of the run's files")
        f.text(f.get(e, "class", f"{where}.class"), f"{where}.class", max_len=300)
        f.texts(e.get("components", []), f"{where}.components", max_items=1000)
        f.text(f.get(e, "input_kind", f"{where}.input_kind"), f"{where}.input_kind", choices=INPUT_KINDS)
        f.number(f.get(e, "n_features", f"{where}.n_features"), f"{where}.n_features", -1, 10**9, integer=True)
        digest = f.text(f.get(e, "feature_names_sha256", f"{where}.feature_names_sha256"),
                        f"{where}.feature_names_sha256")
        if not _HEX64.match(digest):
            f.fail(f"{where}.feature_names_sha256", digest, "is not a SHA-256 (64 hex digits)")
        if "n_feature_names" in e:
            f.number(e["n_feature_names"], f"{where}.n_feature_names", 0, 10**9, integer=True)
    return d


def check_manifest(value, name: str = "manifest.json") -> dict:
    """``manifest.json``: ``algorithm`` sha256, ``files`` (path: 64 hex digits), optional ``sizes`` (path:
    bytes), and the ``models`` / ``refit`` entries (known model names, their files among ``files``, class,
    input kind, widths). Returns it unchanged."""
    f = _File(name)
    d = f.obj(value)
    if "format" in d and d["format"] != 1:
        f.fail("format", d["format"], "is not 1 (a run of another version)")
    f.text(f.get(d, "algorithm", "algorithm"), "algorithm", choices=("sha256",))
    files = f.obj(f.get(d, "files", "files"), "files")
    if len(files) > 10_000:
        f.fail("files", f"{len(files)} files", "is more than a run holds (10,000)")
    for rel, digest in files.items():
        if not isinstance(digest, str) or not _HEX64.match(digest):
            f.fail(f"files.{rel}", digest, "is not a SHA-256 (64 hex digits)")
    sizes = f.obj(d.get("sizes", {}), "sizes")
    for rel, size in sizes.items():
        if rel not in files:
            f.fail(f"sizes.{rel}", size, "is the size of a file the manifest does not list")
        f.number(size, f"sizes.{rel}", 0, 2**63 - 1, integer=True)
    for key in ("models", "refit"):
        _model_entries(f, d.get(key, {}), key, files)
    return d


def check_feature_meta(value, name: str = "features.json") -> dict:
    """``features.json``: the feature config (as in config.json), the variable and static names, the number of
    training patients. Returns it with the config as a :class:`~core.config.FeatureConfig`-ready dict."""
    f = _File(name)
    d = f.obj(value)
    _known_keys(f, d, "", ("config", "variables", "static_columns", "n_train"))
    _feature_config(f, f.get(d, "config", "config"), "config")
    f.texts(f.get(d, "variables", "variables"), "variables", max_items=_MAX_VARIABLES, unique=True)
    f.texts(f.get(d, "static_columns", "static_columns"), "static_columns", max_items=_MAX_VARIABLES, unique=True)
    f.number(f.get(d, "n_train", "n_train"), "n_train", 0, _MAX_PATIENTS, integer=True)
    return d


def check_split(value, name: str = "split.json") -> dict:
    """``split.json``: the patient ids (text) of ``train``, ``validation`` and ``test``."""
    f = _File(name)
    d = f.obj(value)
    _known_keys(f, d, "", ("train", "validation", "test"))
    for key in ("train", "validation", "test"):
        f.texts(f.get(d, key, key), key, max_items=_MAX_PATIENTS)
    return d


def _metric_values(f: _File, value, field: str) -> None:
    d = f.obj(value, field)
    for key, v in d.items():
        where = f"{field}.{key}"
        if key == "label":
            f.text(v, where, none=True)
        elif key.endswith("_ci") or isinstance(v, list):
            if not isinstance(v, list) or len(v) != 2:
                f.fail(where, v, "is not a [low, high] pair")
            for i, x in enumerate(v):
                f.number(x, f"{where}[{i}]", -1e300, 1e300, none=True)
        else:
            f.number(v, where, -1e300, 1e300, none=True)


def check_metrics(value, name: str = "metrics.json") -> dict:
    """``metrics.json``: per known model, numbers (or null), ``[low, high]`` pairs and a label; the comparisons
    as a list of objects; patients per split as whole numbers."""
    f = _File(name)
    d = f.obj(value)
    f.text(d.get("target"), "target", none=True)
    f.text(d.get("reference"), "reference", none=True)
    models = f.obj(f.get(d, "models", "models"), "models")
    for m, v in models.items():
        f.known_model(m, "models (a model name)")
        _metric_values(f, v, f"models.{m}")
    comps = d.get("comparisons", [])
    if not isinstance(comps, list):
        f.fail("comparisons", comps, "is not a list")
    for i, c in enumerate(comps):
        f.obj(c, f"comparisons[{i}]")
    for k, v in f.obj(d.get("n_patients", {}), "n_patients").items():
        f.number(v, f"n_patients.{k}", 0, _MAX_PATIENTS, integer=True)
    for m, v in f.obj(d.get("importance", {}), "importance").items():     # model -> variable -> importance >= 0
        f.known_model(m, "importance (a model name)")
        for var, x in f.obj(v, f"importance.{m}").items():
            f.number(x, f"importance.{m}.{var}", 0, 1e300)
    return d


def check_versions(value, name: str = "versions.json") -> dict:
    """``versions.json``: library name -> version text."""
    f = _File(name)
    d = f.obj(value)
    for k, v in d.items():
        f.text(v, k, max_len=200)
    return d


def check_data_report(value, name: str = "data_report.json") -> dict:
    """``data_report.json``: the training data's validation report (row counts, findings) and patients (and
    positives) per split."""
    f = _File(name)
    d = f.obj(value)
    r = f.obj(f.get(d, "report", "report"), "report")
    for key in ("rows_read", "rows_used"):
        f.number(r.get(key, 0), f"report.{key}", 0, 2**63 - 1, integer=True)
    for k, v in f.obj(r.get("rows_excluded", {}), "report.rows_excluded").items():
        f.number(v, f"report.rows_excluded.{k}", 0, 2**63 - 1, integer=True)
    findings = r.get("findings", [])
    if not isinstance(findings, list):
        f.fail("report.findings", findings, "is not a list")
    for i, x in enumerate(findings):
        where = f"report.findings[{i}]"
        x = f.obj(x, where)
        for key in ("level", "code", "message", "unit", "fix"):
            f.text(x.get(key, ""), f"{where}.{key}")
        f.number(x.get("count", 0), f"{where}.count", 0, 2**63 - 1, integer=True, none=True)
        f.texts(x.get("examples", []), f"{where}.examples", max_items=1000)
    for split, c in f.obj(d.get("split_counts", {}), "split_counts").items():
        for key, v in f.obj(c, f"split_counts.{split}").items():
            f.number(v, f"split_counts.{split}.{key}", 0, _MAX_PATIENTS, integer=True)
    return d


def check_recurrent_meta(value, name: str, classes: dict, weights_bytes: int) -> dict:
    """``models/NAME.json`` of a recurrent model: a known class, parameters of that class with the types of its
    defaults (sizes bounded), two classes, input widths, and network sizes that fit the ``weights_bytes`` of
    its ``.pt`` file (a network is never built larger than its weights file could fill).

    Parameters
    ----------
    classes : dict of str to class
        The model classes a run may hold (``RecurrentClassifier``, ``GRUDClassifier``).
    weights_bytes : int
        Size of the model's ``.pt`` file.
    """
    import inspect
    f = _File(name)
    d = f.obj(value)
    cls = classes.get(f.text(f.get(d, "class", "class"), "class", choices=sorted(classes)))
    params = f.obj(f.get(d, "params", "params"), "params")
    defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
                if k not in ("self", "progress")}
    _known_keys(f, params, "params", defaults)
    bounded = {"hidden_size": (1, 4096), "num_layers": (1, 16), "n_seeds": (1, 64)}
    for key, v in params.items():
        where, default = f"params.{key}", defaults[key]
        if key in bounded:
            f.number(v, where, *bounded[key], integer=True)
        elif isinstance(default, bool):
            f.flag(v, where)
        elif isinstance(default, int) or key == "random_state":
            f.number(v, where, -2**63, 2**63 - 1, integer=True, none=default is None)
        elif isinstance(default, float):
            f.number(v, where, -1e300, 1e300)
        elif isinstance(default, str):
            f.text(v, where, max_len=100)
        elif isinstance(default, tuple) or (default is None and isinstance(v, list)):
            if not isinstance(v, list) or len(v) > _MAX_VARIABLES:
                f.fail(where, v, "is not a list")
        elif v is not None and not isinstance(v, (int, float, str, bool)):
            f.fail(where, v, "is not a plain value")
    classes_ = f.get(d, "classes", "classes")
    if not isinstance(classes_, list) or len(classes_) != 2 or not all(
            isinstance(c, (int, str)) and not isinstance(c, bool) for c in classes_):
        f.fail("classes", classes_, "is not a list of two class labels")
    f.number(f.get(d, "n_features_in", "n_features_in"), "n_features_in", 1, 10**6, integer=True)
    f.number(f.get(d, "n_timesteps_in", "n_timesteps_in"), "n_timesteps_in", 1, MAX_STEPS, integer=True)
    history = d.get("history", [])
    if not isinstance(history, list):
        f.fail("history", history, "is not a list")
    hidden = int(params.get("hidden_size", defaults.get("hidden_size", 64)))
    layers = 1 if cls.__name__ == "GRUDClassifier" else int(params.get("num_layers", defaults.get("num_layers", 1)))
    seeds = int(params.get("n_seeds", defaults.get("n_seeds", 1)))
    # every layer of every seed holds at least a hidden x hidden recurrent matrix of 4-byte floats (GRU-D: one
    # layer whatever num_layers says)
    need = 4 * seeds * layers * hidden * hidden
    if need > weights_bytes:
        f.fail("params.hidden_size", hidden, f"with {layers} layer(s) and {seeds} seed(s) needs at least "
               f"{need:,} bytes of weights, but the weights file holds {weights_bytes:,}")
    return d


def check_timeorder(value, name: str, *, error: type[CoreError] = CoreError) -> dict:
    """A ``timeorder.json`` given to the report (``--timeorder``): an object with a text ``verdict`` and
    ``data_fingerprint``; ``ablation``, ``gap`` and ``n_patients`` objects and ``notes`` text when present.

    Raises
    ------
    error (CoreError by default; RunError for a run's own analysis)
        Naming the file and the field.
    """
    fix = (_EDITED if error is RunError else "pass the timeorder.json written by `python -m core timeorder --out "
           "DIR` (DIR/timeorder.json), or leave --timeorder out.")
    f = _File(name, error=error, fix=fix)
    d = f.obj(value)
    for key in ("verdict", "data_fingerprint"):
        f.text(f.get(d, key, key), key)
    for key in ("ablation", "gap", "n_patients"):
        if d.get(key) is not None:
            f.obj(d[key], key)
    for key in ("run", "run_request"):
        f.text(d.get(key), key, none=True)
    notes = d.get("notes") or []
    if not isinstance(notes, list):
        f.fail("notes", notes, "is not a list")
    return d
