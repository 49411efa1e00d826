"""Which layer feeds which: one forward pass of any torch model, followed tensor by tensor.

Several instruments need to know the data flow of a model rather than its registration order: the monitor (along
which axis do an activation's units lie? which Linear/Conv produced them?), :func:`relulab.nn.init_` (which
activation's output does this layer consume?), revive and prune (which rows to touch). Registration order is a
guess; the flow is a fact of one forward pass. :class:`FlowTracer` records it with module hooks plus a
``torch.overrides.TorchFunctionMode`` that sees every torch function called inside ``forward`` (``x + y``,
``F.relu``, ``x.transpose(1, 2)``, ...).

Each tensor produced during the pass gets an :class:`Origin`: the unit axis it carries and the weight layer that
wrote it (a Linear-style layer writes units along the last dim, a ConvNd along dim 1), followed through
shape-preserving operations (norms, dropout, residual adds, gates), transposes and permutes (the axis moves),
and reshapes that keep it. Records are keyed by tensor identity and hold a weak reference, so a module that
returns its input, or a module called twice, cannot make the trace loop: nothing is ever walked backwards.

>>> import torch, relulab.nn as rnn
>>> block = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.GELU(), torch.nn.Linear(32, 8))
>>> flow = rnn.trace(block, torch.randn(2, 5, 8))      # (N, T, F): the units are the 32 features
>>> site = flow.sites[0]
>>> site.name, site.member, site.unit_dim, site.units, site.producer
('1', 'gelu', -1, 32, '0')
>>> flow.feeders["2"]                                   # the second Linear consumes gelu's output
'1'
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from relulab.family import names

from .counterparts import activation_name, activation_params, identify

__all__ = ["Origin", "Site", "Flow", "FlowTracer", "trace", "call_inputs", "FUNCTIONAL_ACTIVATIONS",
           "is_weight_layer", "weight_fan_in", "UNIT_PRESERVING"]

# Modules whose output unit i is a function of input unit i alone (revive and prune can map units through them).
UNIT_PRESERVING: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, nn.Identity, nn.InstanceNorm1d,
    nn.InstanceNorm2d, nn.InstanceNorm3d,
)
# Modules that renormalise across units: the unit axis survives, the activation that fed them does not (the next
# layer sees unit-variance input, whatever came before).
_NORMALISING = tuple(getattr(nn, n) for n in ("LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm")
                     if hasattr(nn, n)) + (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm)
_CONV = (nn.modules.conv._ConvNd,)


def is_weight_layer(module: nn.Module) -> bool:
    """A layer with a weight matrix whose rows are its output units: Linear, ConvNd/ConvTransposeNd, and
    transformers' GPT-2-style ``Conv1D`` (a Linear that stores its weight transposed), recognised by duck typing
    so that transformers need not be imported."""
    if isinstance(module, (nn.Linear,) + _CONV):
        return True
    return _is_transposed_linear(module)


def _is_transposed_linear(module: nn.Module) -> bool:
    # transformers.pytorch_utils.Conv1D: weight (in, out), forward = addmm(bias, x, weight), attribute nf = out.
    weight = getattr(module, "weight", None)
    return (type(module).__name__ == "Conv1D" and isinstance(weight, torch.Tensor) and weight.ndim == 2
            and getattr(module, "nf", None) == weight.shape[1])


def weight_fan_in(module: nn.Module) -> int:
    """Inputs per output unit of a weight layer (``weight[0].numel()`` for Linear/Conv, rows for Conv1D).
    ConvTranspose stores (in, out/groups, *k): an output sums in/groups * prod(k) / prod(stride) inputs on average."""
    weight = module.weight
    if _is_transposed_linear(module):
        return int(weight.shape[0])
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        # each output sums in/groups x prod(kernel / stride) inputs on average (the kernel is spread over the stride)
        strides = module.stride if isinstance(module.stride, tuple) else (module.stride,)
        return max(1, int(round(weight.shape[0] // module.groups * weight[0, 0].numel() / math.prod(strides))))
    return int(weight[0].numel())


def _unit_dim_of_layer(module: nn.Module) -> int:
    return 1 if isinstance(module, _CONV) else -1


@dataclass(frozen=True)
class Origin:
    """Where a tensor's units come from.

    ``axis`` is the unit axis as a non-negative index of a tensor with ``ndim`` dims; ``producer`` the weight
    layer that wrote the units (None when a functional op did, or unknown); ``path`` the modules the units went
    through after it, nearest last; ``exact`` is True while only unit-preserving modules (BatchNorm, Dropout,
    Identity) lie between the producer and here; ``feeder`` the activation site whose output this tensor is
    (through reshapes, pooling and dropout; a normalisation resets it).
    """

    axis: int | None
    ndim: int
    producer: str | None = None
    path: tuple[str, ...] = ()
    exact: bool = False
    feeder: str | None = None

    @property
    def unit_dim(self) -> int | None:
        """The axis as the monitor uses it: -1 when it is the last (robust to a changing sequence length)."""
        if self.axis is None:
            return None
        return -1 if self.axis == self.ndim - 1 else self.axis


@dataclass
class Site:
    """One activation call site: a module (``name``) or a function called inside a module's forward
    (``"path:relu[k]"``, the k-th call of that function in that module per forward)."""

    name: str
    member: str
    params: dict[str, Any]
    module: str | None  # the activation module's qualified name, None for a functional call
    function: str | None  # the function's name for a functional call
    unit_dim: int | None  # None: not inferred (no Linear/Conv found upstream)
    units: int | None
    producer: str | None
    path: tuple[str, ...]
    exact: bool
    how: str  # how the member was identified ("torch", "transformers", "probe", "function", ...)


@dataclass
class Flow:
    """The result of :func:`trace`: every activation call site in call order, and for every weight layer the
    activation site whose output it consumes (None: data or a normalised tensor)."""

    sites: list[Site] = field(default_factory=list)
    feeders: dict[str, str | None] = field(default_factory=dict)
    # weight layer -> the activation site it consumes through unit-preserving modules only (prune's consumers)
    exact_feeders: dict[str, str | None] = field(default_factory=dict)

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(f"no activation site {name!r}; sites: {', '.join(s.name for s in self.sites)}")

    def consumers(self, site: str) -> list[str]:
        """Weight layers that consume ``site``'s output through unit-preserving modules only."""
        return [layer for layer, fed in self.exact_feeders.items() if fed == site]


