"""Every ``CHRONOSCOPE_*`` environment variable the code reads, in one place: its type, default, unit and meaning.

:func:`read_settings` takes the variables as they are *now* (tests, the CLI's flags and
:func:`core.service.runners.run_request` change the environment while the process runs, so nothing is cached)
and returns a frozen :class:`Settings`. Each attribute reads its own variable when asked, so a bad value is
reported by the code that needs it (a bad ``CHRONOSCOPE_RAY_CPUS`` stops the Ray backend, not the upload of a
file), as a :class:`SettingError` naming the variable, the value and an example.

Examples
--------
>>> read_settings().runs_dir                                    # doctest: +SKIP
'runs'
>>> Settings({"CHRONOSCOPE_THREADS": "2"}).threads
2
>>> Settings.threads.env, Settings.threads.default, Settings.threads.unit
('CHRONOSCOPE_THREADS', None, 'threads')
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.data.validation import clip_text
from core.exceptions import CoreError

__all__ = ["Settings", "SettingError", "Variable", "read_settings", "PREFIX"]

#: every variable of :class:`Settings` starts with this.
PREFIX = "CHRONOSCOPE_"
#: characters of a bad value shown in a message (a path or a typo, not a pasted file).
_SHOWN = 40


class SettingError(CoreError):
    """A ``CHRONOSCOPE_*`` variable holds a value that is not valid; the message names it and gives an example."""


class Variable:
    """One environment variable as an attribute of :class:`Settings`: read and checked when the attribute is.

    Parameters
    ----------
    env : str
        The variable's name (``"CHRONOSCOPE_THREADS"``).
    parse : callable(text, variable) -> value
        Turns the variable's text (``None`` when unset) into the value; raises :class:`SettingError`.
    default : object
        The value when the variable is unset (``None``: decided where it is used, see ``doc``).
    unit : str
        ``"MB"``, ``"threads"``, ``"path"``... (for people and docs).
    doc : str
        One line: what it sets, and what happens when it is unset.
    """

    def __init__(self, env: str, parse: Callable[[str | None, "Variable"], Any], default: Any, unit: str,
                 doc: str) -> None:
        self.env, self.parse, self.default, self.unit, self.doc = env, parse, default, unit, doc
        self.__doc__ = f"``{env}`` ({unit}): {doc}"

    def __get__(self, settings: "Settings | None", owner: type) -> Any:
        if settings is None:               # on the class: the variable itself (name, default, unit, doc)
            return self
        return self.parse(settings.environ.get(self.env), self)


# -- parsers: text (None when unset) -> value ---------------------------------------------------------------
def _stripped(raw: str | None) -> str:
    return (raw or "").strip()


def _whole(what: str, unset: str) -> Callable[[str | None, Variable], int | None]:
    """A whole number >= 1 (``what``: "threads"), or the default when unset or empty."""
    def parse(raw: str | None, var: Variable) -> int | None:
        text = _stripped(raw)
        if not text:
            return var.default
        if not (text.isdigit() and int(text) > 0):
            raise SettingError(f"{var.env}={clip_text(text, _SHOWN)!r} is not a number of {what}: use a whole number "
                               f">= 1, e.g. {var.env}=2, or unset it ({unset}).")
        return int(text)
    return parse


def _megabytes(example: float) -> Callable[[str | None, Variable], float | None]:
    """Megabytes, 0 or more; the default when unset or empty."""
    def parse(raw: str | None, var: Variable) -> float | None:
        text = _stripped(raw)
        if not text:
            return var.default
        try:
            value = float(text)
        except ValueError:
            raise SettingError(f"{var.env}={clip_text(text, _SHOWN)!r} is not a number; give megabytes, e.g. "
                               f"{var.env}={example:g}.") from None
        if not value >= 0:
            raise SettingError(f"{var.env}={clip_text(text, _SHOWN)!r} must be 0 or more megabytes, e.g. "
                               f"{var.env}={example:g}.")
        return value
    return parse


def _limit(example: float) -> Callable[[str | None, Variable], float | None]:
    """A positive number (a limit of the readers); the default when unset or empty."""
    def parse(raw: str | None, var: Variable) -> float | None:
        text = _stripped(raw)
        if not text:
            return var.default
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value > 0:
            raise SettingError(f"The environment variable {var.env} must be a positive number; got "
                               f"{clip_text(text, _SHOWN)!r}. Example: {var.env}={example:g}, or unset it for the "
                               f"default ({example:g}).")
        return value
    return parse


def _choice(choices: tuple[str, ...], message: str) -> Callable[[str | None, Variable], str]:
    """One of ``choices`` (case-insensitive); the default when unset or empty. ``message`` is formatted with
    ``env`` and ``value``."""
    def parse(raw: str | None, var: Variable) -> str:
        text = _stripped(raw)
        if not text:
            return var.default
        if text.lower() not in choices:
            raise SettingError(message.format(env=var.env, value=clip_text(text, _SHOWN)))
        return text.lower()
    return parse


def _text(raw: str | None, var: Variable) -> str | None:
    """The text, stripped; the default when unset or empty."""
    return _stripped(raw) or var.default


def _path(raw: str | None, var: Variable) -> str | None:
    """The text as it is (a path may hold any character); the default when unset or empty."""
    return raw or var.default


def _path_if_set(raw: str | None, var: Variable) -> str:
    """The text as it is whenever the variable is set (even empty), else the default."""
    return var.default if raw is None else raw


def _cpus(raw: str | None, var: Variable) -> int | None:
    """A number of CPUs >= 1, for the Ray backend; the default when unset or empty."""
    text = _stripped(raw)
    if not text:
        return var.default
    if not (text.isdigit() and int(text) > 0):
        raise SettingError(f"The server's setting {var.env}={clip_text(text, _SHOWN)!r} is not a number of CPUs: use "
                           f"a whole number >= 1 (e.g. {var.env}=4) or leave it unset, then restart the server.")
    return int(text)


@dataclass(frozen=True)
class Settings:
    """The ``CHRONOSCOPE_*`` variables of one moment: build it with :func:`read_settings`.

    Each attribute below is a :class:`Variable`: read from ``environ`` and checked when it is asked for.
    On the class (``Settings.threads``) it is the variable itself: ``.env``, ``.default``, ``.unit``, ``.doc``.

    Parameters
    ----------
    environ : mapping of str to str
        The ``CHRONOSCOPE_*`` variables (``os.environ`` at :func:`read_settings` time, or any mapping in tests).

    Raises
    ------
    SettingError
        On reading an attribute whose variable holds a bad value.
    """

    environ: Mapping[str, str] = field(default_factory=dict, hash=False)

    # -- fits, jobs and backends ---------------------------------------------------------------------------
    threads = Variable("CHRONOSCOPE_THREADS", _whole("threads", "as many of 2 threads as the machine has free"),
                       None, "threads", "threads of every fit, pinned (unset: as many of 2 as the machine has free, "
                       "by the 1-minute load average; core.training.threads)")
    job_slots = Variable("CHRONOSCOPE_JOB_SLOTS", _whole("jobs", "cores / threads per fit"), None, "jobs",
                         "jobs that run at once (unset: the cores divided by the threads per fit, at least 1)")
    backend = Variable("CHRONOSCOPE_BACKEND", _choice(("local", "ray"), (
        "The server's setting {env}={value!r} is not a backend: use 'local' or 'ray' (e.g. {env}=ray), then restart "
        "the server.")), "local", "name", "where the server's jobs run their fits: 'local' or 'ray'")
    ray_address = Variable("CHRONOSCOPE_RAY_ADDRESS", _text, None, "host:port",
                           "the Ray cluster to join (unset: a private Ray instance on this machine)")
    ray_cpus = Variable("CHRONOSCOPE_RAY_CPUS", _cpus, None, "CPUs",
                        "CPUs of the private Ray instance (unset: the machine's)")
    features_in_memory_mb = Variable("CHRONOSCOPE_FEATURES_IN_MEMORY_MB", _megabytes(1024), 1024.0, "MB",
                                     "the largest sequence array (all splits of one run) built in memory; above it "
                                     "features are built out of core, on disk (0: always)")
    tmp_dir = Variable("CHRONOSCOPE_TMP_DIR", _path, None, "path",
                       "where out-of-core features, DuckDB's spill files and the server's scratch folder go (unset: "
                       "the system's temporary folder)")
    # -- reading data ----------------------------------------------------------------------------------------
    engine = Variable("CHRONOSCOPE_ENGINE", _choice(("auto", "duckdb", "pandas"), (
        "{env}={value!r} is not an engine: use auto, duckdb or pandas (e.g. {env}=duckdb).")), "auto", "name",
        "which engine reads tables: 'auto' (DuckDB for large files), 'duckdb' or 'pandas'")
    memory_limit_mb = Variable("CHRONOSCOPE_MEMORY_LIMIT_MB", _megabytes(2048), None, "MB",
                               "DuckDB's memory limit (unset: a quarter of the machine's memory, at least 256 MB)")
    duckdb_min_mb = Variable("CHRONOSCOPE_DUCKDB_MIN_MB", _megabytes(32), 32.0, "MB",
                             "files at least this large on disk are read by DuckDB under engine 'auto'")
    max_inflated_mb = Variable("CHRONOSCOPE_MAX_INFLATED_MB", _limit(2048), 2048.0, "MB",
                               "the most a gzip, zip or Parquet file may inflate to while reading")
    max_validate_mb = Variable("CHRONOSCOPE_MAX_VALIDATE_MB", _limit(4096), None, "MB",
                               "the most memory one validation may take (unset: 4096 or half the machine's memory, "
                               "whichever is less)")
    max_columns = Variable("CHRONOSCOPE_MAX_COLUMNS", _limit(5000), 5000.0, "columns", "the widest table read")
    max_variables = Variable("CHRONOSCOPE_MAX_VARIABLES", _limit(5000), 5000.0, "variables",
                             "the most distinct variables a long table may hold")
    # -- the app -------------------------------------------------------------------------------------------
    runs_dir = Variable("CHRONOSCOPE_RUNS_DIR", _path_if_set, "runs", "path",
                        "the folder of saved runs (one subfolder per user with login on)")
    users_file = Variable("CHRONOSCOPE_USERS_FILE", _path, None, "path",
                          "the users file (python -m core users); set, the app asks for a login")

    @classmethod
    def variables(cls) -> tuple[Variable, ...]:
        """Every variable, in the order above (for documentation and checks)."""
        return tuple(v for v in vars(cls).values() if isinstance(v, Variable))


def read_settings() -> Settings:
    """The ``CHRONOSCOPE_*`` variables of ``os.environ`` as they are now (read again at every call).

    Every reader of a variable calls this and reads one attribute, e.g. ``read_settings().max_columns``
    (a limit of the data readers: 5000 when unset) or ``read_settings().tmp_dir`` (``None`` when unset: the
    system's temporary folder). A bad value raises :class:`SettingError` on reading that attribute.

    Returns
    -------
    Settings

    Examples
    --------
    >>> import os
    >>> os.environ["CHRONOSCOPE_JOB_SLOTS"] = "3"
    >>> read_settings().job_slots
    3
    >>> del os.environ["CHRONOSCOPE_JOB_SLOTS"]
    """
    return Settings({k: v for k, v in os.environ.items() if k.startswith(PREFIX)})
