"""The order ablation's shuffle: each patient's hourly bins permuted within the patient's valid length."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from core.config import FeatureConfig
from core.data.cohort import Cohort

__all__ = ["SHUFFLE_DESCRIPTION", "shuffle_time_bins", "valid_lengths"]

#: One paragraph describing the ablation's shuffle, shown on the page and saved in timeorder.json.
SHUFFLE_DESCRIPTION = (
    "Within each patient, the raw hourly observation bins (values and observation mask together) are "
    "permuted at random inside the patient's valid length (hour 0 to the last hour with any observation); "
    "empty padding bins after it stay at the end. Forward-filled values and hours-since-last-observation are "
    "then recomputed on the shuffled grid, so they cannot leak the original positions. Static channels are "
    "untouched, and every patient keeps exactly the same observations: only their order changes.")


def valid_lengths(cohort: Cohort, window_hours: float = 48.0, bin_hours: float = 1.0,
                  variables=None) -> pd.Series:
    """Per patient: number of bins from hour 0 to the last bin with any observation (0 if none).

    The binning is :meth:`FeatureConfig.steps`, the same as the features'.

    Parameters
    ----------
    variables : iterable of str, optional
        Count only these variables (e.g. a fitted builder's ``variables_``); default all.

    Returns
    -------
    Series of int, index ``patient_id`` (every patient of ``cohort.patient_ids``).
    """
    grid = FeatureConfig(window_hours=window_hours, bin_hours=bin_hours)
    ev = cohort.events
    ids = pd.Index(cohort.patient_ids, name="patient_id")
    row = ids.get_indexer(ev["patient_id"].astype(str).to_numpy())
    if variables is not None:
        row = np.where(ev["variable"].astype(str).isin(set(map(str, variables))).to_numpy(), row, -1)
    lengths = grid.valid_lengths(row, ev["time_hours"].to_numpy(dtype=float), len(ids))
    return pd.Series(lengths, index=ids).astype(int)


def shuffle_time_bins(cohort: Cohort, *, window_hours: float = 48.0, bin_hours: float = 1.0,
                      random_state: int = 0, variables=None, return_positions: bool = False):
    """A copy of ``cohort`` whose hourly bins are permuted within each patient's valid length.

    Every event inside the window moves, with all the other events of its bin, to the bin's new
    position (keeping its offset inside the bin), so per bin the values and the observation mask
    travel together. Bins after the patient's last observed bin (padding) and events outside the
    window do not move. An empty hour *inside* the valid length is a bin like any other, so it may
    land last (the shuffled sequence then ends earlier; never later). Static attributes and labels are untouched. Building features from the
    result recomputes forward filling and hours-since-last-observation on the shuffled grid.

    Parameters
    ----------
    cohort : Cohort
    window_hours, bin_hours : float
        The grid of the features the shuffle is meant for (same as the FeatureConfig).
    random_state : int
        Seed; each patient gets an independent permutation.
    variables : iterable of str, optional
        Variables that define the valid length (a fitted builder's ``variables_``); default all.
    return_positions : bool
        Also return the permutation: a DataFrame (index patient id, one column per old step) of each
        old step's new step.

    Returns
    -------
    Cohort (and the positions when asked)
        Same patients, same multiset of (variable, value) per patient and per bin. An online cohort's
        hour labels and row times move with their bins, so every hour keeps its own label.

    Examples
    --------
    >>> shuffled = shuffle_time_bins(cohort, random_state=1)                # doctest: +SKIP
    >>> len(shuffled.events) == len(cohort.events)                          # doctest: +SKIP
    True
    """
    grid = FeatureConfig(window_hours=window_hours, bin_hours=bin_hours)      # checks the grid
    n_steps = grid.n_steps
    ev = cohort.events
    if not len(ev):
        return cohort
    lengths = valid_lengths(cohort, window_hours, bin_hours, variables)
    ids = lengths.index.to_numpy()
    L = lengths.to_numpy()
    rng = np.random.default_rng(random_state)
    keys = rng.random((len(ids), n_steps))
    steps = np.arange(n_steps)[None, :]
    keys = np.where(steps < L[:, None], keys, 2.0 + steps)     # padding keeps its place, after the valid bins
    order = np.argsort(keys, axis=1, kind="stable")             # new position j holds old bin order[j]
    new_pos = np.empty_like(order)
    np.put_along_axis(new_pos, order, np.broadcast_to(steps, order.shape), axis=1)   # old bin -> new position

    def move(frame: pd.DataFrame) -> pd.DataFrame:
        t = frame["time_hours"].to_numpy(dtype=float)
        step, inside = grid.steps(t)
        row = pd.Index(ids).get_indexer(frame["patient_id"].astype(str).to_numpy())
        offset = np.clip(t - step * bin_hours, 0.0, bin_hours * (1 - 1e-6))
        moved = new_pos[np.maximum(row, 0), step] * bin_hours + offset
        moved = np.minimum(moved, window_hours)                  # a partial last bin stays inside the window
        out = frame.copy()
        out["time_hours"] = np.where(inside & (row >= 0), moved, t)
        return out.sort_values(["patient_id", "time_hours"], kind="stable").reset_index(drop=True)

    # online cohorts: an hour's label (and its row) moves with its bin, so each hour keeps its own label
    shuffled = replace(cohort, events=move(ev), source=(cohort.source + " (time bins shuffled)").strip(),
                       hour_labels=None if cohort.hour_labels is None else move(cohort.hour_labels),
                       row_times=None if cohort.row_times is None else move(cohort.row_times))
    if return_positions:
        return shuffled, pd.DataFrame(new_pos, index=pd.Index(ids, name="patient_id"))
    return shuffled
