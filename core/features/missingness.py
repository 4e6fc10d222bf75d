"""The missingness summaries: only *when* each variable was measured, never a value (``summaries="missingness_only"``).

Stay task, per variable: number of observations, measured bins, hours from the window's start to the
first measurement, hours since the last one and the measurement rate (observations per hour since the
first one) (:data:`MISSINGNESS_STATS`), then measured bins per sub-window. Online task, at each scored
hour from data up to that hour: the same with hours since the first measurement instead of hours to it,
then count and measured bins per lookback.
"""
from __future__ import annotations

import numpy as np

from core.features.summaries import OnlineChunk, StayChunk, SummaryFamily

__all__ = ["MissingnessSummaries", "MISSINGNESS_STATS"]

#: per-variable measurement summaries of ``FeatureConfig(summaries="missingness_only")`` (no value); stays
#: add measured bins per sub-window, the online task counts per lookback (see ``FeatureBuilder.tab_stats``).
MISSINGNESS_STATS = ("count", "bins_observed", "hours_to_first", "hours_since_last", "rate_per_hour")


class MissingnessSummaries(SummaryFamily):
    """Per-variable summaries of the measurement process alone; reads event times and counts, never a value."""

    def stay_stats(self) -> tuple[str, ...]:
        return MISSINGNESS_STATS + tuple(f"bins_{w}" for w in self.subwindow_names())

    def online_stats(self) -> tuple[str, ...]:
        return ("count", "bins_observed", "hours_since_first", "hours_since_last", "rate_per_hour") + \
            tuple(f"{s}_{k:g}h" for k in self.config.lookback_hours for s in ("count", "bins"))

    def stay_columns(self, chunk: StayChunk) -> list[np.ndarray]:
        cfg = self.config
        V, T, W = chunk.n_variables, cfg.n_steps, float(cfg.window_hours)
        p, v, t, _ = chunk.arrays
        g = p * V + v
        size = chunk.n * V
        count = np.bincount(g, minlength=size).astype(float)
        first = np.full(size, np.inf)
        np.minimum.at(first, g, t)
        last = np.full(size, -np.inf)
        np.maximum.at(last, g, t)
        seen = count > 0
        first, last = np.where(seen, first, np.nan), np.where(seen, last, np.nan)
        step, _ = cfg.steps(t)
        cells = np.unique(g * T + step)
        cg, cstep = cells // T, cells % T
        S = cfg.n_subwindows
        csub = np.minimum(np.floor(cstep * cfg.bin_hours / (W / S) + 1e-9).astype(np.int64), S - 1)
        bins = np.bincount(cg * S + csub, minlength=size * S).reshape(size, S).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(seen, count / np.maximum(W - first, cfg.bin_hours), np.nan)
        cols = {"count": count, "bins_observed": bins.sum(axis=1), "hours_to_first": first,
                "hours_since_last": W - last, "rate_per_hour": rate}
        return [cols[s] for s in MISSINGNESS_STATS] + [bins[:, j] for j in range(S)]

    def online_columns(self, chunk: OnlineChunk) -> list[np.ndarray]:
        cfg = self.config
        T, V = cfg.n_steps, chunk.n_variables
        _, _, t, _ = chunk.arrays
        up, uk, ut = chunk.up, chunk.uk, chunk.ut
        t_first = np.full(chunk.size, np.inf)
        np.minimum.at(t_first, chunk.flat, t)
        t_first = t_first.reshape(chunk.n, T, V)
        measured = chunk.cnt > 0
        first_step = np.where(measured.any(axis=1), measured.argmax(axis=1), T)          # (n, V)
        f_at = first_step[up]                                                            # (U, V)
        seen = f_at <= uk[:, None]
        first_t = t_first[up[:, None], np.minimum(f_at, T - 1), np.arange(V)]
        since_first = np.where(seen, ut[:, None] - first_t, np.nan)
        c_bins = chunk.prefix(measured)
        count = chunk.count
        cols = [count, c_bins[up, uk + 1], since_first, chunk.hours_since_last,
                np.where(seen, count / np.maximum(since_first, cfg.bin_hours), np.nan)]
        for k in cfg.lookback_hours:
            lo = chunk.lookback_start(k)
            cols += [chunk.window_sum(chunk.c_cnt, lo), chunk.window_sum(c_bins, lo)]
        return cols
