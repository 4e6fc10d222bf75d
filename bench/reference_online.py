"""Two plain references for hour-by-hour prediction, written apart from the product (issue 20).

Nothing here imports :mod:`core`'s features or models: the references read the cohort's events and hour
labels and build their own inputs, so they measure what a plain model reaches on the same patients.

* :func:`fit_reference_gru`: one GRU layer of 64 units over, per hour, the last value of each variable
  carried forward and z-scored (0 when never seen), its 0/1 "measured this hour" mask, hours since it was
  last measured (capped at 48, divided by 48; 1 when never seen) and hours since admission / 100; positive
  hours weighted x5 in the loss; Adam, learning rate 1e-3, batches of 64 stays, 12 epochs, no early stopping.
* :func:`fit_reference_hgb`: ``HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05)`` (no early
  stopping) on, per hour and variable, the last value, hours since measured, count so far, 6-hour min and max,
  plus the hour of the stay.

Static attributes (age, sex) enter both as variables measured at hour 0. An hour ``h`` is ``floor(time)``;
its inputs use rows with ``floor(time) <= h``, the product's one-hour binning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn


@dataclass
class HourGrid:
    """Every stay's hours 0..T_p-1 stacked as rows (patient after patient), with the raw hourly values."""

    ids: np.ndarray          # (n_patients,)
    start: np.ndarray        # (n_patients + 1,) first row of each patient
    values: np.ndarray       # (n_rows, V) last value in the hour, NaN when not measured
    hour: np.ndarray         # (n_rows,) hour of the stay
    label: np.ndarray        # (n_rows,) 0/1, NaN when the hour has no label

    def rows_of(self, i: int) -> slice:
        return slice(self.start[i], self.start[i + 1])


def build_grid(cohort, ids, variables: list[str], max_hours: float = 336.0) -> HourGrid:
    """The hour grid of ``ids``: hours up to each stay's last labelled hour (below ``max_hours``)."""
    n_steps = int(max_hours)
    ids = np.asarray(ids)
    index = pd.Index(ids.astype(str))
    lab = cohort.hour_labels
    lp = index.get_indexer(lab["patient_id"].astype(str))
    lab, lp = lab[lp >= 0], lp[lp >= 0]
    inside = ((lab["time_hours"] >= 0) & (lab["time_hours"] <= max_hours)).to_numpy()
    lab, lp = lab[inside], lp[inside]
    lh = np.minimum(np.floor(lab["time_hours"].to_numpy()).astype(int), n_steps - 1)
    length = np.zeros(len(ids), dtype=int)
    np.maximum.at(length, lp, lh + 1)
    length = np.maximum(length, 1)
    start = np.r_[0, np.cumsum(length)]
    n = start[-1]
    values = np.full((n, len(variables)), np.nan, dtype=np.float64)
    ev = cohort.events
    vi = {v: j for j, v in enumerate(variables)}
    ep = index.get_indexer(ev["patient_id"].astype(str))
    ej = pd.Index(variables).get_indexer(ev["variable"].astype(str))
    t = ev["time_hours"].to_numpy(float)
    eh = np.floor(np.maximum(t, 0)).astype(int)
    keep = (ep >= 0) & (ej >= 0) & (t >= 0)
    keep[keep] = eh[keep] < length[ep[keep]]
    order = np.flatnonzero(keep)[np.argsort(t[keep], kind="stable")]      # the hour's last value wins
    values[start[ep[order]] + eh[order], ej[order]] = ev["value"].to_numpy(float)[order]
    if len(cohort.static.columns):
        st = cohort.static.reindex(index)
        for c in st.columns:
            values[start[:-1], vi[c]] = st[c].to_numpy(float)
    label = np.full(n, np.nan)
    label[start[lp] + lh] = lab["label"].to_numpy(float)
    hour = np.arange(n) - np.repeat(start[:-1], length)
    return HourGrid(ids, start, values, hour.astype(float), label)


def reference_variables(cohort) -> list[str]:
    return sorted(map(str, cohort.events["variable"].unique())) + list(map(str, cohort.static.columns))


def _carry(grid: HourGrid):
    """Per row and variable: the last value so far, the hours since it, the count so far (within the stay)."""
    n, V = grid.values.shape
    seen = ~np.isnan(grid.values)
    rows = np.arange(n)[:, None]
    idx = np.where(seen, rows, -1)
    np.maximum.accumulate(idx, axis=0, out=idx)
    first = np.repeat(grid.start[:-1], np.diff(grid.start))[:, None]
    known = idx >= first                                      # measured earlier in *this* stay
    last = np.where(known, grid.values[np.maximum(idx, 0), np.arange(V)], np.nan)
    since = np.where(known, rows - idx, np.nan).astype(float)
    csum = np.cumsum(seen, axis=0)
    count = csum - np.where(first > 0, csum[np.maximum(first - 1, 0), np.arange(V)], 0)
    return last, since, count.astype(float), seen, first


