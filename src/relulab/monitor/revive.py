"""Remedies and diagnoses built on the monitor: revive dead units, detect a network born dead."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..nn import gain
from ..nn.flow import call_inputs, is_weight_layer, weight_fan_in
from .core import Monitor
from .report import Report, report_dict

__all__ = ["revive", "born_dead", "BornDead"]



def revive(model: nn.Module, report: Report | Mapping[str, Any], *, bias: float = 0.01,
           generator: torch.Generator | None = None, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Re-initialise every dead unit in ``report``: its incoming weights (He-style for its activation) and bias.

    For each layer with dead units the monitor recorded which Linear/Conv feeds it (through any BatchNorm or
    Dropout in between). Only the dead units' rows (output features / output channels) change: live units keep
    their weights exactly. A BatchNorm on the way gets weight 1, bias 0 and fresh running statistics for those
    units. With ``optimizer``, the optimizer's state for those rows (momentum, Adam moments) is zeroed too.

    Returns how many units were revived. A layer whose source cannot be mapped (no recorded Linear/Conv, a size
    mismatch, a functional op in between) is skipped with a RuntimeWarning that says why.

    Example::

        with Monitor(model) as mon:
            model(x)
        n = relulab.revive(model, mon.report())
    """
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not math.isfinite(bias):
        raise ValueError(f"bias must be a finite number; got {bias!r}")
    data = report_dict(report)
    sources = data.get("sources", {})
    # A producer feeding several call sites (a shared layer, as in ALBERT) may be revived only in the units dead at
    # every one of them: a unit alive at one site is alive.
    by_producer: dict[str, list[set[int]]] = {}
    for layer in data["layers"]:
        chain = sources.get(layer["name"], [])
        if chain and layer.get("units"):
            by_producer.setdefault(chain[-1], []).append(set(layer["dead_units"]))
    revived = 0
    done: set[str] = set()
    for layer in data["layers"]:
        dead = layer["dead_units"]
        if not dead:
            continue
        chain = sources.get(layer["name"], [])
        if chain:
            if chain[-1] in done:
                continue
            shared = by_producer.get(chain[-1], [])
            if len(shared) > 1:
                dead = sorted(set.intersection(*shared))
                done.add(chain[-1])
                if not dead:
                    continue
        problem = _mapping_problem(model, chain, layer)
        if problem:
            warnings.warn(f"revive: skipped layer {layer['name']!r} ({len(dead)} dead units): {problem}",
                          RuntimeWarning, stacklevel=2)
            continue
        producer = model.get_submodule(chain[-1])
        units = torch.as_tensor(dead, dtype=torch.long, device=producer.weight.device)
        with torch.no_grad():
            weight = producer.weight
            # The dead units' rows: dim 0 of a Linear/Conv weight; dim 1 of a GPT-2-style Conv1D (stored (in, out)).
            unit_axis = 1 if _transposed(producer) else 0
            std = gain(layer["kind"]) / math.sqrt(weight_fan_in(producer))
            shape = list(weight.shape)
            shape[unit_axis] = len(dead)
            fresh = torch.randn(shape, generator=generator, dtype=weight.dtype,
                                device="cpu" if generator is None else generator.device)
            weight.index_copy_(unit_axis, units, (fresh * std).to(weight.device))
            if producer.bias is not None:
                producer.bias[units] = bias
            for name in chain[:-1]:
                module = model.get_submodule(name)
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    if module.affine:
                        module.weight[units] = 1.0
                        module.bias[units] = 0.0
                    if module.running_mean is not None:
                        module.running_mean[units] = 0.0
                        module.running_var[units] = 1.0
        if optimizer is not None:
            _clear_optimizer_rows(optimizer, [(producer.weight, unit_axis), (producer.bias, 0)], units)
        revived += len(dead)
    return revived


def _mapping_problem(model: nn.Module, chain: list[str], layer: Mapping[str, Any]) -> str | None:
    if not chain:
        return ("no Linear/Conv was seen feeding it through unit-preserving modules only (an op such as a residual "
                "add, a reshape, a norm across units or a functional call sits in between); re-initialise that layer "
                "yourself")
    try:
        producer = model.get_submodule(chain[-1])
    except AttributeError:
        return f"the model has no module {chain[-1]!r} (is this report from another model?)"
    if not is_weight_layer(producer) or isinstance(producer, nn.modules.conv._ConvTransposeNd):
        return (f"it is fed by {chain[-1]!r} ({type(producer).__name__}), which is not a Linear or Conv; revive "
                "maps only through BatchNorm and Dropout")
    rows = producer.weight.shape[1 if _transposed(producer) else 0]
    if rows != layer["units"]:
        return f"its source {chain[-1]!r} has {rows} outputs but the layer has {layer['units']} units"
    return None


