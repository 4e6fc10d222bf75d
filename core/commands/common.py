"""What several commands share: the data-mapping options, the backend options, progress output.

* :func:`add_data_arguments` / :func:`data_config_from_args`: how EVENTS (and labels) are read.
* :func:`add_backend_arguments` / :func:`backend_from_args`: ``--backend local|ray``, ``--address``
  (default ``$CHRONOSCOPE_RAY_ADDRESS``), ``--ray-cpus``.
* :func:`progress_bar`: a tqdm bar on a terminal; plain lines (no escape codes) when stderr is a
  file or a pipe, so CI logs and ``2> log.txt`` stay readable (a line per 5 %, per model, and at least
  every 10 s while a fit reports something new, e.g. its heartbeat).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from core.config import TASKS, DataConfig
from core.data.duck import DUCKDB_MIN_MB, ENGINE_ENV, ENGINES, MEMORY_ENV, TMP_ENV
from core.training.engine import BACKENDS, RAY_ADDRESS_ENV, BackendConfig
from core.exceptions import CoreError

__all__ = ["add_data_arguments", "add_scoring_arguments", "data_config_from_args", "apply_engine_arguments", "add_backend_arguments", "backend_from_args",
           "progress_bar", "check_arguments", "check_steps"]


# --------------------------------------------------------------------------------------------
# numeric arguments: checked once for every command (core.cli.main), before any work; a bad value is a
# CoreError (exit 2 with the message), never a traceback
# --------------------------------------------------------------------------------------------
def _hours(value, flag: str, *, zero: bool = False) -> float:
    from core.runs.runfiles import HOURS_MAX, HOURS_MIN
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CoreError(f"{flag} {value!r} is not a number of hours; e.g. {flag} 48.") from None
    if not (zero and v == 0) and not (np.isfinite(v) and HOURS_MIN <= v <= HOURS_MAX):
        raise CoreError(f"{flag} {value} is not between a minute ({HOURS_MIN:.4g}) and ten years ({HOURS_MAX:g}) "
                        f"hours{' (or 0)' if zero else ''}; e.g. {flag} 48.")
    return v


def _hours_list(value, flag: str) -> None:
    parts = [k.strip() for k in str(value).split(",") if k.strip()]
    if not 1 <= len(parts) <= 64:
        raise CoreError(f"{flag} {value!r} is not 1 to 64 comma-separated hours; e.g. {flag} 6,24.")
    for k in parts:
        _hours(k, flag)


def _whole(value, flag: str, lo: int, hi: int, example: int, *, off: int | None = None) -> None:
    if value != off and not lo <= value <= hi:
        also = f" (or {off} for none)" if off is not None else ""
        raise CoreError(f"{flag} {value} is outside [{lo}, {hi:,}]{also}; e.g. {flag} {example}.")


#: (attribute, option, check) of every numeric option any command has; checked when the option was given.
_NUMERIC = (
    ("seed", "--seed", lambda v, f: _whole(v, f, 0, 2**32 - 1, 0)),
    ("cv", "--cv", lambda v, f: _whole(v, f, 2, 100, 5, off=0)),
    ("bootstrap", "--bootstrap", lambda v, f: _whole(v, f, 0, 100_000, 1000)),
    ("window_hours", "--window-hours", _hours),
    ("max_hours", "--max-hours", _hours),
    ("bin_hours", "--bin-hours", _hours),
    ("max_time_hours", "--max-time-hours", _hours),
    ("lookback_hours", "--lookback-hours", _hours_list),
    ("horizons", "--horizons", _hours_list),
    ("hour", "--hour", lambda v, f: _hours(v, f, zero=True)),
    ("ray_cpus", "--ray-cpus", lambda v, f: _whole(v, f, 1, 4096, 4)),
    ("background", "--background", lambda v, f: _whole(v, f, 1, 100_000, 100)),
    ("nsamples", "--nsamples", lambda v, f: _whole(v, f, 1, 10_000_000, 200)),
    ("max_patients", "--max-patients", lambda v, f: _whole(v, f, 20, 100_000_000, 2000)),
    ("patients", "--patients", lambda v, f: _whole(v, f, 1, 1_000_000, 2000) if isinstance(v, int) else None),
)


def check_arguments(args: argparse.Namespace) -> None:
    """Check every numeric option of ``args`` (any command): seeds in [0, 2**32 - 1], hours between a minute and
    ten years, folds, resamples and counts in their ranges, and at most :data:`core.runs.runfiles.MAX_STEPS` sequence
    steps (``--window-hours`` or ``--max-hours`` / ``--bin-hours``).

    Raises
    ------
    CoreError
        Naming the option, the value and a valid example.
    """
    for attr, flag, check in _NUMERIC:
        value = getattr(args, attr, None)
        if value is not None:
            check(value, flag)
    if getattr(args, "bin_hours", None) is not None:
        online = getattr(args, "task", "stay") == "online"
        window, flag = (args.max_hours, "--max-hours") if online else (args.window_hours, "--window-hours")
        if window is not None:
            check_steps(window, args.bin_hours, window_flag=flag)


def check_steps(window_hours: float, bin_hours: float, *, window_flag: str = "--window-hours") -> None:
    """CoreError when ``window_hours / bin_hours`` is more steps than a run may hold
    (:data:`core.runs.runfiles.MAX_STEPS`), or the bin is longer than the window."""
    from core.runs.runfiles import MAX_STEPS
    if bin_hours > window_hours:
        raise CoreError(f"--bin-hours {bin_hours:g} is longer than {window_flag} {window_hours:g}; give a bin of at "
                        f"most the window, e.g. --bin-hours 1.")
    if window_hours / bin_hours > MAX_STEPS:
        raise CoreError(f"{window_flag} {window_hours:g} / --bin-hours {bin_hours:g} is {window_hours / bin_hours:,.0f} "
                        f"steps, more than {MAX_STEPS:,} (ten years of hours); use a wider --bin-hours or a shorter "
                        f"window, e.g. {window_flag} 48 --bin-hours 1.")


def add_scoring_arguments(p: argparse.ArgumentParser) -> None:
    """``--map NEW=RUN`` and ``--allow-missing``: how new data meet a run's variables (``predict``, ``evaluate``)."""
    p.add_argument("--allow-missing", action="store_true",
                   help="go on when the variables missing from the data carry more than 20%% of a model's importance "
                        "(refused by default); the warning is kept in the output")
    p.add_argument("--map", action="append", default=[], metavar="NEW=RUN", dest="mapping",
                   help="the new data call the run's variable RUN by the name NEW (repeat for more); synonyms such "
                        "as DBP=DiasABP or Potassium=K are matched without it, and every match is printed")


