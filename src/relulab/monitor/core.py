"""Monitor: online per-unit statistics of every activation in a PyTorch model, cheap enough to leave on.

For each activation call site the monitor keeps, over a *window* (an epoch, or the samples you choose), O(units)
state on the model's device and never a per-sample buffer:

- how often each unit's input (pre-activation) was > 0; a unit never positive in the window is *inactive*, and
  *dead* when the member is exactly zero for x < 0 (relu, relu6, squared_relu...) so its gradient is exactly zero;
- the number of exact zeros in the output (sparsity);
- the sum and sum of squares of each unit's output (mean and std);
- the squared L2 norm of the loss gradient with respect to the layer's input, per backward pass.

Each batch adds a handful of fused reductions per layer and no host synchronisation: nothing is copied to the host
until a report is made.

Which axis holds the units is read from the data flow, not guessed from the shape: the first forward pass is
traced (:mod:`relulab.nn.flow`) and each call site's units are the features written by the layer that produced
its input: the last dim after a Linear-style layer ((N, F) and (N, T, F)), dim 1 after a ConvNd ((N, C, ...)),
followed through norms, dropout, residual adds and transposes.
"""

from __future__ import annotations

import inspect
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from .. import family
from ..nn import activation_name, activation_params
from ..nn.flow import FlowTracer, Site
from .report import LayerStats, Report

__all__ = ["Monitor", "find_activations"]

_PATTERNS: dict[tuple[str, ...], re.Pattern[str]] = {}  # by the members' torch functions


def _functional_call() -> re.Pattern[str]:
    """A call of a member's torch function in source: ``F.relu(``, ``torch.relu_(``, ``functional.gelu(``, and the
    tensor methods called bare (``x.relu()``), from every registered member's ``torch_function``."""
    functions = tuple(spec.torch_function for spec in map(family.get, family.names()) if spec.torch_function)
    if functions not in _PATTERNS:  # keyed by what it is made of: a re-registered member's new function counts
        methods = [f for f in functions if hasattr(torch.Tensor, f)]
        alternatives = "|".join(re.escape(f) for f in functions) or "(?!)"
        calls = rf"\b(?:F|functional|torch)\.((?:{alternatives})_?)\s*\("
        bare = "|".join(re.escape(f) for f in methods) or "(?!)"
        _PATTERNS[functions] = re.compile(rf"{calls}|\.({bare})\(\)")
    return _PATTERNS[functions]


def _watched_torch_classes() -> str:
    """The torch.nn classes of the registered members (torch.nn.Identity is a placeholder, not an activation)."""
    classes = [family.get(n).torch_class for n in family.names()]
    return ", ".join(c for c in classes if c and c != "Identity")


