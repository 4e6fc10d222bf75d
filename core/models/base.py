"""The model contract: registry entries and input checks shared by every model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["ModelSpec", "PRESETS", "INPUT_KINDS", "PERSIST_FORMATS", "HOOKS", "check_sequences", "check_tabular",
           "check_target", "check_preset"]

#: "test" = tiny (unit tests), "quick" = seconds, "full" = the benchmarked configuration.
PRESETS = ("test", "quick", "full")
INPUT_KINDS = ("tabular", "sequence")
#: how a model is saved in a run (:mod:`core.models.persist`): skops (scikit-learn models, read back with trusted
#: types only) or the model's own torch format (``NAME.pt`` weights + ``NAME.json``; weights_only on reading).
PERSIST_FORMATS = ("skops", "torch")
#: what a model may take from the code that fits it, beyond ``fit(X, y)``; callers ask ``spec.hooks``:
#: ``"progress"``: a ``progress(message, fraction)`` parameter, set for one fit only (reports every epoch);
#: ``"channel_kinds"``: a ``channel_kinds`` parameter, set to the features' ``seq_kinds`` before fitting;
#: ``"refit_params"``: a fitted model's ``refit_params()``, the settings of a refit on training + validation
#: patients (the epochs early stopping chose).
HOOKS = ("progress", "channel_kinds", "refit_params")
#: numbers per block when checking sequences for NaN (bounds the temporary mask; a memmap stays on disk).
_CHECK_VALUES = 4_000_000


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry.

    Parameters
    ----------
    name : str
        Short name used on the command line and in results (``"gbm"``).
    input_kind : {"tabular", "sequence"}
        Which :class:`core.features.FeatureSet` view the model takes.
    make : callable
        ``make(preset="full", random_state=None, task="stay") -> estimator`` (an unfitted scikit-learn
        estimator); ``task`` ("stay" or "online") lets a model pick settings for per-hour targets.
    label : str
        Human-readable name for pages and sentences ("gradient boosting").
    family : {"classical", "recurrent"}
    persist : {"skops", "torch"}
        How a fitted model is saved and loaded (:data:`PERSIST_FORMATS`, :mod:`core.models.persist`).
    hooks : frozenset of str
        The :data:`HOOKS` the model takes (none for a plain scikit-learn estimator).
    """

    name: str
    input_kind: str
    make: Callable
    label: str = ""
    family: str = "classical"
    persist: str = "skops"
    hooks: frozenset = frozenset()

    def __post_init__(self) -> None:
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"ModelSpec.input_kind must be one of {INPUT_KINDS}; got {self.input_kind!r}.")
        if self.persist not in PERSIST_FORMATS:
            raise ValueError(f"ModelSpec.persist must be one of {PERSIST_FORMATS}; got {self.persist!r}. "
                             "Example: ModelSpec('lr', 'tabular', make_lr, persist='skops').")
        unknown = sorted(set(self.hooks) - set(HOOKS))
        if unknown:
            raise ValueError(f"ModelSpec.hooks holds unknown hooks {unknown}; choose from {HOOKS}. "
                             "Example: ModelSpec('gru', 'sequence', make, hooks=frozenset({'progress'})).")


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}; got {preset!r}. Example: preset='quick'.")
    return preset


def check_tabular(X, n_features: int | None = None) -> np.ndarray:
    """2-D float64 array; NaN allowed (missing), +-inf not.

    Raises
    ------
    ValueError
        Wrong dimensionality, infinite values or a feature count different from training.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"Tabular models expect X of shape (n_patients, n_features); got shape {X.shape}. "
                         "Use FeatureSet.X_tab (or FeatureSet.get('tabular')).")
    if np.isinf(X).any():
        raise ValueError("X contains infinite values; replace them with NaN (missing) before fitting.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features but the model was fitted with {n_features}. "
                         "Build features with the same fitted FeatureBuilder used for training.")
    return X


def check_sequences(X, n_features: int | None = None) -> np.ndarray:
    """3-D float32 array ``(n_patients, n_timesteps, n_features)``, all finite.

    A C-contiguous float32 array is not copied: a read-only ``np.memmap`` (out-of-core features,
    :meth:`core.features.FeatureBuilder.transform` with ``out_dir``) stays on disk, and its finiteness
    is checked a block of patients at a time.

    Raises
    ------
    ValueError
        Wrong dimensionality, NaN/inf, or a channel count different from training.
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise ValueError(f"Sequence models expect X_seq of shape (n_patients, n_timesteps, n_features); got "
                         f"shape {X.shape}. Use FeatureSet.X_seq (or FeatureSet.get('sequence')).")
    if X.shape[1] < 1:
        raise ValueError("X_seq has no time steps; widen FeatureConfig(window_hours=...).")
    rows = max(1, _CHECK_VALUES // max(1, X.shape[1] * X.shape[2]))
    if not all(np.isfinite(X[i:i + rows]).all() for i in range(0, len(X), rows)):
        raise ValueError("X_seq contains NaN or infinite values; sequences must be imputed "
                         "(FeatureBuilder does this: carry forward, then the training mean).")
    if n_features is not None and X.shape[2] != n_features:
        raise ValueError(f"X_seq has {X.shape[2]} channels but the model was fitted with {n_features}. "
                         "Build features with the same fitted FeatureBuilder used for training.")
    return np.ascontiguousarray(X)


def check_target(y, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(classes_, y_index)`` for a binary target of length ``n_samples``."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_samples:
        raise ValueError(f"y must be 1-D with one label per patient ({n_samples}); got shape {y.shape}.")
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) != 2:
        raise ValueError(f"y must contain exactly two classes (0 and 1); got {classes.tolist()}. "
                         "Check the target column, or that the training split holds both outcomes.")
    return classes, y_idx
