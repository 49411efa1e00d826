"""Which family member a module computes, wherever its class comes from: :func:`identify`.

One answer for every room: :func:`activation_name` and :func:`activation_params` (used by ``swap``, ``init_``,
``gain`` lookups and the monitor) are thin views of :func:`identify`. A module is identified, in this order, as

* ``"relulab"``: a relulab.nn module (``module.activation``, ``module.params``);
* ``"registered"``: a class declared with :func:`register_counterpart` (yours or a library's);
* ``"torch"``: a torch.nn activation class (``nn.ReLU``, ``nn.LeakyReLU(negative_slope)``, ``nn.Hardtanh(min_val,
  max_val)``, ...; ``nn.ReLU6`` subclasses ``nn.Hardtanh`` and stays relu6);
* ``"transformers"`` / ``"timm"``: their activation classes, looked up by ``module.qualname`` of the module's own
  class, so neither library is imported (only classes of modules already in the model are looked at);
* ``"probe"``: an unknown leaf module without parameters, buffers or children, evaluated (no_grad, float64) on probe
  values covering every kink and both tails, in two shapes and two orders (so it must act elementwise and keep the
  shape), and matched to tight tolerance against every member that has a torch op at its default parameters (and
  gelu's tanh form). Cached per class and the instance's plain attributes; exceptions mean "not identified".

The subclass walks the class's MRO, so the most specific declaration wins. Placeholders are not activations:
``nn.Identity`` (timm's drop_path, HF ConvNeXt), transformers' ``LinearActivation``; nor are dropout, drop-path
and normalisation modules, which are never probed. ``relulab.nn.Identity`` is an explicit choice and stays one.

>>> import torch, relulab.nn as rnn
>>> rnn.identify(torch.nn.LeakyReLU(0.2))
Identification(member='leaky_relu', params={'negative_slope': 0.2}, how='torch')
>>> rnn.identify(torch.nn.Identity()) is None
True
"""

from __future__ import annotations

import inspect
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from relulab.family import Activation, get, names

from ._ops import OPS
from .modules import MODULES, ActivationModule, module_for

__all__ = ["Identification", "identify", "register_counterpart", "unregister_counterpart", "activation_name",
           "activation_params", "KNOWN_CLASSES"]

HOW = ("relulab", "registered", "torch", "transformers", "timm", "probe")


@dataclass(frozen=True)
class Identification:
    """What :func:`identify` found: the family ``member``, its ``params`` (``relulab.nn.make(member, **params)``
    builds an equivalent relulab module) and ``how`` it was found (one of ``HOW``)."""

    member: str
    params: dict[str, Any] = field(hash=False)
    how: str


@dataclass(frozen=True)
class _Counterpart:
    """A class's declared member (None: not an activation) and its parameters: constants, or callables that read
    them from the module instance."""

    member: str | None
    params: tuple[tuple[str, Any], ...]
    how: str

    def resolve(self, module: nn.Module) -> Identification | None:
        if self.member is None:
            return None
        values = {name: (spec(module) if callable(spec) else spec) for name, spec in self.params}
        return Identification(self.member, values, self.how)


def _attribute(name: str) -> Callable[[nn.Module], Any]:
    def read(module: nn.Module) -> Any:
        return getattr(module, name)
    read.__qualname__ = f"attribute {name!r}"
    return read


def _module_params(activation: Activation) -> tuple[str, ...] | None:
    """make()'s parameter keywords for the member (prelu: num_parameters, init), None for a member relulab.nn has
    no module for (a weight-taking member registered at run time)."""
    if activation.name not in MODULES and activation.takes_weight:
        return None
    return module_for(activation).param_names


def _torch_side(activation: Activation) -> tuple[str, ...]:
    """The module's parameters that torch's own class takes too: not the keyword-only ones (relu's max_value and
    threshold), which torch.nn.ReLU's instances do not have and make() takes only where given."""
    keyword_only = {p.name for p in activation.params if p.keyword_only}
    return tuple(name for name in _module_params(activation) if name not in keyword_only)


