"""Monitor: online per-unit statistics of every activation in a PyTorch model, cheap enough to leave on.

For each activation layer the monitor keeps, over a *window* (an epoch, or the samples you choose), O(units)
state on the model's device and never a per-sample buffer:

- how often each unit's input (pre-activation) was > 0; a unit never positive in the window is *inactive*, and
  *dead* when the member is exactly zero for x < 0 (relu, relu6, squared_relu...) so its gradient is exactly zero;
- the number of exact zeros in the output (sparsity);
- the sum and sum of squares of each unit's output (mean and std);
- the squared L2 norm of the loss gradient with respect to the layer's input, per backward pass.

Each batch adds a handful of fused reductions per layer and no host synchronisation: nothing is copied to the host
until a report is made. A unit is a feature of a dense (N, F) activation or a channel (dim 1) of a conv activation
(N, C, ...); pass ``unit_dim=-1`` for (N, T, F) sequence activations.
"""

from __future__ import annotations

import inspect
import os
import re
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from .. import family
from ..nn import activation_name, activation_params
from .report import LayerStats, Report

__all__ = ["Monitor", "find_activations"]

# Modules whose output unit i depends only on input unit i: a dead unit can be traced back through them to the
# Linear/Conv that produced it (used by revive).
_UNIT_PRESERVING = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                    nn.Dropout3d, nn.AlphaDropout, nn.Identity)
_PRODUCERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_FUNCTIONAL_CALL = re.compile(r"\b(?:F|functional|torch)\.(relu|relu_|leaky_relu|elu|selu|celu|gelu|silu|mish|"
                              r"softplus|hardswish|relu6|sigmoid|tanh|prelu|rrelu)\s*\(|\.(relu|sigmoid|tanh)\(\)")


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
        if forward in seen or type(module).__module__.startswith("torch."):
            continue
        seen.add(forward)
        try:
            source = inspect.getsource(forward)
        except (OSError, TypeError):
            continue
        calls = sorted({m.group(0).rstrip("(").strip() for m in _FUNCTIONAL_CALL.finditer(source)})
        if calls:
            where = name or type(module).__name__
            notes.append(f"{where} ({type(module).__name__}.forward) calls {', '.join(calls)} functionally; the "
                         "monitor cannot see those activations. Make them modules (e.g. relulab.nn.ReLU()) to monitor "
                         "them.")
    return notes


_FUSED: Any = None


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
    _scratch: np.ndarray | None = None  # the fused pass's unused positive counts (members counted on the input)

    def _dims(self, ndim: int) -> tuple[int, list[int]]:
        unit = self.unit_dim % ndim if ndim > 1 else 0
        return unit, [d for d in range(ndim) if d != unit]

    def _check_units(self, t: torch.Tensor) -> tuple[int, list[int]]:
        unit, reduce = self._dims(t.ndim)
        units = t.shape[unit] if t.ndim > 1 else 1
        if self.units is None:
            self.units = units
            self.active = torch.zeros(units, dtype=torch.float64, device=t.device)
            self.zeros = torch.zeros((), dtype=torch.float64, device=t.device)
            self.moments = torch.zeros(2, units, dtype=torch.float64, device=t.device)
            self.grad_sq = torch.zeros((), dtype=torch.float64, device=t.device)
        elif units != self.units:
            raise RuntimeError(
                f"Monitor: layer {self.name!r} had {self.units} units and now receives {units} along dim "
                f"{self.unit_dim}; a call site must keep its width (reset() the monitor after changing the model)"
            )
        return unit, reduce

    def add_input(self, x: torch.Tensor) -> None:
        """Count x > 0 per unit (members whose output can be non-zero for x <= 0)."""
        _, reduce = self._check_units(x)
        if x.dtype not in (torch.float32, torch.float64):
            x = x.float()  # a float16 sum of ones is exact only up to 2048
        positive = torch.heaviside(x, x.new_zeros(()))  # 1 where x > 0, else 0; a float pass, faster than bool
        self.active.add_(positive.sum(dim=reduce if x.ndim > 1 else None, dtype=torch.float64))

    def add_output(self, y: torch.Tensor) -> None:
        unit, reduce = self._check_units(y)
        if y.numel() == 0:  # an empty batch adds nothing
            return
        self.samples += y.shape[0] if y.ndim > 0 else 1
        self.positions += y.numel() // (self.units or 1)
        self.elements += y.numel()
        fused = _fused_kernel()
        if fused is not None and y.device.type == "cpu" and y.dtype in (torch.float32, torch.float64) \
                and unit == 1 and y.is_contiguous():
            # One compiled pass: positive count, zeros, sum and sum of squares per unit.
            values = y.numpy().reshape(y.shape[0], self.units, -1)
            positive = self.active.numpy() if self.dead_possible else self._scratch_positive()
            fused.unit_stats(values, positive, self.zeros.numpy().reshape(1), self.moments[0].numpy(),
                             self.moments[1].numpy())
            return
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
        g = grad.detach()
        fused = _fused_kernel()
        if fused is not None and g.device.type == "cpu" and g.dtype in (torch.float32, torch.float64) \
                and g.is_contiguous():
            self.grad_sq.numpy()[...] += fused.sum_squares(g.numpy())
        else:
            squared = torch.dot(g.view(-1), g.view(-1)) if g.is_contiguous() else torch.linalg.vector_norm(g).square()
            self.grad_sq.add_(squared)
        self.grad_batches += 1

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
                              grad_norm=None, producers=list(self.producers))
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

        return LayerStats(
            name=self.name, kind=self.kind, units=u, samples=samples, dead_possible=self.dead_possible,
            active_fraction=active / per_unit, mean=mean, std=std,
            sparsity=float(zeros / elements) if elements else None,
            grad_norm=float(np.sqrt(grad_sq / grad_batches)) if grad_batches else None,
            producers=list(self.producers),
        )


