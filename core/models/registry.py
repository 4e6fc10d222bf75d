"""Every model the product offers, by short name: ``lr, svm, rf, gbm, rnn, lstm, gru, grud``."""
from __future__ import annotations

from core.models.base import ModelSpec
from core.models.classical import make_gbm, make_lr, make_rf, make_svm
from core.models.grud import make_grud
from core.models.recurrent import make_recurrent

__all__ = ["REGISTRY", "get", "names", "CLASSICAL", "SEQUENCE", "parse_names"]


def _seq(cell: str):
    def make(preset: str = "full", random_state=None, task: str = "stay"):
        return make_recurrent(cell, preset=preset, random_state=random_state, task=task)
    make.__doc__ = f"Build an unfitted {cell.upper()} RecurrentClassifier at a preset size."
    return make


#: the torch networks: saved in their own format, reporting every epoch, refitted for the epochs early stopping chose.
_NETWORK = {"persist": "torch", "hooks": frozenset({"progress", "refit_params"})}

REGISTRY: dict[str, ModelSpec] = {
    "lr": ModelSpec("lr", "tabular", make_lr, "logistic regression", "classical"),
    "svm": ModelSpec("svm", "tabular", make_svm, "SVM", "classical"),
    "rf": ModelSpec("rf", "tabular", make_rf, "random forest", "classical"),
    "gbm": ModelSpec("gbm", "tabular", make_gbm, "gradient boosting", "classical"),
    "rnn": ModelSpec("rnn", "sequence", _seq("rnn"), "RNN", "recurrent", **_NETWORK),
    "lstm": ModelSpec("lstm", "sequence", _seq("lstm"), "LSTM", "recurrent", **_NETWORK),
    "gru": ModelSpec("gru", "sequence", _seq("gru"), "GRU", "recurrent", **_NETWORK),
    "grud": ModelSpec("grud", "sequence", make_grud, "GRU-D", "recurrent", persist="torch",
                      hooks=_NETWORK["hooks"] | {"channel_kinds"}),
}
CLASSICAL = tuple(n for n, s in REGISTRY.items() if s.family == "classical")
SEQUENCE = tuple(n for n, s in REGISTRY.items() if s.input_kind == "sequence")


def names() -> tuple[str, ...]:
    """All registered model names, classical first."""
    return tuple(REGISTRY)


def get(name: str) -> ModelSpec:
    """The :class:`ModelSpec` called ``name``.

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown model {name!r}. Choose from {', '.join(REGISTRY)} "
                         "(e.g. --models lr,gbm,gru).") from None


def parse_names(text: str | None) -> tuple[str, ...]:
    """``"lr, gbm"`` -> ``("lr", "gbm")`` (checked; empty/None = all)."""
    if not text:
        return names()
    out = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    for n in out:
        get(n)
    if not out:
        return names()
    return out


