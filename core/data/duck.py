"""DuckDB, the embedded engine that reads large tables with bounded memory.

Large CSV, CSV.gz and Parquet files, and folders of them, are read by DuckDB instead of being
loaded whole into Python: DuckDB parses with all cores, keeps at most ``memory_limit`` in RAM and
spills the rest to a temporary folder the user can choose (removed when the read ends). What comes
back is compact: numbers as float64/int64 columns and text as pandas categoricals built from DuckDB
enum codes (a patient id stored once, not once per row), which the validation in
:mod:`core.data.ingest` then judges with exactly the same rules, counts and messages as the pandas path.

Anything DuckDB cannot read the way the pandas path would (another encoding, decimal commas, a
malformed line, nested Parquet columns...) falls back to :func:`core.data.readers.read_table`'s pandas
path, which gives the message the user would have seen before: the engine changes how fast and in
how much memory a file is read, never what is found in it.

Settings (:class:`EngineConfig`, or the environment, which the CLI's ``--engine``,
``--memory-limit`` and ``--temp-dir`` set):

* ``CHRONOSCOPE_ENGINE``: ``auto`` (default: DuckDB for files of at least ``CHRONOSCOPE_DUCKDB_MIN_MB``
  MB on disk and for folders of tables; pandas for smaller files, where start-up costs dominate),
  ``duckdb`` or ``pandas``.
* ``CHRONOSCOPE_MEMORY_LIMIT_MB``: DuckDB's memory limit (default: a quarter of the machine's RAM,
  at least 256 MB).
* ``CHRONOSCOPE_TMP_DIR``: where DuckDB spills (default: the system's temporary folder); each read
  gets a fresh ``chronoscope-duckdb-*`` folder there, removed afterwards.
"""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.settings import Settings, read_settings
from core.training.threads import thread_count

__all__ = ["EngineConfig", "TABLE_SUFFIXES", "connect", "machine_memory_mb", "table_files", "fetch_frame", "estimate_seconds", "head_bytes", "is_gzip",
           "quote", "literal", "literal_list", "file_list", "NULL_STRINGS", "SAMPLE_ROWS"]

ENGINE_ENV = Settings.engine.env
MEMORY_ENV = Settings.memory_limit_mb.env
TMP_ENV = Settings.tmp_dir.env
MIN_MB_ENV = Settings.duckdb_min_mb.env
#: files at least this large (MB on disk) are read by DuckDB under ``engine="auto"``.
DUCKDB_MIN_MB = Settings.duckdb_min_mb.default
#: file name endings of the tables DuckDB reads (a folder of them is one table).
TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt.gz", ".parquet", ".parquet.gz")
ENGINES = ("auto", "duckdb", "pandas")


def machine_memory_mb() -> float:
    """Physical memory of this machine (MB); 4096 where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        return 4096.0


@dataclass(frozen=True)
class EngineConfig:
    """How large files are read: which engine, DuckDB's memory limit (MB) and its spill folder."""

    engine: str = "auto"
    memory_limit_mb: float | None = None
    temp_dir: str | None = None
    min_mb: float = DUCKDB_MIN_MB

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {self.engine!r}.")
        if self.memory_limit_mb is not None and self.memory_limit_mb < 64:
            raise ValueError(f"The memory limit must be at least 64 MB; got {self.memory_limit_mb:g}.")

    @classmethod
    def from_env(cls) -> "EngineConfig":
        """The settings of the environment (what the CLI flags set); defaults where unset."""
        settings = read_settings()
        return cls(engine=settings.engine, memory_limit_mb=settings.memory_limit_mb, temp_dir=settings.tmp_dir,
                   min_mb=settings.duckdb_min_mb)

    @property
    def limit_mb(self) -> float:
        """The memory limit in force: the setting, or a quarter of the machine (at least 256 MB)."""
        return float(self.memory_limit_mb) if self.memory_limit_mb is not None else \
            max(256.0, machine_memory_mb() / 4)

    def wants(self, files: list[Path], folder: bool) -> bool:
        """Whether DuckDB reads these files: always when asked, never for ``pandas``, by size for ``auto``."""
        if self.engine != "auto":
            return self.engine == "duckdb"
        return folder or sum(f.stat().st_size for f in files) >= self.min_mb * 2**20


#: validation throughput of the DuckDB path, MB of CSV text per second, as measured by bench/bench_scale.py on a
#: 2-core machine (`validate` of 16,000 / 64,000 stays: 156 MB in 12.7 s, 625 MB in 51.5 s: 12 MB/s); gzip
#: and Parquet are counted inflated (x5).
VALIDATE_MB_PER_S = 12.0
GZIP_RATIO = 5.0


def estimate_seconds(n_bytes: int, gzip: bool = False, parquet: bool = False) -> float:
    """Roughly how long reading and validating ``n_bytes`` of a table takes here (for progress messages)."""
    mb = n_bytes / 2**20 * (GZIP_RATIO if gzip or parquet else 1.0)
    return max(1.0, mb / VALIDATE_MB_PER_S)


