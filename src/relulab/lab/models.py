"""Models for the lab: an MLP and a small CNN (2-D for images, 1-D for sequences), activation by registry name.

Every activation is a module (so the monitor sees it) made by ``relulab.nn.make(name, **params)``; every
Linear/Conv is followed by one activation except the classifier head. Initialisation is one of:

- ``"he"``: ``relulab.nn.init_`` -- He-style, each layer scaled for the activation that follows it;
- ``"default"``: PyTorch's default (Kaiming-uniform with a = sqrt(5), i.e. weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)));
- ``"xavier"``: Glorot-uniform weights (gain 1) and zero biases, whatever the activation.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .validate import INITS, MODELS

__all__ = ["MODELS", "INITS", "build_model", "initialise", "mlp", "cnn", "weight_layers", "default_depth",
           "make_activation"]

_DEFAULT_DEPTH = {"mlp": 3, "cnn": 2}
_CNN_CHANNELS = (16, 32, 32, 64, 64, 64)


def default_depth(model: str) -> int:
    """Hidden layers of an MLP (3) or convolutional layers of a CNN (2) when ``--depth`` is not given."""
    return _DEFAULT_DEPTH[model]


def make_activation(name: str, params: Mapping[str, Any] | None = None) -> nn.Module:
    """The activation module for a registry name, from ``relulab.nn``."""
    from .. import nn as rnn

    return rnn.make(name, **dict(params or {}))


def mlp(in_features: int, num_classes: int, *, depth: int, width: int, activation: str,
        params: Mapping[str, Any] | None = None) -> nn.Sequential:
    """Flatten, then ``depth`` x (Linear(width) -> activation), then Linear(num_classes)."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = in_features
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), make_activation(activation, params)]
        fan_in = width
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)


def cnn(shape: tuple[int, ...], num_classes: int, *, depth: int, width: int, activation: str,
        params: Mapping[str, Any] | None = None) -> nn.Sequential:
    """``depth`` x (Conv 3 -> activation [-> max-pool 2 while the map is >= 4 wide]), flatten, a hidden
    Linear(width) -> activation, Linear(num_classes). 2-D convolutions for (C, H, W) inputs, 1-D for (C, L)."""
    if len(shape) not in (2, 3):
        raise ValueError(f"a CNN needs (C, L) or (C, H, W) inputs; got shape {shape}")
    conv, pool = (nn.Conv2d, nn.MaxPool2d) if len(shape) == 3 else (nn.Conv1d, nn.MaxPool1d)
    channels, size = shape[0], min(shape[1:])
    layers: list[nn.Module] = []
    for i in range(depth):
        out = _CNN_CHANNELS[min(i, len(_CNN_CHANNELS) - 1)]
        layers += [conv(channels, out, kernel_size=3, padding=1), make_activation(activation, params)]
        if size >= 4:
            layers.append(pool(2))
            size //= 2
        channels = out
    with torch.no_grad():
        flat = nn.Sequential(*layers, nn.Flatten())(torch.zeros(1, *shape)).shape[1] if layers else channels
    layers += [nn.Flatten(), nn.Linear(flat, width), make_activation(activation, params), nn.Linear(width, num_classes)]
    return nn.Sequential(*layers)


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Linear/Conv of ``model`` in order, input side first: the layers whose gradient norms the lab records."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]


def initialise(model: nn.Module, init: str) -> nn.Module:
    """Initialise ``model`` in place with ``init`` (one of :data:`INITS`); see the module docstring."""
    if init == "he":
        from .. import nn as rnn

        rnn.init_(model)
    elif init == "xavier":
        for _, layer in weight_layers(model):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    elif init != "default":
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    return model


def build_model(kind: str, shape: tuple[int, ...], num_classes: int, *, activation: str, depth: int | None = None,
                width: int = 64, init: str = "he", params: Mapping[str, Any] | None = None) -> nn.Sequential:
    """An initialised ``"mlp"`` or ``"cnn"`` for inputs of ``shape``. Seed torch first for a reproducible draw."""
    depth = default_depth(kind) if depth is None else depth
    if kind == "mlp":
        in_features = 1
        for s in shape:
            in_features *= s
        model = mlp(in_features, num_classes, depth=depth, width=width, activation=activation, params=params)
    elif kind == "cnn":
        model = cnn(shape, num_classes, depth=depth, width=width, activation=activation, params=params)
    else:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {kind!r}")
    return initialise(model, init)
