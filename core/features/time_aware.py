"""The time-aware summaries: *when* things happened, added to the order-free ones (``summaries="time_aware"``).

Stay task, per variable: the hour of the (first) minimum and of the maximum since the window's start,
the least-squares slope within each of ``n_subwindows`` equal sub-windows, and mean / last / count over
the last ``k`` hours of the window (``recent_hours``). Online task, at hour ``t`` from data up to ``t``
only: hours since the minimum and since the maximum and the slope over each lookback, and mean / last /
count over the last ``k`` hours.
"""
from __future__ import annotations

import numpy as np

from core.features.summaries import OnlineChunk, StayChunk, SummaryFamily, lookback_steps, slope

__all__ = ["TimeAwareSummaries"]


class TimeAwareSummaries(SummaryFamily):
    """Per-variable summaries of the timing of the observations; composed after the order-free ones."""

    def _recent_stats(self) -> tuple[str, ...]:
        return tuple(f"{s}_{k:g}h" for k in self.config.recent_hours for s in ("mean_last", "last", "count_last"))

    def stay_stats(self) -> tuple[str, ...]:
        return ("hour_of_min", "hour_of_max") + tuple(f"slope_{w}" for w in self.subwindow_names()) + \
            self._recent_stats()

    def online_stats(self) -> tuple[str, ...]:
        return tuple(f"{s}_{k:g}h" for k in self.config.lookback_hours
                     for s in ("hours_since_min", "hours_since_max", "slope")) + self._recent_stats()

    def stay_columns(self, chunk: StayChunk) -> list[np.ndarray]:
        """NaN where a variable has no observation in the span (a slope is 0 with a single time point, as the
        whole-window slope is)."""
        cfg = self.config
        V, W = chunk.n_variables, float(cfg.window_hours)
        p, v, t, x = chunk.arrays
        g = p * V + v
        size = chunk.n * V
        cols = []
        for key in (x, -x):                    # earliest minimum, earliest maximum
            o = np.lexsort((t, key, g))
            go = g[o]
            first = np.r_[True, go[1:] != go[:-1]] if len(go) else np.zeros(0, bool)
            hour = np.full(size, np.nan)
            hour[go[first]] = t[o][first]
            cols.append(hour)
        S = cfg.n_subwindows
        sub = np.minimum(np.floor(t / (W / S)).astype(np.int64), S - 1)
        gs = g * S + sub

        def sums(w):
            return np.bincount(gs, weights=w, minlength=size * S).reshape(size, S)
        slopes = slope(sums(None), sums(x), sums(t), sums(t * t), sums(t * x))
        cols += [slopes[:, j] for j in range(S)]
        for k in cfg.recent_hours:
            sel = t >= W - k
            gk, tk, xk = g[sel], t[sel], x[sel]
            o = np.lexsort((tk, gk))
            gk, xk = gk[o], xk[o]
            c = np.bincount(gk, minlength=size).astype(float)
            tot = np.bincount(gk, weights=xk, minlength=size)
            last = np.full(size, np.nan)
            end = np.r_[gk[1:] != gk[:-1], True] if len(gk) else np.zeros(0, bool)
            last[gk[end]] = xk[end]
            with np.errstate(invalid="ignore", divide="ignore"):
                cols += [np.where(c > 0, tot / np.maximum(c, 1), np.nan), last, c]
        return cols

    def online_columns(self, chunk: OnlineChunk) -> list[np.ndarray]:
        """Per lookback ``k``: hours since the (earliest) minimum and since the maximum of the last ``k``
        hours and the least-squares slope of value on time over them; per ``recent_hours`` k: mean, last
        value and count of the last ``k`` hours (NaN where the variable was not measured in them)."""
        cfg = self.config
        T = cfg.n_steps
        _, _, t, x = chunk.arrays
        up, uk, ut, flat = chunk.up, chunk.uk, chunk.ut, chunk.flat

        def when(order_key):      # time of the first event of each cell in the order (x, then t)
            o = np.lexsort((t, order_key, flat))
            fo = flat[o]
            first = np.r_[True, fo[1:] != fo[:-1]] if len(fo) else np.zeros(0, bool)
            out = np.full(chunk.size, np.nan)
            out[fo[first]] = t[o][first]
            return out.reshape(chunk.n, T, chunk.n_variables)

        t_min, t_max = when(x), when(-x)
        c_t, c_tt, c_tx = (chunk.prefix(chunk.cells(w)) for w in (t, t * t, t * x))
        vmin, vmax = chunk.vmin, chunk.vmax
        cols = []
        for k in cfg.lookback_hours:
            kb = lookback_steps(k, cfg.bin_hours)                    # steps uk-kb+1 .. uk
            lo = chunk.lookback_start(k)
            rmin, rmax = vmin.copy(), vmax.copy()
            rtmin, rtmax = t_min.copy(), t_max.copy()
            for j in range(1, min(kb, T)):       # older cells win ties: the earliest minimum / maximum
                lower = vmin[:, :-j] <= rmin[:, j:]
                rmin[:, j:] = np.where(lower, vmin[:, :-j], rmin[:, j:])
                rtmin[:, j:] = np.where(lower, t_min[:, :-j], rtmin[:, j:])
                higher = vmax[:, :-j] >= rmax[:, j:]
                rmax[:, j:] = np.where(higher, vmax[:, :-j], rmax[:, j:])
                rtmax[:, j:] = np.where(higher, t_max[:, :-j], rtmax[:, j:])
            w = {name: chunk.window_sum(c, lo) for name, c in
                 (("n", chunk.c_cnt), ("x", chunk.c_tot), ("t", c_t), ("tt", c_tt), ("tx", c_tx))}
            has = w["n"] > 0
            cols += [np.where(has, ut[:, None] - rtmin[up, uk], np.nan),
                     np.where(has, ut[:, None] - rtmax[up, uk], np.nan),
                     slope(w["n"], w["x"], w["t"], w["tt"], w["tx"])]
        last = chunk.at_last(chunk.last_v)
        for k in cfg.recent_hours:
            lo = chunk.lookback_start(k)
            w_cnt = chunk.window_sum(chunk.c_cnt, lo)
            w_tot = chunk.window_sum(chunk.c_tot, lo)
            has = w_cnt > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(has, w_tot / np.maximum(w_cnt, 1), np.nan)
            cols += [mean, np.where(has, last, np.nan), w_cnt.astype(float)]
        return cols
