"""``python -m core timeorder EVENTS --labels LABELS --target COL --out DIR [--run RUN] [--model gru] [--horizons ...]``.

Measures how much time order matters on the data (order ablation, early prediction, sequence vs
order-free gap, the three tiers order-free / time-aware summaries / sequence model and the
missingness-only model; see :mod:`core.analysis.timeorder`), writes ``DIR/timeorder.json`` and prints the verdict.
A progress bar goes to stderr.

With ``--run RUN`` it analyses that saved run on the data it was trained on (its split, feature builder,
models, preset and seed: the run's own fitted models give the ordered arm and the gap, so their AUROCs are
those of its metrics.json) and also attaches the result to the run (``RUN/analyses/timeorder.json``).
``--models``, ``--preset``, ``--seed``, ``--max-patients``, ``--window-hours`` and ``--max-hours`` then
come from the run; setting one is an error (exit 2).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.commands.common import (add_backend_arguments, add_data_arguments, backend_from_args,
                                  data_config_from_args, progress_bar)
from core.exceptions import CohortError, CoreError
from core.runs.export import jsonable

__all__ = ["add_parser", "run"]


class _Bar:
    """``progress(message, fraction)`` drawn as one bar (0-100 %) on stderr (plain lines when redirected)."""

    def __init__(self) -> None:
        self.bar = progress_bar(100, "time order", file=sys.stderr,
                                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def __call__(self, message: str, fraction: float) -> None:
        done = int(round(100 * min(max(fraction, 0.0), 1.0)))
        self.bar.update(max(done - self.bar.n, 0))
        self.bar.set_postfix_str(message[:70], refresh=True)

    def close(self) -> None:
        self.bar.close()


def _parse_list(text: str, what: str, example: str, cast=str) -> tuple:
    try:
        out = tuple(cast(t.strip()) for t in str(text).split(",") if t.strip())
    except ValueError:
        raise CoreError(f"--{what} must be a comma-separated list; got {text!r}. Example: --{what} {example}.") from None
    if not out:
        raise CoreError(f"--{what} is empty. Example: --{what} {example}.")
    return out


#: the options a saved run decides (``--run``), and their defaults (left at these, they do not conflict).
_RUN_DECIDES = {"models": "lr,svm,rf,gbm,rnn,lstm,gru", "preset": "quick", "seed": 0, "max_patients": None,
                "window_hours": 48.0, "max_hours": 336.0}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("timeorder", help="measure how much time order matters (ablation, early prediction, gap)",
                       description="Train a sequence model on ordered and on within-patient shuffled hours, "
                                   "retrain every model on the first k hours, and compare the best sequence "
                                   "model with the best order-free model; write DIR/timeorder.json.")
    p.add_argument("events", help="events file, folder or zip")
    p.add_argument("--out", required=True, help="folder to write timeorder.json into (created)")
    p.add_argument("--run", default=None, metavar="RUN",
                   help="analyse this saved run (a train --out folder) on the data it was trained on: its split, "
                        "models, preset and seed; the result is also attached to the run (analyses/timeorder.json)")
    p.add_argument("--model", default="gru", help="sequence model of the order ablation: gru, lstm, rnn or grud")
    p.add_argument("--models", default=_RUN_DECIDES["models"],
                   help="models of the early-prediction curves and the gap (default: all seven; --run: the run's)")
    p.add_argument("--horizons", default="6,12,24,36,48",
                   help="hours of data for early prediction, comma-separated (clipped to --window-hours)")
    p.add_argument("--window-hours", type=float, default=_RUN_DECIDES["window_hours"],
                   help="the full horizon, hours (stay task; --run: the run's)")
    p.add_argument("--max-hours", type=float, default=_RUN_DECIDES["max_hours"],
                   help="online task (--task online): hours of each stay used and scored (--run: the run's)")
    p.add_argument("--preset", choices=["quick", "full", "test"], default=_RUN_DECIDES["preset"],
                   help="model sizes: quick (default, minutes), full (benchmarked), test (tiny); --run: the run's")
    p.add_argument("--bootstrap", type=int, default=None,
                   help="bootstrap resamples of the test patients (default 1000; --run: the run's own)")
    p.add_argument("--max-patients", type=int, default=_RUN_DECIDES["max_patients"],
                   help="use a stratified subset of this many patients (not with --run: a run's split is all of them)")
    p.add_argument("--seed", type=int, default=_RUN_DECIDES["seed"],
                   help="seed of the split, the shuffle, the models, the bootstrap (--run: the run's)")
    p.add_argument("--reuse", action="store_true",
                   help="if DIR/timeorder.json holds the same analysis (same data, settings, seed and code), print "
                        "its verdict instead of computing it again")
    p.add_argument("--no-tiers", action="store_true",
                   help="skip the tiers (order-free vs time-aware summaries vs sequence model) and the "
                        "missingness-only model (each order-free model refitted on time-aware summaries, the "
                        "best one on missingness only; quick sizes at most)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_arguments(p)
    add_backend_arguments(p)
    return p


def _saved(path: Path) -> dict | None:
    """A timeorder.json this command saved (:func:`core.runs.runfiles.read_json_file`: size and depth limits;
    ``None`` when absent, unreadable or not a time-order result)."""
    from core.runs.runfiles import check_timeorder, read_json_file, size_limit
    if not path.is_file():
        return None
    try:
        return check_timeorder(read_json_file(path, name=path.name, max_bytes=size_limit("analyses/any"),
                                              allow_nan=True, error=CoreError), path.name)
    except CoreError:
        return None


def _saved_request(path: Path) -> str | None:
    """The ``request`` key saved in a timeorder.json (``None`` when absent or unreadable)."""
    saved = _saved(path)
    request = saved.get("request") if saved else None
    return request if isinstance(request, str) else None


def _config(args, data_config, run):
    """The analysis's TimeOrderConfig: from the run (``--run``; the options it decides must be left alone), or
    from the options."""
    from core.config import EvaluationConfig, FeatureConfig, SplitConfig
    from core.analysis.timeorder import TimeOrderConfig
    horizons = _parse_list(args.horizons, "horizons", "6,12,24,48", float)
    if run is not None:
        set_ = [f"--{k.replace('_', '-')}" for k, default in _RUN_DECIDES.items() if getattr(args, k) != default]
        if set_:
            raise CoreError(f"{', '.join(set_)} cannot be set with --run: the analysis of a saved run uses the run's "
                            "models, preset, seed, features and all of its patients. Leave them out (--model, "
                            "--horizons, --bootstrap and --no-tiers still apply), or analyse the data without --run.")
        return TimeOrderConfig.for_run(run, model=args.model.strip().lower(), horizons_hours=horizons,
                                       tiers=not args.no_tiers, n_bootstrap=args.bootstrap)
    features = FeatureConfig(task="online", window_hours=args.max_hours) if data_config.task == "online" \
        else FeatureConfig(window_hours=args.window_hours)
    n_bootstrap = 1000 if args.bootstrap is None else args.bootstrap
    return TimeOrderConfig(model=args.model.strip().lower(), models=_parse_list(args.models, "models", "lr,gbm,gru"),
                           horizons_hours=horizons, features=features, preset=args.preset,
                           split=SplitConfig(validation_size=0.15, test_size=0.2, random_state=args.seed),
                           evaluation=EvaluationConfig(n_bootstrap=n_bootstrap, random_state=args.seed),
                           max_patients=args.max_patients, random_state=args.seed, tiers=not args.no_tiers)


def run(args: argparse.Namespace) -> int:
    from core.data.ingest import load_cohort
    from core.training.engine import make_backend
    from core.runs.reuse import request_key
    from core.runs.store import load_run
    from core.analysis.timeorder import run_timeorder, save_timeorder

    saved_run = load_run(args.run) if args.run else None
    try:
        data_config = data_config_from_args(args)
        if saved_run is not None and saved_run.online != (data_config.task == "online"):
            how = "--task online and the same label options" if saved_run.online else "without --task online"
            raise CoreError(f"The run {saved_run.name} was trained on the {saved_run.builder.config.task} task: read "
                            f"the data as it was trained on ({how}).")
        config = _config(args, data_config, saved_run)
    except CoreError:
        raise
    except ValueError as err:       # a config check: the message already says how to fix it
        raise CoreError(str(err)) from None
    if data_config.target is None:
        raise CohortError("The time-order analysis needs an outcome: pass --target COL (and --labels FILE if the "
                          "outcome is in a separate file), e.g. --labels outcomes.csv --target in_hospital_death.")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CoreError(f"--out {out} is a file; give a folder to write timeorder.json into.")
    cohort = load_cohort(args.events, args.labels, config=data_config)
    key = {**config.to_dict(), "run": saved_run.config.get("request")} if saved_run is not None else config.to_dict()
    request = request_key("timeorder", cohort.fingerprint(), key)
    path = out / "timeorder.json"
    if args.reuse and _saved_request(path) == request:
        saved = _saved(path)
        print(f"Reused {path}: the same analysis (same data, settings, seed and code) was saved there; nothing "
              "was recomputed.\n")
        print(saved["verdict"])
        return 0
    bar = None if args.no_progress else _Bar()
    try:
        result = run_timeorder(cohort, config, run=saved_run, progress=bar,
                               backend=make_backend(backend_from_args(args)))
    finally:
        if bar is not None:
            bar.close()
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsonable({**result.to_dict(), "request": request}), indent=2, allow_nan=False))
    attached = save_timeorder(saved_run.folder, result) if saved_run is not None else None
    print(result.verdict)
    a = result.ablation
    print(f"\nAblation ({a.label}): ordered {a.auroc_ordered:.3f}, retrained on shuffled {a.auroc_shuffled:.3f}, "
          f"ordered model on shuffled {a.auroc_shuffled_test:.3f}")
    board = result.horizons.pivot(index="model", columns="hours", values="auroc")
    print("\nTest AUROC by hours of data available:")
    print(board.to_string(float_format=lambda v: f"{v:.3f}"))
    if result.tiers is not None:
        print(f"\nTiers (full horizon, same test patients; {result.tiers.preset} preset):")
        print(result.tiers.table().to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(result.tiers.sentence)
        print("\nInformative missingness: " + result.missingness.sentence)
    print(f"\nWritten {path} ({result.seconds:.0f} s)."
          + (f" Attached to the run {saved_run.name} ({attached})." if attached else ""))
    return 0