def add_data_arguments(p: argparse.ArgumentParser, *, labels: bool = True) -> None:
    """The events/labels mapping options shared by every command that reads data."""
    if labels:
        p.add_argument("--labels", help="labels file: patient id + target column (CSV/CSV.gz/Parquet)")
        p.add_argument("--target", help="outcome column (0/1), in the labels file or constant per patient in EVENTS; "
                       "with --task online: a 0/1 column of EVENTS per hour (e.g. SepsisLabel), or the onset-time "
                       "column of the labels file (hours since the first record, empty = never)")
    p.add_argument("--task", choices=list(TASKS), default="stay",
                   help="stay = one label per patient; online = a label for every patient-hour")
    p.add_argument("--horizon-hours", type=float, default=None, metavar="H",
                   help="online task: hours before onset that count as positive (needed with an onset column; "
                        "e.g. 6)")
    g = p.add_argument_group("column mapping (auto-detected when omitted)")
    g.add_argument("--patient-col", help="patient id column of EVENTS")
    g.add_argument("--time-col", help="time column of EVENTS")
    g.add_argument("--variable-col", help="variable-name column (long layout)")
    g.add_argument("--value-col", help="value column (long layout)")
    g.add_argument("--label-patient-col", help="patient id column of the labels file")
    g.add_argument("--group-col", metavar="COL",
                   help="column of EVENTS constant per patient that groups patients (e.g. subject_id: one "
                        "person's several stays); the split keeps each group on one side; never a feature")
    g.add_argument("--layout", choices=["auto", "long", "wide"], default="auto")
    g.add_argument("--time-format", choices=["auto", "hours", "hhmm", "datetime"], default="auto",
                   help="hours = numbers, hhmm = HH:MM since admission, datetime = ISO date-times")
    g.add_argument("--sentinel", default="-1",
                   help="comma-separated codes meaning 'unknown' (default -1; 'none' to disable)")
    g.add_argument("--static", help="comma-separated variables to treat as static attributes (default: auto)")
    g.add_argument("--max-time-hours", type=float, default=DataConfig.max_time_hours,
                   help="times beyond this many hours are excluded as absurd")
    g.add_argument("--keep-implausible", action="store_true",
                   help="keep values outside their variable's plausible range (reported either way; default: "
                        "excluded)")
    e = p.add_argument_group("reading large files (DuckDB)")
    e.add_argument("--engine", choices=list(ENGINES), default=None,
                   help=f"auto = DuckDB for files of {DUCKDB_MIN_MB:g} MB or more and for folders of tables, pandas "
                        f"for smaller files (default; ${ENGINE_ENV})")
    e.add_argument("--memory-limit", type=_megabytes, default=None, metavar="MB",
                   help=f"most memory DuckDB may use while reading, in MB; the rest spills to --temp-dir "
                        f"(default: a quarter of this machine's RAM; ${MEMORY_ENV})")
    e.add_argument("--temp-dir", default=None, metavar="DIR",
                   help=f"folder for DuckDB's spill files; each read uses a fresh sub-folder, removed afterwards "
                        f"(default: the system's temporary folder; ${TMP_ENV})")


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of megabytes (e.g. 2048)") from None
    if not np.isfinite(value) or value < 64:
        raise argparse.ArgumentTypeError(f"{text} MB is not a usable limit; give at least 64 (e.g. 2048)")
    return value


