"""Model inputs from a cohort: hourly sequences for recurrent networks, summaries for classical models.

Both views are built for the same patients in the same order by one :class:`FeatureBuilder`,
which learns every statistic (clipping quantiles, means, standard deviations) from training
patients only and then transforms any patients, including unseen ones.

Sequence channels (``X_seq``, shape ``(n_patients, n_steps, n_channels)``), in this order:

* ``value`` per variable: the last value in the step, carried forward; before the first
  observation the training mean. Standardised with training statistics (so "mean" is 0).
* ``mask`` per variable: 1 if observed in the step, else 0.
* ``delta`` per variable: hours since the last observation, capped at
  ``delta_cap_hours`` and log-scaled to [0, 1] (1 = never observed yet).
* ``static`` per static attribute: standardised value, 0 when unknown, repeated on every step;
  ``static_missing`` per static attribute: 1 when unknown.
* online task only, ``time``: hours since the start of the stay at the end of the step,
  ``log1p(hours) / log1p(window_hours)`` (the classical models see the same as
  ``time:hours_since_admission``; a network would otherwise have to count steps).

``FeatureSet.seq_variables`` / ``seq_kinds`` give, for each channel, its clinical variable and kind,
so explanations can sum attributions per variable. Tabular columns are named ``"<variable>:<stat>"``
with ``FeatureSet.tab_variables`` giving the variable of each column.

**What the tabular view summarises** (``FeatureConfig.summaries``; the statistics of each are
:meth:`FeatureBuilder.tab_stats`). Each family is a class of its own, for both task shapes
(:class:`~core.features.summaries.SummaryFamily`), which the builder composes:
:class:`~core.features.order_free.OrderFreeSummaries`, :class:`~core.features.time_aware.TimeAwareSummaries`
(after the order-free ones) and :class:`~core.features.missingness.MissingnessSummaries`.

* ``"order_free"`` (default): first, last, mean, min, max, std, count, slope, hours since last
  (online: last, hours since last, count and min/max/mean over each lookback);
* ``"time_aware"``: the same plus *when* things happened. Stay task, per variable: the hour of the
  (first) minimum and of the maximum since the window's start, the least-squares slope within each of
  ``n_subwindows`` equal sub-windows, and mean / last / count over the last ``k`` hours of the window
  (``recent_hours``). Online task, at hour ``t`` from data up to ``t`` only: hours since the minimum
  and since the maximum and the slope over each lookback, and mean / last / count over the last
  ``k`` hours;
* ``"missingness_only"``: only *when* each variable was measured, never a value: number of
  observations, measured bins (per sub-window for stays, per lookback online), hours from the
  start to the first measurement (online: hours since the first), hours since the last one, the
  measurement rate (observations per hour since the first one) and, per static attribute, whether it
  is unknown (``"<attribute>:missing"``). The sequence view's value channels and static values are 0
  in this mode, so no value reaches any model.

**Out of core.** ``transform(..., out_dir=folder)`` writes the large arrays (``X_seq``, and the online
task's per-hour ``X_tab``) patient chunk by patient chunk into ``.npy`` files in ``folder`` and returns
them as read-only memory maps (``np.load(mmap_mode="r")``), so a cohort of 100,000+ stays never holds
its sequences in memory; the numbers are the same as in memory, bit for bit. The recurrent models read
such arrays one batch at a time.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.cohort import Cohort
from core.config import FeatureConfig
from core.exceptions import CohortError, InternalError, RunError
from core.features.missingness import MISSINGNESS_STATS, MissingnessSummaries
from core.features.order_free import ONLINE_STATS, ONLINE_WINDOW_STATS, TABULAR_STATS, OrderFreeSummaries
from core.features.summaries import OnlineChunk, StayChunk, SummaryFamily
from core.features.time_aware import TimeAwareSummaries

__all__ = ["FeatureBuilder", "FeatureSet", "TABULAR_STATS", "ONLINE_STATS", "ONLINE_WINDOW_STATS", "CHANNEL_KINDS",
           "MISSINGNESS_STATS"]

#: grid cells (patients x steps x variables) per patient chunk when building features: bounds the
#: memory of the float64 work arrays on long stays, and out of core what is in memory at once.
_CHUNK_CELLS = 2_000_000
#: kinds of sequence channels.
CHANNEL_KINDS = ("value", "mask", "delta", "static", "static_missing", "time")
#: the summary families of each ``FeatureConfig.summaries``, in column order.
_FAMILIES = {"order_free": (OrderFreeSummaries,), "time_aware": (OrderFreeSummaries, TimeAwareSummaries),
             "missingness_only": (MissingnessSummaries,)}


@dataclass(frozen=True)
class FeatureSet:
    """Both model views for one list of patients (same order in every array).

    Attributes
    ----------
    patient_ids : ndarray of str, shape (n_patients,)
    X_tab : ndarray, shape (n_units, n_tab_features); NaN where a variable was never observed
        (imputation happens inside the classical pipelines, fitted on training data). Stay task:
        one row per patient (float64). Online task: one row per patient-hour (float32), in the
        order of ``unit_patient`` / ``unit_step``.
    X_seq : ndarray of float32, shape (n_patients, n_steps, n_channels); finite.
        A read-only ``np.memmap`` when built with ``transform(..., out_dir=...)`` (so is the online
        ``X_tab``); either way an ndarray, indexed the same.
    lengths : ndarray of int, shape (n_patients,)
        Stay task: steps up to and including the last step with any observation (at least 1).
        Online task: steps up to and including the last scored hour (at least 1).
    tab_names, tab_variables : list of str, one per tabular column.
    seq_names, seq_variables, seq_kinds : list of str, one per sequence channel.
    unit_patient, unit_step : ndarray of int, shape (n_units,), online task only
        Row of each scored patient-hour: its patient (index into ``patient_ids``) and step.
    unit_time : ndarray of float, shape (n_units,), online task only
        The input's own time of that hour (its last row in the step): the risk uses data up to
        and including it.
    """

    patient_ids: np.ndarray
    X_tab: np.ndarray
    X_seq: np.ndarray
    lengths: np.ndarray
    tab_names: list
    tab_variables: list
    seq_names: list
    seq_variables: list
    seq_kinds: list
    unit_patient: np.ndarray | None = None
    unit_step: np.ndarray | None = None
    unit_time: np.ndarray | None = None

    @property
    def online(self) -> bool:
        """Whether rows are patient-hours (online task) rather than patients."""
        return self.unit_patient is not None

    @property
    def unit_ids(self) -> np.ndarray:
        """Patient id of every unit: one per patient (stay) or per patient-hour (online)."""
        return self.patient_ids[self.unit_patient] if self.online else self.patient_ids

    def get(self, input_kind: str) -> np.ndarray:
        """``X_tab`` for ``"tabular"``, ``X_seq`` for ``"sequence"`` (a registry ``ModelSpec.input_kind``)."""
        if input_kind == "tabular":
            return self.X_tab
        if input_kind == "sequence":
            return self.X_seq
        raise ValueError(f"input_kind must be 'tabular' or 'sequence'; got {input_kind!r}.")

    def step_targets(self, y_units: np.ndarray) -> np.ndarray:
        """Online task: per-unit labels laid out as ``(n_patients, n_steps)``, NaN where no hour is scored.

        This is the target of a sequence model (a loss at every labelled hour).
        """
        out = np.full(self.X_seq.shape[:2], np.nan, dtype=np.float32)
        out[self.unit_patient, self.unit_step] = np.asarray(y_units, dtype=np.float32)
        return out

    def units_from_steps(self, risk_over_time: np.ndarray) -> np.ndarray:
        """Online task: the per-unit risk from a sequence model's ``(n_patients, n_steps)`` output."""
        return np.asarray(risk_over_time)[self.unit_patient, self.unit_step]

    def __len__(self) -> int:
        return len(self.patient_ids)


