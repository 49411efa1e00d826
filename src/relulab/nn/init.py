"""Variance-preserving gains, He-style initialisation for the activation in use, and optimizer parameter groups.

The gain of a member f is ``1 / sqrt(E[f(z)^2])`` with z ~ N(0, 1): if a layer's pre-activations have unit
variance, weights drawn with standard deviation ``gain / sqrt(fan_in)`` give the next layer's pre-activations unit
variance again (He et al. 2015, eq. 10, for any f). Each member's spec gives its gain (``Activation.gain``): a closed
form where one exists, otherwise Gauss-Legendre quadrature of the family's own NumPy member, so the gain of every
registered member is available. See docs/nn.md
for the table and for why torch.nn.init.calculate_gain differs for tanh (5/3), selu (3/4) and sigmoid (1).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Iterable

import torch
from torch import nn

from relulab.family import Activation, get, leaky_gain
from relulab.family import second_moment  # noqa: F401  (re-exported: relulab.nn.init.second_moment)

from .counterparts import activation_name, activation_params
from .flow import is_weight_layer, weight_fan_in

__all__ = ["gain", "init_", "InitPlan", "param_groups", "fan_in", "WEIGHT_LAYERS", "NORM_LAYERS"]

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORM_LAYERS = tuple(
    getattr(nn, name) for name in (
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "InstanceNorm1d", "InstanceNorm2d",
        "InstanceNorm3d", "LayerNorm", "GroupNorm", "LocalResponseNorm", "RMSNorm",
    ) if hasattr(nn, name)
)

def fan_in(module: nn.Module) -> int | None:
    """The number of inputs each output of a weight layer sums over, or None for a module that is not one.

    Weight layers: ``nn.Linear``, ``nn.Conv1d/2d/3d`` (weight (out, in/groups, *kernel): in/groups * prod(kernel)),
    ConvTransposeNd and transformers' ``Conv1D`` (weight (in, out): in), told apart by duck typing
    (:func:`relulab.nn.flow.is_weight_layer`).

    >>> import torch, relulab.nn as rnn
    >>> rnn.fan_in(torch.nn.Conv2d(3, 8, 5)), rnn.fan_in(torch.nn.Linear(7, 2)), rnn.fan_in(torch.nn.ReLU())
    (75, 7, None)
    """
    return weight_fan_in(module) if is_weight_layer(module) else None


@functools.lru_cache(maxsize=256)
def _gain(activation: Activation, items: tuple[tuple[str, Any], ...]) -> float:
    # keyed by the member object: a member unregistered and registered again under its name is a new key
    return activation.gain(**dict(items))


def gain(name: str | Activation, **params: Any) -> float:
    """The variance-preserving gain ``1 / sqrt(E[f(z)^2])``, z ~ N(0, 1), of any member at its parameters.

    ``prelu`` takes ``init`` (the slope, default 0.25); ``rrelu`` uses the training distribution of its slope.

    >>> import relulab.nn as rnn
    >>> round(rnn.gain("relu"), 6), round(rnn.gain("leaky_relu", negative_slope=0.2), 6)
    (1.414214, 1.38675)
    >>> round(rnn.gain("selu"), 4), round(rnn.gain("tanh"), 4)
    (1.0, 1.5925)
    """
    activation = get(name)
    allowed = {p.name for p in activation.params}
    if activation.name == "prelu":
        allowed |= {"init", "num_parameters"}
    allowed -= {"training", "seed", "rng", "channel_axis"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise TypeError(f"gain: {activation.name} takes {', '.join(sorted(allowed)) or 'no parameters'}; "
                        f"got unexpected {unknown[0]!r}")
    # Validated here, before the cache (which needs hashable, normalised values).
    if activation.name == "prelu":
        count = params.pop("num_parameters", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"gain: prelu's num_parameters must be an integer >= 1; got {count!r}")
        init = params.get("init", 0.25)
        if isinstance(init, bool) or not isinstance(init, numbers.Real):
            raise TypeError(f"gain: prelu's init (the slope) must be a real number; got {init!r}")
        try:
            finite = math.isfinite(init)
        except OverflowError:  # a Python int beyond float64
            finite = False
        if not finite:
            shown = f"an int of {init.bit_length()} bits" if isinstance(init, int) else repr(init)
            raise ValueError(f"gain: prelu's init (the slope) must be a finite real number; got {shown}")
        params["init"] = float(init)
    else:
        # the family validates every parameter (type, range, lower <= upper) and normalises reals to float
        params = {p.name: p.check(params[p.name], "gain") for p in activation.params if p.name in params}
        activation.properties_for(**params)  # the member's cross-parameter rules (rrelu's lower <= upper)
    return _gain(activation, tuple(sorted(params.items())))


def _module_gain(module: nn.Module) -> tuple[str, float]:
    name = activation_name(module)
    params = activation_params(module)
    if name == "prelu":
        slopes = module.weight.detach().double()
        return name, leaky_gain(math.sqrt(float((slopes * slopes).mean())))  # the current slopes, not the first
    return name, gain(name, **params)


class InitPlan(dict):
    """What :func:`init_` did: ``{layer name: (activation name or "identity", gain)}``, plus ``skipped``
    (``{layer name: why it was left as it was}``) and ``method`` ("data flow" or "registration order")."""

    def __init__(self, *args: Any, method: str = "data flow", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method = method
        self.skipped: dict[str, str] = {}


def _init_layer(module: nn.Module, gain_value: float, generator: torch.Generator | None) -> None:
    module.weight.normal_(0.0, gain_value / math.sqrt(weight_fan_in(module)), generator=generator)
    if getattr(module, "bias", None) is not None:
        module.bias.zero_()


@torch.no_grad()
def init_(model: nn.Module, inputs: Any = None, *, generator: torch.Generator | None = None) -> InitPlan:
    """He-style initialisation of every weight layer of ``model`` for the activation whose output it consumes.

    Weight layers are Linear, ConvNd, ConvTransposeNd and transformers' GPT-2-style ``Conv1D``. Each weight is drawn
    from N(0, gain^2 / fan_in) and each bias set to 0, where gain = :func:`gain` of the activation that feeds the
    layer, so each layer's pre-activations keep unit variance (He et al. 2015, eq. 10, written for any f). A layer
    fed by the data or by a normalisation (LayerNorm, BatchNorm: unit variance already) gets gain 1.

    ``inputs`` (a tensor, a tuple of positional inputs, or a dict of keyword inputs such as
    ``{"input_ids": ids}``) runs one forward pass, in eval mode and without gradients, to learn which activation
    really feeds each layer (:func:`relulab.nn.trace`: through pooling, flatten, dropout, residual adds and
    functional calls such as ``F.relu`` inside ``forward``). Layers that pass does not reach are left as they were
    and listed in ``plan.skipped`` with the reason. Without ``inputs`` the activation is the nearest activation
    module registered before the layer (``named_modules`` order), which follows the forward pass in Sequential
    models and in most hand-written ones, but not where modules are registered out of call order or activations
    are functions; ``plan.method`` says which was used.

    Returns an :class:`InitPlan`: ``{layer name: (activation name or "identity", gain)}``.

    >>> import torch, relulab.nn as rnn
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    >>> plan = rnn.init_(model, torch.randn(4, 8))
    >>> plan["0"], plan["2"][0], round(plan["2"][1], 4), plan.method
    (('identity', 1.0), 'relu', 1.4142, 'data flow')
    """
    if inputs is None:
        return _init_by_order(model, generator)
    from .flow import call_inputs, trace

    args, kwargs = call_inputs(inputs)
    was_training = model.training
    model.eval()
    try:
        flow = trace(model, *args, **kwargs)
    finally:
        model.train(was_training)
    sites = {site.name: site for site in flow.sites}
    plan = InitPlan(method="data flow")
    for qualified, module in model.named_modules():
        if not is_weight_layer(module):
            continue
        if qualified not in flow.feeders:
            plan.skipped[qualified] = "not called by the forward pass over the given inputs"
            continue
        feeder = flow.feeders[qualified]
        if feeder is None:
            choice = ("identity", 1.0)
        else:
            site = sites[feeder]
            if site.module is not None:
                choice = _module_gain(model.get_submodule(site.module))
            else:
                choice = (site.member, gain(site.member, **site.params))
        _init_layer(module, choice[1], generator)
        plan[qualified] = choice
    return plan


def _init_by_order(model: nn.Module, generator: torch.Generator | None) -> InitPlan:
    plan = InitPlan(method="registration order")
    current = ("identity", 1.0)
    for qualified, module in model.named_modules():
        if activation_name(module) not in (None, "identity"):  # relulab.nn.Identity is an explicit no-op choice
            current = _module_gain(module)
        elif is_weight_layer(module):
            _init_layer(module, current[1], generator)
            plan[qualified] = current
            current = ("identity", 1.0)
    return plan


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer parameter groups: everything else with ``weight_decay``, and without decay the PReLU slopes
    (torch.nn or relulab), every bias and the parameters of normalisation layers.

    Weight decay pulls PReLU slopes towards 0, turning the unit back into a relu; biases and norm scales/shifts are
    not weights whose size should be penalised either. Empty groups are left out; shared parameters appear once.

    >>> import torch, relulab.nn as rnn
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), rnn.PReLU(4), torch.nn.LayerNorm(4))
    >>> [len(g["params"]) for g in rnn.param_groups(model, weight_decay=0.05)]
    [1, 4]
    >>> optimizer = torch.optim.AdamW(rnn.param_groups(model, weight_decay=0.05), lr=1e-3)
    """
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
        raise ValueError(f"param_groups: weight_decay must be a real number >= 0; got {weight_decay!r}")
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        exempt_module = activation_name(module) == "prelu" or isinstance(module, NORM_LAYERS)
        for name, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            (no_decay if exempt_module or name == "bias" else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": float(weight_decay)},
              {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]
