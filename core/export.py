"""Spreadsheet-safe exports.

A text cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) can be run as a
formula when a CSV is opened in a spreadsheet ("CSV injection"). :func:`safe_csv` prefixes such
cells with a single quote. Numbers, and text that is just a number such as ``"-1.5"``, stay as they are.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["safe_csv", "escape_cell", "safe_frame", "jsonable"]

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False


def escape_cell(value):
    """``"=cmd()"`` -> ``"'=cmd()"``; anything that is not risky text is returned unchanged."""
    if isinstance(value, str) and value.startswith(_TRIGGERS) and not _is_number(value):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells and column names are escaped (numeric columns untouched)."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            out[col] = s.astype(object).map(escape_cell)
    out.columns = [escape_cell(str(c)) for c in out.columns]
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

    Examples
    --------
    >>> safe_csv(pd.DataFrame({"id": ["=1+1", "a"], "risk": [0.5, -1.0]}))
    "id,risk\\n'=1+1,0.5\\na,-1.0\\n"
    """
    kwargs.setdefault("index", False)
    frame = safe_frame(df)
    if path is None:
        return frame.to_csv(**kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, **kwargs)
    return path


def jsonable(o):
    """Plain, strict-JSON values, recursively: numpy scalars and arrays converted, NaN and inf as None.

    Examples
    --------
    >>> jsonable({"a": np.float64("nan"), "b": np.arange(2)})
    {'a': None, 'b': [0, 1]}
    """
    if isinstance(o, dict):
        return {k: jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in list(o)]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    return o