def _full_params(member: str, given: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Every torch parameter of the member (make()'s keywords), the given ones over the defaults."""
    activation = get(member)
    if _module_params(activation) is not None:
        signature = inspect.signature(module_for(activation))
        defaults = {name: signature.parameters[name].default for name in _torch_side(activation)}
    else:
        defaults = activation.defaults
    defaults.update(given)
    return tuple(defaults.items())


# -- torch.nn: the relulab classes' counterparts, parameters read from the same attribute names ------------------
_TORCH: dict[type, _Counterpart] = {
    cls.torch_counterpart: _Counterpart(member, tuple((p, _attribute(p)) for p in _torch_side(cls.activation)),
                                        "torch")
    for member, cls in MODULES.items() if cls.torch_counterpart is not None
}
_TORCH[nn.Identity] = _Counterpart(None, (), "torch")  # a placeholder, not a choice of activation


# -- transformers and timm, by "module.qualname" (never imported). Each row was checked numerically against the
# member (tests/nn/test_nn_counterparts.py: transformers' classes evaluated side by side; timm's formulas, read from
# timm/layers/activations.py and activations_me.py, written out in the test). None: looked at and not a member.
_GELU, _GELU_TANH = {"approximate": "none"}, {"approximate": "tanh"}
_HF = "transformers.activations."
_TRANSFORMERS_ROWS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "GELUActivation": ("gelu", _GELU),  # F.gelu, or x/2 (1 + erf(x/sqrt 2)) with use_gelu_python
    "NewGELUActivation": ("gelu", _GELU_TANH),  # GPT-2's tanh form
    "GELUTanh": ("gelu", _GELU_TANH),  # also PytorchGELUTanh (an alias) and its python form
    "PytorchGELUTanh": ("gelu", _GELU_TANH),  # a class of its own in older releases
    "FastGELUActivation": ("gelu", _GELU_TANH),  # sqrt(2/pi) written 0.7978845608: 4e-12 relative, checked
    "AccurateGELUActivation": ("gelu", _GELU_TANH),
    "QuickGELUActivation": ("quick_gelu", {}),
    "SiLUActivation": ("silu", {}),
    "MishActivation": ("mish", {}),
    "ReLUSquaredActivation": ("squared_relu", {}),
    "LinearActivation": (None, {}),  # returns its input: a placeholder, as nn.Identity
    "ClippedGELUActivation": (None, {}),  # gelu clipped to [min, max]: not a member
    "LaplaceActivation": (None, {}),  # a shifted normal CDF (MEGA's attention): not a member
    "SqrtSoftplusActivation": (None, {}),  # sqrt(softplus(x)), a router score: not a member
    "XIELUActivation": (None, {}),  # learned parameters alpha_p, alpha_n: not a member
}
_TIMM_ROWS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "activations.Swish": ("silu", {}), "activations_me.SwishMe": ("silu", {}),
    "activations.Mish": ("mish", {}), "activations_me.MishMe": ("mish", {}),
    "activations.Sigmoid": ("sigmoid", {}), "activations.Tanh": ("tanh", {}),
    "activations.HardSwish": ("hardswish", {}), "activations_me.HardSwishMe": ("hardswish", {}),
    "activations.HardSigmoid": ("hard_sigmoid", {}), "activations_me.HardSigmoidMe": ("hard_sigmoid", {}),
    "activations.GELU": ("gelu", _GELU), "activations.GELUTanh": ("gelu", _GELU_TANH),
    "activations.QuickGELU": ("quick_gelu", {}),
    "activations.PReLU": ("prelu", {"num_parameters": _attribute("num_parameters"), "init": _attribute("init")}),
    "activations.HardMish": (None, {}), "activations_me.HardMishMe": (None, {}),  # x/2 clamp(x + 2, 0, 2)
    "drop.DropPath": (None, {}), "drop.DropBlock2d": (None, {}),  # stochastic depth: placeholders in eval
}
_BY_NAME: dict[str, _Counterpart] = {}
for _name, (_member, _params) in _TRANSFORMERS_ROWS.items():
    _BY_NAME[_HF + _name] = _Counterpart(_member, _full_params(_member, _params) if _member else (), "transformers")
for _name, (_member, _params) in _TIMM_ROWS.items():
    for _prefix in ("timm.layers.", "timm.models.layers."):  # the current path and the one before timm 0.9
        _BY_NAME[_prefix + _name] = _Counterpart(_member, _full_params(_member, _params) if _member else (), "timm")
# BLOOM's own module (models/bloom): the tanh form with sqrt(2/pi) written 0.79788456 (8e-10 relative), checked
_BY_NAME["transformers.models.bloom.modeling_bloom.BloomGelu"] = _Counterpart(
    "gelu", _full_params("gelu", _GELU_TANH), "transformers")
_BY_NAME["torchvision.ops.stochastic_depth.StochasticDepth"] = _Counterpart(None, (), "torch")

#: Every class relulab knows by name without importing it: "module.qualname" -> (member or None, how).
KNOWN_CLASSES: dict[str, tuple[str | None, str]] = {key: (c.member, c.how) for key, c in _BY_NAME.items()}

_REGISTERED: dict[type, _Counterpart] = {}


