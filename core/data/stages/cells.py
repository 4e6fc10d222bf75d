"""Cell-level helpers every validation stage shares: values and rows as findings show them, ids cleaned to text,
empty cells."""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.validation import clip_text, show_value

__all__ = ["plain_value", "row_examples", "clean_category", "blank_cells", "count_filled"]


def plain_value(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages read ``1.5``, not ``np.float64(1.5)``."""
    return value.item() if isinstance(value, np.generic) else value


def row_examples(frame: pd.DataFrame, mask: np.ndarray, cols: list[str], n: int = 3) -> list[str]:
    """Up to ``n`` of the rows where ``mask`` holds, each as ``"row 12: value='abc'"`` (its file line, else its
    patient) with the values of ``cols``."""
    idx = np.flatnonzero(mask)[:n]
    out = []
    for i in idx:
        where = f"row {int(frame['_line'].iat[i])}" if "_line" in frame else \
            f"patient {clip_text(frame['patient_id'].iat[i])}"
        vals = ", ".join(f"{c}={show_value(plain_value(frame[c].iat[i]))}" for c in cols if c in frame)
        out.append(f"{where}: {vals}")
    return out


def clean_category(s: pd.Series) -> pd.Series:
    """Text ids/names as a categorical of stripped str (``132539.0`` -> ``"132539"``); blank -> NaN.

    Works on the distinct values only, so it costs little on millions of rows.
    """
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    u = pd.Series(uniques)
    if pd.api.types.is_float_dtype(u):
        u = u.map(lambda x: str(int(x)) if float(x).is_integer() else str(x))
    else:
        u = u.astype(str).str.strip()
    remap, final = pd.factorize(u)
    final = pd.Index(final)
    blank = final.get_indexer([""])[0] if "" in final else -2
    remap = np.where(remap == blank, -1, remap)
    new_codes = np.where(codes >= 0, remap[np.maximum(codes, 0)] if len(remap) else -1, -1)
    if blank >= 0:  # drop the "" category, shifting codes above it
        new_codes = np.where(new_codes > blank, new_codes - 1, new_codes)
        final = final.delete(blank)
    return pd.Series(pd.Categorical.from_codes(new_codes, categories=final), index=s.index)


def blank_cells(col: pd.Series) -> np.ndarray:
    """Where a column is empty: NaN, or (text columns only) blank after stripping."""
    blank = col.isna().to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return blank  # a number is never blank text
    return blank | (col.astype(str).str.strip() == "").to_numpy(dtype=bool)


def count_filled(frame: pd.DataFrame, cols: list) -> int:
    """Non-empty cells in ``cols`` (NaN and blank text are empty)."""
    if not cols:
        return 0
    return int(sum(int((~blank_cells(frame[c])).sum()) for c in cols))

