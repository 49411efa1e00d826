"""Prune: remove the units a monitor report saw dead, so the model gets smaller and computes the same outputs.

A dead unit (relu, relu6, squared_relu: input never > 0 over the window) outputs exactly 0 on every sample the
report saw. Whatever consumes it multiplies that 0 by a weight column, so deleting the unit -- its row in the
producing Linear/Conv, its bias, its per-unit BatchNorm parameters between the two, and its column in every
consuming Linear/Conv -- leaves the model's outputs on those samples unchanged (up to float summation order).

Which layer produces and which consumes an activation's units is read from one traced forward pass
(:func:`relulab.nn.trace`): the producer must reach the activation and the activation its consumers through
unit-preserving modules only (BatchNorm, Dropout, Identity). Two more structures are handled explicitly, inside
one ``nn.Sequential``: a conv activation followed by channel-wise pooling/dropout and then a ConvNd; or by those
and an ``nn.Flatten`` into a Linear, where channel c owns the Linear's input columns ``c*S .. c*S + S - 1`` (S: the
spatial size after pooling; pooling and dropout keep a channel that is 0 everywhere at 0), and those columns go.
Everything else is refused per layer, with the reason:

- the activation module is called more than once per forward, or its producer/consumer is (weights shared);
- the producer is not a Linear or a ConvNd with ``groups == 1`` (e.g. a transposed or grouped convolution), or a
  module other than BatchNorm/Dropout/Identity sits between producer and activation (LayerNorm mixes units);
- no Linear/Conv consumes the output directly or through Dropout/Identity (a residual add, a functional op, a
  reshape prune cannot verify, or a BatchNorm after the activation, which maps a dead unit's 0 to a non-zero
  constant, sits in between), or a consumer is not a Linear/ConvNd with ``groups == 1``;
- the model no longer runs on the example inputs after the surgery (the old width is used elsewhere): that
  layer's change is undone.

One thing the trace cannot see is the producer's raw (pre-activation) output used by a shape-agnostic operation
elsewhere (``h.sum()``); such a model computes differently after pruning. Create the optimizer after pruning.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..nn import trace
from .report import Report, report_dict

__all__ = ["prune", "PruneResult"]

_NORMS = (nn.modules.batchnorm._BatchNorm,)
_PASSING = (nn.modules.dropout._DropoutNd, nn.Identity)  # exact, no parameters: 0 stays 0
_CHANNEL_WISE = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
                 nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
                 nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d) + _PASSING  # channel c in -> channel c out; 0 -> 0


@dataclass
class PruneResult:
    """What :func:`prune` did: ``removed`` per activation layer (its units, producer, norms, consumers and the
    parameters saved there), ``refused`` per layer with dead units (the reason), and the parameter counts."""

    removed: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    params_before: int = 0
    params_after: int = 0

    @property
    def saved(self) -> int:
        """Parameters removed."""
        return self.params_before - self.params_after

    @property
    def units(self) -> int:
        """Units removed."""
        return sum(len(entry["units"]) for entry in self.removed.values())

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "refused": self.refused, "units": self.units,
                "params_before": self.params_before, "params_after": self.params_after, "saved": self.saved}

    def __str__(self) -> str:
        lines = [f"pruned {self.units} dead units: {self.params_before} -> {self.params_after} parameters "
                 f"({self.saved} saved, {100 * self.saved / max(self.params_before, 1):.1f}%)"]
        for name, entry in self.removed.items():
            lines.append(f"  {name}: {len(entry['units'])} units from {entry['producer']} -> "
                         f"{', '.join(entry['consumers'])} ({entry['saved']} parameters)")
        for name, reason in self.refused.items():
            lines.append(f"  {name}: not pruned: {reason}")
        return "\n".join(lines)



def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _example(model: nn.Module) -> tuple:
    """Example inputs when none are given: zeros for a model whose first weight layer is a Linear."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            return (torch.zeros(2, module.in_features, dtype=module.weight.dtype, device=module.weight.device),)
        if isinstance(module, nn.modules.conv._ConvNd):
            break
    raise TypeError("prune: pass an example batch, prune(model, report, x): the model's input shape cannot be "
                    "guessed (its first weight layer is not a Linear)")


def _plain_producer(module: nn.Module) -> str | None:
    """Why ``module`` cannot have rows removed, or None."""
    if isinstance(module, nn.Linear):
        return None
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return f"{type(module).__name__} is a transposed convolution"
    if isinstance(module, nn.modules.conv._ConvNd):
        return None if module.groups == 1 else f"{type(module).__name__} has groups={module.groups}"
    return f"{type(module).__name__} is not a Linear or Conv"


