"""The order-free summaries: what was measured and how much, never in which order within the window.

Stay task, per variable: first, last, mean, min, max, std, count, slope and hours since the last
observation (:data:`TABULAR_STATS`). Online task, at each scored hour from data up to that hour: last
value, hours since it and count (:data:`ONLINE_STATS`), then min / max / mean over each
``FeatureConfig.lookback_hours`` (:data:`ONLINE_WINDOW_STATS`, names ``min_6h`` ...).
"""
from __future__ import annotations

import numpy as np

from core.features.summaries import OnlineChunk, StayChunk, SummaryFamily, lookback_steps

__all__ = ["OrderFreeSummaries", "TABULAR_STATS", "ONLINE_STATS", "ONLINE_WINDOW_STATS"]

#: per-variable summaries of the tabular view.
TABULAR_STATS = ("first", "last", "mean", "min", "max", "std", "count", "slope", "hours_since_last")
#: per-variable features of one patient-hour (online task), from data up to and including that hour;
#: ``min/max/mean`` are computed for every ``FeatureConfig.lookback_hours`` k (names ``min_6h`` ...).
ONLINE_STATS = ("last", "hours_since_last", "count")
ONLINE_WINDOW_STATS = ("min", "max", "mean")


class OrderFreeSummaries(SummaryFamily):
    """Per-variable summaries that ignore the order of the observations (``summaries="order_free"``).

    Also the first part of ``summaries="time_aware"``, which adds :class:`~core.features.time_aware.TimeAwareSummaries`.
    """

    def stay_stats(self) -> tuple[str, ...]:
        return TABULAR_STATS

    def online_stats(self) -> tuple[str, ...]:
        return ONLINE_STATS + tuple(f"{s}_{k:g}h" for k in self.config.lookback_hours for s in ONLINE_WINDOW_STATS)

    def stay_columns(self, chunk: StayChunk) -> list[np.ndarray]:
        n, V = chunk.n, chunk.n_variables
        p, v, t, x = chunk.arrays
        g = p * V + v
        order = np.lexsort((t, g))               # by group, then time
        g, t, x = g[order], t[order], x[order]
        out = np.full((n * V, len(TABULAR_STATS)), np.nan)
        out[:, TABULAR_STATS.index("count")] = 0.0
        if len(g):
            uniq, start = np.unique(g, return_index=True)
            end = np.r_[start[1:], len(g)] - 1
            cnt = np.bincount(g, minlength=n * V)[uniq].astype(float)
            s_x = np.add.reduceat(x, start)
            s_xx = np.add.reduceat(x * x, start)
            s_t = np.add.reduceat(t, start)
            s_tt = np.add.reduceat(t * t, start)
            s_tx = np.add.reduceat(t * x, start)
            mean = s_x / cnt
            var = np.maximum(s_xx / cnt - mean ** 2, 0.0)
            var_t = s_tt / cnt - (s_t / cnt) ** 2
            with np.errstate(invalid="ignore", divide="ignore"):
                slope = np.where(var_t > 1e-9, (s_tx / cnt - mean * s_t / cnt) / np.where(var_t > 1e-9, var_t, 1),
                                 0.0)
            cols = {"first": x[start], "last": x[end], "mean": mean, "min": np.minimum.reduceat(x, start),
                    "max": np.maximum.reduceat(x, start), "std": np.sqrt(var), "count": cnt, "slope": slope,
                    "hours_since_last": self.config.window_hours - t[end]}
            for j, s in enumerate(TABULAR_STATS):
                out[uniq, j] = cols[s]
        return [out[:, j] for j in range(len(TABULAR_STATS))]

    def online_columns(self, chunk: OnlineChunk) -> list[np.ndarray]:
        cfg = self.config
        T = cfg.n_steps
        up, uk = chunk.up, chunk.uk
        cols = [np.where(chunk.seen, chunk.at_last(chunk.last_v), np.nan), chunk.hours_since_last, chunk.count]
        for k in cfg.lookback_hours:
            kb = lookback_steps(k, cfg.bin_hours)                    # steps uk-kb+1 .. uk
            lo = chunk.lookback_start(k)
            w_cnt = chunk.window_sum(chunk.c_cnt, lo)
            w_tot = chunk.window_sum(chunk.c_tot, lo)
            rmin, rmax = chunk.vmin.copy(), chunk.vmax.copy()
            for j in range(1, min(kb, T)):                           # rolling min/max over the last kb steps
                np.minimum(rmin[:, j:], chunk.vmin[:, :-j], out=rmin[:, j:])
                np.maximum(rmax[:, j:], chunk.vmax[:, :-j], out=rmax[:, j:])
            has = w_cnt > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(has, w_tot / np.maximum(w_cnt, 1), np.nan)
            cols += [np.where(has, rmin[up, uk], np.nan), np.where(has, rmax[up, uk], np.nan), mean]
        return cols
