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

``FeatureSet.seq_variables`` / ``seq_kinds`` give, for each channel, its clinical variable and kind,
so explanations can sum attributions per variable. Tabular columns are named ``"<variable>:<stat>"``
with ``FeatureSet.tab_variables`` giving the variable of each column.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.cohort import Cohort
from core.config import FeatureConfig
from core.exceptions import CohortError, RunError

__all__ = ["FeatureBuilder", "FeatureSet", "TABULAR_STATS", "CHANNEL_KINDS", "build_features"]

#: per-variable summaries of the tabular view.
TABULAR_STATS = ("first", "last", "mean", "min", "max", "std", "count", "slope", "hours_since_last")
#: kinds of sequence channels.
CHANNEL_KINDS = ("value", "mask", "delta", "static", "static_missing")


@dataclass(frozen=True)
class FeatureSet:
    """Both model views for one list of patients (same order in every array).

    Attributes
    ----------
    patient_ids : ndarray of str, shape (n_patients,)
    X_tab : ndarray of float64, shape (n_patients, n_tab_features); NaN where a variable was never
        observed (imputation happens inside the classical pipelines, fitted on training data).
    X_seq : ndarray of float32, shape (n_patients, n_steps, n_channels); finite.
    lengths : ndarray of int, shape (n_patients,)
        Steps up to and including the last step with any observation (at least 1).
    tab_names, tab_variables : list of str, one per tabular column.
    seq_names, seq_variables, seq_kinds : list of str, one per sequence channel.
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

    def get(self, input_kind: str) -> np.ndarray:
        """``X_tab`` for ``"tabular"``, ``X_seq`` for ``"sequence"`` (a registry ``ModelSpec.input_kind``)."""
        if input_kind == "tabular":
            return self.X_tab
        if input_kind == "sequence":
            return self.X_seq
        raise ValueError(f"input_kind must be 'tabular' or 'sequence'; got {input_kind!r}.")

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
        # Standardise on binned (per-step) training values: what the network actually sees.
        vals, mask, _ = self._grid(cohort, ids, standardise=False)
        obs = np.where(mask, vals, np.nan)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(obs, axis=(0, 1)) if obs.size else np.zeros(len(self.variables_))
            std = np.nanstd(obs, axis=(0, 1)) if obs.size else np.ones(len(self.variables_))
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

    # -- transforming -----------------------------------------------------------------------
    def transform(self, cohort: Cohort, patient_ids=None) -> FeatureSet:
        """Build both views for ``patient_ids`` (default: every patient of ``cohort``).

        Returns
        -------
        FeatureSet
            ``X_seq`` (n, n_steps, n_channels) float32, ``X_tab`` (n, n_tab) float64, same patient order.
        """
        self._check_fitted()
        ids = self._check_ids(cohort.patient_ids if patient_ids is None else patient_ids)
        arrays = self._event_arrays(cohort, ids)
        X_seq, lengths = self._sequences(cohort, ids, arrays)
        X_tab = self._tabular(cohort, ids, arrays)
        return FeatureSet(patient_ids=ids, X_tab=X_tab, X_seq=X_seq, lengths=lengths,
                          tab_names=self.tab_names, tab_variables=self.tab_variables,
                          seq_names=self.seq_names, seq_variables=self.seq_variables, seq_kinds=self.seq_kinds)

    def fit_transform(self, cohort: Cohort, patient_ids) -> FeatureSet:
        return self.fit(cohort, patient_ids).transform(cohort, patient_ids)

    # -- names ------------------------------------------------------------------------------
    @property
    def seq_variables(self) -> list[str]:
        self._check_fitted()
        return self.variables_ * 3 + self.static_columns_ * 2

    @property
    def seq_kinds(self) -> list[str]:
        self._check_fitted()
        v, s = len(self.variables_), len(self.static_columns_)
        return ["value"] * v + ["mask"] * v + ["delta"] * v + ["static"] * s + ["static_missing"] * s

    @property
    def seq_names(self) -> list[str]:
        return [f"{v}:{k}" for v, k in zip(self.seq_variables, self.seq_kinds)]

    @property
    def tab_variables(self) -> list[str]:
        self._check_fitted()
        return [v for v in self.variables_ for _ in TABULAR_STATS] + self.static_columns_

    @property
    def tab_names(self) -> list[str]:
        self._check_fitted()
        return [f"{v}:{s}" for v in self.variables_ for s in TABULAR_STATS] + [f"{c}:static" for c in
                                                                               self.static_columns_]

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
        t = events["time_hours"].to_numpy()
        return events[(t >= 0) & (t <= self.config.window_hours)]

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

    def _grid(self, cohort: Cohort, ids: np.ndarray, standardise: bool = True, arrays=None):
        """Per-step mean value (n, T, V) and observation mask (n, T, V), plus event arrays."""
        cfg = self.config
        n, T, V = len(ids), cfg.n_steps, len(self.variables_)
        p, v, t, x = self._event_arrays(cohort, ids) if arrays is None else arrays
        step = np.minimum((t / cfg.bin_hours).astype(np.int64), T - 1)
        flat = (p * T + step) * V + v
        cnt = np.bincount(flat, minlength=n * T * V).reshape(n, T, V)
        tot = np.bincount(flat, weights=x, minlength=n * T * V).reshape(n, T, V)
        mask = cnt > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = np.where(mask, tot / np.maximum(cnt, 1), 0.0)
        if standardise:
            vals = np.where(mask, (vals - self.mean_) / self.std_, 0.0)
        return vals, mask, (p, v, t, x)

    def _static(self, cohort: Cohort, ids: np.ndarray) -> np.ndarray:
        if not self.static_columns_:
            return np.zeros((len(ids), 0))
        st = cohort.static.reindex(index=pd.Index(ids), columns=self.static_columns_)
        return st.to_numpy(dtype=float)

    def _sequences(self, cohort: Cohort, ids: np.ndarray, arrays=None):
        cfg = self.config
        vals, mask, _ = self._grid(cohort, ids, arrays=arrays)
        n, T, V = vals.shape
        steps = np.arange(T)[None, :, None]
        last = np.where(mask, steps, -1)
        np.maximum.accumulate(last, axis=1, out=last)
        seen = last >= 0
        # Carry the last observed (standardised) value forward; 0 (= training mean) before the first one.
        ff = np.where(seen, np.take_along_axis(vals, np.maximum(last, 0), axis=1), 0.0)
        gap_h = np.where(seen, (steps - last) * cfg.bin_hours, cfg.delta_cap_hours)
        delta = np.log1p(np.minimum(gap_h, cfg.delta_cap_hours)) / np.log1p(cfg.delta_cap_hours)
        parts = [ff, mask.astype(float), delta]
        if self.static_columns_:
            st = self._static(cohort, ids)
            miss = ~np.isfinite(st)
            z = np.where(miss, 0.0, (np.nan_to_num(st) - self.static_mean_) / self.static_std_)
            parts += [np.repeat(z[:, None, :], T, axis=1), np.repeat(miss[:, None, :].astype(float), T, axis=1)]
        X = np.concatenate(parts, axis=2).astype(np.float32)
        any_obs = mask.any(axis=2)
        lengths = np.where(any_obs.any(axis=1), T - np.argmax(any_obs[:, ::-1], axis=1), 1)
        return X, lengths.astype(np.int64)

    def _tabular(self, cohort: Cohort, ids: np.ndarray, arrays=None) -> np.ndarray:
        cfg = self.config
        n, V = len(ids), len(self.variables_)
        p, v, t, x = self._event_arrays(cohort, ids) if arrays is None else arrays
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
                    "hours_since_last": cfg.window_hours - t[end]}
            for j, s in enumerate(TABULAR_STATS):
                out[uniq, j] = cols[s]
        X = out.reshape(n, V * len(TABULAR_STATS))
        if self.static_columns_:
            X = np.concatenate([X, self._static(cohort, ids)], axis=1)
        return X


def build_features(cohort: Cohort, train_ids, patient_ids=None, config: FeatureConfig | None = None):
    """Fit a :class:`FeatureBuilder` on ``train_ids`` and transform ``patient_ids`` (default: train_ids).

    Returns
    -------
    (FeatureBuilder, FeatureSet)
    """
    fb = FeatureBuilder(config).fit(cohort, train_ids)
    return fb, fb.transform(cohort, train_ids if patient_ids is None else patient_ids)