def _calls(model: nn.Module, inputs: tuple, kwargs: dict) -> dict[str, int]:
    """How often each module runs in one forward (hooks on every submodule)."""
    counts: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        def hook(module, args, name=name):
            counts[name] = counts.get(name, 0) + 1
        handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return counts


def _sequential_consumer(model: nn.Module, site_module: str, units: int) -> tuple[str, int] | str:
    """(consumer name, input columns per unit) for activation -> channel-wise modules -> a ConvNd, or -> channel-wise
    modules -> nn.Flatten -> a Linear, inside one nn.Sequential; or the reason it is not that structure."""
    parent_name, _, child = site_module.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if not isinstance(parent, nn.Sequential):
        return ("the activation is not in an nn.Sequential, and forward may add, reshape or mix its units in ways the "
                "trace does not map unit by unit")
    names = list(parent._modules)
    flattened = False
    for position in range(names.index(child) + 1, len(names)):
        module = parent._modules[names[position]]
        qualified = f"{parent_name}.{names[position]}" if parent_name else names[position]
        if isinstance(module, nn.Flatten) and not flattened:
            if module.start_dim != 1 or module.end_dim != -1:
                return f"nn.Flatten({module.start_dim}, {module.end_dim}) does not flatten channels first"
            flattened = True
        elif isinstance(module, nn.Linear) and flattened:
            if module.in_features % units:
                return f"the {module.in_features} inputs of {qualified} are not a multiple of {units} channels"
            return qualified, module.in_features // units
        elif isinstance(module, nn.modules.conv._ConvNd) and not flattened:
            return qualified, 1
        elif not isinstance(module, _CHANNEL_WISE):
            return (f"{qualified} ({type(module).__name__}) is not channel-wise; prune maps channels through "
                    "pooling, dropout and one nn.Flatten")
    return "no Linear or Conv follows in the nn.Sequential"


def _plan(model: nn.Module, flow, counts: dict[str, int], layer: Mapping[str, Any]) -> dict[str, Any] | str:
    """What to cut for one report layer with dead units, or the reason it cannot be cut."""
    name = layer["name"]
    try:
        site = flow.site(name)
    except KeyError:
        return "the traced forward did not call it (is this report from another model or other inputs?)"
    if site.module is None:
        return "a functional activation call (F.relu inside forward): make it a module to prune behind it"
    if counts.get(site.module, 0) != 1:
        return f"the activation module runs {counts.get(site.module, 0)} times per forward"
    if site.producer is None or not site.exact:
        return ("no Linear/Conv reaches it through unit-preserving modules only (a residual add, a functional op "
                "or a normalisation across units sits in between)")
    producer = model.get_submodule(site.producer)
    problem = _plain_producer(producer)
    if problem:
        return f"its producer {site.producer}: {problem}"
    if counts.get(site.producer, 0) != 1:
        return f"its producer {site.producer} runs {counts.get(site.producer, 0)} times per forward"
    rows = producer.out_features if isinstance(producer, nn.Linear) else producer.out_channels
    if rows != layer["units"] or site.units != layer["units"]:
        return f"its producer {site.producer} has {rows} outputs but the layer has {layer['units']} units"
    if sum(1 for s in flow.sites if s.producer == site.producer) != 1:
        return f"its producer {site.producer} feeds more than one activation"
    norms = []
    for between in site.path[1:]:
        module = model.get_submodule(between)
        if isinstance(module, _NORMS):
            norms.append(between)
        elif not isinstance(module, _PASSING):
            return f"{between} ({type(module).__name__}) between producer and activation is not per-unit"
    consumers = flow.consumers(name)
    reached = [layer_name for layer_name, fed in flow.feeders.items() if fed == name]
    per_channel = 1
    if not consumers:
        if not reached:
            return ("no Linear/Conv consumes its output directly or through Dropout/Identity (a residual add, a "
                    "functional op or a BatchNorm, which maps a dead unit's 0 to a non-zero constant, sits in "
                    "between)")
        structure = _sequential_consumer(model, site.module, layer["units"])
        if isinstance(structure, str):
            return (f"its output reaches {', '.join(reached)} through an operation prune cannot map unit by unit: "
                    f"{structure}")
        if reached != [structure[0]]:
            return f"its output reaches {', '.join(reached)}, not only {structure[0]}"
        consumers, per_channel = [structure[0]], structure[1]
    elif set(reached) != set(consumers):
        other = sorted(set(reached) - set(consumers))
        return f"its output also reaches {', '.join(other)} through an operation that is not unit-preserving"
    for consumer_name in consumers:
        consumer = model.get_submodule(consumer_name)
        problem = _plain_producer(consumer)
        if problem:
            return f"its consumer {consumer_name}: {problem}"
        if counts.get(consumer_name, 0) != 1:
            return f"its consumer {consumer_name} runs {counts.get(consumer_name, 0)} times per forward"
    return {"site": site, "producer": site.producer, "norms": norms, "consumers": consumers,
            "per_channel": per_channel}