def _codes(values: pd.Series, categories) -> np.ndarray:
    """Integer index of each value in ``categories`` (-1 when absent); fast for categorical columns."""
    target = pd.Index([str(c) for c in categories])
    if isinstance(values.dtype, pd.CategoricalDtype):
        # Map the (few) categories, then index by the codes: no per-row string work.
        cat_pos = target.get_indexer(values.cat.categories.astype(str))
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, np.r_[cat_pos, -1][codes], -1).astype(np.int64)
    return target.get_indexer(values.astype(str)).astype(np.int64)


class _ArrayStore:
    """Where :meth:`FeatureBuilder.transform` puts its large arrays: in memory, or ``.npy`` files in ``folder``.

    ``empty`` allocates (``np.empty``, or ``open_memmap`` of a new file, filled chunk by chunk by the
    caller); ``finish`` hands an array back: as it is in memory, else flushed and reopened read-only.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = None if folder is None else Path(folder)

    def empty(self, name: str, shape: tuple, dtype) -> np.ndarray:
        if self.folder is None:
            return np.empty(shape, dtype=dtype)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.npy"
        if path.exists():   # another feature set may still map it: truncating it would corrupt that one
            raise FileExistsError(f"{path} already exists; pass a new, empty folder as out_dir "
                                  "(one per feature set), e.g. transform(cohort, ids, out_dir=work / 'test').")
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

    def finish(self, array: np.ndarray) -> np.ndarray:
        if not isinstance(array, np.memmap):
            return array
        array.flush()
        return np.load(array.filename, mmap_mode="r")


class FeatureBuilder:
    """Learns feature statistics on training patients and builds both views for any patients.

    Parameters
    ----------
    config : FeatureConfig, optional

    Examples
    --------
    >>> fb = FeatureBuilder().fit(cohort, train_ids)          # doctest: +SKIP
    >>> fs = fb.transform(cohort, test_ids)                   # doctest: +SKIP
    >>> fs.X_seq.shape, fs.X_tab.shape                        # doctest: +SKIP
    ((600, 48, 118), (600, 338))
    """

    def __init__(self, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, cohort: Cohort, patient_ids) -> "FeatureBuilder":
        """Learn variables, clipping bounds and standardisation from ``patient_ids`` only.

        Raises
        ------
        CohortError
            If no training patient has any event in the window.
        """
        ids = self._check_ids(patient_ids)
        cfg = self.config
        ev = self._window(cohort.events)
        ev = ev[_codes(ev["patient_id"], ids) >= 0]
        if not len(ev):
            raise CohortError("No training patient has an event inside the feature window "
                              f"(window_hours={cfg.window_hours}). Check time units or widen "
                              "FeatureConfig(window_hours=...).")
        self.variables_ = sorted(map(str, ev["variable"].unique()))
        var = ev["variable"].astype(str).to_numpy()
        val = ev["value"].to_numpy(dtype=float)
        lo, hi = {}, {}
        df = pd.DataFrame({"v": var, "x": val})
        if cfg.clip_quantile > 0:
            q = df.groupby("v")["x"].quantile([cfg.clip_quantile, 1 - cfg.clip_quantile]).unstack()
            lo, hi = q.iloc[:, 0].to_dict(), q.iloc[:, 1].to_dict()
        self.clip_lo_ = np.array([lo.get(v, -np.inf) for v in self.variables_], dtype=float)
        self.clip_hi_ = np.array([hi.get(v, np.inf) for v in self.variables_], dtype=float)
        # Standardise on binned (per-step) training values: what the network actually sees. Computed
        # from the observed cells only (sparse), so a 336-hour window costs no dense grid.
        mean, std, _ = self._cell_moments(*self._event_arrays(cohort, ids))
        self.mean_ = np.nan_to_num(mean, nan=0.0)
        self.std_ = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        self.static_columns_ = list(map(str, cohort.static.columns)) if cfg.include_static else []
        st = self._static(cohort, ids)
        with np.errstate(invalid="ignore"):
            smean = np.nanmean(st, axis=0) if st.size else np.zeros(len(self.static_columns_))
            sstd = np.nanstd(st, axis=0) if st.size else np.ones(len(self.static_columns_))
        self.static_mean_ = np.nan_to_num(np.asarray(smean, dtype=float), nan=0.0)
        self.static_std_ = np.where(np.isfinite(sstd) & (sstd > 1e-8), sstd, 1.0)
        self.n_train_ = len(ids)
        return self

    def _cell_moments(self, p, v, t, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, SD and number of the per-step (binned) values of every variable, NaN where never observed.
        Computed from the observed cells only (sparse), so a 336-hour window costs no dense grid."""
        T, V = self.config.n_steps, len(self.variables_)
        step, _ = self.config.steps(t)
        cells, inv = np.unique((p * T + step) * V + v, return_inverse=True)
        cell_mean = np.bincount(inv, weights=x) / np.bincount(inv) if len(inv) else np.zeros(0)
        cell_var = (cells % V).astype(np.int64)
        n_obs = np.bincount(cell_var, minlength=V).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(cell_var, weights=cell_mean, minlength=V) / n_obs
            std = np.sqrt(np.bincount(cell_var, weights=(cell_mean - mean[cell_var]) ** 2, minlength=V) / n_obs)
        return mean, std, n_obs

    def value_moments(self, cohort: Cohort, patient_ids=None) -> dict:
        """What :meth:`fit` measured on the training patients, measured on other patients (e.g. another hospital's).

        Parameters
        ----------
        cohort : Cohort
        patient_ids : sequence of str, optional
            Default: every patient of ``cohort``.

        Returns
        -------
        dict with ``"series"``: ``(n_variables, 3)`` array of mean, SD and number of the per-step values of each
        of :attr:`variables_` (clipped at the training quantiles, as the models see them; NaN and 0 where never
        observed), and ``"static"``: ``(n_static, 3)`` array of mean, SD and number of known values of each of
        :attr:`static_columns_`. Compare with ``mean_``/``std_`` and ``static_mean_``/``static_std_``.
        """
        self._check_fitted()
        ids = self._check_ids(cohort.patient_ids if patient_ids is None else patient_ids)
        series = np.column_stack(self._cell_moments(*self._event_arrays(cohort, ids)))
        st = self._static(cohort, ids)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)            # an attribute no patient has: NaN, said so
            static = np.column_stack([np.nanmean(st, axis=0), np.nanstd(st, axis=0), np.isfinite(st).sum(axis=0)]) \
                if st.shape[1] else np.zeros((0, 3))
        return {"series": series, "static": static}

    # -- transforming -----------------------------------------------------------------------
    def transform(self, cohort: Cohort, patient_ids=None, *, out_dir: str | Path | None = None) -> FeatureSet:
        """Build both views for ``patient_ids`` (default: every patient of ``cohort``).

        Parameters
        ----------
        cohort : Cohort
        patient_ids : sequence of str, optional
        out_dir : str or Path, optional
            Build out of core: ``X_seq`` (and, online, ``X_tab``) are written chunk by chunk to
            ``out_dir/X_seq.npy`` (``X_tab.npy``) and returned as read-only memory maps; the folder is
            created if needed and must not hold those files already. The numbers are the same as in
            memory. The caller removes the folder once the feature set is no longer used.

        Returns
        -------
        FeatureSet
            ``X_seq`` (n, n_steps, n_channels) float32, ``X_tab`` (n, n_tab) float64, same patient order.

        Raises
        ------
        FileExistsError
            ``out_dir`` already holds ``X_seq.npy`` or ``X_tab.npy`` (an earlier feature set may still map them).

        Examples
        --------
        >>> fs = fb.transform(cohort, test_ids, out_dir="work/test")     # doctest: +SKIP
        >>> type(fs.X_seq).__name__                                      # doctest: +SKIP
        'memmap'
        """
        self._check_fitted()
        ids = self._check_ids(cohort.patient_ids if patient_ids is None else patient_ids)
        names = dict(tab_names=self.tab_names, tab_variables=self.tab_variables, seq_names=self.seq_names,
                     seq_variables=self.seq_variables, seq_kinds=self.seq_kinds)
        store = _ArrayStore(out_dir)
        if self.config.task == "online":
            return self._online(cohort, ids, names, store)
        return self._stay(cohort, ids, names, store)

    def sequence_nbytes(self, n_patients: int) -> int:
        """Bytes of the ``X_seq`` that :meth:`transform` builds for ``n_patients`` patients (float32)."""
        self._check_fitted()
        return int(n_patients) * self.config.n_steps * len(self.seq_kinds) * np.dtype(np.float32).itemsize

    # -- names ------------------------------------------------------------------------------
    @property
    def seq_variables(self) -> list[str]:
        self._check_fitted()
        return self.variables_ * 3 + self.static_columns_ * 2 + self._time_channel * ["time"]

    @property
    def _time_channel(self) -> int:
        return int(self.config.task == "online")

    @property
    def seq_kinds(self) -> list[str]:
        self._check_fitted()
        v, s = len(self.variables_), len(self.static_columns_)
        return ["value"] * v + ["mask"] * v + ["delta"] * v + ["static"] * s + ["static_missing"] * s + \
            ["time"] * self._time_channel

    @property
    def seq_names(self) -> list[str]:
        return [f"{v}:{k}" for v, k in zip(self.seq_variables, self.seq_kinds)]

    @property
    def tab_stats(self) -> tuple[str, ...]:
        """Per-variable tabular statistics, in column order (stay or online task, ``FeatureConfig.summaries``)."""
        return sum((f.stats() for f in self._families), ())

    @property
    def _families(self) -> tuple[SummaryFamily, ...]:
        """The summary families of ``FeatureConfig.summaries``, in column order."""
        kinds = _FAMILIES.get(self.config.summaries)
        if kinds is None:
            raise InternalError(f"No summary families for FeatureConfig.summaries={self.config.summaries!r}; "
                                f"known: {sorted(_FAMILIES)}.")
        return tuple(kind(self.config) for kind in kinds)

    @property
    def _static_kind(self) -> str:
        """Suffix of the static tabular columns: their values, or (missingness only) whether each is unknown."""
        return "missing" if self.config.summaries == "missingness_only" else "static"

    def _static_tab(self, st: np.ndarray) -> np.ndarray:
        """The static tabular columns of ``st``: the values, or 1.0 where unknown (missingness only)."""
        return (~np.isfinite(st)).astype(float) if self.config.summaries == "missingness_only" else st

    @property
    def tab_variables(self) -> list[str]:
        self._check_fitted()
        extra = ["time"] if self.config.task == "online" else []
        return [v for v in self.variables_ for _ in self.tab_stats] + extra + self.static_columns_

    @property
    def tab_names(self) -> list[str]:
        self._check_fitted()
        extra = ["time:hours_since_admission"] if self.config.task == "online" else []
        return [f"{v}:{s}" for v in self.variables_ for s in self.tab_stats] + extra + \
            [f"{c}:{self._static_kind}" for c in self.static_columns_]

    # -- persistence (JSON + npz, no pickle) -----------------------------------------------
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able metadata and numpy arrays describing the fitted builder."""
        self._check_fitted()
        meta = {"config": asdict(self.config), "variables": self.variables_,
                "static_columns": self.static_columns_, "n_train": self.n_train_}
        arrays = {k: getattr(self, k + "_") for k in ("clip_lo", "clip_hi", "mean", "std", "static_mean",
                                                     "static_std")}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays) -> "FeatureBuilder":
        fb = cls(FeatureConfig(**meta["config"]))
        fb.variables_ = list(meta["variables"])
        fb.static_columns_ = list(meta["static_columns"])
        fb.n_train_ = int(meta["n_train"])
        for k in ("clip_lo", "clip_hi", "mean", "std", "static_mean", "static_std"):
            setattr(fb, k + "_", np.asarray(arrays[k], dtype=float))
        return fb

    def save(self, folder: str | Path) -> None:
        """Write ``features.json`` and ``features.npz`` into ``folder``."""
        folder = Path(folder)
        meta, arrays = self.to_state()
        (folder / "features.json").write_text(json.dumps(meta, indent=2))
        np.savez(folder / "features.npz", **arrays)

    @classmethod
    def load(cls, folder: str | Path) -> "FeatureBuilder":
        """Read a builder written by :meth:`save`. Raises :class:`RunError` if missing or corrupt."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "features.json").read_text())
            with np.load(folder / "features.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            return cls.from_state(meta, arrays)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RunError(f"Cannot read the feature builder in {folder} ({err}). The run folder is incomplete "
                           "or corrupt: train again with `python -m core train ...`.") from err

    # -- internals --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "mean_"):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError("This FeatureBuilder is not fitted yet. Call fit(cohort, train_ids) first.")

    @staticmethod
    def _check_ids(patient_ids) -> np.ndarray:
        ids = np.asarray([str(p) for p in patient_ids], dtype=object)
        if len(ids) == 0:
            raise CohortError("No patients were given to build features for. Pass at least one patient id.")
        if len(set(ids)) != len(ids):
            raise CohortError("Patient ids passed to the feature builder contain duplicates; pass each once.")
        return ids

    def _window(self, events: pd.DataFrame) -> pd.DataFrame:
        return events[self.config.steps(events["time_hours"].to_numpy())[1]]

    def _event_arrays(self, cohort: Cohort, ids: np.ndarray):
        """Row index, variable index, time (h) and clipped value of every windowed event of ``ids``."""
        ev = self._window(cohort.events)
        p = _codes(ev["patient_id"], list(ids))
        v = _codes(ev["variable"], self.variables_)
        keep = (p >= 0) & (v >= 0)
        p, v = p[keep], v[keep]
        t = ev["time_hours"].to_numpy(dtype=float)[keep]
        x = ev["value"].to_numpy(dtype=float)[keep]
        if hasattr(self, "clip_lo_"):
            x = np.clip(x, self.clip_lo_[v], self.clip_hi_[v])
        return p, v, t, x

    def _grid(self, arrays, n: int):
        """Per-step mean value (n, T, V), standardised, and observation mask (n, T, V) of event arrays."""
        cfg = self.config
        T, V = cfg.n_steps, len(self.variables_)
        p, v, t, x = arrays
        step, _ = cfg.steps(t)
        flat = (p * T + step) * V + v
        cnt = np.bincount(flat, minlength=n * T * V).reshape(n, T, V)
        tot = np.bincount(flat, weights=x, minlength=n * T * V).reshape(n, T, V)
        mask = cnt > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = np.where(mask, tot / np.maximum(cnt, 1), 0.0)
        vals = np.where(mask, (vals - self.mean_) / self.std_, 0.0)
        return vals, mask

    def _static(self, cohort: Cohort, ids: np.ndarray) -> np.ndarray:
        if not self.static_columns_:
            return np.zeros((len(ids), 0))
        st = cohort.static.reindex(index=pd.Index(ids), columns=self.static_columns_)
        return st.to_numpy(dtype=float)

    def _chunks(self, arrays, n: int):
        """Yield ``(first, last, local event arrays)`` over patient chunks (bounded memory per chunk)."""
        T, V = self.config.n_steps, max(len(self.variables_), 1)
        size = max(16, min(n, int(_CHUNK_CELLS // (T * V))))
        p, v, t, x = arrays
        order = np.argsort(p, kind="stable")     # each chunk takes its events only (no sorted copy of all)
        start = np.r_[0, np.cumsum(np.bincount(p, minlength=n))]
        for a in range(0, n, size):
            b = min(n, a + size)
            rows = order[start[a]:start[b]]
            yield a, b, (p[rows] - a, v[rows], t[rows], x[rows])

    def _stay(self, cohort: Cohort, ids: np.ndarray, names: dict, store: _ArrayStore) -> FeatureSet:
        """The stay task: ``X_seq`` (into ``store``) and ``X_tab``, one patient chunk at a time.

        Lengths: steps up to and including the last step with any observation (at least 1).
        """
        n, T = len(ids), self.config.n_steps
        arrays = self._event_arrays(cohort, ids)
        st = self._static(cohort, ids)
        X_seq = store.empty("X_seq", (n, T, len(self.seq_kinds)), np.float32)
        n_stats = len(self.variables_) * len(self.tab_stats)
        X_tab = np.empty((n, n_stats + st.shape[1]))
        X_tab[:, n_stats:] = self._static_tab(st)
        for a, b, local in self._chunks(arrays, n):
            X_seq[a:b] = self._sequence_chunk(local, b - a, st[a:b])
            X_tab[a:b, :n_stats] = self._tabular(StayChunk(self.config, len(self.variables_), local, b - a))
        lengths = np.maximum(self.config.valid_lengths(arrays[0], arrays[2], n), 1).astype(np.int64)
        return FeatureSet(patient_ids=ids, X_tab=X_tab, X_seq=store.finish(X_seq), lengths=lengths, **names)

    def _sequence_chunk(self, arrays, n: int, st: np.ndarray) -> np.ndarray:
        cfg = self.config
        vals, mask = self._grid(arrays, n)
        T = vals.shape[1]
        steps = np.arange(T)[None, :, None]
        last = np.where(mask, steps, -1)
        np.maximum.accumulate(last, axis=1, out=last)
        seen = last >= 0
        # Carry the last observed (standardised) value forward; 0 (= training mean) before the first one.
        ff = np.where(seen, np.take_along_axis(vals, np.maximum(last, 0), axis=1), 0.0)
        blank = cfg.summaries == "missingness_only"       # no value reaches any model: only when things were measured
        if blank:
            ff = np.zeros_like(ff)
        gap_h = np.where(seen, (steps - last) * cfg.bin_hours, cfg.delta_cap_hours)
        delta = np.log1p(np.minimum(gap_h, cfg.delta_cap_hours)) / np.log1p(cfg.delta_cap_hours)
        parts = [ff, mask.astype(float), delta]
        if self.static_columns_:
            miss = ~np.isfinite(st)
            z = np.where(miss | blank, 0.0, (np.nan_to_num(st) - self.static_mean_) / self.static_std_)
            parts += [np.repeat(z[:, None, :], T, axis=1), np.repeat(miss[:, None, :].astype(float), T, axis=1)]
        if self._time_channel:
            hours = (np.arange(T) + 1.0) * cfg.bin_hours
            parts.append(np.broadcast_to((np.log1p(hours) / np.log1p(cfg.window_hours))[None, :, None], (n, T, 1)))
        return np.concatenate(parts, axis=2).astype(np.float32)

    # -- the online task (one row per patient-hour) ----------------------------------------------
    def _units(self, cohort: Cohort, ids: np.ndarray):
        """Scored patient-hours of ``ids``: patient index, step and the hour's own (latest) time, sorted.

        The hours are the labelled ones when the cohort has hour labels (training, evaluation), else
        every hour with an input row (prediction). An hour's time is the latest time of any row, event
        or label in its step, so the features of that hour never include data after it.
        """
        cfg = self.config
        T = cfg.n_steps

        def keyed(frame):
            p = _codes(frame["patient_id"], list(ids))
            t = frame["time_hours"].to_numpy(dtype=float)
            step, inside = cfg.steps(t)
            keep = (p >= 0) & inside
            return p[keep] * T + step[keep], t[keep]

        base = next(f for f in (cohort.hour_labels, cohort.row_times, cohort.events) if f is not None)
        key = np.unique(keyed(base)[0])
        time = np.full(len(key), -np.inf)
        for frame in (cohort.hour_labels, cohort.row_times, cohort.events):
            if frame is None or not len(key):
                continue
            k, t = keyed(frame)
            pos = np.minimum(np.searchsorted(key, k), len(key) - 1)
            hit = key[pos] == k
            np.maximum.at(time, pos[hit], t[hit])
        return (key // T).astype(np.int64), (key % T).astype(np.int64), time

    def _online(self, cohort: Cohort, ids: np.ndarray, names: dict, store: _ArrayStore) -> FeatureSet:
        n, T = len(ids), self.config.n_steps
        up, uk, ut = self._units(cohort, ids)
        arrays = self._event_arrays(cohort, ids)
        st = self._static(cohort, ids)
        X_seq = store.empty("X_seq", (n, T, len(self.seq_kinds)), np.float32)
        X_tab = store.empty("X_tab", (len(up), len(self.tab_names)), np.float32)
        ubounds = np.searchsorted(up, np.arange(n + 1))
        for a, b, local in self._chunks(arrays, n):
            X_seq[a:b] = self._sequence_chunk(local, b - a, st[a:b])
            u0, u1 = ubounds[a], ubounds[b]
            X_tab[u0:u1] = self._online_tab_chunk(local, b - a, up[u0:u1] - a, uk[u0:u1], ut[u0:u1], st[a:b])
        lengths = np.ones(n, dtype=np.int64)
        np.maximum.at(lengths, up, uk + 1)
        return FeatureSet(patient_ids=ids, X_tab=store.finish(X_tab), X_seq=store.finish(X_seq), lengths=lengths,
                          unit_patient=up, unit_step=uk, unit_time=ut, **names)

    def _online_tab_chunk(self, arrays, n: int, up, uk, ut, st) -> np.ndarray:
        """Causal per-hour features of one patient chunk: for hour (p, k) only steps <= k are read."""
        chunk = OnlineChunk(self.config, len(self.variables_), arrays, n, up, uk, ut)
        return np.concatenate([self._tabular(chunk), ut[:, None], self._static_tab(st[up])], axis=1)

    def targets(self, cohort: Cohort, fs: FeatureSet) -> np.ndarray:
        """The label of every unit of ``fs``: per patient (stay task) or per patient-hour (online task).

        Labels are read here, never from the features: an hour's label is the largest label of the
        labelled rows in its step.

        Raises
        ------
        CohortError
            The cohort has no labels (for this task shape), or a unit has none.
        """
        if not fs.online:
            if cohort.labels is None:
                raise CohortError("The cohort has no labels; load a labels file and name the outcome (--target).")
            y = cohort.labels.reindex(pd.Index(fs.patient_ids))
            if y.isna().any():
                raise CohortError(f"{int(y.isna().sum())} patient(s) have no label, e.g. "
                                  f"{list(fs.patient_ids[y.isna().to_numpy()][:3])}; train on labelled patients only.")
            return y.to_numpy().astype(int)
        hl = cohort.hour_labels
        if hl is None:
            raise CohortError("This online run needs per-hour labels: load the events with --task online and an "
                              "hourly label column (e.g. --target SepsisLabel) or an onset column with --horizon-hours.")
        T = self.config.n_steps
        p = _codes(hl["patient_id"], list(fs.patient_ids))
        step, inside = self.config.steps(hl["time_hours"].to_numpy(dtype=float))
        keep = (p >= 0) & inside
        key = np.sort(fs.unit_patient * T + fs.unit_step)
        k = p[keep] * T + step[keep]
        pos = np.minimum(np.searchsorted(key, k), max(len(key) - 1, 0))
        hit = key[pos] == k
        y = np.full(len(key), -1, dtype=np.int64)
        np.maximum.at(y, pos[hit], hl["label"].to_numpy()[keep][hit].astype(np.int64))
        if (y < 0).any():
            raise CohortError(f"{int((y < 0).sum())} scored hour(s) have no label; every training hour needs one.")
        return y

    def _tabular(self, chunk: StayChunk) -> np.ndarray:
        """Per-variable summaries (:attr:`tab_stats`) of one chunk, ``(chunk.n_rows, V * n_stats)`` float64.

        Each family gives ``(n_rows, V, n_family_stats)``; side by side, a row holds every statistic of
        the first variable, then of the next.
        """
        block = np.concatenate([f.columns(chunk) for f in self._families], axis=2)
        return block.reshape(len(block), block.shape[1] * block.shape[2])
