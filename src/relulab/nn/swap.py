"""Replace every activation module of one member by another, anywhere in a model."""

from __future__ import annotations

from typing import Any

from torch import nn

from relulab.family import Activation

from ._params import member_op
from .counterparts import activation_name
from .modules import make

__all__ = ["swap"]


def _placement(*sources: nn.Module):
    """device and floating dtype for a new module's parameters: those of the first source that has any."""
    for source in sources:
        for tensor in list(source.parameters()) + list(source.buffers()):
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
    return None, None


def swap(model: nn.Module, old: str | Activation, new: str | Activation, **params: Any) -> int:
    """Replace every activation module of member ``old`` in ``model`` by ``make(new, **params)``; return the count.

    Matches every module :func:`relulab.nn.identify` recognises as ``old`` -- relulab.nn, torch.nn, transformers and
    timm classes, declared and probed ones (``nn.ReLU``, ``nn.ReLU(inplace=True)``, ``rnn.ReLU(lean=True)`` all
    match ``"relu"``; BERT's ``GELUActivation`` and GPT-2's ``NewGELUActivation`` match ``"gelu"``) -- by name or
    alias, at any depth: Sequential, ModuleList, ModuleDict and attributes of
    custom modules. Each replaced module gets its own new instance (a module shared between two places stays
    shared). ``inplace=True`` carries over when the new member offers it and ``params`` does not set it; new
    parameters (PReLU slopes) are placed on the device and dtype of the old module, else of its parent's
    parameters, else of the model's.

    It cannot see activations that are not submodules: ``F.relu(x)``/``torch.relu(x)``/``x.relu()`` called inside
    ``forward``, functions stored as attributes (``nn.TransformerEncoderLayer(activation="relu")`` keeps
    ``F.relu``), modules held in plain Python lists or dicts, TorchScript modules, and graphs already built by
    ``torch.compile`` (compile again after swapping). The model itself is never replaced.

    >>> import torch, relulab.nn as rnn
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(inplace=True), torch.nn.Linear(4, 2))
    >>> rnn.swap(model, "relu", "leaky_relu", negative_slope=0.1)
    1
    >>> model[1]
    LeakyReLU(negative_slope=0.1, inplace=True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"swap: model must be a torch.nn.Module; got {type(model).__name__}")
    old_activation, _ = member_op(old)
    new_activation, new_op = member_op(new)
    make(new_activation.name, **params)  # validate the parameters once, before changing anything
    if activation_name(model) == old_activation.name:
        raise ValueError(f"swap: model is itself a {old_activation.name} module; swap replaces submodules only "
                         f"(build the replacement with relulab.nn.make({new_activation.name!r}, ...))")
    replaced: dict[int, nn.Module] = {}
    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent._modules.items()):
            if child is None or activation_name(child) != old_activation.name:
                continue
            if id(child) not in replaced:
                kwargs = dict(params)
                if new_op.inplace and "inplace" not in kwargs and getattr(child, "inplace", False) is True:
                    kwargs["inplace"] = True
                replacement = make(new_activation.name, **kwargs)
                device, dtype = _placement(child, parent, model)
                if device is not None and any(True for _ in replacement.parameters()):
                    replacement.to(device=device, dtype=dtype)
                replacement.train(child.training)
                replaced[id(child)] = replacement
            setattr(parent, child_name, replaced[id(child)])
            count += 1
    return count

