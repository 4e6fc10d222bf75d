"""How every model is saved and loaded: one pair of functions, whatever the model family.

* Models of this package (the recurrent ones: :class:`~core.models.recurrent.RecurrentClassifier`
  and its subclasses) save and load themselves: a torch ``state_dict`` (``NAME.pt``, read back with
  ``torch.load(weights_only=True)``) plus their hyper-parameters and fitted attributes
  (``NAME.json``, which names the class).
* scikit-learn models are written with skops (``NAME.skops``) and read back only if every
  non-default type inside is on :data:`TRUSTED_SKOPS_TYPES`.

Nothing is ever unpickled. Callers (``core.runs``) never branch on the model family.
"""
from __future__ import annotations

from pathlib import Path

from core.exceptions import RunError

__all__ = ["save_model", "load_model", "TRUSTED_SKOPS_TYPES"]

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
})


def _own_classes() -> dict:
    from core.models.grud import GRUDClassifier
    from core.models.recurrent import RecurrentClassifier
    return {"RecurrentClassifier": RecurrentClassifier, "GRUDClassifier": GRUDClassifier}


def save_model(model, folder: str | Path, name: str) -> None:
    """Write fitted ``model`` as ``folder/NAME.*`` (its own format, or skops for scikit-learn models)."""
    from core.models.recurrent import RecurrentClassifier
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model, RecurrentClassifier):
        model.save(folder, name)
        return
    import skops.io as sio
    sio.dump(model, folder / f"{name}.skops")


def load_model(folder: str | Path, name: str):
    """Read the model ``NAME`` that :func:`save_model` wrote into ``folder``.

    Raises
    ------
    RunError
        Missing or corrupt files, an unknown model class, or untrusted types in a skops file.
    """
    folder = Path(folder)
    try:
        meta_path = folder / f"{name}.json"
        if meta_path.exists():
            import json
            meta = json.loads(meta_path.read_text())
            classes = _own_classes()
            if not isinstance(meta, dict) or meta.get("class") not in classes:
                raise RunError(f"models/{name}.json describes an unknown model class "
                               f"{meta.get('class') if isinstance(meta, dict) else meta!r}.")
            return classes[meta["class"]].load(folder, name, meta)
        import skops.io as sio
        path = folder / f"{name}.skops"
        untrusted = sio.get_untrusted_types(file=path)
        refused = sorted(set(untrusted) - TRUSTED_SKOPS_TYPES)
        if refused:
            raise RunError(f"models/{name}.skops contains types that are not on the trusted list: {refused}. "
                           "Refusing to load it; retrain the model with this version of Chronoscope.")
        return sio.load(path, trusted=list(untrusted))
    except RunError:
        raise
    except FileNotFoundError as err:
        raise RunError(f"The model file for {name!r} is missing in {folder} ({Path(err.filename).name}). "
                       "Train again or pick another run.") from None
    except Exception as err:  # noqa: BLE001 - any decoding failure means a corrupt file; say which
        raise RunError(f"Cannot load model {name!r} from {folder} ({type(err).__name__}: {err}). The file is "
                       "corrupt or from an incompatible version (see versions.json): train again.") from err