def _param(position: int, keyword: str, default: Any) -> Callable[[tuple, dict], Any]:
    def read(args: tuple, kwargs: dict) -> Any:
        if keyword in kwargs:
            return kwargs[keyword]
        return args[position] if len(args) > position else default
    return read


def _functional_table() -> dict[Any, tuple[str, str, dict[str, Callable[[tuple, dict], Any]], bool]]:
    """torch function -> (function name, member, parameter readers, in place). Members the family lacks are left
    out. The monitor and the tracer recognise functional activation calls from this one table."""
    rows: list[tuple[Any, str, str, dict[str, Any], bool]] = []

    def add(funcs, member, params=None, inplace=False):
        for func in funcs:
            if func is not None:
                rows.append((func, getattr(func, "__name__", member), member, params or {}, inplace))

    tensor = torch.Tensor
    add((F.relu, torch.relu, tensor.relu), "relu")
    add((torch.relu_, tensor.relu_, getattr(F, "relu_", None)), "relu", inplace=True)
    add((F.leaky_relu,), "leaky_relu", {"negative_slope": _param(1, "negative_slope", 0.01)})
    add((getattr(F, "leaky_relu_", None),), "leaky_relu", {"negative_slope": _param(1, "negative_slope", 0.01)},
        inplace=True)
    add((F.elu,), "elu", {"alpha": _param(1, "alpha", 1.0)})
    add((F.celu,), "celu", {"alpha": _param(1, "alpha", 1.0)})
    add((F.selu, torch.selu), "selu")
    add((F.gelu,), "gelu", {"approximate": _param(1, "approximate", "none")})
    add((F.silu,), "silu")
    add((F.mish,), "mish")
    add((F.softplus,), "softplus", {"beta": _param(1, "beta", 1.0), "threshold": _param(2, "threshold", 20.0)})
    add((F.hardswish,), "hardswish")
    add((F.relu6,), "relu6")
    add((F.hardsigmoid,), "hard_sigmoid")
    add((F.hardtanh,), "hard_tanh", {"min_val": _param(1, "min_val", -1.0), "max_val": _param(2, "max_val", 1.0)})
    add((torch.sigmoid, tensor.sigmoid, getattr(F, "sigmoid", None)), "sigmoid")
    add((torch.tanh, tensor.tanh, getattr(F, "tanh", None)), "tanh")
    add((tensor.sigmoid_, torch.sigmoid_), "sigmoid", inplace=True)
    add((tensor.tanh_, torch.tanh_), "tanh", inplace=True)
    known = set(names())
    return {func: (name, member, params, inplace) for func, name, member, params, inplace in rows
            if member in known}