def _transposed(module: nn.Module) -> bool:
    # transformers' Conv1D keeps its weight as (in, out): its units are columns
    return not isinstance(module, nn.Linear) and is_weight_layer(module) and module.weight.ndim == 2 and \
        getattr(module, "nf", None) == module.weight.shape[1]


def _clear_optimizer_rows(optimizer: torch.optim.Optimizer, params: list[tuple[Any, int]],
                          units: torch.Tensor) -> None:
    for param, axis in params:
        if param is None:
            continue
        for value in optimizer.state.get(param, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == param.shape:
                value.index_fill_(axis, units.to(value.device), 0)


@dataclass
class BornDead:
    """The result of :func:`born_dead`."""

    born_dead: bool  # the network's output is constant over the inputs
    dead_layers: list[str]  # layers whose every unit is dead on these inputs
    output_spread: float  # max |f(x_i) - f(x_0)| over the inputs
    dead_fraction: dict[str, float] = field(default_factory=dict)  # per layer

    def __bool__(self) -> bool:
        return self.born_dead


def born_dead(model: nn.Module, inputs: Any, *, rtol: float = 1e-6) -> BornDead:
    """One forward pass over ``inputs``: is the network born dead (constant output, Lu et al. 2019)?

    ``inputs`` is a tensor, a tuple of positional inputs, or a dict of keyword inputs (``{"input_ids": ids}`` for a
    transformers model); the first tensor among them must hold at least two samples along dim 0. The output may be
    a tensor, a tuple/list, a dict or a transformers ``ModelOutput``: its first tensor is compared (the logits or
    the last hidden state). The output counts as constant when every row is within ``rtol * max(1, max|f|)`` of the
    first. Also lists the layers that are entirely dead on these inputs (every unit's input <= 0 for every sample).
    The model runs in eval mode under no_grad and is put back in the mode it was in.

    Reference: Lu, Shin, Su & Karniadakis 2019, Dying ReLU and Initialization: Theory and Numerical Examples.
    """
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not rtol >= 0 or not math.isfinite(rtol):
        raise ValueError(f"born_dead: rtol must be a finite number >= 0; got {rtol!r}")
    args, kwargs = call_inputs(inputs)
    first = next((t for t in list(args) + list(kwargs.values()) if isinstance(t, torch.Tensor)), None)
    if first is None or first.ndim < 1 or first.shape[0] < 2:
        raise ValueError("inputs must be a tensor (or a tuple/dict of inputs whose first tensor is one) holding at "
                         f"least two samples along dim 0; got {_describe(inputs)}")
    was_training = model.training
    model.eval()
    try:
        # functional=True: one pass, and models whose activations are functions (F.relu) are seen too
        with Monitor(model, functional=True) as mon, torch.no_grad():
            output = model(*args, **kwargs)
        report = mon.report()
    finally:
        model.train(was_training)
    returned, output = output, _first_tensor(output)
    if output is None:
        raise TypeError(f"born_dead: the model returned {type(returned).__name__} with no tensor in it")
    output = output.reshape(output.shape[0], -1).double()
    spread = float((output - output[:1]).abs().max())
    scale = max(1.0, float(output.abs().max()))
    fractions = {layer.name: layer.dead_fraction for layer in report.layers if layer.dead_fraction is not None}
    dead_layers = [name for name, fraction in fractions.items() if fraction == 1.0]
    return BornDead(born_dead=spread <= rtol * scale, dead_layers=dead_layers, output_spread=spread,
                    dead_fraction=fractions)


def _describe(inputs: Any) -> str:
    if isinstance(inputs, torch.Tensor):
        return f"a tensor of shape {tuple(inputs.shape)}"
    return type(inputs).__name__


def _first_tensor(output: Any) -> torch.Tensor | None:
    """The first tensor of a model's output: itself, the first of a tuple/list, the first value of a dict or a
    transformers ModelOutput (an ordered dict of its non-None fields)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        values = list(output.values())
    elif isinstance(output, (tuple, list)):
        values = list(output)
    else:
        return None
    for value in values:
        found = _first_tensor(value)
        if found is not None:
            return found
    return None
