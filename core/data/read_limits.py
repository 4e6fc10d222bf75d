"""What every reader shares: the raw table, the source it came from, and the limits a read keeps.

A read is bounded: what archives may inflate to (a cap against decompression bombs, see :class:`ReadBudget`), how
wide a table may be (:data:`MAX_COLUMNS`, env ``CHRONOSCOPE_MAX_COLUMNS``), and how much memory validating it may
take (:func:`validate_limit_mb`), judged on a :class:`TableProbe` before the table is read whole. The format
readers (:mod:`core.data.csv_reader`, :mod:`core.data.parquet_reader`, :mod:`core.data.physionet_reader`,
:mod:`core.data.duck_reader`) and their dispatcher :func:`core.data.readers.read_table` build on these.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import pandas as pd

from core.data import duck
from core.data.duck import EngineConfig
from core.exceptions import DataReadError, InternalError
from core.data.validation import clip_text

__all__ = ["Source", "RawTable", "TableProbe", "MemoryCheck", "ReadBudget", "env_limit", "validate_limit_mb",
           "out_of_memory_message", "source_name", "source_bytes", "check_width", "check_unique_columns",
           "MAX_VALIDATE_MB", "MAX_COLUMNS", "MAX_ARCHIVE_FILES", "SAMPLE_ROWS", "CHUNK_BYTES",
           "PARQUET_MAGIC", "GZIP_MAGIC", "ZIP_MAGIC", "OLE_MAGIC"]

#: the most memory one validation may take (MB), checked before a table is read whole (see :class:`TableProbe`);
#: the environment variable ``CHRONOSCOPE_MAX_VALIDATE_MB`` overrides it. The default is this or half the
#: machine's memory, whichever is less.
MAX_VALIDATE_MB = 4096
#: the widest table read (columns); the environment variable ``CHRONOSCOPE_MAX_COLUMNS`` overrides it.
MAX_COLUMNS = 5000
#: the most files one zip archive or folder may hold (PhysioNet 2012 has 4,000 per set).
MAX_ARCHIVE_FILES = 100_000
_MAX_NESTING = 2      # a zip of .csv.gz files is fine; an archive in an archive in an archive is not
CHUNK_BYTES = 8 << 20      # inflate in 8 MiB steps: memory stays within the cap plus one step

#: a path on disk, an upload as (file name, content bytes), or an upload kept on disk as (file name, Path).
Source = Union[str, os.PathLike, tuple[str, bytes], tuple[str, Path]]

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls / .doc


@dataclass
class RawTable:
    """A table as read from the user's file(s), before any interpretation.

    ``frame`` holds the rows; ``line`` (if present in ``line_numbers``) maps each row to its
    1-based line in the file for error messages. ``outcomes`` is set when the source itself
    carried an outcomes table (PhysioNet folder/zip). ``notes`` are informational findings
    about the read (encoding, delimiter) that ingestion copies into the report.
    """

    frame: pd.DataFrame
    name: str
    fmt: str
    outcomes: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    #: data row i sits on file line ``i + first_line`` (header is line 1) when the file is one CSV.
    first_line: int | None = 2
    #: ``raw_texts(i)``: the distinct cells of column ``i`` exactly as the file writes them, for a column whose
    #: cells the frame may not show as written (numbers parsed, so `` 1`` and ``1`` are both 1; leading spaces
    #: skipped); ``None`` (the function, or what it returns) when the frame shows them. Used to report ids that
    #: differ only by surrounding whitespace before they are merged.
    raw_texts: Callable[[int], list[str] | None] | None = field(default=None, repr=False)


def env_limit(env: str, default: float) -> float:
    """A readers' limit from the settings (:func:`core.settings.read_settings`, the one place every ``CHRONOSCOPE_*``
    variable is read): the variable ``env`` when it is set, else ``default`` (the readers' own constant, which a
    deployment or a test may lower).

    Raises
    ------
    DataReadError
        When the variable is set to something that is not a positive number (the settings' message).
    """
    from core.settings import Settings, SettingError, read_settings
    settings = read_settings()
    attribute = next((name for name, v in vars(Settings).items() if getattr(v, "env", None) == env), None)
    if attribute is None:
        raise InternalError(f"env_limit was asked for {env}, which core.settings.Settings does not declare.")
    if not settings.environ.get(env, "").strip():
        return float(default)
    try:
        return float(getattr(settings, attribute))
    except SettingError as err:              # a reading error of the data's reader: as every other refusal here
        raise DataReadError(str(err)) from None


def _max_columns() -> int:
    return int(env_limit("CHRONOSCOPE_MAX_COLUMNS", MAX_COLUMNS))


@dataclass(frozen=True)
class TableProbe:
    """What a table holds, measured before it is read whole: what the memory check of :func:`read_table` judges.

    Attributes
    ----------
    name : str
        The file (as shown to the user).
    rows : int
        Data rows: counted, or at least this many (a count stopped early), or estimated from the
        bytes per line of the first lines.
    sample : DataFrame
        The first rows (up to 1,000) with every column, as the reader reads them.
    text_bytes : int
        Bytes of the table's text (a CSV, inflated) kept in memory while it is parsed; 0 when it is not
        (Parquet, or read by DuckDB from a file).
    compact : bool
        Read by DuckDB: text columns come back as categoricals (each distinct value once), numbers as they are.
    rows_are : {"counted", "at least", "about"}
        How ``rows`` is known: counted to the end, a count stopped early, or estimated from the first lines.
    """

    name: str
    rows: int
    sample: pd.DataFrame = field(repr=False)
    text_bytes: int = 0
    compact: bool = False
    rows_are: str = "counted"


#: ``check(probe)``: raises :class:`DataReadError` when validating the table would take too much memory.
MemoryCheck = Callable[[TableProbe], None]
#: rows of a probe's sample.
SAMPLE_ROWS = 1000


def validate_limit_mb() -> float:
    """The most memory one validation may take (MB): ``$CHRONOSCOPE_MAX_VALIDATE_MB``, else :data:`MAX_VALIDATE_MB`
    or half the machine's memory, whichever is less."""
    return env_limit("CHRONOSCOPE_MAX_VALIDATE_MB", min(MAX_VALIDATE_MB, duck.machine_memory_mb() / 2))


class ReadBudget:
    """The limits of one read, shared by nested members: what archives may still inflate to (a cap against
    decompression bombs), how deep they nest, the memory check (``check``) and the engine that decides which
    tables are read in memory and which out of core. Content that is too large for memory is spilled to a
    private folder (``spill``), removed with the table read from it (or when the read fails).

    Parameters
    ----------
    limit_mb : float
        What the archives of this read may inflate to in all (MB); see :data:`core.data.readers.MAX_INFLATED_MB`.
    engine : EngineConfig, optional
        Which tables pandas reads in memory and which DuckDB reads out of core (default
        :meth:`EngineConfig.from_env`).
    check : MemoryCheck, optional
        Called with a :class:`TableProbe` before a table is read whole; raises to refuse it.
    """

    def __init__(self, limit_mb: float, engine: EngineConfig | None = None, check: MemoryCheck | None = None) -> None:
        self.limit_mb = limit_mb
        self.left = int(self.limit_mb * 2 ** 20)
        self.depth = 0
        self.engine = engine or EngineConfig.from_env()
        self.check = check
        self.tmp: str | None = None

    @property
    def in_memory_bytes(self) -> int:
        """Tables at most this large (text inflated) are read in memory by pandas; larger ones by DuckDB."""
        if self.engine.engine == "pandas":
            return 1 << 62
        return 0 if self.engine.engine == "duckdb" else int(self.engine.min_mb * 2 ** 20)

    def probe(self, probe: TableProbe) -> None:
        """Run the memory check (if any) on ``probe``: raises :class:`DataReadError` to refuse the table."""
        if self.check is not None:
            self.check(probe)

    def spill(self, name: str, suffix: str) -> Path:
        """A new file (owner-only) in this read's spill folder."""
        if self.tmp is None:
            root = self.engine.temp_dir or None
            if root:
                Path(root).mkdir(parents=True, exist_ok=True)
            self.tmp = tempfile.mkdtemp(prefix="chronoscope-spill-", dir=root)
        path = Path(self.tmp) / f"{len(os.listdir(self.tmp))}{suffix}"
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return path

    def release(self, table: RawTable | None) -> None:
        """Remove the spill folder now (no table) or when ``table`` is gone (its ``raw_texts`` may read it)."""
        if self.tmp is None:
            return
        if table is None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            weakref.finalize(table, shutil.rmtree, self.tmp, True)
        self.tmp = None

    def refuse(self, name: str, what: str = "inflates to") -> None:
        """Refuse ``name``: it passes the inflation cap (always raises :class:`DataReadError`)."""
        raise DataReadError(
            f"{name}: the archive {what} more than {self.limit_mb:,g} MB when decompressed, the limit set "
            "against decompression bombs. If the file is genuine, decompress it yourself and upload the "
            "CSV or Parquet file, or raise the limit: set the environment variable CHRONOSCOPE_MAX_INFLATED_MB "
            f"(e.g. CHRONOSCOPE_MAX_INFLATED_MB={int(self.limit_mb * 2)}) before starting the app or the CLI.")

    def read(self, name: str, stream) -> bytes:
        """Everything ``stream.read`` gives, in steps, refused as soon as it passes the cap."""
        parts = []
        while True:
            chunk = stream.read(min(CHUNK_BYTES, self.left + 1))
            if not chunk:
                return b"".join(parts)
            self.left -= len(chunk)
            if self.left < 0:
                self.refuse(name)
            parts.append(chunk)

    def enter(self, name: str) -> None:
        """One archive level deeper; refused past the deepest nesting allowed."""
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise DataReadError(f"{name}: archives nested more than {_MAX_NESTING} deep (an archive in an archive "
                                "in an archive). Unpack them and upload the table itself, or one zip of the "
                                "per-patient files.")


def source_name(source: Source) -> str:
    """The name a source is shown by: its path, or an upload's file name."""
    return str(source[0]) if isinstance(source, tuple) else str(source)


def source_bytes(source: Source) -> int | None:
    """A source's size in bytes as uploaded or on disk; ``None`` for a folder or what cannot be read."""
    try:
        if isinstance(source, tuple):
            return source[1].stat().st_size if isinstance(source[1], Path) else len(source[1])
        return Path(source).stat().st_size if Path(source).is_file() else None
    except OSError:
        return None


def out_of_memory_message(name: str, n_bytes: int | None) -> str:
    """What to say when the machine ran out of memory reading or validating ``name`` (``n_bytes`` on disk)."""
    size = f" ({n_bytes / 2**20:,.1f} MB as uploaded)" if n_bytes is not None else ""
    limit = validate_limit_mb()
    return (f"{name}{size}: the machine ran out of memory while reading and checking this table. A validation may "
            f"take up to {limit:,.0f} MB (CHRONOSCOPE_MAX_VALIDATE_MB), but less than that was free. Split the "
            "table into smaller files (e.g. by patient) and validate each, close other work, or run `python -m "
            "core validate` on a machine with more memory.")


def check_width(name: str, n_columns: int) -> None:
    """Refuse a table wider than :data:`MAX_COLUMNS` (``$CHRONOSCOPE_MAX_COLUMNS``) before it is parsed."""
    limit = _max_columns()
    if n_columns > limit:
        raise DataReadError(f"{name}: the table has {n_columns:,} columns, more than the limit of {limit:,}. A "
                            "table this wide is probably not a patient table (or one variable per column of "
                            "something else): use the long layout (patient, time, variable, value), keep only "
                            "the variables you need, or raise the limit with the environment variable "
                            f"CHRONOSCOPE_MAX_COLUMNS (e.g. CHRONOSCOPE_MAX_COLUMNS={limit * 2}).")


def check_unique_columns(name: str, names: list[str]) -> None:
    """Refuse a repeated column name (pandas would quietly rename the second ``HR`` to ``HR.1``)."""
    seen: dict[str, int] = {}
    for i, raw in enumerate(names, start=1):
        key = raw.strip()
        if not key:
            continue  # unnamed columns get distinct names ("Unnamed: 3")
        if key in seen:
            raise DataReadError(f"{name}: the column name {clip_text(key)!r} appears more than once in the header "
                                f"(columns {seen[key]} and {i}). Rename them so each is unique (e.g. HR_monitor, "
                                "HR_manual), or delete the duplicate column.")
        seen[key] = i