class Monitor:
    """Watch every activation of ``model``: dead and inactive units, sparsity, output moments, gradient flow.

    Args:
        model: any ``torch.nn.Module`` (also wrapped in DistributedDataParallel).
        modules: which activations to watch: ``None`` for every activation module found (torch.nn's ReLU family,
            Sigmoid, Tanh and relulab.nn modules), or an iterable of qualified module names or modules.
        every: collect statistics on every ``every``-th forward pass of ``model`` (1 = every batch).
        unit_dim: the dimension of an activation that indexes units (1: features of (N, F), channels of
            (N, C, ...)); use -1 for (N, T, F) sequence activations.

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
                 unit_dim: int = 1) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1; got {every!r}")
        if isinstance(unit_dim, bool) or not isinstance(unit_dim, int):
            raise TypeError(f"unit_dim must be an int; got {unit_dim!r}")
        self.model = model
        self.every = every
        self.unit_dim = unit_dim
        self.history: list[dict[str, Any]] = []
        self.enabled = True  # False pauses collection (e.g. during validation) without removing hooks
        self._targets = self._select(model, modules)
        self.notes = _functional_notes(model)
        self._layers: dict[tuple[str, int], _Layer] = {}
        self._calls: dict[str, int] = {}
        self._handles: list[Any] = []
        self._producer_handles: list[Any] = []
        self._recent: dict[int, tuple[str, Any, Any]] = {}  # id(tensor) -> (module name, ref, ref to its input)
        self._sources: dict[tuple[str, int], list[str]] = {}  # call site -> producer chain (kept across windows)
        self._pending: dict[int, _Layer] = {}  # module id -> the call site its pre-hook just counted
        self._forward_index = 0
        self._collect = True
        self._root_seen = False
        self._window = 0

    @staticmethod
    def _select(model: nn.Module, modules) -> list[tuple[str, nn.Module, str]]:
        found = find_activations(model)
        if modules is None:
            if not found:
                looked_for = ("torch.nn ReLU, LeakyReLU, PReLU, RReLU, ELU, SELU, CELU, ReLU6, GELU, SiLU, Mish, "
                              "Softplus, Hardswish, Sigmoid, Tanh and every relulab.nn activation module")
                raise ValueError(
                    f"Monitor found no activation modules in {type(model).__name__}; it looks for {looked_for}. "
                    "Activations called functionally inside forward (F.relu, torch.relu) are invisible to hooks: "
                    "make them modules (e.g. self.act = relulab.nn.ReLU()), or pass modules=[...] explicitly."
                )
            return found
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
        return selected

    # -- attaching ---------------------------------------------------------------------------------------------
    def attach(self) -> Monitor:
        """Register the hooks (idempotent). Returns self."""
        if self._handles:
            return self
        self._handles.append(self.model.register_forward_pre_hook(self._on_root_forward))
        self._handles.append(self.model.register_forward_hook(self._stop_tracing))
        for name, module, kind in self._targets:
            self._handles.append(module.register_forward_pre_hook(self._make_pre_hook(name, kind)))
            self._handles.append(module.register_forward_hook(self._make_post_hook(name)))
        self._watch_producers()
        return self

    def detach(self) -> None:
        """Remove every hook; the statistics and history stay readable."""
        for handle in self._handles + self._producer_handles:
            handle.remove()
        self._handles, self._producer_handles = [], []
        self._recent.clear()

    def __enter__(self) -> Monitor:
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def _watch_producers(self) -> None:
        """Hook Linear/Conv/BatchNorm/Dropout for one forward to learn which layer feeds each activation."""
        for name, module in self.model.named_modules():
            if isinstance(module, _PRODUCERS + _UNIT_PRESERVING):
                self._producer_handles.append(module.register_forward_hook(self._make_producer_hook(name)))

    def _make_producer_hook(self, name: str):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor):
                source = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
                self._recent[id(output)] = (name, weakref.ref(output),
                                            weakref.ref(source) if source is not None else None)
        return hook

    def _trace_producers(self, x: torch.Tensor) -> list[str]:
        """The chain of modules that produced x, nearest first, ending at a Linear/Conv when one is found."""
        chain: list[str] = []
        tensor: torch.Tensor | None = x
        while tensor is not None:
            entry = self._recent.get(id(tensor))
            if entry is None or entry[1]() is not tensor:  # ids are reused: check it is the same tensor
                break
            name, _, source = entry
            chain.append(name)
            if isinstance(self.model.get_submodule(name), _PRODUCERS):
                break
            tensor = source() if source is not None else None
        return chain

    def _stop_tracing(self, module=None, inputs=None, output=None) -> None:
        """After one full forward every call site's source is known: remove the producer hooks."""
        for handle in self._producer_handles:
            handle.remove()
        self._producer_handles = []
        self._recent.clear()

    def _on_root_forward(self, module, inputs) -> None:
        self._root_seen = True
        self._calls.clear()
        self._collect = self.enabled and self._forward_index % self.every == 0
        self._forward_index += 1

    def _slot(self, name: str, kind: str, module: nn.Module) -> _Layer:
        index = self._calls.get(name, 0) if self._root_seen else 0
        self._calls[name] = index + 1
        key = (name, index)
        layer = self._layers.get(key)
        if layer is None:
            params = activation_params(module)
            try:
                dead_possible = family.get(kind).properties_for(**params).zero_for_negative
            except (TypeError, ValueError):
                dead_possible = family.get(kind).properties.zero_for_negative
            layer = _Layer(name=name, kind=kind, dead_possible=dead_possible,
                           unit_dim=self.unit_dim, producers=self._sources.setdefault(key, []))
            self._layers[key] = layer
        return layer

    def _make_pre_hook(self, name: str, kind: str):
        def hook(module, inputs):
            if not (self.enabled and self._collect) or not inputs or not isinstance(inputs[0], torch.Tensor):
                return
            x = inputs[0]
            layer = self._slot(name, kind, module)
            if not layer.dead_possible:  # otherwise the output alone tells which units were active
                with torch.no_grad():
                    layer.add_input(x)
            if not layer.producers and self._producer_handles:
                layer.producers.extend(self._trace_producers(x))  # the list is shared with self._sources
            if x.requires_grad and torch.is_grad_enabled():
                x.register_hook(layer.add_grad)  # dL/dx, before any in-place activation overwrites x
            self._pending[id(module)] = layer
        return hook

    def _make_post_hook(self, name: str):
        def hook(module, inputs, output):
            layer = self._pending.pop(id(module), None)
            if layer is None or not isinstance(output, torch.Tensor):
                return
            with torch.no_grad():
                layer.add_output(output.detach())
        return hook

    # -- windows and reports -----------------------------------------------------------------------------------
    def _layer_list(self) -> list[_Layer]:
        counts: dict[str, int] = {}
        for name, _ in self._layers:
            counts[name] = counts.get(name, 0) + 1
        ordered = []
        for name, module, kind in self._targets:
            for index in range(counts.get(name, 0)):
                layer = self._layers[(name, index)]
                layer.name = name if counts[name] == 1 else f"{name}[{index}]"
                ordered.append(layer)
            if name not in counts:  # never called in this window
                ordered.append(_Layer(name=name, kind=kind, dead_possible=False,
                                      unit_dim=self.unit_dim))
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
        self._window += 1
        return report

    @property
    def layers(self) -> list[str]:
        """The names of the watched activation modules."""
        return [name for name, _, _ in self._targets]