def table_files(path: Path) -> list[Path] | None:
    """The table files a folder holds (sorted), or ``None`` when it is not a folder of tables.

    A folder of per-patient PhysioNet 2012 ``.txt`` files is not a folder of tables (its reader
    knows the layout); hidden files and other names are ignored.
    """
    if not path.is_dir():
        return None
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.name.lower().endswith(TABLE_SUFFIXES))
    return files or None


class _Session:
    """A DuckDB connection with its memory limit and a private spill folder, removed on close."""

    def __init__(self, config: EngineConfig) -> None:
        import duckdb
        root = config.temp_dir or None
        if root:
            Path(root).mkdir(parents=True, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="chronoscope-duckdb-", dir=root)
        # A database file in the spill folder, not memory: the raw rows are stored compressed and paged
        # under the memory limit, so the read's peak depends on the limit, not on the file's size.
        try:
            self.con = duckdb.connect(os.path.join(self.tmp, "read.duckdb"), config={
                "memory_limit": f"{int(config.limit_mb)}MB", "temp_directory": self.tmp,
                "threads": max(1, thread_count()), "preserve_insertion_order": True})
        except BaseException:  # no connection: leave no folder behind
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "_Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(config: EngineConfig | None = None) -> _Session:
    """A DuckDB session under ``config`` (memory limit, spill folder); use it as a context manager."""
    return _Session(config or EngineConfig.from_env())


def quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def literal_list(items) -> str:
    return "[" + ", ".join(literal(str(i)) for i in items) + "]"


def file_list(files: list[Path]) -> str:
    return literal_list(files)


#: cell texts the pandas path reads as missing (pandas' default ``na_values``), so both engines agree.
NULL_STRINGS = sorted(pd._libs.parsers.STR_NA_VALUES)

#: DuckDB column types handed over as they are (numbers, booleans, times); text becomes a categorical.
_PASS_TYPES = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT",
               "DOUBLE", "FLOAT", "BOOLEAN", "HUGEINT")


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def head_bytes(path: Path, n: int = 1 << 20) -> bytes:
    """The first ``n`` bytes of a file, inflated when it is gzip."""
    if is_gzip(path):
        with gzip.open(path, "rb") as fh:
            return fh.read(n)
    with open(path, "rb") as fh:
        return fh.read(n)


#: rows of the sample handed to ``fetch_frame``'s ``check``.
SAMPLE_ROWS = 1000


def fetch_frame(session: _Session, source_sql: str, check=None) -> pd.DataFrame:
    """Run ``source_sql`` (a ``read_csv``/``read_parquet`` call) into a compact pandas frame.

    The rows are materialised once in a DuckDB table of the session's database file (paged under the
    memory limit); ``check(rows, sample)``, if given, is then called with the exact row count and the
    first :data:`SAMPLE_ROWS` rows, before anything reaches pandas (it raises to refuse the table).
    Every VARCHAR column becomes an enum whose codes come back as a pandas categorical, and
    other columns come back as they are. Raises ``duckdb.Error`` for anything DuckDB rejects and
    ``TypeError`` for a column type the pandas path should handle instead.
    """
    con = session.con
    con.execute(f"CREATE TABLE raw AS SELECT * FROM {source_sql}")
    if check is not None:
        check(int(con.execute("SELECT count(*) FROM raw").fetchone()[0]),
              con.execute(f"SELECT * FROM raw LIMIT {SAMPLE_ROWS}").df())
    types = con.execute("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall()
    select, categories = [], {}
    for i, (name, kind) in enumerate(types):
        q = quote(name)
        if kind == "VARCHAR":
            con.execute(f"CREATE TYPE e{i} AS ENUM (SELECT DISTINCT {q} FROM raw WHERE {q} IS NOT NULL)")
            cats = con.execute(f"SELECT unnest(enum_range(NULL::e{i}))").fetchall()
            categories[name] = pd.Index([c[0] for c in cats], dtype=object)
            select.append(f"coalesce(enum_code({q}::e{i})::INTEGER, -1) AS {quote(f'c{i}')}")
        elif kind in _PASS_TYPES or kind.startswith(("DECIMAL", "TIMESTAMP", "DATE")):
            cast = "DOUBLE" if kind.startswith(("DECIMAL", "HUGEINT")) else None
            select.append((f"{q}::{cast}" if cast else q) + f" AS {quote(f'c{i}')}")
        else:
            raise TypeError(f"column {name!r} has DuckDB type {kind}")
    # Batch by batch, each column joined on its own: the frame is the only full copy of the rows in Python.
    pieces: list[list] = [[] for _ in types]
    reader = con.sql(f"SELECT {', '.join(select)} FROM raw").to_arrow_reader(1 << 17)
    for batch in reader:
        for i, (name, _) in enumerate(types):
            col = batch.column(i)
            pieces[i].append(col.to_numpy() if name in categories else col.to_pandas())
    del reader
    con.execute("DROP TABLE raw")
    data = {}
    for i, (name, _) in enumerate(types):
        parts, pieces[i] = pieces[i], []
        if name in categories:
            codes = np.concatenate(parts).astype(np.int32, copy=False) if parts else np.empty(0, np.int32)
            data[name] = pd.Categorical.from_codes(codes, categories=categories[name])
        else:
            data[name] = pd.concat(parts, ignore_index=True) if parts else pd.Series(dtype=float)
        del parts
    return pd.DataFrame(data)