FUNCTIONAL_ACTIVATIONS = _functional_table()

_LINEAR_FUNCS = {F.linear, torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm, torch.Tensor.mm,
                 torch.addmm, torch.bmm, torch.baddbmm, F.bilinear, torch.einsum}
_CONCAT = {torch.cat, torch.concat, torch.concatenate}
_SEQUENCE_PRODUCERS = (nn.RNNBase, nn.MultiheadAttention, nn.Embedding, nn.EmbeddingBag)
_CONV_FUNCS = {F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d}
_NORM_FUNCS = {F.layer_norm, F.group_norm, F.batch_norm, F.instance_norm, F.local_response_norm,
               getattr(F, "rms_norm", None), F.normalize}
_EXACT_FUNCS = {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, torch.Tensor.clone,
                torch.clone, torch.Tensor.contiguous, torch.Tensor.to, torch.Tensor.float, torch.Tensor.double,
                torch.Tensor.half, torch.Tensor.bfloat16, torch.Tensor.type_as, torch.Tensor.detach}
_PERMUTING = {torch.transpose, torch.Tensor.transpose, torch.Tensor.transpose_, torch.swapaxes,
              torch.Tensor.swapaxes, torch.permute, torch.Tensor.permute, torch.Tensor.t, torch.t,
              torch.movedim, torch.Tensor.movedim}


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, torch.Tensor):
                yield item


def _has_weight(args: tuple, kwargs: dict) -> bool:
    return any(isinstance(t, nn.Parameter) for a in list(args) + list(kwargs.values()) for t in _tensors(a))


def _moved_axis(func: Any, args: tuple, kwargs: dict, axis: int, ndim: int) -> int | None:
    """Where ``axis`` lands after a transpose/permute/movedim (None when it cannot be read)."""
    try:
        if func in (torch.Tensor.t, torch.t):
            return {0: 1, 1: 0}.get(axis, axis) if ndim == 2 else axis
        if func in (torch.permute, torch.Tensor.permute):
            dims = args[1:] if func is torch.Tensor.permute else args[1]
            dims = kwargs.get("dims", dims)
            if len(dims) == 1 and isinstance(dims[0], (list, tuple, torch.Size)):
                dims = dims[0]
            dims = [d % ndim for d in dims]
            return dims.index(axis)
        if func in (torch.movedim, torch.Tensor.movedim):
            source, destination = args[1], args[2]
            source = [source] if isinstance(source, int) else list(source)
            destination = [destination] if isinstance(destination, int) else list(destination)
            order = [d for d in range(ndim) if d not in [s % ndim for s in source]]
            for s, d in sorted(zip([s % ndim for s in source], [d % ndim for d in destination]), key=lambda p: p[1]):
                order.insert(d, s)
            return order.index(axis)
        a, b = (args[1], args[2]) if len(args) >= 3 else (kwargs.get("dim0"), kwargs.get("dim1"))
        a, b = a % ndim, b % ndim
        return b if axis == a else a if axis == b else axis
    except (IndexError, TypeError, ValueError, KeyError):
        return None


