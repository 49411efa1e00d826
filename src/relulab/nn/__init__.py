"""relulab.nn: the ReLU family as PyTorch modules, functions, gains, initialisation and model surgery.

Import it explicitly (``import relulab`` never imports torch)::

    >>> import torch, relulab.nn as rnn
    >>> rnn.LeakyReLU(0.1)(torch.tensor([-2.0, 3.0]))
    tensor([-0.2000,  3.0000])
    >>> rnn.make("swish")
    SiLU()
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> rnn.swap(model, "relu", "prelu", num_parameters=8)
    1
    >>> _ = rnn.init_(model)
    >>> optimizer = torch.optim.AdamW(rnn.param_groups(model, weight_decay=0.01))

What is here:

* **Modules** for every member (``ReLU``, ``LeakyReLU``, ``GELU``, ...: docs/members.md lists each member's
  class), built from each member's spec in the family registry; each has ``.activation`` (the family member) and ``.params``, torch.nn's constructor
  arguments, ``inplace`` where safe, ``at_zero=`` at a kink at 0 and ``lean=``. :func:`make` builds one by name or
  alias. A member registered at run time gets a class too (:func:`module_for`, ``relulab.nn.<its nn_class>``),
  computed by its NumPy kernels: a slow CPU round trip, but with the member's exact values and gradients.
* :mod:`relulab.nn.functional`: the same as functions with torch.nn.functional's signatures.
* **Numbers**: the same values and gradients as the NumPy member, including relulab's limits at +-inf where
  torch's kernels give NaN; torch's own fused kernels on the common path (as fast as torch.nn).
* **lean=True**: piecewise-linear members keep a packed 1-bit mask for the backward instead of a float tensor.
* :func:`gain`, :func:`init_`, :func:`fan_in`, :func:`param_groups`, :func:`swap`.
* :func:`identify` (which member any module computes: relulab, torch.nn, transformers, timm, declared with
  :func:`register_counterpart`, or found by evaluating it), and its views :func:`activation_name`,
  :func:`activation_params`.

docs/nn.md has the tables: every difference from torch (values and derivatives at +-inf, at kinks, at NaN and
-0.0), what each member's lean path saves with measured ratios, the gains against torch.nn.init.calculate_gain
with the reasons they differ, and what :func:`swap` cannot see.
"""

from . import functional
from .init import fan_in, gain, init_, param_groups
from .counterparts import (
    Identification,
    activation_name,
    activation_params,
    identify,
    register_counterpart,
    unregister_counterpart,
)
from .modules import MODULES, ActivationModule, make, module_for
from .modules import __all__ as _module_classes
from .modules import *  # noqa: F403  (the classes: ReLU, LeakyReLU, ...)
from .flow import Flow, FlowTracer, Origin, Site, trace
from .swap import swap

__all__ = sorted(set(_module_classes) - {"make", "module_for"}) + [
    "make", "module_for", "functional", "gain", "init_", "swap", "param_groups", "activation_name", "activation_params",
    "identify", "Identification", "register_counterpart", "unregister_counterpart", "fan_in",
    "trace", "Flow", "FlowTracer", "Origin", "Site",
]


def __getattr__(name: str):
    # relulab.nn.ShiftedRelu: the class of a member registered at run time, by its spec's nn_class
    from .modules import class_for

    cls = class_for(name)
    if cls is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return cls
