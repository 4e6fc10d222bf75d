"""Kernel SHAP over variable groups: the model-agnostic explainer (the SVM, and any other tabular model).

~40 players instead of ~340 features: a coalition keeps the patient's values for the variables in it and
takes the others from background patients (k-means summary). The Shapley-kernel regression is solved for
all patients at once with the efficiency constraint (sum of attributions = f(x) - base, exactly). For the
RBF SVM the kernel factorises over variable groups, so masked predictions are computed from per-group
squared distances instead of re-running libsvm on full rows (checked against the model's own
``predict_proba``; falls back to the black box if they disagree). Explains the calibrated probability.

shap's own ``KernelExplainer`` is ~30 s per patient over 300 features, hence this code.
"""
from __future__ import annotations

import numpy as np

from core.analysis.exact_shap import transformed_variables
from core.analysis.explanation import unique_variables
from core.features import FeatureSet

__all__ = ["explain_kernel"]


def _coalitions(n_players: int, nsamples: int, rng: np.random.Generator) -> np.ndarray:
    """Paired coalitions (z, 1-z) with sizes drawn from the Shapley kernel; every size-1 coalition included.

    With sizes drawn proportional to ``(M-1) / (s (M-s))`` and uniform subsets of each size, equal
    regression weights give the Shapley kernel (Lundberg & Lee 2017; Covert & Lee 2021).
    """
    M = n_players
    if M <= 12 and 2 ** M - 2 <= nsamples:      # few players: enumerate every coalition (exact)
        codes = np.arange(1, 2 ** M - 1)
        Z = ((codes[:, None] >> np.arange(M)[None, :]) & 1).astype(float)
        s = Z.sum(1)
        from scipy.special import comb
        w = (M - 1) / (comb(M, s) * s * (M - s))
        return Z, w
    sizes = np.arange(1, M)
    p = (M - 1) / (sizes * (M - sizes))
    p = p / p.sum()
    half = max(nsamples // 2, M)
    drawn = rng.choice(sizes, size=half, p=p)
    Z = np.zeros((half, M))
    for i, s in enumerate(drawn):
        Z[i, rng.choice(M, size=s, replace=False)] = 1.0
    Z = np.vstack([Z, 1.0 - Z])
    return Z, np.ones(len(Z))


def _kernel_solve(Z: np.ndarray, w: np.ndarray, values: np.ndarray, v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Weighted least squares with the efficiency constraint, for all patients at once.

    values : (n_patients, n_coalitions); v0 (empty coalition), v1 (full) : (n_patients,)
    Returns phi of shape (n_patients, n_players) with ``phi.sum(1) == v1 - v0`` exactly.
    """
    M = Z.shape[1]
    delta = v1 - v0                                        # (n,)
    y = values - v0[:, None] - Z[:, -1][None, :] * delta[:, None]   # eliminate the last player
    A = Z[:, :-1] - Z[:, -1:]                              # (m, M-1)
    sw = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(A * sw, (y * sw.T).T, rcond=None)    # (M-1, n)
    phi = np.empty((len(v0), M))
    phi[:, :-1] = coef.T
    phi[:, -1] = delta - coef.sum(0)
    return phi


class _BlackBoxValue:
    """v(S) for every patient: expected model output when the variables outside S come from the background."""

    def __init__(self, predict, Z: np.ndarray, B: np.ndarray, bw: np.ndarray, groups: np.ndarray) -> None:
        self.predict, self.Z, self.B, self.bw, self.groups = predict, Z, B, bw, groups

    def __call__(self, masks: np.ndarray, rows: slice) -> np.ndarray:
        Z = self.Z[rows]
        n, m, k = len(Z), len(masks), len(self.B)
        keep = masks[:, self.groups].astype(bool)              # (m, F): column kept from the patient
        out = np.empty((n, m))
        for i in range(n):
            X = np.where(keep[:, None, :], Z[i][None, None, :], self.B[None, :, :]).reshape(m * k, -1)
            out[i] = self.predict(X).reshape(m, k) @ self.bw
        return out


class _RbfSvmValue:
    """The same v(S) for an RBF SVM + sigmoid calibration, computed from per-group squared distances.

    ``exp(-gamma ||sv - r||^2) = prod_g exp(-gamma ||sv_g - r_g||^2)``, and a masked row ``r`` takes each
    group from the patient or the background, so no full row is ever rebuilt and the work is a few
    matrix products (BLAS) per batch of patients instead of libsvm on ``n x coalitions x background`` rows.
    """

    def __init__(self, svc, calibrator, Z, B, bw, groups, n_groups: int) -> None:
        self.gamma = float(svc._gamma)
        self.alpha = np.asarray(svc.dual_coef_, dtype=float).reshape(-1)
        self.b = float(np.asarray(svc.intercept_).reshape(-1)[0])
        self.cal = calibrator
        self.sv = np.asarray(svc.support_vectors_, dtype=float)                  # (nSV, F)
        self.svT = np.ascontiguousarray(self.sv.T)
        self.Gm = np.zeros((Z.shape[1], n_groups))
        self.Gm[np.arange(Z.shape[1]), groups] = 1.0
        self.sq_sv = (self.sv ** 2) @ self.Gm                                     # (nSV, G)
        self.Z, self.bw = Z, bw
        self.logB = self._log_kernel(np.asarray(B, dtype=float))                 # (k, nSV, G)
        self._masks, self._EBa = None, None

    def _log_kernel(self, Z: np.ndarray) -> np.ndarray:
        """Per-group log-kernel ``-gamma ||sv_g - z_g||^2`` of each row of Z with each support vector: (n, nSV, G)."""
        n, F = Z.shape
        G = self.Gm.shape[1]
        # Cross terms per group as ONE large product: row (i, g) of Zg keeps only group g's columns of Z[i].
        # (41 tiny products with ~9 inner columns each are ~5x slower in BLAS than this one.)
        Zg = (Z[:, None, :] * self.Gm.T[None]).reshape(n * G, F)
        cross = (Zg @ self.svT).reshape(n, G, -1).transpose(0, 2, 1)
        d = ((Z ** 2) @ self.Gm)[:, None, :] + self.sq_sv[None] - 2.0 * cross
        return -self.gamma * np.maximum(d, 0.0)

    def __call__(self, masks: np.ndarray, rows: slice) -> np.ndarray:
        if self._masks is None or self._masks.shape != masks.shape or not np.array_equal(self._masks, masks):
            # background part of the kernel, shared by all patients: alpha * exp((1 - mask) @ logB) -> (m, nSV, k)
            self._masks = masks.copy()
            self._EBa = np.exp(np.einsum("mg,ksg->msk", 1.0 - masks, self.logB)) * self.alpha[None, :, None]
        L = self._log_kernel(self.Z[rows])                                      # (n, nSV, G)
        n, S, G = L.shape
        m = len(masks)
        out = np.empty((n, m))
        for i in range(0, n, 8):
            Lb = L[i:i + 8]
            ea = np.exp(masks @ Lb.reshape(-1, G).T).reshape(m, len(Lb), S)     # (m, b, nSV) patient part
            dec = np.matmul(ea, self._EBa) + self.b                             # (m, b, k)
            proba = np.asarray(self.cal.predict(dec.reshape(-1)), dtype=float).reshape(dec.shape)
            out[i:i + 8] = (proba @ self.bw).T
        return out


def _svm_parts(pipe):
    """(svc, calibrator) of a Pipeline(... CalibratedClassifierCV(SVC(rbf), ensemble=False)), else None."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC
    cal = pipe[-1] if hasattr(pipe, "steps") else None
    if not isinstance(cal, CalibratedClassifierCV) or len(getattr(cal, "calibrated_classifiers_", [])) != 1:
        return None
    cc = cal.calibrated_classifiers_[0]
    svc = getattr(cc, "estimator", None)
    if not isinstance(svc, SVC) or svc.kernel != "rbf" or len(cc.calibrators) != 1:
        return None
    return svc, cc.calibrators[0]


def explain_kernel(model, fs: FeatureSet, bg: FeatureSet, nsamples, rng) -> dict:
    """Kernel SHAP over variable groups of any fitted tabular classifier (probability of the positive class).

    Parameters
    ----------
    model : estimator or Pipeline, fitted
    fs : FeatureSet
        The patients to explain.
    bg : FeatureSet
        Background patients (k-means-summarised to at most 20 weighted centres).
    nsamples : int
        Coalitions drawn (all of them when there are few variables).
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``attributions`` (n_patients, n_variables), ``variables``, ``base`` (float), ``pred``
        (n_patients,), ``output`` and ``method``: the parts of an ExplanationResult.
    """
    from sklearn.cluster import KMeans

    has_pre = hasattr(model, "steps") and len(model.steps) > 1
    pre = model[:-1] if has_pre else None
    Z = pre.transform(fs.X_tab) if has_pre else fs.X_tab
    Zb = pre.transform(bg.X_tab) if has_pre else bg.X_tab
    zvars = transformed_variables(model, fs.tab_variables) if has_pre else list(fs.tab_variables)
    variables = unique_variables(fs.tab_variables)
    groups = np.array([variables.index(v) for v in zvars])
    head = model[-1] if has_pre else model
    pos = int(np.flatnonzero(head.classes_ == head.classes_[-1])[0])

    def predict(X):
        return np.asarray(head.predict_proba(X), dtype=float)[:, pos]

    # Summarise the background with weighted k-means (in the transformed space, where NaN is imputed).
    k = min(len(Zb), 20)
    if np.isfinite(Zb).all() and len(Zb) > k:
        km = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2 ** 31))).fit(Zb)
        B, bw = km.cluster_centers_, np.bincount(km.labels_, minlength=k) / len(Zb)
        summary = f"k-means summary ({k} centres) of {len(Zb)} background patients"
    else:
        B, bw = Zb, np.full(len(Zb), 1.0 / len(Zb))
        summary = f"{len(Zb)} background patients"
    value = _BlackBoxValue(predict, Z, B, bw, groups)
    fast = "black-box predictions"
    parts = _svm_parts(model)
    if parts is not None:
        cand = _RbfSvmValue(parts[0], parts[1], Z, B, bw, groups, len(variables))
        check = slice(0, min(len(Z), 4))
        probe = np.vstack([np.zeros(len(variables)), np.ones(len(variables)),
                           (rng.random(len(variables)) < 0.5).astype(float)])
        if np.allclose(cand(probe, check), value(probe, check), rtol=1e-6, atol=1e-8):
            value, fast = cand, "RBF kernel factorised over variable groups"
    M = len(variables)
    masks, w = _coalitions(M, int(nsamples), rng)
    n = len(Z)
    # one set of coalitions for every patient, plus the empty one (last row): the background mean
    all_masks = np.vstack([masks, np.zeros(M)])
    values, v1 = np.empty((n, len(all_masks))), predict(Z)
    for start in range(0, n, 64):
        rows = slice(start, min(start + 64, n))
        values[rows] = value(all_masks, rows)
    values, v0 = values[:, :-1], values[:, -1]
    base = float(np.mean(v0))                   # the same for every patient: the background mean
    phi = _kernel_solve(masks, w, values, v0, v1)
    name = type(head).__name__
    return {"attributions": phi, "variables": variables, "base": base, "pred": v1, "output": "probability",
            "method": f"Kernel SHAP over {M} variable groups ({len(masks)} coalitions, {summary}; {fast}) "
                      f"of {name}"}