def _cut(model: nn.Module, plan: Mapping[str, Any], dead: list[int]) -> int:
    """Remove ``dead`` units in place; returns the parameters removed."""
    before = _count(model)
    producer = model.get_submodule(plan["producer"])
    units = producer.weight.shape[0]
    keep = torch.tensor([u for u in range(units) if u not in set(dead)], dtype=torch.long,
                        device=producer.weight.device)
    with torch.no_grad():
        producer.weight = nn.Parameter(producer.weight[keep].clone(), requires_grad=producer.weight.requires_grad)
        if producer.bias is not None:
            producer.bias = nn.Parameter(producer.bias[keep].clone(), requires_grad=producer.bias.requires_grad)
        if isinstance(producer, nn.Linear):
            producer.out_features = len(keep)
        else:
            producer.out_channels = len(keep)
        for norm_name in plan["norms"]:
            norm = model.get_submodule(norm_name)
            for attr in ("weight", "bias"):
                value = getattr(norm, attr)
                if value is not None:
                    setattr(norm, attr, nn.Parameter(value[keep].clone(), requires_grad=value.requires_grad))
            for attr in ("running_mean", "running_var"):
                value = getattr(norm, attr)
                if value is not None:
                    setattr(norm, attr, value[keep].clone())
            norm.num_features = len(keep)
        per_channel = plan["per_channel"]
        columns = (keep[:, None] * per_channel + torch.arange(per_channel, device=keep.device)).reshape(-1)
        for consumer_name in plan["consumers"]:
            consumer = model.get_submodule(consumer_name)
            consumer.weight = nn.Parameter(consumer.weight[:, columns].clone(),
                                           requires_grad=consumer.weight.requires_grad)
            if isinstance(consumer, nn.Linear):
                consumer.in_features = len(columns)
            else:
                consumer.in_channels = len(columns)
    return before - _count(model)


def prune(model: nn.Module, report: Report | Mapping[str, Any], *inputs: Any, **kwargs: Any) -> PruneResult:
    """Remove, in place, the units ``report`` saw dead, where the structure allows it; return what was done.

    ``inputs``/``kwargs``: an example batch for one traced forward (which layer feeds which); optional when the
    model's first weight layer is a Linear (zeros of its width are used). For each layer of the report with dead
    units: the producer's rows and bias, BatchNorm parameters between, and the consumers' columns go; a layer
    whose structure does not allow it is left alone and its reason is in ``result.refused``. On the samples the
    report saw, the pruned model's outputs equal the original's. Create the optimizer after pruning.

    Example::

        with Monitor(model) as mon:
            model(x)
        result = relulab.prune(model, mon.report(), x)
        print(result)        # units removed, parameters saved, refusals with reasons
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"prune: model must be a torch.nn.Module; got {type(model).__name__}")
    data = report_dict(report)
    if not inputs and not kwargs:
        inputs = _example(model)
    was_training = model.training
    model.eval()  # the trace must not update BatchNorm statistics or draw dropout masks
    try:
        flow = trace(model, *inputs, **kwargs)
        counts = _calls(model, inputs, kwargs)
        result = PruneResult(params_before=_count(model))
        for layer in data["layers"]:
            dead = sorted(int(u) for u in layer.get("dead_units") or [])
            if not dead:
                continue
            if len(dead) == layer["units"]:
                result.refused[layer["name"]] = ("every unit is dead: the layer would vanish (the network is born "
                                                 "dead or collapsed; fix that first)")
                continue
            plan = _plan(model, flow, counts, layer)
            if isinstance(plan, str):
                result.refused[layer["name"]] = plan
                continue
            saved_state = {n: copy.deepcopy(model.get_submodule(n))
                           for n in [plan["producer"], *plan["norms"], *plan["consumers"]]}
            saved = _cut(model, plan, dead)
            try:
                with torch.no_grad():
                    model(*inputs, **kwargs)
            except Exception as error:  # the old width is used somewhere the trace could not see
                for module_name, module in saved_state.items():
                    _put(model, module_name, module)
                result.refused[layer["name"]] = (f"the model no longer runs after removing its units "
                                                 f"({type(error).__name__}: {str(error).splitlines()[0]}); undone")
                continue
            result.removed[layer["name"]] = {"units": dead, "producer": plan["producer"], "norms": plan["norms"],
                                             "consumers": plan["consumers"], "columns_per_unit": plan["per_channel"],
                                             "saved": saved}
        result.params_after = _count(model)
    finally:
        model.train(was_training)
    return result


def _put(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)

