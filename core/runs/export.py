"""Spreadsheet-safe exports.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return can be run as a
formula when a CSV is opened in a spreadsheet ("CSV injection"). :func:`safe_csv` prefixes such
cells (and column names, and index labels when the index is written) with a single quote. Numbers,
and text that is just a number such as ``"-1.5"``, stay as they are; a cell starting with a tab or
carriage return is always escaped (spreadsheets strip them, and what follows may be a formula).
A carriage return inside a text cell becomes a newline: the CSV writer quotes cells with newlines but
not with a bare ``\r``, which a spreadsheet would read as the start of a new row (whose first cell
could be a formula).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.exceptions import CoreError

__all__ = ["safe_csv", "escape_cell", "safe_frame", "jsonable", "check_out_file"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: triggers escaped even before a number (``"\t-1"`` is not the number -1 in a spreadsheet's eyes).
_WHITESPACE_TRIGGERS = ("\t", "\r")


def _is_number(text: str) -> bool:
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False


def escape_cell(value):
    """``"=cmd()"`` -> ``"'=cmd()"``, ``"a\rb"`` -> ``"a\nb"``; anything that is not risky text is returned
    unchanged."""
    if not isinstance(value, str):
        return value
    if value.startswith(_TRIGGERS) and (value.startswith(_WHITESPACE_TRIGGERS) or not _is_number(value)):
        value = "'" + value
    if "\r" in value:            # a bare CR is not quoted by the CSV writer: a new row in a spreadsheet
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells, column names and index labels are escaped (numeric columns and
    numeric cells of mixed columns untouched)."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            out[col] = s.astype(object).map(escape_cell)
    out.columns = [escape_cell(str(c)) for c in out.columns]
    if not pd.api.types.is_numeric_dtype(out.index):
        out.index = out.index.map(escape_cell)
    out.index.names = [escape_cell(n) for n in out.index.names]
    return out


def safe_csv(df: pd.DataFrame, path=None, **kwargs) -> str | Path:
    """Write ``df`` as a spreadsheet-safe CSV (no index by default).

    Parameters
    ----------
    df : DataFrame
    path : str or Path, optional
        Where to write; ``None`` returns the CSV text instead (for download buttons).
    **kwargs
        Passed to :meth:`pandas.DataFrame.to_csv`.

    Returns
    -------
    Path written, or the CSV text when ``path`` is None.

    Raises
    ------
    CoreError
        ``path`` cannot be written (an existing folder, a file where a folder should be, no permission).

    Examples
    --------
    >>> safe_csv(pd.DataFrame({"id": ["=1+1", "a"], "risk": [0.5, -1.0]}))
    "id,risk\\n'=1+1,0.5\\na,-1.0\\n"
    """
    kwargs.setdefault("index", False)
    frame = safe_frame(df)
    if path is None:
        return frame.to_csv(**kwargs)
    path = check_out_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, **kwargs)
    except OSError as err:
        raise CoreError(f"Cannot write {path} ({err.strerror or err}). Pass a file path in a folder you can "
                        "write to, e.g. results/out.csv.") from None
    return path


def check_out_file(path, option: str = "--out", example: str = "out.csv") -> Path:
    """``path`` as a Path if a file can be written there (checked before long work, so it fails fast).

    Raises
    ------
    CoreError
        ``path`` is an existing folder, or one of its parents is a file.

    Examples
    --------
    >>> check_out_file("results/pred.csv")
    PosixPath('results/pred.csv')
    """
    path = Path(path)
    if path.is_dir():
        raise CoreError(f"{option} {path} is an existing folder; it needs a file name. Example: "
                        f"{option} {path / example}.")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise CoreError(f"{option} {path} is inside {parent}, which is a file, not a folder. Pass a path in "
                                f"a folder, e.g. {option} {Path('results') / example}.")
            break
    return path


def jsonable(o):
    """Plain, strict-JSON values, recursively: numpy scalars and arrays converted, NaN and inf as None, paths as
    text. The one sanitiser of everything the product writes as JSON (runs, analyses, timeorder.json).

    Examples
    --------
    >>> jsonable({"a": np.float64("nan"), "b": np.arange(2)})
    {'a': None, 'b': [0, 1]}
    """
    if isinstance(o, dict):
        return {k: jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in list(o)]
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, Path):
        return str(o)
    return o