def _reshaped_axis(source: torch.Tensor, out: torch.Tensor, axis: int) -> int | None:
    """The unit axis after a reshape, when the reshape clearly keeps it: the last dim staying the last with the
    same size, or the leading (N, C) staying in front."""
    if axis == source.ndim - 1 and out.ndim >= 1 and out.shape[-1] == source.shape[-1]:
        return out.ndim - 1
    if axis < out.ndim and tuple(out.shape[:axis + 1]) == tuple(source.shape[:axis + 1]):
        return axis
    return None


class FlowTracer(TorchFunctionMode):
    """Follow one or more forward passes of ``model`` and record an :class:`Origin` for every tensor it makes.

    Use as a context manager around forward passes (``with FlowTracer(model) as tracer: model(x)``), then read
    :attr:`flow`. ``on_function`` (optional) is called for every functional activation call seen inside the
    model (not inside an activation module, which is its own site) as ``on_function(site, phase, tensor)`` with
    phase ``"input"`` (before the call: the input) and ``"output"`` (after: the output); ``on_module`` likewise for
    activation modules. Callbacks run with tracing paused, so their own torch ops are not traced.
    """

    def __init__(self, model: nn.Module, *, sites: dict[nn.Module, str] | None = None,
                 on_function: Callable[[Site, str, torch.Tensor], None] | None = None,
                 on_module: Callable[[Site, str, torch.Tensor], None] | None = None,
                 functional: bool = True, record: bool = True, boundary: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        # The module whose forward the traced pass is (the model, or one of its children called directly): it gets no
        # hooks of the tracer, since its own hook dicts may be being iterated when the tracer is closed.
        self.boundary = model if boundary is None else boundary
        self.on_function = on_function
        self.on_module = on_module
        self.functional = functional
        self.record = record
        self.flow = Flow()
        self._names = {module: name for name, module in model.named_modules()}
        # activation modules: name -> (member, params, how); `sites` narrows it (the monitor's selection)
        self._activations: dict[nn.Module, tuple[str, str, dict[str, Any], str]] = {}
        self._all_activations: set[nn.Module] = set()  # functions called inside any of these are not sites
        for module, name in self._names.items():
            member = activation_name(module)
            if member is None:
                continue
            self._all_activations.add(module)
            if sites is None or module in sites:
                self._activations[module] = (name or type(module).__name__, member, activation_params(module),
                                             _how(module))
        self._open: dict[int, list[Site]] = {}  # module id -> sites its pre hook opened (the post hook closes them)
        self._records: dict[int, tuple[weakref.ref, Origin]] = {}
        self._stack: list[nn.Module] = []
        self._calls: dict[tuple[str, str], int] = {}
        self._module_calls: dict[str, int] = {}
        self._site_index: dict[str, Site] = {}
        self._handles: list[Any] = []
        self._paused = False

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def install(self) -> None:
        """Register the module hooks (every module but the boundary, whose own hook dicts may be being iterated
        when the tracer is closed from one of its hooks; calls made directly in its forward are named after it)."""
        if self._handles:
            return
        for module in self._names:
            if module is self.boundary:
                continue
            self._handles.append(module.register_forward_pre_hook(self._pre_hook))
            self._handles.append(module.register_forward_hook(self._post_hook, always_call=True))

    def uninstall(self) -> None:
        """Remove the module hooks (never from inside a hook of a module being called)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._records.clear()
        self._stack.clear()
        self._open.clear()

    def __enter__(self) -> FlowTracer:
        self.install()
        super().__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        self.uninstall()

    def push(self) -> None:
        """Start a pass with the hooks already installed: only the function mode is entered (cheap)."""
        self.new_forward()
        super().__enter__()

    def pop(self) -> None:
        """End a pass started with :meth:`push`; the hooks stay."""
        super().__exit__(None, None, None)
        self._records.clear()
        self._stack.clear()
        self._open.clear()

    def new_forward(self) -> None:
        """Start counting call indices afresh (call it before each forward of the model)."""
        self._calls.clear()
        self._module_calls.clear()
        self._records.clear()

    # -- records -----------------------------------------------------------------------------------------------
    def origin(self, tensor: Any) -> Origin | None:
        """The recorded origin of ``tensor``, or None."""
        if not isinstance(tensor, torch.Tensor):
            return None
        entry = self._records.get(id(tensor))
        if entry is None or entry[0]() is not tensor:  # ids are reused once a tensor is freed
            return None
        return entry[1]

    def _set(self, tensor: torch.Tensor, origin: Origin | None) -> None:
        if origin is None:
            self._records.pop(id(tensor), None)
            return
        try:
            self._records[id(tensor)] = (weakref.ref(tensor), origin)
        except TypeError:  # a tensor subclass without weakref support
            pass

    # -- module hooks ------------------------------------------------------------------------------------------
    def _current(self) -> str:
        return self._names.get(self._stack[-1], "") if self._stack else ""

    def _pre_hook(self, module: nn.Module, inputs: tuple) -> None:
        self._stack.append(module)
        spec = self._activations.get(module)
        if spec is not None and inputs and isinstance(inputs[0], torch.Tensor):
            name, member, params, how = spec
            index = self._module_calls.get(name, 0)
            self._module_calls[name] = index + 1
            site = self._make_site(f"{name}[{index}]" if index else name, member, params, inputs[0], module=name,
                                   function=None, how=how)
            self._open.setdefault(id(module), []).append(site)  # closed by the post hook of the same call
            if self.on_module is not None:
                self._call(self.on_module, site, "input", inputs[0])

    def _post_hook(self, module: nn.Module, inputs: tuple, output: Any) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()
        opened = self._open.get(id(module))
        site = opened.pop() if opened else None
        if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor) and self.record \
                and isinstance(module, _SEQUENCE_PRODUCERS):
            output = output[0]  # LSTM/GRU/RNN and attention return (features, state): the features carry units
        if not isinstance(output, torch.Tensor):
            return
        source = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        name = self._names.get(module, "")
        if site is not None:
            if self.on_module is not None:
                self._call(self.on_module, site, "output", output)
            self._activation_output(site, output)
            return
        if not self.record:
            return
        if is_weight_layer(module):
            if source is not None:
                self._note_consumer(name, source)
            self._set(output, Origin(axis=_unit_dim_of_layer(module) % output.ndim if output.ndim else None,
                                     ndim=output.ndim, producer=name, path=(name,), exact=True))
            return
        if isinstance(module, _SEQUENCE_PRODUCERS) and output.ndim:
            # their features are the last dim; not weight rows revive could map, so never exact
            self._set(output, Origin(axis=output.ndim - 1, ndim=output.ndim, producer=name, path=(name,)))
            return
        before = self.origin(source) if source is not None else None
        if before is None and source is not None and isinstance(module, _NORMALISING) and \
                output.shape == source.shape and output.ndim >= 2:
            # a norm fixes the feature axis of an unrecorded input: LayerNorm/RMSNorm the last, BatchNorm dim 1
            axis = 1 if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm,
                                            nn.modules.instancenorm._InstanceNorm)) else output.ndim - 1
            self._set(output, Origin(axis=axis, ndim=output.ndim, path=(name,)))
            return
        if before is None or source is None or output.shape != source.shape:
            return
        if isinstance(module, UNIT_PRESERVING):
            feeder = None if isinstance(module, _NORMALISING) else before.feeder
            self._set(output, replace(before, path=before.path + (name,), feeder=feeder))
        elif isinstance(module, _NORMALISING):
            self._set(output, replace(before, path=before.path + (name,), exact=False, feeder=None))

    def _note_consumer(self, layer: str, source: torch.Tensor) -> None:
        if layer in self.flow.feeders:  # a layer called twice: keep the first call's feeder
            return
        origin = self.origin(source)
        feeder = origin.feeder if origin is not None else None
        self.flow.feeders[layer] = feeder
        # exact: the activation's output reached the layer through unit-preserving steps only
        exact = origin is not None and origin.exact and bool(origin.path) and origin.path[0] == feeder
        self.flow.exact_feeders[layer] = feeder if exact else None

    # -- sites -------------------------------------------------------------------------------------------------
    def _make_site(self, name: str, member: str, params: dict[str, Any], x: torch.Tensor, *, module: str | None,
                   function: str | None, how: str) -> Site:
        site = self._site_index.get(name)
        if site is not None:
            return site
        origin = self.origin(x)
        unit_dim = origin.unit_dim if origin is not None and origin.ndim == x.ndim else None
        if unit_dim is None and x.ndim <= 2:
            unit_dim = x.ndim - 1 if x.ndim else None  # (N, F) or (F,): the features are the last dim either way
        units = int(x.shape[unit_dim]) if unit_dim is not None and x.ndim else (1 if x.ndim == 0 else None)
        site = Site(name=name, member=member, params=params, module=module, function=function, unit_dim=unit_dim,
                    units=units, producer=origin.producer if origin else None,
                    path=origin.path if origin else (), exact=bool(origin and origin.exact), how=how)
        self._site_index[name] = site
        self.flow.sites.append(site)
        return site

    def _activation_output(self, site: Site, output: torch.Tensor) -> None:
        axis = None
        if site.unit_dim is not None and output.ndim:
            axis = site.unit_dim % output.ndim
        self._set(output, Origin(axis=axis, ndim=output.ndim, producer=site.producer,
                                 path=(site.name,), exact=True, feeder=site.name))

    def _call(self, callback: Callable, *args: Any) -> None:
        self._paused = True
        try:
            callback(*args)
        finally:
            self._paused = False

    # -- the function mode -------------------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._paused:
            return func(*args, **kwargs)
        spec = FUNCTIONAL_ACTIVATIONS.get(func) if self.functional else None
        innermost = self._stack[-1] if self._stack else self.boundary
        if spec is not None and innermost not in self._all_activations and args and \
                isinstance(args[0], torch.Tensor):
            return self._functional_activation(func, spec, args, kwargs)
        out = func(*args, **kwargs)
        if self.record:
            self._propagate(func, args, kwargs, out)
        return out

    def _functional_activation(self, func, spec, args, kwargs):
        function, member, readers, _inplace = spec
        x = args[0]
        where = self._current() or self._names.get(self.boundary) or type(self.model).__name__
        key = (where, function)
        index = self._calls.get(key, 0)
        self._calls[key] = index + 1
        params = {name: read(args, kwargs) for name, read in readers.items()}
        site = self._make_site(f"{where}:{function}[{index}]", member, params, x, module=None, function=function,
                               how="function")
        if self.on_function is not None:
            self._call(self.on_function, site, "input", x)
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor):
            if self.on_function is not None:
                self._call(self.on_function, site, "output", out)
            if self.record:
                self._activation_output(site, out)
        return out

    def _propagate(self, func, args: tuple, kwargs: dict, out: Any) -> None:
        if not isinstance(out, torch.Tensor):
            if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
                source = args[0] if args and isinstance(args[0], torch.Tensor) else None
                before = self.origin(source)
                for o in out:  # chunk/split/unbind: the unit axis survives when the rank does
                    if before is not None and o.ndim == source.ndim:
                        self._set(o, replace(before, exact=False))
            return
        if func in _LINEAR_FUNCS and (func in (F.linear, F.bilinear) or _has_weight(args, kwargs)):
            # a matmul writes units only when one side is a weight (x @ W); q @ k^T between activations does not
            producer = self._producer_name()
            self._set(out, Origin(axis=out.ndim - 1 if out.ndim else None, ndim=out.ndim, producer=producer,
                                  path=(producer,) if producer else (), exact=producer is not None))
            return
        if func in _CONV_FUNCS:
            producer = self._producer_name()
            self._set(out, Origin(axis=1 if out.ndim > 1 else None, ndim=out.ndim, producer=producer,
                                  path=(producer,) if producer else (), exact=producer is not None))
            return
        inputs = [t for a in list(args) + list(kwargs.values()) for t in _tensors(a)]
        recorded = [(t, o) for t in inputs if (o := self.origin(t)) is not None]
        if not recorded:
            self._set(out, None) if out is not None else None
            return
        source, before = recorded[0]
        if func in _LINEAR_FUNCS:  # a product of two activations (attention scores): no units
            self._set(out, None)
            return
        if func in _CONCAT and before.axis is not None and out.ndim == source.ndim and \
                all(o.axis == before.axis and o.ndim == before.ndim for _, o in recorded):
            self._set(out, replace(before, exact=False, feeder=None))  # cat/stack keep the axis they share
            return
        if func in _NORM_FUNCS:
            if out.shape == source.shape:
                self._set(out, replace(before, exact=False, feeder=None))
            return
        if func in _PERMUTING:
            axis = _moved_axis(func, args, kwargs, before.axis, source.ndim) if before.axis is not None else None
            self._set(out, replace(before, axis=axis, ndim=out.ndim, exact=False))
            return
        if out.shape == source.shape:
            feeders = {o.feeder for _, o in recorded}
            exact = before.exact and len(recorded) == 1 and func in _EXACT_FUNCS
            self._set(out, replace(before, exact=exact, feeder=before.feeder if len(feeders) == 1 else None))
            return
        if out.ndim == source.ndim and before.axis is not None and out.ndim > 1 and \
                out.shape[before.axis] == source.shape[before.axis] and len(recorded) == 1:
            # pooling, slicing along another axis: same rank, the unit axis keeps its size
            self._set(out, replace(before, exact=False))
            return
        axis = _reshaped_axis(source, out, before.axis) if before.axis is not None else None
        self._set(out, replace(before, axis=axis, ndim=out.ndim, exact=False,
                               feeder=before.feeder if len(recorded) == 1 else None))

    def _producer_name(self) -> str | None:
        # A Linear/matmul inside a weight layer's own forward is that layer; elsewhere it is functional.
        if self._stack and is_weight_layer(self._stack[-1]):
            return self._names.get(self._stack[-1])
        return None


def _how(module: nn.Module) -> str:
    """How a module was identified as an activation (for the report): relulab, registered, torch, transformers,
    timm or probe."""
    found = identify(module)
    return found.how if found is not None else "class"


def call_inputs(inputs: Any) -> tuple[tuple, dict]:
    """Example inputs as ``(args, kwargs)`` for ``model(*args, **kwargs)``: a dict is keyword inputs
    (``{"input_ids": ids}``), a tuple or list positional inputs, anything else the one positional input."""
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def trace(model: nn.Module, *args: Any, **kwargs: Any) -> Flow:
    """Run ``model(*args, **kwargs)`` once under no_grad and return its :class:`Flow`: every activation call site
    (modules and functional calls such as ``F.relu`` inside forward) with its unit axis, unit count and producing
    layer, and for every weight layer the activation it consumes. The model's train/eval mode is left as it is;
    in train mode BatchNorm running statistics are updated by the pass, as by any forward (call ``model.eval()``
    first to avoid it).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"trace: model must be a torch.nn.Module; got {type(model).__name__}")
    compiled = [name or type(m).__name__ for name, m in model.named_modules() if hasattr(m, "_orig_mod")]
    if compiled:
        raise ValueError(f"trace: {', '.join(compiled[:3])} is torch.compile'd, and hooks do not run in compiled "
                         "graphs; trace the eager module (compiled._orig_mod)")
    with torch.no_grad(), FlowTracer(model) as tracer:
        model(*args, **kwargs)
    return tracer.flow