def gru_inputs(grid: HourGrid, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    last, since, _, seen, _ = _carry(grid)
    z = np.where(np.isnan(last), 0.0, (last - mean) / std)
    gap = np.where(np.isnan(since), 1.0, np.minimum(since, 48.0) / 48.0)
    return np.concatenate([z, seen, gap, grid.hour[:, None] / 100.0], axis=1).astype(np.float32)


def hgb_inputs(grid: HourGrid) -> np.ndarray:
    last, since, count, _, first = _carry(grid)
    lo, hi = grid.values.copy(), grid.values.copy()
    rows = np.arange(len(lo))[:, None]
    for j in range(1, 6):                                     # the 6 hours h-5 .. h of the same stay
        same = rows - j >= first
        prev = np.where(same, np.roll(grid.values, j, axis=0), np.nan)
        lo, hi = np.fmin(lo, prev), np.fmax(hi, prev)
    return np.concatenate([last, since, count, lo, hi, grid.hour[:, None]], axis=1).astype(np.float32)


class _GRU(nn.Module):
    def __init__(self, n_in: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(n_in, 64, batch_first=True)
        self.out = nn.Linear(64, 1)

    def forward(self, x):
        return self.out(self.rnn(x)[0]).squeeze(-1)


def _batch(grid: HourGrid, X: np.ndarray, pats):
    T = int(max(np.diff(grid.start)[pats]))
    xb = np.zeros((len(pats), T, X.shape[1]), np.float32)
    yb = np.full((len(pats), T), np.nan, np.float32)
    for k, i in enumerate(pats):
        r = grid.rows_of(i)
        xb[k, :r.stop - r.start], yb[k, :r.stop - r.start] = X[r], grid.label[r]
    return torch.from_numpy(xb), torch.from_numpy(yb)


def fit_reference_gru(train: HourGrid, seed: int = 0, epochs: int = 12, progress=None):
    """Train the reference GRU; returns ``(net, mean, std)``."""
    torch.manual_seed(seed)
    vals = train.values
    mean, std = np.nanmean(vals, axis=0), np.nanstd(vals, axis=0)
    mean, std = np.nan_to_num(mean), np.where(np.nan_to_num(std) > 1e-8, std, 1.0)
    X = gru_inputs(train, mean, std)
    net = _GRU(X.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    n = len(train.ids)
    for epoch in range(epochs):
        for b in np.array_split(rng.permutation(n), int(np.ceil(n / 64))):
            xb, yb = _batch(train, X, b)
            m = ~torch.isnan(yb)
            loss = nn.functional.binary_cross_entropy_with_logits(net(xb)[m], yb[m], pos_weight=torch.tensor(5.0))
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress:
            progress(f"reference GRU epoch {epoch + 1}/{epochs}")
    return net.eval(), mean, std


def predict_reference_gru(model, grid: HourGrid) -> np.ndarray:
    """Risk score at every labelled hour of ``grid`` (rows in grid order)."""
    net, mean, std = model
    X = gru_inputs(grid, mean, std)
    out = np.full(len(grid.label), np.nan)
    with torch.no_grad():
        for b in np.array_split(np.arange(len(grid.ids)), max(1, len(grid.ids) // 256)):
            xb, _ = _batch(grid, X, b)
            logits = net(xb).numpy()
            for k, i in enumerate(b):
                r = grid.rows_of(i)
                out[r] = logits[k, :r.stop - r.start]
    return out[~np.isnan(grid.label)]


def fit_reference_hgb(train: HourGrid, seed: int = 0):
    from sklearn.ensemble import HistGradientBoostingClassifier
    X, y = hgb_inputs(train), train.label
    keep = ~np.isnan(y)
    return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, early_stopping=False,
                                          random_state=seed).fit(X[keep], y[keep].astype(int))


def predict_reference_hgb(model, grid: HourGrid) -> np.ndarray:
    keep = ~np.isnan(grid.label)
    return model.predict_proba(hgb_inputs(grid)[keep])[:, 1]


def labels(grid: HourGrid) -> np.ndarray:
    return grid.label[~np.isnan(grid.label)].astype(int)
