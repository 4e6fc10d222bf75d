"""The application layer: typed requests (:mod:`core.service.requests`) and one runner each
(:mod:`core.service.runners`). Pages, CLI commands and jobs build these requests and nothing else."""
from core.service.requests import (DEFAULT_HORIZONS, DEFAULT_MODELS, DEFAULT_PRESET, EARLY_MODELS,
                                   EXPLAIN_QUICK_MODELS, CrossValidateRequest, EvaluateRequest, ExplainRequest, GatesRequest,
                                   PairRequest, PredictRequest, SubgroupsRequest, TimeOrderRequest,
                                   TrainRequest, ValidateRequest)
from core.service.runners import request_key, run_request

__all__ = ["TrainRequest", "TimeOrderRequest", "ExplainRequest", "PredictRequest", "GatesRequest",
           "CrossValidateRequest", "ValidateRequest", "PairRequest", "EvaluateRequest", "SubgroupsRequest", "run_request", "request_key", "DEFAULT_PRESET", "DEFAULT_MODELS",
           "DEFAULT_HORIZONS", "EARLY_MODELS", "EXPLAIN_QUICK_MODELS"]
