"""What every summary family of the tabular view shares: the interface, the chunks it reads, two helpers.

A *summary family* (order-free, time-aware, missingness) turns the windowed events of one patient
chunk into per-variable columns. :class:`~core.features.FeatureBuilder` composes the families that
``FeatureConfig.summaries`` names and asks each the same two things, whatever the task shape:

* :meth:`SummaryFamily.stats`: the names of its per-variable statistics, in column order;
* :meth:`SummaryFamily.columns`: their values for one chunk, ``(n_rows, n_variables, n_stats)`` float64,
  where a row is a patient (:class:`StayChunk`, stay task) or a scored patient-hour
  (:class:`OnlineChunk`, online task).

The online chunk computes its per-step cell sums (counts, totals, minima, last values, ...) once, on
first use, so families that read the same grid share it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property

import numpy as np

from core.config import FeatureConfig
from core.exceptions import InternalError

__all__ = ["SummaryFamily", "StayChunk", "OnlineChunk", "slope", "lookback_steps"]


def slope(c, s_x, s_t, s_tt, s_tx) -> np.ndarray:
    """Least-squares slope of value on time from sums over each span (count ``c``, sums of x, t, t*t, t*x).

    NaN where nothing was observed, 0 where every observation has the same time (one time point).
    """
    c = np.asarray(c, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cc = np.maximum(c, 1)
        mt, mx = s_t / cc, s_x / cc
        var_t = s_tt / cc - mt * mt
        # the sums come from prefix differences online: a 1e-6 h^2 floor keeps their rounding from being a slope
        ok = var_t > 1e-6
        result = np.where(ok, (s_tx / cc - mt * mx) / np.where(ok, var_t, 1.0), 0.0)
    return np.where(c > 0, result, np.nan)


def lookback_steps(hours: float, bin_hours: float) -> int:
    """Steps of a lookback of ``hours`` (at least 1): the scored step and the ones before it."""
    return max(1, int(np.ceil(hours / bin_hours - 1e-9)))


class StayChunk:
    """The windowed events of one patient chunk (stay task: one row per patient).

    Parameters
    ----------
    config : FeatureConfig
    n_variables : int
        Variables of the fitted builder (``V``).
    arrays : tuple of ndarray (n_events,)
        Local patient index (0 .. n - 1), variable index, time (h) and clipped value of every event.
    n : int
        Patients in the chunk.
    """

    def __init__(self, config: FeatureConfig, n_variables: int, arrays, n: int) -> None:
        self.config, self.n_variables, self.arrays, self.n = config, n_variables, arrays, n

    @property
    def n_rows(self) -> int:
        """Rows of the tabular view this chunk fills: its patients."""
        return self.n


class OnlineChunk(StayChunk):
    """The windowed events of one patient chunk and its scored patient-hours (online task).

    Parameters
    ----------
    config, n_variables, arrays, n
        As :class:`StayChunk`.
    up, uk : ndarray of int, shape (U,)
        Local patient index and step of every scored hour, sorted.
    ut : ndarray of float, shape (U,)
        The hour's own (latest) time; its features read steps ``<= uk`` only.

    Notes
    -----
    The grids below are ``(n, n_steps, V)`` per-step cell statistics of the events; ``c_*`` are their
    prefix sums over steps, ``c[:, k]`` = the sum over steps ``< k``, so the span of steps
    ``lo .. uk`` of a scored hour is ``c[up, uk + 1] - c[up, lo]`` (:meth:`window_sum`).
    """

    def __init__(self, config: FeatureConfig, n_variables: int, arrays, n: int, up, uk, ut) -> None:
        super().__init__(config, n_variables, arrays, n)
        self.up, self.uk, self.ut = up, uk, ut

    @property
    def n_rows(self) -> int:
        """Rows of the tabular view this chunk fills: its scored patient-hours."""
        return len(self.up)

    @property
    def size(self) -> int:
        """Cells of the ``(n, n_steps, V)`` grid."""
        return self.n * self.config.n_steps * self.n_variables

    @cached_property
    def flat(self) -> np.ndarray:
        """Cell of every event in the flattened ``(n, n_steps, V)`` grid."""
        T, V = self.config.n_steps, self.n_variables
        p, v, t, _ = self.arrays
        step, _ = self.config.steps(t)
        return (p * T + step) * V + v

    def _grid(self, a: np.ndarray) -> np.ndarray:
        return a.reshape(self.n, self.config.n_steps, self.n_variables)

    def cells(self, weights=None) -> np.ndarray:
        """Per-cell sum of ``weights`` (count of events when ``None``), ``(n, n_steps, V)``."""
        return self._grid(np.bincount(self.flat, weights=weights, minlength=self.size))

    def prefix(self, a: np.ndarray) -> np.ndarray:
        """Prefix sums over steps, ``(n, n_steps + 1, V)``: ``prefix[:, k]`` = the sum over steps ``< k``."""
        return np.concatenate([np.zeros((self.n, 1, self.n_variables)), np.cumsum(a, axis=1)], axis=1)

    @cached_property
    def cnt(self) -> np.ndarray:
        """Events per cell (int)."""
        return self.cells()

    @cached_property
    def tot(self) -> np.ndarray:
        """Sum of values per cell."""
        return self.cells(self.arrays[3])

    @cached_property
    def vmin(self) -> np.ndarray:
        """Smallest value per cell (``inf`` where empty)."""
        out = np.full(self.size, np.inf)
        np.minimum.at(out, self.flat, self.arrays[3])
        return self._grid(out)

    @cached_property
    def vmax(self) -> np.ndarray:
        """Largest value per cell (``-inf`` where empty)."""
        out = np.full(self.size, -np.inf)
        np.maximum.at(out, self.flat, self.arrays[3])
        return self._grid(out)

    @cached_property
    def _last(self) -> tuple[np.ndarray, np.ndarray]:
        _, _, t, x = self.arrays
        order = np.lexsort((t, self.flat))            # the latest observation of each cell is its last
        fo = self.flat[order]
        end = np.r_[fo[1:] != fo[:-1], True] if len(fo) else np.zeros(0, bool)
        last_v, last_t = np.full(self.size, np.nan), np.full(self.size, np.nan)
        last_v[fo[end]], last_t[fo[end]] = x[order][end], t[order][end]
        return self._grid(last_v), self._grid(last_t)

    @property
    def last_v(self) -> np.ndarray:
        """Value of the latest event per cell (NaN where empty)."""
        return self._last[0]

    @property
    def last_t(self) -> np.ndarray:
        """Time of the latest event per cell (NaN where empty)."""
        return self._last[1]

    @cached_property
    def idx(self) -> np.ndarray:
        """Last step with an event up to and including each step, ``(n, n_steps, V)``; -1 before the first."""
        steps = np.arange(self.config.n_steps)[None, :, None]
        out = np.where(self.cnt > 0, steps, -1)
        np.maximum.accumulate(out, axis=1, out=out)
        return out

    @cached_property
    def at(self) -> np.ndarray:
        """``(U, V)``: the last observed step so far of every scored hour (0 where none yet)."""
        return np.maximum(self.idx[self.up, self.uk], 0)

    @cached_property
    def seen(self) -> np.ndarray:
        """``(U, V)``: whether the variable was observed up to and including the scored hour."""
        return self.idx[self.up, self.uk] >= 0

    def at_last(self, grid: np.ndarray) -> np.ndarray:
        """``(U, V)``: ``grid`` at the last observed step so far of every scored hour."""
        return grid[self.up[:, None], self.at, np.arange(self.n_variables)]

    @cached_property
    def c_cnt(self) -> np.ndarray:
        """Prefix sums of :attr:`cnt`."""
        return self.prefix(self.cnt)

    @cached_property
    def c_tot(self) -> np.ndarray:
        """Prefix sums of :attr:`tot`."""
        return self.prefix(self.tot)

    @cached_property
    def count(self) -> np.ndarray:
        """``(U, V)``: events up to and including the scored hour."""
        return np.cumsum(self.cnt, axis=1)[self.up, self.uk].astype(float)

    @cached_property
    def hours_since_last(self) -> np.ndarray:
        """``(U, V)``: hours from the latest event so far to the scored hour's time (NaN before the first)."""
        return np.where(self.seen, self.ut[:, None] - self.at_last(self.last_t), np.nan)

    def lookback_start(self, hours: float) -> np.ndarray:
        """``(U,)``: first step of the last ``hours`` of every scored hour (its step and the ones before)."""
        return np.maximum(self.uk + 1 - lookback_steps(hours, self.config.bin_hours), 0)

    def window_sum(self, c: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """``(U, V)``: the sum over steps ``lo .. uk`` of every scored hour, from prefix sums ``c``."""
        return c[self.up, self.uk + 1] - c[self.up, lo]


class SummaryFamily(ABC):
    """One family of per-variable summaries, for both task shapes.

    Subclasses name their statistics (:meth:`stay_stats`, :meth:`online_stats`) and compute them
    (:meth:`stay_columns`, :meth:`online_columns`); callers use :meth:`stats` and :meth:`columns`,
    which pick the task shape of ``config``.

    Parameters
    ----------
    config : FeatureConfig
    """

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config

    def stats(self) -> tuple[str, ...]:
        """Per-variable statistics of this family, in column order, for the task of ``config``."""
        return self.online_stats() if self.config.task == "online" else self.stay_stats()

    def columns(self, chunk: StayChunk) -> np.ndarray:
        """The statistics of :meth:`stats` for one chunk, ``(chunk.n_rows, V, n_stats)`` float64.

        Raises
        ------
        InternalError
            If the chunk's shape is not the config's task or a family returns another number of
            columns than it names.
        """
        online = self.config.task == "online"
        if online != isinstance(chunk, OnlineChunk):
            raise InternalError(f"{type(self).__name__} got a {type(chunk).__name__} for the "
                                f"{self.config.task!r} task.")
        cols = self.online_columns(chunk) if online else self.stay_columns(chunk)
        names = self.stats()
        if len(cols) != len(names):
            raise InternalError(f"{type(self).__name__} computed {len(cols)} columns but names {len(names)}.")
        shape = (chunk.n_rows, chunk.n_variables)
        return np.stack([np.reshape(c, shape) for c in cols], axis=2) if cols else np.zeros(shape + (0,))

    @abstractmethod
    def stay_stats(self) -> tuple[str, ...]:
        """Statistics of the stay task (one row per patient)."""

    @abstractmethod
    def online_stats(self) -> tuple[str, ...]:
        """Statistics of the online task (one row per scored patient-hour)."""

    @abstractmethod
    def stay_columns(self, chunk: StayChunk) -> list[np.ndarray]:
        """Stay task: one ``(n * V,)`` array per statistic, rows in (patient, variable) order."""

    @abstractmethod
    def online_columns(self, chunk: OnlineChunk) -> list[np.ndarray]:
        """Online task: one ``(U, V)`` array per statistic, from steps up to each scored hour only."""

    def subwindows(self) -> list[tuple[float, float]]:
        """Stay task: the ``n_subwindows`` equal sub-windows ``(start, end)`` hours of the window."""
        w, s = float(self.config.window_hours), self.config.n_subwindows
        return [(w * j / s, w * (j + 1) / s) for j in range(s)]

    def subwindow_names(self) -> list[str]:
        """Stay task: ``"<start>_<end>h"`` of every sub-window, as column names use them."""
        return [f"{a:g}_{b:g}h" for a, b in self.subwindows()]
