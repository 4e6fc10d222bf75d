"""The stages of a validation, in order: read -> normalise -> clean -> labels -> assemble -> summarise.

Each stage is a function that takes the typed values of the stages before it (:mod:`core.data.stages.values`),
reports what it finds in the :class:`~core.data.validation.ValidationReport` and returns its own value, or
``None`` after a blocking problem. :func:`core.data.ingest.validate_data` runs them; import the public API from
:mod:`core.data.ingest`.
"""
__all__: list[str] = []
