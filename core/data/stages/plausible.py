"""Values outside their variable's plausible range (:mod:`core.data.plausibility`): one finding per variable,
excluded (and counted) unless ``DataConfig.keep_implausible``; the series of the cleaning stage and a wide table's
static columns alike."""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.config import DataConfig
from core.data.plausibility import implausible_mask, lookup
from core.data.stages.cells import plain_value, row_examples
from core.data.validation import ValidationReport, clip_text, show_value

__all__ = ["check_plausible", "check_plausible_static_columns"]


def check_plausible(frame: pd.DataFrame, config: DataConfig, report: ValidationReport) -> pd.DataFrame:
    """Values outside their variable's plausible range (:mod:`core.data.plausibility`): one finding per
    variable with the count, examples and the range; excluded unless ``config.keep_implausible``.
    'Unknown' codes are left to the sentinel rule."""
    if not len(frame):
        return frame
    bad = implausible_mask(frame["variable"], frame["value"].to_numpy(), config.sentinel_values)
    if not bad.any():
        return frame
    names = frame.loc[bad, "variable"].astype(str)
    drop = np.zeros(len(frame), dtype=bool)
    for name, n in names.value_counts().items():
        mask = bad & (frame["variable"] == name).to_numpy(dtype=bool)
        _report_implausible(name, int(n), row_examples(frame, mask, ["patient_id", "variable", "value_raw"]),
                            config, report)
        if not config.keep_implausible:
            drop |= mask
    if drop.any():
        report.exclude("implausible_value", int(drop.sum()))
        frame = frame[~drop].reset_index(drop=True)
    return frame


def _report_implausible(name: str, n: int, examples: list, config: DataConfig, report: ValidationReport) -> None:
    """One finding for ``n`` values of ``name`` outside its plausible range: excluded, or kept when asked."""
    r = lookup(name)
    unit = f" {r.unit}" if r.unit else ""
    what = f"{name}: {n:,} value(s) outside the plausible range {r.low:g} to {r.high:g}{unit}"
    if config.keep_implausible:
        report.warning("implausible_kept", what + " (kept, as asked)", count=n, examples=examples,
                       fix=f"Check the unit ({r.unit or 'unitless'} expected) and the source of these values.")
    else:
        report.add("warning", "implausible_value", what + " were excluded", count=n, examples=examples,
                   fix=f"If they are real measurements in another unit, convert them to {r.unit or 'the expected scale'}; "
                       "to use them as they are, choose to keep implausible values.")


def check_plausible_static_columns(frame: pd.DataFrame, patient: str, cols: list, config: DataConfig,
                                   report: ValidationReport) -> pd.DataFrame:
    """Wide layout: the static columns (Age, Gender... constant per patient) checked like the series.

    Implausible cells are reported per column and, unless ``config.keep_implausible``, set to missing in
    a copy of the columns (the user's table is never changed) and counted as excluded observations.
    """
    changed = {}
    for c in cols:
        values = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = implausible_mask(np.full(len(values), str(c), dtype=object), values, config.sentinel_values)
        if not bad.any():
            continue
        idx = np.flatnonzero(bad)[:3]
        examples = [(f"row {int(frame['_line'].iat[i])}" if "_line" in frame else
                     f"patient {clip_text(frame[patient].iat[i])}")
                    + f": {clip_text(c)}={show_value(plain_value(frame[c].iat[i]))}" for i in idx]
        _report_implausible(str(c), int(bad.sum()), examples, config, report)
        if not config.keep_implausible:
            changed[c] = frame[c].mask(bad)
            report.exclude("implausible_value", int(bad.sum()))
    return frame.assign(**changed) if changed else frame
