"""relulab: the ReLU family done exactly and fast, with instruments and a lab.

>>> import relulab as rl
>>> rl.relu([-2, -1, 0, 1, 2])
array([0, 0, 0, 1, 2])
>>> rl.get("swish") is rl.silu
True

``import relulab`` loads NumPy only. The PyTorch binding lives in ``relulab.nn``; the monitor and the lab load
torch when first used.
"""

from .family import *  # noqa: F403  (the family's public names are relulab's)
from .family import __all__ as _family_all

__version__ = "0.1.0"
__all__ = list(_family_all) + ["Monitor", "Report", "revive", "born_dead", "prune", "doctor"]

_LAZY = {"Monitor", "Report", "revive", "born_dead", "prune"}  # need torch: loaded on first use, not at import


def __getattr__(name: str):
    if name in _LAZY:
        from . import monitor

        return getattr(monitor, name)
    if name == "doctor":  # the lab's: what is wrong with training a model, and which remedy helps
        from .lab.doctor import doctor

        return doctor
    raise AttributeError(f"module 'relulab' has no attribute {name!r}")
