"""How every model is saved and loaded: one pair of functions, whatever the model family.

The registry entry of a model says how (:attr:`core.models.base.ModelSpec.persist`):

* ``"torch"`` (the networks, :class:`~core.models.torchbase.TorchSequenceClassifier`): the model saves and
  loads itself, a torch ``state_dict`` (``NAME.pt``, read back with ``torch.load(weights_only=True)``) plus its
  hyper-parameters and fitted attributes (``NAME.json``, which names the class; checked by
  :func:`core.runs.runfiles.check_recurrent_meta` before anything is built from it).
* ``"skops"`` (scikit-learn models): written with skops (``NAME.skops``) and read back only if every
  non-default type inside is on :data:`TRUSTED_SKOPS_TYPES`.

Nothing is ever unpickled. Callers (``core.runs.store``) never branch on the model family.

A loaded model is also checked against what was recorded when it was saved (:func:`describe_model`,
kept in the run's ``manifest.json``): :func:`check_model` refuses another class (a constant
``DummyClassifier`` saved as ``lr.skops``), other nested estimators or torch modules, and
parameters that are NaN or infinite (or coefficients that are all zero: a constant model).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.exceptions import RunError

__all__ = ["save_model", "load_model", "TRUSTED_SKOPS_TYPES", "describe_model", "check_model", "class_path"]

#: the only non-default types a saved scikit-learn model may contain; anything else is refused.
TRUSTED_SKOPS_TYPES = frozenset({
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.tree._tree.Tree",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "core.models.classical.SubsampledClassifier",
    "core.models.classical.MedianImputer",
})
#: components that a saved model may hold in place of a newer one: runs saved before the faster imputer
#: (issue 20) hold scikit-learn's ``SimpleImputer``, whose statistics are the same.
_EARLIER = {"core.models.classical.MedianImputer": "sklearn.impute._base.SimpleImputer"}


def _save_skops(model, folder: Path, name: str) -> list[str]:
    import skops.io as sio
    sio.dump(model, folder / f"{name}.skops")
    return [f"{name}.skops"]


def _load_skops(folder: Path, name: str, rel: str):
    import zipfile

    import skops.io as sio
    from core.runs.runfiles import size_limit
    path = folder / f"{name}.skops"
    with zipfile.ZipFile(path) as z:                # never inflate more than a model file could hold
        inflated = sum(i.file_size for i in z.infolist())
    if inflated > size_limit(f"{rel}.skops"):
        raise RunError(f"{rel}.skops inflates to {inflated:,} bytes, more than a model of a run holds; the run "
                       "was edited (or is damaged). Train it again (retrain), or restore the run from a backup.")
    untrusted = sio.get_untrusted_types(file=path)
    refused = sorted(set(untrusted) - TRUSTED_SKOPS_TYPES)
    if refused:
        raise RunError(f"models/{name}.skops contains types that are not on the trusted list: {refused}. "
                       "Refusing to load it; retrain the model with this version of Chronoscope.")
    return sio.load(path, trusted=list(untrusted))


def _save_torch(model, folder: Path, name: str) -> list[str]:
    return model.save(folder, name)


def _torch_classes() -> dict:
    """The classes a ``NAME.json`` may name: those of the registry entries saved in the torch format."""
    from core.models.registry import REGISTRY
    classes = (type(s.make(preset="test")) for s in REGISTRY.values() if s.persist == "torch")
    return {c.__name__: c for c in classes}


def _load_torch(folder: Path, name: str, rel: str):
    from core.runs.runfiles import check_recurrent_meta, read_json_file
    classes = _torch_classes()
    weights = folder / f"{name}.pt"
    raw = read_json_file(folder / f"{name}.json", name=f"{rel}.json")
    named = classes.get(raw.get("class")) if isinstance(raw, dict) and isinstance(raw.get("class"), str) else None
    meta = check_recurrent_meta(named.upgrade_meta(raw) if named else raw, f"{rel}.json", classes,
                                weights.stat().st_size if weights.is_file() else 0)
    return classes[meta["class"]].load(folder, name, meta)


#: each format of :data:`core.models.base.PERSIST_FORMATS`: ``(save, load)``.
_FORMATS = {"skops": (_save_skops, _load_skops), "torch": (_save_torch, _load_torch)}


def save_model(model, folder: str | Path, name: str) -> list[str]:
    """Write fitted ``model``, of the registry entry ``name``, as ``folder/NAME.*`` in the entry's format.

    Returns
    -------
    list of str
        The names of the files written in ``folder`` (``["NAME.skops"]``, or ``["NAME.pt", "NAME.json"]``).

    Raises
    ------
    ValueError
        ``name`` is not a registry entry.
    """
    from core.models.registry import get
    save, _ = _FORMATS[get(name).persist]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return save(model, folder, name)


def load_model(folder: str | Path, name: str):
    """Read the model of the registry entry ``name`` that :func:`save_model` wrote into ``folder``.

    Raises
    ------
    RunError
        Missing or corrupt files, an unknown model class, or untrusted types in a skops file.
    """
    from core.models.registry import get
    folder = Path(folder)
    _, load = _FORMATS[get(name).persist]
    try:
        return load(folder, name, f"models/{'refit/' if folder.name == 'refit' else ''}{name}")
    except RunError:
        raise
    except FileNotFoundError as err:
        raise RunError(f"The model file for {name!r} is missing in {folder} ({Path(err.filename).name}). "
                       "Train again or pick another run.") from None
    except Exception as err:  # noqa: BLE001 - any decoding failure means a corrupt file; say which
        raise RunError(f"Cannot load model {name!r} from {folder} ({type(err).__name__}: {err}). The file is "
                       f"corrupt or from an incompatible version (see versions.json): train again.") from err


# --------------------------------------------------------------------------------------------
# what a saved model is, and checking a loaded one against it
# --------------------------------------------------------------------------------------------
#: learned numeric attributes that decide a scikit-learn model's output; each must be finite.
_PARAMETER_ATTRS = frozenset({"coef_", "intercept_", "mean_", "scale_", "var_", "support_vectors_", "_dual_coef_",
                              "_intercept_", "dual_coef_", "a_", "b_", "_baseline_prediction", "class_log_prior_",
                              "feature_log_prob_"})


def class_path(obj) -> str:
    """``module.QualName`` of ``obj``'s class, e.g. ``"sklearn.pipeline.Pipeline"``."""
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _is_component(obj) -> bool:
    """A scikit-learn estimator or a torch module (duck-typed: no torch import for classical runs)."""
    return hasattr(obj, "get_params") or (hasattr(obj, "state_dict") and hasattr(obj, "parameters"))