def apply_engine_arguments(args: argparse.Namespace) -> None:
    """Hand ``--engine``, ``--memory-limit`` and ``--temp-dir`` to every read of this process
    (:meth:`core.data.duck.EngineConfig.from_env` reads them back)."""
    for flag, env in (("engine", ENGINE_ENV), ("memory_limit", MEMORY_ENV), ("temp_dir", TMP_ENV)):
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[env] = str(value)


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    """The :class:`DataConfig` of the mapping options (and, as a side effect, the engine settings:
    :func:`apply_engine_arguments`)."""
    apply_engine_arguments(args)
    try:
        sentinel = () if str(args.sentinel).lower() in ("none", "") else tuple(
            float(s) for s in str(args.sentinel).split(","))
    except ValueError:
        raise ValueError(f"--sentinel {args.sentinel!r} is not comma-separated numbers; e.g. --sentinel -1,999 "
                         "(or none).") from None
    if not all(np.isfinite(sentinel)):
        raise ValueError(f"--sentinel {args.sentinel!r} holds a number that is not finite; e.g. --sentinel -1,999.")
    return DataConfig(patient_col=args.patient_col, time_col=args.time_col, variable_col=args.variable_col,
                      value_col=args.value_col, target=getattr(args, "target", None),
                      label_patient_col=args.label_patient_col, layout=args.layout, time_format=args.time_format,
                      sentinel_values=sentinel,
                      static_variables=tuple(s.strip() for s in args.static.split(",")) if args.static else None,
                      max_time_hours=args.max_time_hours, task=getattr(args, "task", "stay"),
                      horizon_hours=getattr(args, "horizon_hours", None),
                      keep_implausible=bool(getattr(args, "keep_implausible", False)),
                      group_col=getattr(args, "group_col", None))


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    """``--backend``, ``--address`` and ``--ray-cpus``: where the independent fits run (:mod:`core.training.engine`)."""
    g = p.add_argument_group("where the fits run")
    g.add_argument("--backend", choices=list(BACKENDS), default="local",
                   help="local = this process, one fit after another (default); ray = every independent fit as "
                        "a Ray task (same numbers, side by side)")
    g.add_argument("--address", default=None,
                   help=f"Ray cluster to join (default ${RAY_ADDRESS_ENV}; none = a private Ray on this machine), "
                        "e.g. ray://head-node:10001")
    g.add_argument("--ray-cpus", type=int, default=None, help="CPUs of a private Ray instance (default: all)")


def backend_from_args(args: argparse.Namespace) -> BackendConfig:
    return BackendConfig(name=args.backend, address=args.address, num_cpus=args.ray_cpus)


#: seconds after which a plain progress line repeats a changed message at the same percentage.
_LINE_EVERY_S = 10.0


class _Lines:
    """A tqdm-like bar that prints a plain line per change of at least 5 % (or of the model), and a changed
    message ("gbm: fitting, 40 s") at least every :data:`_LINE_EVERY_S` seconds, so a log never goes silent."""

    def __init__(self, total: int, desc: str, file) -> None:
        self.total, self.desc, self.file, self.n, self._last = total, desc, file, 0, (-1, "")
        self._said, self._said_at = "", time.monotonic()

    def update(self, k: int) -> None:
        self.n += k
        if k:
            self._print()

    def set_description_str(self, text: str, refresh: bool = True) -> None:
        self.desc = text
        self._print()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text
        self._print(text)

    def _print(self, extra: str = "") -> None:
        pct = int(100 * self.n / max(self.total, 1))
        head = self.desc.split(":")[0]
        line = f"{self.desc}: {pct:3d}%" + (f" {extra}" if extra else "")
        now = time.monotonic()
        if pct // 5 != self._last[0] // 5 or head != self._last[1] or \
                (line != self._said and now - self._said_at >= _LINE_EVERY_S):
            self._last, self._said, self._said_at = (pct, head), line, now
            print(line, file=self.file, flush=True)

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, *, file=None, **tqdm_kwargs):
    """A tqdm bar on a terminal, else a :class:`_Lines` printer with the same methods we use."""
    file = file or sys.stderr
    if not getattr(file, "isatty", lambda: False)():
        return _Lines(total, desc, file)
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, file=file, **tqdm_kwargs)
