"""``python -m core train EVENTS --labels LABELS --target COL --out RUN_DIR [--models ...] [--preset ...]``.

Trains and compares models with the patient-level protocol, writes the run folder (see
:mod:`core.runs.store`) and prints the leaderboard and the paired comparisons. Progress bars (per model,
per epoch) go to stderr.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.commands.common import (add_backend_arguments, add_data_arguments, backend_from_args,
                                  data_config_from_args, progress_bar)
from core.config import EvaluationConfig, FeatureConfig, SplitConfig
from core.exceptions import CohortError, CoreError, RunError
from core.models import registry
from core.models.staged import FitMessage
from core.service import DEFAULT_PRESET, CrossValidateRequest, TrainRequest, run_request

__all__ = ["add_parser", "run", "TqdmProgress"]


class TqdmProgress:
    """A ``progress(message, fraction)`` callback drawing two bars: models, and the current model.

    tqdm bars on a terminal; plain lines when stderr is redirected (:func:`core.commands.common.progress_bar`).
    The current model's bar shows its last message: epochs, tree batches ("rf: trees 40/100") and, when a
    fit has nothing else to say, its heartbeat ("svm: fitting, 35 s", at least every 5 s). The models bar
    counts finished models from the overall fraction, so fits reported side by side (Ray) count right.
    """

    def __init__(self, names, file=None) -> None:
        self.names, self.file = list(names), file or sys.stderr
        self.outer = progress_bar(len(self.names), "models", file=self.file, position=0, leave=True)
        self.inner = None
        self.current = None

    def __call__(self, message: str, fraction: float) -> None:
        name, _, detail = message.partition(": ")
        if name not in self.names:
            return
        k = len(self.names)
        finished = min(int(fraction * k + 1e-9), k)
        if finished > self.outer.n:
            self.outer.update(finished - self.outer.n)
        if name != self.current:
            if self.inner is not None:
                self.inner.close()
            self.current = name
            self.inner = progress_bar(100, name, file=self.file, position=1, leave=False,
                                      bar_format="{percentage:3.0f}%|{bar}| {desc}")
        # the fit's own fraction when the message is about this one fit (also right when fits run side by side)
        own = isinstance(message, FitMessage) and message.label == name
        part = message.fit_fraction if own else fraction * k - self.names.index(name)
        done = int(round(100 * min(max(part, 0.0), 1.0)))
        self.inner.update(max(done - self.inner.n, 0))
        self.inner.set_description_str(f"{name}: {detail[:60]}", refresh=True)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
        self.outer.close()


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train and compare models, save a run folder",
                       description="Split patients 70/15/15 (stratified), build features on training patients, "
                                   "train each model, choose its threshold on validation patients, evaluate on "
                                   "test patients with bootstrap CIs and paired tests, and save everything to "
                                   "--out.")
    p.add_argument("events", help="events file, folder or zip")
    p.add_argument("--out", required=True, help="run folder to write (created)")
    p.add_argument("--models", default=",".join(registry.names()),
                   help=f"comma-separated models from {','.join(registry.names())} (default: all)")
    p.add_argument("--preset", choices=["full", "quick", "test"], default=DEFAULT_PRESET,
                   help="model sizes: full (benchmarked), quick (seconds), test (tiny)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the models and the bootstrap")
    p.add_argument("--window-hours", type=float, default=48.0,
                   help="stay task: hours of data used per patient (from the first record)")
    p.add_argument("--max-hours", type=float, default=336.0,
                   help="online task: hours of each stay that are used and scored (whole stays up to this cap)")
    p.add_argument("--lookback-hours", default="6,24",
                   help="online task: the classical models also see min/max/mean over the last k hours, per k")
    p.add_argument("--refit", action="store_true",
                   help="after the evaluation, refit every model on training + validation patients (epochs from "
                        "early stopping, thresholds kept) and save it in the run; predict then uses the refits. "
                        "The reported metrics stay those of the untouched test patients")
    p.add_argument("--bin-hours", type=float, default=1.0, help="sequence step in hours")
    p.add_argument("--threshold-rule", choices=["se_ppv", "youden", "sensitivity"], default="se_ppv")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs (0 = none)")
    p.add_argument("--cv", type=int, default=0, metavar="K",
                   help="also run stratified K-fold cross-validation (features refitted per fold) and write "
                        "RUN_DIR/cv.csv and cv.json with each model's mean and sd AUROC/AUPRC (0 = off)")
    p.add_argument("--reuse", action="store_true",
                   help="if --out, or a run beside it, was trained with the same request (same data, models, "
                        "settings, seed and code: the same numbers), reuse it instead of training again (a run "
                        "beside --out is copied to --out)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_data_arguments(p)
    add_backend_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from core.training.engine import make_backend
    from core.data.ingest import load_cohort
    from core.models.registry import parse_names

    try:  # bad names / option values are user errors: exit 2 with the message, no traceback
        names = parse_names(args.models)
        config = data_config_from_args(args)
        online = config.task == "online"
        try:
            lookback = tuple(float(k) for k in str(args.lookback_hours).split(",") if k.strip())
        except ValueError:
            raise ValueError(f"--lookback-hours must be comma-separated hours; got {args.lookback_hours!r}. "
                             "Example: --lookback-hours 6,24.") from None
        features = FeatureConfig(window_hours=args.max_hours if online else args.window_hours,
                                 bin_hours=args.bin_hours, task=config.task, lookback_hours=lookback)
        evaluation = EvaluationConfig(threshold_rule=args.threshold_rule, n_bootstrap=args.bootstrap,
                                      random_state=args.seed)
        split = SplitConfig(random_state=args.seed)
        backend = make_backend(backend_from_args(args))
    except ValueError as err:
        raise CoreError(str(err)) from None
    if config.target is None:
        raise CohortError("Training needs an outcome: pass --target COL (and --labels FILE if the outcome is "
                          "in a separate file), e.g. --labels outcomes.csv --target in_hospital_death.")
    cohort = load_cohort(args.events, args.labels, config=config)
    if args.reuse and _reuse(cohort, names, args, features, split, evaluation):
        if args.cv:
            _cross_validate(cohort, names, args, features, Path(args.out), backend)
        return 0
    request = TrainRequest(models=names, preset=args.preset, seed=args.seed, refit=args.refit, features=features,
                           split=split, evaluation=evaluation, out=str(args.out))
    bar = None if args.no_progress else TqdmProgress(names)
    try:
        summary = run_request(request, cohort, bar, backend)
    finally:
        if bar is not None:
            bar.close()
    folder = summary.folder
    if features.task == "online":
        first = next(iter(summary.results.values()))
        print(f"Online task: metrics pooled over {len(first.y_true):,} test patient-hours of "
              f"{len(set(first.patient_ids)):,} patients; 95% CIs from a bootstrap over patients.")
    _print_summary(summary)
    if args.cv:
        _cross_validate(cohort, names, args, features, folder, backend)
    if args.refit:
        print(f"Refitted {len(summary.results)} model(s) on training + validation patients (models/refit/); predict uses "
              "them. The metrics above are those of the models fitted on training patients only.")
    print(f"\nRun saved to {folder} (metrics.json, predictions.csv, models/"
          + (", analyses/cv.csv, analyses/cv.json" if args.cv else "") + ").")
    return 0


def _reuse(cohort, names, args, features, split, evaluation) -> bool:
    """``--reuse``: answer from a saved run of the identical request (``--out`` itself, or a run beside it,
    copied to ``--out``); prints its leaderboard. False when there is none (then train)."""
    from core.training.experiment import training_request
    from core.runs.store import RunSummary, copy_run, find_run, load_run, read_json
    request = training_request(cohort, names, preset=args.preset, features=features, split=split,
                               evaluation=evaluation, random_state=args.seed, refit=args.refit)["request"]
    out = Path(args.out)
    own = out / "config.json"
    try:
        saved = read_json(own).get("request") if own.is_file() else None
    except RunError:                    # a corrupt config: not reusable, training replaces it
        saved = None
    if saved == request:
        source = out
    else:
        source = find_run(out.parent, request)
        if source is None:
            print("No saved run of this request (same data, models, settings, seed and code): training.",
                  file=sys.stderr)
            return False
        copy_run(source, out)
    summary = RunSummary.from_run(load_run(out))
    print(f"Reused the saved run {source} (same data, models, settings, seed and code, so the same numbers); "
          "nothing was retrained." + (f" Copied to {out}." if source != out else ""))
    _print_summary(summary, timings=False)
    print(f"\nRun: {out}")
    return True


def _print_summary(summary, timings: bool = True) -> None:
    """The leaderboard (``RunSummary.leaderboard``: the Compare page's table) and the paired tests, as text."""
    board = summary.leaderboard()
    if not timings:
        board = board.drop(columns=[c for c in ("train seconds",) if c in board])
    print(board.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if summary.comparisons:
        print(f"\nPaired comparisons with the best classical model on validation ({summary.reference}):")
        for c in summary.comparisons:
            print("  " + c.sentence)


def _cross_validate(cohort, names, args, features, folder, backend=None) -> None:
    """K-fold CV on all labelled patients with the run's models, preset, features and seed: a steadier estimate
    than one test split, kept with the run (``analyses/cv.csv``, ``analyses/cv.json``, in its manifest)."""
    bar = None if args.no_progress else TqdmProgress([f"fold {k + 1}/{args.cv}" for k in range(args.cv)])
    try:
        folds = run_request(CrossValidateRequest(run=str(folder), n_folds=args.cv), cohort, bar, backend)
    finally:
        if bar is not None:
            bar.close()
    summary = folds.groupby("model", sort=False)[["auroc", "auprc"]].agg(["mean", "std"])
    summary.columns = [f"{m}_{s}" for m, s in summary.columns]
    print(f"\n{args.cv}-fold cross-validation (mean, sd), kept with the run (analyses/cv.json):")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
