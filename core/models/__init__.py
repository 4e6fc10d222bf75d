"""Models with one contract (scikit-learn estimators): classical (tabular) and recurrent (sequence)."""
from core.models.base import ModelSpec, check_sequences, check_tabular
from core.models.registry import REGISTRY, get, names

__all__ = ["ModelSpec", "REGISTRY", "check_sequences", "check_tabular", "get", "names"]
