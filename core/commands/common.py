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

from core.config import TASKS, DataConfig
from core.duck import DUCKDB_MIN_MB, ENGINE_ENV, ENGINES, MEMORY_ENV, TMP_ENV
from core.engine import BACKENDS, RAY_ADDRESS_ENV, BackendConfig

__all__ = ["add_data_arguments", "data_config_from_args", "apply_engine_arguments", "add_backend_arguments", "backend_from_args",
           "progress_bar"]


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
    if value < 64:
        raise argparse.ArgumentTypeError(f"{text} MB is too little; give at least 64 (e.g. 2048)")
    return value


def apply_engine_arguments(args: argparse.Namespace) -> None:
    """Hand ``--engine``, ``--memory-limit`` and ``--temp-dir`` to every read of this process
    (:meth:`core.duck.EngineConfig.from_env` reads them back)."""
    for flag, env in (("engine", ENGINE_ENV), ("memory_limit", MEMORY_ENV), ("temp_dir", TMP_ENV)):
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[env] = str(value)


def data_config_from_args(args: argparse.Namespace) -> DataConfig:
    """The :class:`DataConfig` of the mapping options (and, as a side effect, the engine settings:
    :func:`apply_engine_arguments`)."""
    apply_engine_arguments(args)
    sentinel = () if str(args.sentinel).lower() in ("none", "") else tuple(
        float(s) for s in str(args.sentinel).split(","))
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
    """``--backend``, ``--address`` and ``--ray-cpus``: where the independent fits run (:mod:`core.engine`)."""
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
