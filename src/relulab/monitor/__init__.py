"""Instruments for any PyTorch model: dead units, sparsity and gradient flow, online and DDP-aware.

>>> from relulab import Monitor, revive, born_dead     # doctest: +SKIP
>>> with Monitor(model) as mon:                         # doctest: +SKIP
...     train_one_epoch(model)
>>> print(mon.report())                                 # doctest: +SKIP

See :class:`Monitor` for the definitions (dead, inactive, sparsity, gradient norm).
"""

from .core import Monitor, find_activations
from .report import LayerStats, Report
from .prune import PruneResult, prune
from .revive import BornDead, born_dead, revive

__all__ = ["Monitor", "Report", "LayerStats", "find_activations", "revive", "born_dead", "BornDead", "prune",
           "PruneResult"]