def find_activations(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """Every activation module in ``model`` as ``(qualified name, module, family name)``, in registration order."""
    found = []
    for name, module in model.named_modules():
        kind = activation_name(module)
        if kind is not None:
            found.append((name or type(module).__name__, module, kind))
    return found


def _functional_notes(model: nn.Module) -> list[str]:
    """Warn about activations called functionally inside forward (F.relu, torch.tanh, x.relu()): hooks cannot see them."""
    notes, seen = [], set()
    for name, module in model.named_modules():
        forward = type(module).forward
        # an activation module calling its own function is that activation, watched by its hooks
        if forward in seen or type(module).__module__.startswith("torch.") or activation_name(module) is not None:
            continue
        seen.add(forward)
        try:
            source = inspect.getsource(forward)
        except (OSError, TypeError):
            continue
        calls = sorted({m.group(0).rstrip("(").strip() for m in _functional_call().finditer(source)})
        if calls:
            where = name or type(module).__name__
            notes.append(f"{where} ({type(module).__name__}.forward) calls {', '.join(calls)} functionally; hooks "
                         "cannot see those activations: use Monitor(model, functional=True), or make them modules "
                         "(e.g. relulab.nn.ReLU()).")
    return notes


_NO_BOUNDARY = nn.Module()  # a persistent tracer hooks every module of the model


_graph_task_id = torch._C._current_graph_task_id  # -1 outside a backward pass


def _in_backward() -> bool:
    """True inside an autograd backward pass (where checkpointing recomputes forwards)."""
    return _graph_task_id() != -1


def _compiled_modules(model: nn.Module) -> list[str]:
    return [name or type(module).__name__ for name, module in model.named_modules()
            if type(module).__name__ == "OptimizedModule" and hasattr(module, "_orig_mod")]


_FUSED: Any = None
_FUSED_DTYPES = (torch.float32, torch.float64)
_LIKE: dict[torch.dtype, np.ndarray] = {}  # an empty array of each fused dtype (it picks the kernel's specialisation)


def _fused_kernel():
    """The numba one-pass statistics kernels (module ``_fused``), or None without numba (or with
    RELULAB_MONITOR_FUSED=0)."""
    global _FUSED
    if _FUSED is None:
        _FUSED = False
        if os.environ.get("RELULAB_MONITOR_FUSED", "1") != "0":
            try:
                from . import _fused
            except ImportError:
                pass
            else:
                _FUSED = _fused
                _LIKE.update({torch.float32: _fused.LIKE[np.dtype(np.float32)],
                              torch.float64: _fused.LIKE[np.dtype(np.float64)]})
    return _FUSED or None


@dataclass
class _Layer:
    """Accumulators of one activation call site (a module called k times per forward has k of these).

    Cost per batch, chosen for the overhead budget. On the CPU with numba installed (``relulab[fast]``) one
    compiled pass over the output updates every per-unit statistic (``_fused.py``). Otherwise torch ops do it
    (eager CPU reductions over dims are cheap for float sums and slow for var_mean, count_nonzero and bool
    sums): for members exactly zero for x <= 0 (relu, relu6,
    squared_relu) ``sign(y)`` summed per unit is the active count, and the zeros follow from it; otherwise
    ``heaviside(x)`` summed per unit counts x > 0 and ``y == 0`` is counted once. Per-unit sums of y and y^2 give
    mean and std (in the activation's dtype per batch, float64 across batches: std loses precision only for units
    whose std is below ~1e-3 of their mean in float32). A NaN output is neither positive nor zero on both paths.
    Everything else touches (units,)-sized tensors only.
    """

    name: str
    kind: str
    dead_possible: bool
    unit_dim: int
    units: int | None = None
    samples: int = 0
    positions: int = 0  # elements per unit seen (batch x spatial), the denominator of the active fraction
    elements: int = 0  # all output elements seen, the denominator of sparsity
    grad_batches: int = 0
    active: torch.Tensor | None = None  # (units,) float64: how often the unit's input was > 0
    zeros: torch.Tensor | None = None  # () float64: exact zeros in the output (members not zero for all x <= 0)
    moments: torch.Tensor | None = None  # (2, units) float64: sums of y and of y^2
    grad_sq: torch.Tensor | None = None  # () float64: sum over backward passes of ||dL/dx||^2
    producers: list[str] = field(default_factory=list)
    how: str = ""  # how the activation was identified, and how its unit axis was found
    inferred: bool = True  # the unit axis came from the data flow (or unit_dim); else it was assumed
    _scratch: np.ndarray | None = None  # the fused pass's unused positive counts (members counted on the input)
    _views: tuple[np.ndarray, ...] | None = None  # NumPy views of the accumulators (CPU, fused path)
    _dims_cache: tuple[int, int, list[int]] | None = None  # (ndim, unit dim, reduced dims) of the last batch
    # The fused path's plan for the last output shape: (shape, dtype, positions, elements, the compiled pass with
    # everything but the tensor's address bound): a batch shaped like the last one skips every check but contiguity.
    _plan: tuple | None = None
    _grad_plan: tuple | None = None  # (dtype, the compiled ||g||^2 pass, bound) once a gradient took the fused path
    _output_nr: int = 0  # which output of its grad_fn the input was (for add_grad_outputs)
    _hook_key: tuple = ()  # this site's key in a tensor's backward-hook dict (see _watch_grad)

    def __post_init__(self) -> None:
        self._hook_key = ("relulab.monitor", id(self))

    def _dims(self, ndim: int) -> tuple[int, list[int]]:
        cached = self._dims_cache
        if cached is not None and cached[0] == ndim:
            return cached[1], cached[2]
        unit, reduce = self._dims_of(ndim)
        self._dims_cache = (ndim, unit, reduce)
        return unit, reduce

    def _dims_of(self, ndim: int) -> tuple[int | None, list[int]]:
        if self.unit_dim is None:  # one unit: every element is a position of it
            return None, list(range(ndim))
        if ndim <= 1:
            return 0, []
        if not -ndim <= self.unit_dim < ndim:
            raise ValueError(f"Monitor: unit_dim={self.unit_dim} is out of range for layer {self.name!r}, whose "
                             f"activations have {ndim} dims; allowed: {-ndim} to {ndim - 1}")
        unit = self.unit_dim % ndim
        return unit, [d for d in range(ndim) if d != unit]

    def _check_units(self, t: torch.Tensor) -> tuple[int, list[int]]:
        unit, reduce = self._dims(t.ndim)
        units = t.shape[unit] if t.ndim > 1 and unit is not None else 1
        if self.units is None:
            self.units = units
            self.active = torch.zeros(units, dtype=torch.float64, device=t.device)
            self.zeros = torch.zeros((), dtype=torch.float64, device=t.device)
            self.moments = torch.zeros(2, units, dtype=torch.float64, device=t.device)
            self.grad_sq = torch.zeros((), dtype=torch.float64, device=t.device)
        elif units != self.units and not self.inferred and self.units != 1:
            # An assumed axis whose width varies (attention scores, a raw (N, T, F) input) holds no units: count the
            # site as one unit from here on, keeping what was summed, and say so.
            self._as_one_unit()
            return self._check_units(t)
        elif units != self.units:
            raise RuntimeError(
                f"Monitor: layer {self.name!r} had {self.units} units and now receives {units} along dim "
                f"{self.unit_dim} (shape {tuple(t.shape)}); a call site must keep its width (reset() the monitor "
                "after changing the model)"
            )
        return unit, reduce

    def _fused_shape(self, t: torch.Tensor, unit: int) -> tuple[int, int, int] | None:
        """t read as (rows, units, inner) when the compiled one-pass path applies to it, else None: units on dim 1
        of (N, C, ...) are (N, C, S); units on the last dim of (..., F) are (rows, F, 1)."""
        if _fused_kernel() is None or type(t) is not torch.Tensor or t.device.type != "cpu" \
                or t.dtype not in _FUSED_DTYPES or not t.is_contiguous() or t.ndim < 2 \
                or not (unit == 1 or unit == t.ndim - 1):
            return None
        if unit == 1:
            return t.shape[0], self.units, t.numel() // (t.shape[0] * self.units)
        return t.numel() // self.units, self.units, 1

    def _numpy_state(self) -> tuple[np.ndarray, ...]:
        # NumPy views of the CPU accumulators, made once (torch's .numpy() costs ~10 us a call).
        if self._views is None:
            self._views = (self.active.numpy(), self.zeros.numpy().reshape(1), self.moments[0].numpy(),
                           self.moments[1].numpy(), self.grad_sq.numpy().reshape(1))
        return self._views

    def _as_one_unit(self) -> None:
        self.unit_dim, self.units = None, 1
        self.active = self.active.sum().reshape(1)
        self.moments = self.moments.sum(dim=1, keepdim=True)
        self._views = self._scratch = self._dims_cache = self._plan = self._grad_plan = None
        self.how += "; its width varies, so it is reported as one unit"

    def add_input(self, x: torch.Tensor) -> None:
        """Count x > 0 per unit (members whose output can be non-zero for x <= 0)."""
        unit, reduce = self._check_units(x)
        if x.numel() == 0:
            return
        shape = self._fused_shape(x, unit)
        if shape is not None:
            _FUSED.positive_counts_at(_LIKE[x.dtype], *shape, self._numpy_state()[0], x.data_ptr())
            return
        x = x.detach()
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()  # a float16 sum of ones is exact only up to 2048
        # sign(relu(x)) is 1 where x > 0, else 0, NaN for NaN: two float passes (heaviside and bool sums are slow)
        positive = torch.sign(torch.relu(x))
        self.active.add_(positive.sum(dim=reduce if x.ndim > 1 else None, dtype=torch.float64))

    def add_output(self, y: torch.Tensor) -> None:
        plan = self._plan
        if plan is not None and y.shape == plan[0] and y.dtype is plan[1] and y.is_cpu and y.is_contiguous() \
                and type(y) is torch.Tensor:
            # The common case, a batch shaped like the last: one compiled pass, no re-validation.
            self.samples += plan[0][0]
            self.positions += plan[2]
            self.elements += plan[3]
            plan[4](y.data_ptr())
            return
        unit, reduce = self._check_units(y)
        if y.numel() == 0:  # an empty batch adds nothing
            return
        self.samples += y.shape[0] if y.ndim > 0 else 1
        self.positions += y.numel() // (self.units or 1)
        self.elements += y.numel()
        shape = self._fused_shape(y, unit)
        if shape is not None:
            # One compiled pass: positive count (members zero for x <= 0), zeros, sum and sum of squares per unit.
            active, zeros, total, total_sq, _ = self._numpy_state()
            positive = active if self.dead_possible else self._scratch_positive()
            kernel = _FUSED.bound(_FUSED.unit_stats_at, _LIKE[y.dtype], *shape, positive, zeros, total, total_sq,
                                  self.dead_possible)
            kernel(y.data_ptr())
            self._plan = (y.shape, y.dtype, y.numel() // self.units, y.numel(), kernel)
            return
        y = y.detach()  # no graph is recorded by the statistics
        dims = reduce if y.ndim > 1 else None
        # float16/bfloat16 hold whole numbers exactly only up to 2048/256 and overflow early: widen first, and sum
        # every batch in float64.
        values = y if y.dtype in (torch.float32, torch.float64) else y.float()
        if self.dead_possible:
            # f(x) >= 0, and f(x) == 0 exactly when x <= 0: sign(y) is 1 on the unit's active positions.
            self.active.add_(torch.sign(values).sum(dim=dims, dtype=torch.float64))
        # Counted directly (not as "not positive") so that a NaN is neither positive nor zero, as in the fused pass.
        self.zeros.add_((values == 0).sum())
        # Per-unit sums of y and y^2 (CPU reductions over dims are far cheaper than var_mean or bool counts).
        self.moments[0].add_(values.sum(dim=dims, dtype=torch.float64))
        self.moments[1].add_(values.square().sum(dim=dims, dtype=torch.float64))

    def _scratch_positive(self) -> np.ndarray:
        # Members that are not zero for x <= 0 count activity on the input; the output's positives are unused.
        if self._scratch is None or self._scratch.shape[0] != self.units:
            self._scratch = np.zeros(self.units)
        return self._scratch

    def add_grad(self, grad: torch.Tensor) -> None:
        plan = self._grad_plan
        if plan is not None and grad.dtype is plan[0] and grad.is_cpu and grad.is_contiguous() \
                and type(grad) is torch.Tensor:
            # Set once a gradient took the compiled path: a gradient of the same dtype takes it again.
            plan[1](grad.numel(), grad.data_ptr())
            self.grad_batches += 1
            return
        g = grad.detach()
        if self.grad_sq is None:  # the call's output was never seen (its forward raised, or returned no tensor)
            self._check_units(g)
        if _fused_kernel() is not None and type(g) is torch.Tensor and g.device.type == "cpu" \
                and g.dtype in _FUSED_DTYPES and g.is_contiguous() and self.grad_sq.device.type == "cpu":
            self._grad_plan = (g.dtype, _FUSED.bound(_FUSED.sum_squares_at, _LIKE[g.dtype], self._numpy_state()[4]))
            self._grad_plan[1](g.numel(), g.data_ptr())
        else:
            squared = torch.dot(g.view(-1), g.view(-1)) if g.is_contiguous() else torch.linalg.vector_norm(g).square()
            self.grad_sq.add_(squared)
        self.grad_batches += 1

    def add_grad_outputs(self, grads: tuple[torch.Tensor | None, ...]) -> None:
        """Node pre-hook on the grad_fn that produced the input: ``grads[k]`` is dL/dx for its k-th output."""
        g = grads[self._output_nr]
        if g is not None:
            self.add_grad(g)

    def flat(self) -> torch.Tensor:
        """The additive state as one float64 vector (for all-reduce), in a fixed order."""
        counts = torch.tensor([self.samples, self.positions, self.elements, self.grad_batches], dtype=torch.float64,
                              device=self.active.device)
        return torch.cat([counts, self.zeros.reshape(1), self.grad_sq.reshape(1), self.active,
                          self.moments.reshape(-1)])

    def stats(self, flat: np.ndarray | None) -> LayerStats:
        """Summarise the window (``flat`` is this layer's all-reduced state, or None to use the local state)."""
        if self.units is None:
            return LayerStats(name=self.name, kind=self.kind, units=None, samples=0, dead_possible=self.dead_possible,
                              active_fraction=np.zeros(0), mean=np.zeros(0), std=np.zeros(0), sparsity=None,
                              grad_norm=None, producers=list(self.producers), unit_dim=self.unit_dim, how=self.how)
        if flat is None:
            flat = self.flat().cpu().numpy()
        samples, positions, elements, grad_batches = (int(v) for v in flat[:4])
        zeros, grad_sq = flat[4], flat[5]
        u = self.units
        active = flat[6:6 + u]
        total, total_sq = flat[6 + u:].reshape(2, u)
        per_unit = max(positions, 1)
        with np.errstate(invalid="ignore", over="ignore"):  # a diverged window (inf/NaN outputs) reports NaN
            mean = total / per_unit
            std = np.sqrt(np.maximum(total_sq / per_unit - mean**2, 0.0))
        # A unit whose output was NaN somewhere in the window has a NaN sum: it was neither shown alive nor dead,
        # so it is reported as such (nan_units) and never counted dead or inactive.
        active = np.where(np.isnan(total), np.nan, active)

        return LayerStats(
            name=self.name, kind=self.kind, units=u, samples=samples, dead_possible=self.dead_possible,
            active_fraction=active / per_unit, mean=mean, std=std,
            sparsity=float(zeros / elements) if elements else None,
            grad_norm=float(np.sqrt(grad_sq / grad_batches)) if grad_batches else None,
            producers=list(self.producers), unit_dim=self.unit_dim, how=self.how,
        )


def _watch_grad(layer: _Layer, x: torch.Tensor) -> None:
    """Have dL/dx added to ``layer`` in the backward pass (dL/dx as x is now, before an in-place activation
    overwrites it).

    This runs per site and batch, so it takes torch's cheapest registration: the tensor's backward-hook dict set
    directly and handed to the node that made x, which is what ``Tensor.register_hook`` does without its Python
    bookkeeping (a removable handle per call; the dict dies with x). The engine then calls ``layer.add_grad`` with
    dL/dx alone. A tensor that already has hooks (its dict may belong to an older grad_fn after an in-place op) gets
    a pre-hook on its node instead; a leaf gets Tensor.register_hook."""
    node = x.grad_fn
    if node is None:  # a leaf (an input that requires grad)
        x.register_hook(layer.add_grad)
    elif x._backward_hooks is None:
        hooks = OrderedDict()  # what Tensor.register_hook makes: its handles hold a weak reference to the dict
        hooks[layer._hook_key] = layer.add_grad
        x._backward_hooks = hooks
        node._register_hook_dict(x)
    else:
        layer._output_nr = x.output_nr
        node.register_prehook(layer.add_grad_outputs)


_NOTHING = object()


class _ForwardWatch:
    """Watch a parameter-free activation module by standing in for its ``forward`` (an instance attribute that calls
    the module's own forward, then ``hook(module, args, output)``; ``pre(module, args)`` before, for in-place
    modules), with the ``remove()`` of a hook handle.

    A forward hook costs more than the activation on a small batch: with any hook registered, ``Module.__call__``
    leaves its fast path for one that builds a closure and checks every hook dict (1.4 us a call in a tight loop,
    about 4 us inside a training step; 0.06 us for this). Only modules without parameters or buffers are watched
    this way, so that a copy of the model (``copy.deepcopy`` for an EMA or a best checkpoint), whose modules carry
    this attribute along as they carry hooks, computes exactly what its own module would. ``remove()`` puts back
    what the attribute was (nothing, or another library's wrapper) if nobody replaced it since, and otherwise
    leaves a pass-through.
    """

    __slots__ = ("module", "previous", "forward", "active")

    @staticmethod
    def applies(module: nn.Module) -> bool:
        return next(module.parameters(recurse=False), None) is None and next(module.buffers(recurse=False), None) \
            is None

    def __init__(self, module: nn.Module, hook, pre=None) -> None:
        self.module = module
        self.previous = module.__dict__.get("forward", _NOTHING)
        self.active = True
        inner = module.forward  # the bound method, or a wrapper set before this one
        watch = self

        if pre is None:
            def forward(*args, **kwargs):
                output = inner(*args, **kwargs)
                if watch.active:
                    hook(module, args, output)
                return output
        else:
            def forward(*args, **kwargs):
                if not watch.active:
                    return inner(*args, **kwargs)
                pre(module, args)
                output = None
                try:
                    output = inner(*args, **kwargs)
                    return output
                finally:  # like a forward hook registered with always_call=True: the pre-hook's entry is taken
                    hook(module, args, output)

        forward.relulab_watch = self
        self.forward = forward
        module.forward = forward

    def remove(self) -> None:
        self.active = False
        if self.module.__dict__.get("forward") is not self.forward:
            return  # wrapped again since (another library, another monitor): stay as a pass-through inside it
        previous = self.previous
        while getattr(previous, "relulab_watch", None) is not None and not previous.relulab_watch.active:
            previous = previous.relulab_watch.previous  # a monitor detached earlier left a pass-through: skip it
        if previous is _NOTHING:
            del self.module.forward
        else:
            self.module.forward = previous


class Monitor:
    """Watch every activation of ``model``: dead and inactive units, sparsity, output moments, gradient flow.

    Args:
        model: any ``torch.nn.Module``: torch.nn, relulab.nn, Hugging Face transformers, timm and torchvision
            models (also wrapped in DistributedDataParallel).
        modules: which activation modules to watch: ``None`` for every activation module found (torch.nn's and
            relulab.nn's, transformers' and timm's activation classes, classes declared with
            :func:`relulab.nn.register_counterpart`), or an iterable of qualified module names or modules.
        every: collect statistics on every ``every``-th forward pass of ``model`` (1 = every batch).
        unit_dim: ``None`` (default) reads each call site's unit axis from the data flow: the last dim after a
            Linear-style layer, dim 1 after a ConvNd. An int forces that dim for every site (validated against
            each activation's rank).
        functional: also watch activation *functions* called inside ``forward`` (``F.relu``, ``torch.relu``,
            ``x.relu()``, ``F.gelu``, ``F.silu``, ``torch.sigmoid``, ``torch.tanh``, ...), each call site reported
            as ``module.path:function[k]``. It runs every forward pass under a ``TorchFunctionMode``, which costs
            Python time per torch call (see the README for measurements), so it is off by default.

    Example::

        with Monitor(model) as mon:
            for epoch in range(epochs):
                train_one_epoch(model)
                print(mon.report())      # this epoch's window
                mon.reset()              # closes the window into mon.history
        mon.report().plot("flow.png")

    In a torch.distributed run, call :meth:`report` and :meth:`reset` on every rank: they all-reduce the window so
    a unit active on any rank's data is alive in every rank's report.
    """

    def __init__(self, model: nn.Module, modules: Iterable[str | nn.Module] | None = None, every: int = 1,
                 unit_dim: int | None = None, functional: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1; got {every!r}")
        if unit_dim is not None and (isinstance(unit_dim, bool) or not isinstance(unit_dim, int)):
            raise TypeError(f"unit_dim must be None (inferred from the data flow) or an int; got {unit_dim!r}")
        if not isinstance(functional, bool):
            raise TypeError(f"functional must be True or False; got {functional!r}")
        compiled = _compiled_modules(model)
        if compiled:
            raise ValueError(
                f"Monitor cannot watch inside torch.compile'd modules ({', '.join(compiled[:3])}): hooks do not run "
                "in compiled graphs. Monitor the eager module instead (compiled._orig_mod), and call it uncompiled "
                "while monitoring")
        self.model = model
        self.every = every
        self.unit_dim = unit_dim
        self.functional = functional
        self.history: list[dict[str, Any]] = []
        self.enabled = True  # False pauses collection (e.g. during validation) without removing hooks
        self._targets = self._select(model, modules, functional)
        self.notes = [] if functional else _functional_notes(model)
        self._sites: dict[str, Site] = {}  # call site -> what the traced forward learnt about it
        self._site_order: list[str] = []  # call sites in the order first seen
        self._layers: dict[str, _Layer] = {}
        self._calls: dict[str, int] = {}
        self._handles: list[Any] = []
        self._pending: dict[int, list[_Layer | None]] = {}  # module id -> call sites its pre-hook counted
        self._tracer: FlowTracer | None = None
        self._persistent: FlowTracer | None = None  # functional=True: one tracer whose hooks stay while attached
        self._traced = False
        self._pass_depth = 0
        self._site_counts: dict[str, int] = {}  # module -> call sites per pass, as traced
        self._depth = 0
        self._forward_index = 0
        self._collect = True
        self._window = 0

    @staticmethod
    def _select(model: nn.Module, modules, functional: bool) -> list[tuple[str, nn.Module, str]]:
        found = find_activations(model)
        if modules is None:
            if not found and not functional:
                looked_for = (f"torch.nn {_watched_torch_classes()}, every relulab.nn activation module, "
                              "transformers' and timm's activation classes and classes declared with "
                              "relulab.nn.register_counterpart")
                raise ValueError(
                    f"Monitor found no activation modules in {type(model).__name__}; it looks for {looked_for}. "
                    "Activations called as functions inside forward (F.relu, torch.relu, x.relu()) are watched with "
                    "Monitor(model, functional=True); or pass modules=[...] explicitly."
                )
            return found
        if isinstance(modules, (str, nn.Module)):
            raise TypeError(f"modules must be an iterable of module names or modules (e.g. [{modules!r}]); got "
                            f"{type(modules).__name__}")
        by_name = {name: (name, module, kind) for name, module, kind in found}
        names_of = {id(module): name for name, module in model.named_modules()}
        selected = []
        for item in modules:
            if isinstance(item, str):
                if item not in by_name:
                    raise ValueError(f"modules: {item!r} is not an activation module of the model; activation "
                                     f"modules are: {', '.join(by_name) or 'none'}")
                selected.append(by_name[item])
            elif isinstance(item, nn.Module):
                name = names_of.get(id(item))
                kind = activation_name(item)
                if name is None:
                    raise ValueError(f"modules: {type(item).__name__} is not a submodule of the model")
                if kind is None:
                    raise ValueError(f"modules: {name!r} ({type(item).__name__}) is not an activation module")
                selected.append((name or type(item).__name__, item, kind))
            else:
                raise TypeError(f"modules must hold module names or modules; got {type(item).__name__}")
        if not selected:
            raise ValueError("modules is empty: name at least one activation module (or pass None for all)")
        return selected

    # -- attaching ---------------------------------------------------------------------------------------------
    def attach(self) -> Monitor:
        """Register the hooks. Returns self. Nested ``with`` blocks on one monitor are allowed: the hooks stay
        until the outermost block exits."""
        self._depth += 1
        if self._handles:
            return self
        # A forward pass starts at the outermost call of the model or of one of its direct children (Lightning's
        # training_step calls self.model(x); generate() calls the encoder): there the call indices restart and, when
        # the data flow is still unknown, the pass is traced.
        anchors = [self.model] + [child for child in self.model.children() if next(child.children(), None) is not None]
        for anchor in anchors:
            self._handles.append(anchor.register_forward_pre_hook(self._on_pass_start))
            self._handles.append(anchor.register_forward_hook(self._on_pass_end, always_call=True))
        for name, module, kind in self._targets:
            # An in-place module overwrites its input: it is read before the call. Otherwise one hook per call sees
            # both the untouched input and the output.
            in_place = getattr(module, "inplace", False)
            pre = self._make_pre_hook(name, kind) if in_place else None
            post = self._make_post_hook(name) if in_place else self._make_hook(name, kind)
            if _ForwardWatch.applies(module):
                self._handles.append(_ForwardWatch(module, post, pre=pre))
            elif in_place:
                self._handles.append(module.register_forward_pre_hook(pre))
                self._handles.append(module.register_forward_hook(post, always_call=True))
            else:
                self._handles.append(module.register_forward_hook(post))
        return self

    def detach(self) -> None:
        """Remove every hook; the statistics and history stay readable."""
        self._depth = 0
        self._pass_depth = 0
        self._stop_tracer()
        if self._persistent is not None:
            self._persistent.uninstall()
            self._persistent = None
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> Monitor:
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth <= 0:
            self.detach()

    # -- one forward pass --------------------------------------------------------------------------------------
    def _on_pass_start(self, module, inputs) -> None:
        self._pass_depth += 1
        if self._pass_depth > 1:
            return
        self._calls.clear()
        # A backward pass that recomputes the forward (gradient checkpointing) is not a new batch.
        self._collect = self.enabled and self._forward_index % self.every == 0 and not _in_backward()
        self._forward_index += 1
        # The first collected pass is traced (unit axes, producers), and again after a site the trace did not see
        # appeared; with functional=True every collected pass runs under the tracer, which reports the functional
        # call sites.
        if self._tracer is None and self._collect and (self.functional or not self._traced):
            targets = {m: name for name, m, _ in self._targets}
            if self.functional:
                # Every pass is traced: the hooks on every module stay installed, only the function mode is entered
                # per pass (registering hundreds of hooks per forward would cost more than the pass).
                if self._persistent is None:
                    self._persistent = FlowTracer(self.model, sites=targets, functional=True,
                                                  on_function=self._on_function, on_module=self._on_traced_module,
                                                  record=True, boundary=_NO_BOUNDARY)
                    self._persistent.install()
                self._persistent.push()
                self._tracer = self._persistent
                return
            self._tracer = FlowTracer(self.model, sites=targets, functional=False,
                                      on_function=self._on_function, on_module=self._on_traced_module,
                                      record=True, boundary=module)
            self._tracer.__enter__()
            self._tracer.new_forward()

    def _on_pass_end(self, module, inputs, output) -> None:
        self._pass_depth = max(self._pass_depth - 1, 0)
        if self._pass_depth:
            return
        if self._tracer is not None:
            self._traced = True
            counts: dict[str, int] = {}
            for site in self._tracer.flow.sites:  # call sites per module and pass, for names outside a whole pass
                if site.module is not None:
                    counts[site.module] = counts.get(site.module, 0) + 1
            self._site_counts.update(counts)
        self._stop_tracer()

    def _stop_tracer(self) -> None:
        tracer, self._tracer = self._tracer, None
        if tracer is self._persistent and tracer is not None:
            tracer.pop()
        elif tracer is not None:
            tracer.__exit__(None, None, None)

    def _layer(self, site_name: str, kind: str, params: dict[str, Any], site: Site | None) -> _Layer | None:
        layer = self._layers.get(site_name)
        if layer is not None:
            return layer
        if site is not None and site_name not in self._sites:
            self._sites[site_name] = site
        site = self._sites.get(site_name, site)
        if site is None and self.unit_dim is None and self._traced:
            # A call site the traced pass did not see (a branch taken later): trace the next pass, collect from then.
            self._traced = False
            return None
        try:
            dead_possible = family.get(kind).properties_for(**params).zero_for_negative
        except (TypeError, ValueError):
            dead_possible = family.get(kind).properties.zero_for_negative
        inferred = True
        if self.unit_dim is not None:
            unit_dim, how_axis = self.unit_dim, "unit_dim given"
        elif site is not None and site.unit_dim is not None and (site.producer or site.path):
            unit_dim = site.unit_dim
            how_axis = f"units written by {site.producer}" if site.producer else "units on the features' axis"
        elif site is not None and site.unit_dim is not None:  # (N, F) input with nothing upstream
            unit_dim, how_axis = site.unit_dim, "features of a 2-D input"
        else:
            unit_dim, inferred = -1, False
            how_axis = "unit axis not inferred (no Linear/Conv upstream): last dim assumed"
        how = f"{site.how if site is not None else 'class'}; {how_axis}"
        producers = list(reversed(site.path)) if site is not None and site.exact and site.producer and \
            site.path and site.path[0] == site.producer else []
        layer = _Layer(name=site_name, kind=kind, dead_possible=dead_possible, unit_dim=unit_dim,
                       producers=producers, how=how, inferred=inferred)
        self._layers[site_name] = layer
        if site_name not in self._site_order:
            self._site_order.append(site_name)
        return layer

    def _module_site_name(self, name: str) -> str:
        index = self._calls.get(name, 0)
        self._calls[name] = index + 1
        known = self._site_counts.get(name) if self._tracer is None else None
        if known and index >= known:  # called outside a whole pass (a submodule called directly): wrap around
            index %= known
        return f"{name}[{index}]" if index else name

    def _observe_input(self, layer: _Layer, x: torch.Tensor) -> None:
        if not layer.dead_possible:  # otherwise the output alone tells which units were active
            layer.add_input(x)
        if x.requires_grad and torch.is_grad_enabled():
            _watch_grad(layer, x)

    def _make_pre_hook(self, name: str, kind: str):
        def hook(module, inputs):
            if self._tracer is not None or not (self.enabled and self._collect) or not inputs \
                    or not isinstance(inputs[0], torch.Tensor) or _in_backward():
                self._pending.setdefault(id(module), []).append(None)
                return  # a traced forward reaches _on_traced_module instead
            site_name = self._module_site_name(name)
            layer = self._layers.get(site_name)
            if layer is None:
                layer = self._layer(site_name, kind, activation_params(module), None)
            if layer is not None:
                self._observe_input(layer, inputs[0])
            self._pending.setdefault(id(module), []).append(layer)
        return hook

    def _make_hook(self, name: str, kind: str):
        layers, calls, tensor = self._layers, self._calls, torch.Tensor

        def hook(module, inputs, output):
            # Runs on every call of every watched module: the checks are ordered cheapest-first and the common path
            # (first call of the module in this pass, site known) is written out inline.
            if self._tracer is not None or not (self.enabled and self._collect) or not inputs \
                    or not isinstance(output, tensor) or not isinstance(inputs[0], tensor) or _graph_task_id() != -1:
                return  # a traced forward reaches _on_traced_module instead
            if name in calls:
                site_name = self._module_site_name(name)
            else:
                calls[name] = 1
                site_name = name
            layer = layers.get(site_name)
            if layer is None:
                layer = self._layer(site_name, kind, activation_params(module), None)
                if layer is None:
                    return
            x = inputs[0]
            if not layer.dead_possible:  # otherwise the output alone tells which units were active
                layer.add_input(x)
            if x.requires_grad and torch.is_grad_enabled():
                _watch_grad(layer, x)
            layer.add_output(output)
        return hook

    def _make_post_hook(self, name: str):
        def hook(module, inputs, output):
            pending = self._pending.get(id(module))
            if not pending:
                return
            layer = pending.pop()
            if layer is not None and isinstance(output, torch.Tensor):
                layer.add_output(output)
        return hook

    def _on_traced_module(self, site: Site, phase: str, tensor: torch.Tensor) -> None:
        if not (self.enabled and self._collect) or _in_backward():
            return
        name = site.module or site.name
        if phase == "input":
            site_name = self._module_site_name(name)
            layer = self._layer(site_name, site.member, site.params, site)
            self._observe_input(layer, tensor)
            self._pending.setdefault(id(site), []).append(layer)
        else:
            pending = self._pending.get(id(site))
            if pending:
                pending.pop().add_output(tensor)

    def _on_function(self, site: Site, phase: str, tensor: torch.Tensor) -> None:
        if not (self.enabled and self._collect) or _in_backward():
            return
        layer = self._layer(site.name, site.member, site.params, site)
        if phase == "input":
            self._observe_input(layer, tensor)
        else:
            layer.add_output(tensor)

    # -- windows and reports -----------------------------------------------------------------------------------
    def _layer_list(self) -> list[_Layer]:
        """This window's call sites in data-flow order (the order of the traced forward); a module called k > 1
        times per forward is reported as ``name[0]`` ... ``name[k-1]``; watched sites not called in this window
        are listed with no samples."""
        order = list(self._site_order)
        seen_modules = {site.split("[")[0] for site in order}
        for name, _, _ in self._targets:
            if name not in seen_modules:
                order.append(name)
        repeated = {site.split("[")[0] for site in order if ":" not in site and site.endswith("]")}
        kinds = {name: kind for name, _, kind in self._targets}
        ordered = []
        for site_name in order:
            layer = self._layers.get(site_name)
            if layer is None:
                site = self._sites.get(site_name)
                kind = site.member if site is not None else kinds.get(site_name.split("[")[0], "identity")
                layer = _Layer(name=site_name, kind=kind, dead_possible=False, unit_dim=self.unit_dim or 1)
            shown = site_name
            if ":" not in site_name and site_name in repeated:
                shown = f"{site_name}[0]"
            layer.name = shown
            ordered.append(layer)
        return ordered

    def _reduced(self, layers: list[_Layer]) -> list[np.ndarray | None]:
        """All-reduce every layer's state in one collective when torch.distributed is initialised."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return [None] * len(layers)
        seen = [layer for layer in layers if layer.units is not None]
        if not seen:
            return [None] * len(layers)
        flats = [layer.flat() for layer in seen]
        sizes = [f.numel() for f in flats]
        combined = torch.cat(flats)
        if dist.get_backend() == "gloo":
            combined = combined.cpu()
        dist.all_reduce(combined, op=dist.ReduceOp.SUM)
        parts = iter(torch.split(combined.cpu(), sizes))
        return [next(parts).numpy() if layer.units is not None else None for layer in layers]

    def report(self) -> Report:
        """The current window's statistics as a :class:`Report` (the window stays open)."""
        layers = self._layer_list()
        stats = [layer.stats(flat) for layer, flat in zip(layers, self._reduced(layers))]
        return Report(stats, history=list(self.history), notes=list(self.notes), window=self._window)

    def reset(self) -> Report:
        """Close the window: its report is appended to :attr:`history` (as a dict) and returned; start a new one."""
        report = self.report()
        self.history.append(report.to_dict())
        self._layers.clear()
        self._calls.clear()
        self._pending.clear()
        self._window += 1
        return report

    @property
    def layers(self) -> list[str]:
        """The names of the watched activation modules."""
        return [name for name, _, _ in self._targets]

    @property
    def sites(self) -> dict[str, Site]:
        """What the traced forward learnt about each call site (unit axis, producing layer, how identified)."""
        return dict(self._sites)