def _walk(obj, path: str = "model", seen: set | None = None):
    """``(path, attribute name, value)`` of every attribute inside ``obj``: its nested estimators, lists,
    dicts and the objects of scikit-learn / this package; torch modules by their sub-modules only."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if hasattr(obj, "state_dict") and hasattr(obj, "parameters"):
        items = getattr(obj, "_modules", {}).items()
    elif isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    elif type(obj).__module__.split(".")[0] in ("sklearn", "core") and hasattr(obj, "__dict__"):
        items = vars(obj).items()
    else:
        return
    for key, value in items:
        yield path, key, value
        if isinstance(value, (dict, list, tuple)) or hasattr(value, "__dict__"):
            yield from _walk(value, f"{path}.{key}", seen)


def _components(model) -> list[str]:
    return sorted({class_path(v) for _, _, v in _walk(model) if _is_component(v)})


def describe_model(model) -> dict:
    """What a run's manifest records of a fitted model (checked by :func:`check_model` on loading).

    Returns
    -------
    dict
        ``class`` (``module.QualName`` of the estimator), ``components`` (sorted classes of the estimators and
        torch modules inside it) and ``n_features`` (its input width, ``n_features_in_``).
    """
    return {"class": class_path(model), "components": _components(model),
            "n_features": int(getattr(model, "n_features_in_", -1))}


def _bad_parameters(model) -> list[str]:
    """Where ``model`` holds NaN / inf parameters (or all-zero coefficients), as ``path.attribute`` strings."""
    bad, torch_done = [], []
    for path, key, value in _walk(model):
        where = f"{path}.{key}"
        if hasattr(value, "state_dict") and hasattr(value, "parameters"):     # a torch module: every tensor
            if not any(where.startswith(done + ".") for done in torch_done):  # once, at the outermost module
                torch_done.append(where)
                bad += [f"{where}.{k} (NaN or infinite)" for k, t in value.state_dict().items()
                        if t.is_floating_point() and not bool(t.isfinite().all())]
            continue
        if key == "tree_" and hasattr(value, "value"):                        # sklearn.tree._tree.Tree
            # thresholds are left out: +inf is a valid split (missing values go one way, the rest the other)
            arrays = {"value": value.value}
        elif key == "nodes" and isinstance(value, np.ndarray) and value.dtype.names and "value" in value.dtype.names:
            arrays = {"value": value["value"]}                                # a boosting TreePredictor
        elif key in _PARAMETER_ATTRS:
            arrays = {"": value}
        else:
            continue
        for sub, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.dtype.kind not in "fc":
                continue
            if not np.isfinite(arr).all():
                bad.append(where + (f".{sub}" if sub else "") + " (NaN or infinite)")
            elif key == "coef_" and arr.size and not arr.any():
                bad.append(f"{where} (all zero: the model gives every patient the same risk)")
    return bad


def check_model(model, expected: dict, where: str, reference=None) -> None:
    """Refuse a loaded ``model`` that is not what was saved.

    Parameters
    ----------
    model : fitted estimator (from :func:`load_model`)
    expected : dict
        Its :func:`describe_model` record from the run's manifest.
    where : str
        The model's file(s), for the message (e.g. ``"models/lr.skops"``).
    reference : estimator or sequence of estimators, optional
        Unfitted models of the same registry entry (one per task shape, whose settings may differ): ``model``
        must be of the class of one of them and hold its components.

    Raises
    ------
    RunError
        Another class or other components than recorded (or than ``reference``), or NaN / infinite parameters.
    """
    fix = "Train it again (retrain), or restore the run from a backup."
    got = class_path(model)
    refs = list(reference) if isinstance(reference, (list, tuple)) else [] if reference is None else [reference]
    refs = [r for r in refs if class_path(r) == got] or refs     # the variants of the model's own class
    wanted = {str(expected.get("class"))} | ({class_path(refs[0])} if refs else set())
    if wanted != {got}:
        raise RunError(f"{where} holds a {got}, but the run saved a {' / '.join(sorted(wanted))} there: the file "
                       f"was replaced. Refusing to load it. {fix}")
    have = _components(model)
    needs = [{c if c in have or _EARLIER.get(c) not in have else _EARLIER[c] for c in _components(r)}
             for r in refs] or [set()]
    need = next((n for n in needs if n <= set(have)), needs[0])
    if have != list(expected.get("components", [])) or not need <= set(have):
        extra = sorted(set(have) - set(expected.get("components", [])))
        missing = sorted((set(expected.get("components", [])) | need) - set(have))
        raise RunError(f"{where} holds other parts than the run saved (unexpected: {extra or 'none'}; missing: "
                       f"{missing or 'none'}): the file was replaced or edited. Refusing to load it. {fix}")
    bad = _bad_parameters(model)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise RunError(f"{where} holds unusable parameters: {shown}. Its risks would be meaningless, so the run "
                       f"is refused. {fix}")
