"""Training: the one protocol (split by patient -> features fitted on training patients -> fit -> threshold
on validation -> score on test), the compute backends (local, Ray), thread limits and the experiment
runners (comparison, cross-validation) built on it.

Modules: :mod:`protocol`, :mod:`engine`, :mod:`threads`, :mod:`experiment`.
"""