def register_counterpart(cls: type, member: str | Activation | None, *, replace: bool = False,
                         **params: Any) -> None:
    """Declare that modules of class ``cls`` compute family ``member`` with ``params``; every room sees it.

    Each parameter is a constant, or a callable taking the module instance and returning the value (to read it from
    the module's own attributes). Parameters left out take the member's defaults. ``member=None`` declares that
    ``cls`` is not an activation (a placeholder): it is never probed. A declaration applies to subclasses too, and
    wins over relulab's own tables (the most specific class in the MRO decides). Raises ValueError if ``cls`` is
    already declared, unless ``replace=True``.

    >>> import torch, relulab.nn as rnn
    >>> class MyLeaky(torch.nn.Module):
    ...     def __init__(self, alpha=0.1):
    ...         super().__init__()
    ...         self.alpha = alpha
    ...     def forward(self, x):
    ...         return torch.where(x > 0, x, self.alpha * x)
    >>> rnn.register_counterpart(MyLeaky, "leaky_relu", negative_slope=lambda m: m.alpha)
    >>> rnn.activation_name(MyLeaky(0.3)), rnn.activation_params(MyLeaky(0.3))
    ('leaky_relu', {'negative_slope': 0.3})
    >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), MyLeaky(0.3))
    >>> rnn.swap(model, "leaky_relu", "gelu"), model[1]
    (1, GELU(approximate='none'))
    >>> rnn.unregister_counterpart(MyLeaky)
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"register_counterpart: cls must be a torch.nn.Module subclass; got {cls!r}")
    if cls in _REGISTERED and not replace:
        raise ValueError(f"register_counterpart: {cls.__qualname__} is already declared as "
                         f"{_REGISTERED[cls].member!r}; pass replace=True to replace it")
    if issubclass(cls, ActivationModule):
        raise ValueError(f"register_counterpart: {cls.__qualname__} is a relulab.nn module already")
    if member is None:
        if params:
            raise TypeError(f"register_counterpart: member=None (not an activation) takes no parameters; got "
                            f"{sorted(params)}")
        _REGISTERED[cls] = _Counterpart(None, (), "registered")
        _PROBED.clear()
        return
    activation = get(member)
    # make()'s keywords (prelu: num_parameters, init), or the family's for a member without a torch op
    module_params = _module_params(activation)
    allowed = set(module_params) if module_params is not None else set(activation.defaults)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise TypeError(f"register_counterpart: {activation.name} takes {', '.join(sorted(allowed)) or 'no parameters'}"
                        f"; got unexpected {unknown[0]!r}")
    constants = {name: value for name, value in params.items() if not callable(value)}
    index = {p.name: p for p in activation.params}
    for name, value in constants.items():
        if name in index:
            index[name].check(value, f"register_counterpart({cls.__qualname__}, {activation.name!r})")
    if len(constants) == len(params):  # cross-parameter rules (hard_tanh's min_val < max_val), when all are known
        family = {name: value for name, value in constants.items() if name in index}
        activation.properties_for(**family)
    _REGISTERED[cls] = _Counterpart(activation.name, _full_params(activation.name, params), "registered")
    _PROBED.clear()


def unregister_counterpart(cls: type) -> None:
    """Remove a declaration made with :func:`register_counterpart` (ValueError if there is none)."""
    if cls not in _REGISTERED:
        raise ValueError(f"unregister_counterpart: {getattr(cls, '__qualname__', cls)!r} was not registered")
    del _REGISTERED[cls]
    _PROBED.clear()


def _declared(module: nn.Module) -> _Counterpart | None:
    for cls in type(module).__mro__:
        if cls is nn.Module:
            return None
        entry = _REGISTERED.get(cls) or _TORCH.get(cls)
        if entry is None and not cls.__module__.startswith("torch."):
            entry = _BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
        if entry is not None:
            return entry
    return None


# -- the probe ---------------------------------------------------------------------------------------------------
# Every kink of the members (0, +-3, +-1, 6), both sides of softplus's switch at 20, the tails where the smooth
# members reach their limits, and enough points in between to tell apart members closer than 1e-3 (gelu's two
# forms differ by 2e-4). 40 values: shaped (5, 8) and, permuted, (8, 5).
_PROBE = np.array([-40.0, -20.0, -8.0, -6.0, -5.0, -4.0, -3.5, -3.0, -2.5, -2.0, -1.75, -1.5, -1.25, -1.0, -0.75,
                   -0.5, -0.25, -0.1, -1e-3, 0.0, 1e-3, 0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0,
                   3.5, 4.0, 5.0, 6.0, 6.5, 8.0, 19.5, 40.0])
_ORDER = np.random.default_rng(0).permutation(_PROBE.size)
_RTOL, _ATOL = 1e-7, 1e-10
# Not activations, whatever their numbers (stochastic, placeholders, or normalising): never evaluated.
_NEVER_PROBE = re.compile(r"Drop|Identity|Norm|Pool|Flatten|Embed|Softmax|Attention")
_PROBED: dict[Any, Identification | None] = {}


def _candidates() -> list[tuple[str, dict[str, Any], np.ndarray]]:
    """(member, make() params, values on the probe) for every member with a torch op, at its defaults."""
    found = []
    for name in names():
        activation = get(name)
        # identity: placeholders are not activations; prelu: its slopes are parameters; rrelu: random in training.
        if name not in OPS or name in ("identity", "prelu", "rrelu"):
            continue
        settings = [{}] + ([{"approximate": "tanh"}] if name == "gelu" else [])
        for setting in settings:
            params = dict(_full_params(name, setting))
            family = {k: v for k, v in params.items() if k in activation.defaults}
            found.append((name, params, activation(_PROBE, **family)))
    return found


def _cache_key(module: nn.Module) -> Any:
    plain = []
    for key, value in vars(module).items():
        if key.startswith("_"):
            continue
        try:
            hash(value)
        except TypeError:
            return None  # an attribute that cannot key a cache: probe this instance afresh
        plain.append((key, value))
    return type(module), tuple(sorted(plain, key=lambda item: item[0])), tuple(names())


def _evaluate(module: nn.Module, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    x = torch.tensor(values.reshape(shape), dtype=torch.float64)
    y = module.forward(x)  # forward, not __call__: hooks (the monitor's own) must not see the probe
    if not isinstance(y, torch.Tensor) or y is x or y.shape != x.shape or not y.is_floating_point():
        return None
    return y.detach().double().cpu().numpy().reshape(-1)


def _probe(module: nn.Module) -> Identification | None:
    try:
        # fork_rng: a module that draws random numbers must not shift the user's stream by being probed
        with torch.no_grad(), warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")
            first = _evaluate(module, _PROBE, (5, 8))
            second = _evaluate(module, _PROBE[_ORDER], (8, 5)) if first is not None else None
    except Exception:  # a module that cannot take one tensor is not an elementwise activation
        return None
    if second is None or not np.allclose(second, first[_ORDER], rtol=1e-12, atol=0.0):
        return None  # not elementwise: the same value gave another result elsewhere or in another shape
    for member, params, expected in _candidates():
        if np.allclose(first, expected, rtol=_RTOL, atol=_ATOL):
            return Identification(member, params, "probe")
    return None


def _probe_allowed(module: nn.Module) -> bool:
    cls = type(module)
    if cls.__module__.startswith("torch.") or _NEVER_PROBE.search(cls.__qualname__):
        return False  # torch's own classes are all known; the rest are not activations of the family
    return not (module._modules or module._parameters or module._buffers)


def identify(module: nn.Module, *, probe: bool = True) -> Identification | None:
    """The family member ``module`` computes, its parameters and how that was established; None if it is not a
    (recognised) activation. ``probe=False`` skips evaluating unknown modules.

    >>> import torch, relulab.nn as rnn
    >>> rnn.identify(torch.nn.Hardtanh(-2.0, 2.0))
    Identification(member='hard_tanh', params={'min_val': -2.0, 'max_val': 2.0}, how='torch')
    >>> class Squash(torch.nn.Module):  # unknown, parameter-free, elementwise
    ...     def forward(self, x):
    ...         return x * torch.sigmoid(1.702 * x)
    >>> rnn.identify(Squash())
    Identification(member='quick_gelu', params={}, how='probe')
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"identify: module must be a torch.nn.Module; got {type(module).__name__}")
    if isinstance(module, ActivationModule):
        return Identification(module.activation.name, dict(module.params), "relulab")
    entry = _declared(module)
    if entry is not None:
        return entry.resolve(module)
    if not probe or not _probe_allowed(module):
        return None
    key = _cache_key(module)
    if key is not None and key in _PROBED:
        return _PROBED[key]
    found = _probe(module)
    if key is not None:
        _PROBED[key] = found
    return found


def activation_name(module: nn.Module) -> str | None:
    """The canonical family name of an activation module (see :func:`identify`), else None.

    >>> import torch, relulab.nn as rnn
    >>> [rnn.activation_name(m) for m in (torch.nn.LeakyReLU(), rnn.SiLU(), torch.nn.Linear(1, 1))]
    ['leaky_relu', 'silu', None]
    """
    found = identify(module)
    return None if found is None else found.member


def activation_params(module: nn.Module) -> dict[str, Any]:
    """The member parameters of an activation module, such that ``make(activation_name(m), **activation_params(m))``
    builds an equivalent relulab module (for PReLU: num_parameters and the initial slope, not the learned slopes).
    Raises ValueError for a module that is not an activation.

    >>> import torch, relulab.nn as rnn
    >>> rnn.activation_params(torch.nn.ELU(alpha=0.5))
    {'alpha': 0.5}
    """
    found = identify(module)
    if found is None:
        raise ValueError(f"module must be an activation module (see relulab.nn.identify); got {type(module).__name__}")
    return dict(found.params)
