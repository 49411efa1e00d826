"""One training run of the lab: a :class:`RunConfig` in, a JSON-ready result dict out.

A run is deterministic for its config (seed included) on a single CPU thread: the seed fixes the initialisation,
the batch order and any re-initialisation. The monitor watches every activation with one window per epoch, so
each epoch records:

- ``train_loss`` (mean over the epoch's batches) and ``train_error`` (the model at the end of the epoch, on the
  whole training split), ``val_accuracy``, ``val_loss`` and ``test_accuracy``;
- ``curve``: train error at ``evals_per_epoch`` evenly spaced points of the epoch, as ``[epochs, error]`` pairs
  (``epochs_to_target`` is the first point at or below ``target_error``, so it can be a fraction of an epoch);
- per activation layer: ``dead_fraction``, ``inactive_fraction``, ``sparsity`` and ``grad_norm`` (||dL/d input||,
  root mean square over the epoch's batches), from :class:`relulab.Monitor`;
- per Linear/Conv layer: ``weight_grad`` (||dL/dW||, root mean square over the epoch's batches).
- per activation layer also ``dead_units`` (their indices) and, for members bounded on both sides (sigmoid, tanh),
  ``saturated_fraction``: units whose mean output over the epoch lies within 5 % of the output range from a bound.

``data`` and ``model`` may also name the user's own (:mod:`relulab.lab.user`): a prepared ``.npz`` and an import
path, pickle file or in-process token. Then ``activation`` is the candidate member ("" = the model as built),
``swap_from`` the member it replaces, ``init="default"`` keeps the model's own initialisation, ``standardize``
scales the inputs by the training split's statistics, and a regression
(float targets) trains with mean squared error and reports R^2 where classes report accuracy (``metric``).

A NaN or infinite loss stops the run: its status becomes ``"diverged"`` and the epochs before it are kept.
With ``probe=True`` the run also measures the network at initialisation and after training on the whole
training split without updating it (one forward and backward pass per batch): the ``init`` and ``trained`` entries.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import data as lab_data
from . import stats
from .validate import INITS, MODELS, OPTIMIZERS

__all__ = ["RunConfig", "run", "OPTIMIZERS", "MODELS", "INITS", "summarise_layers", "saturated_fractions",
           "load_data"]



@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run. Two equal configs give the same result; :meth:`key` names it on disk."""

    data: str = "digits"
    model: str = "cnn"
    activation: str = "relu"
    params: Mapping[str, Any] = field(default_factory=dict)  # the activation's keyword parameters
    seed: int = 0
    epochs: int = 10
    lr: float = 0.05
    optimizer: str = "sgd"  # SGD with momentum 0.9, or Adam
    batch_size: int = 32
    depth: int | None = None  # None: the model's default (models.default_depth)
    width: int = 64
    init: str = "he"
    bias_shift: float = 0.0  # added to every hidden layer's bias after initialisation
    target_error: float = 0.05  # train error that counts as "reached" for epochs-to-target
    evals_per_epoch: int = 1  # how often train error is measured for epochs-to-target (fractions of an epoch)
    probe: bool = False  # also measure at init and after training (see the module docstring)
    revive_after: int | None = None  # after this epoch, re-initialise dead units with relulab.revive
    swap_from: str = ""  # user models: the member ``activation`` replaces ("" = the model's most common one)
    fingerprint: str = ""  # user models: a hash of the model's source, so an edited model is not resumed
    standardize: bool = False  # scale every input feature by the training split's mean and std before training

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["params"] = dict(sorted(self.params.items()))
        for name, default in _OMITTED_AT_DEFAULT.items():  # added later: absent at their default, so keys stay
            if out[name] == default:
                del out[name]
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown RunConfig fields: {', '.join(sorted(unknown))}")
        return cls(**values)

    def key(self) -> str:
        """A short stable name: activation, seed and a hash of the whole config."""
        digest = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.activation or 'model'}-s{self.seed}-{digest}"


_OMITTED_AT_DEFAULT = {"swap_from": "", "fingerprint": "", "standardize": False}


def summarise_layers(report: Mapping[str, Any]) -> dict[str, Any]:
    """Per-layer and whole-network numbers from a monitor report dict.

    ``dead_fraction``/``inactive_fraction`` of the network are unit-weighted (dead units / all units);
    ``sparsity`` is the mean of the layers' sparsities.
    """
    layers = []
    units = dead = inactive = 0
    for layer in report["layers"]:
        if not layer["units"]:
            continue
        units += layer["units"]
        dead += layer["dead"]
        inactive += layer["inactive"]
        layers.append({
            "name": layer["name"], "kind": layer["kind"], "units": layer["units"],
            "dead_fraction": layer["dead_fraction"], "inactive_fraction": layer["inactive"] / layer["units"],
            "sparsity": layer["sparsity"], "grad_norm": layer["grad_norm"],
        })
    return {
        "dead_fraction": dead / units if units else None,
        "inactive_fraction": inactive / units if units else None,
        "sparsity": stats.mean([layer["sparsity"] for layer in layers]),
        "layers": layers,
    }


SATURATION_MARGIN = 0.05  # a bounded unit is saturated when its mean output is this close (x range) to a bound


def saturated_fractions(layers) -> dict[str, float]:
    """Per activation layer of a monitor window (LayerStats) whose member is bounded on both sides and not zero
    for x < 0 (sigmoid, tanh, ...): the fraction of units whose mean output is within 5 % of the range from a
    bound (sigmoid: mean < 0.05 or > 0.95). Since the output is bounded, such a unit sits near the bound on most
    samples, where its derivative is near 0."""
    from .. import family

    out = {}
    for layer in layers:
        if not layer.units or not layer.samples:
            continue
        try:
            properties = family.get(layer.kind).properties
        except family.UnknownActivationError:
            continue
        low, high = properties.lower_bound, properties.upper_bound
        if low is None or high is None or properties.zero_for_negative:
            continue
        margin = SATURATION_MARGIN * (high - low)
        mean = np.asarray(layer.mean, dtype=float)
        out[layer.name] = float(np.mean((mean - low < margin) | (high - mean < margin)))
    return out


def _layer_records(window) -> dict[str, Any]:
    summary = summarise_layers(window.to_dict())
    dead = {layer.name: layer.dead_units for layer in window.layers}
    saturated = saturated_fractions(window.layers)
    for layer in summary["layers"]:
        layer["dead_units"] = dead.get(layer["name"], [])
        if layer["name"] in saturated:
            layer["saturated_fraction"] = saturated[layer["name"]]
    return summary


def standardized(data: lab_data.Dataset) -> lab_data.Dataset:
    """Every input element scaled by the training split's mean and std over samples (constant ones left as 0)."""
    from dataclasses import replace

    mean = data.x_train.mean(axis=0, dtype=np.float64)
    std = data.x_train.std(axis=0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    scale = lambda x: ((x - mean) / std).astype(np.float32)  # noqa: E731
    return replace(data, x_train=scale(data.x_train), x_val=scale(data.x_val), x_test=scale(data.x_test))


def load_data(name: str) -> lab_data.Dataset:
    """A built-in data set by name, or the user's prepared data by its path."""
    if name in lab_data.REGISTRY:
        return lab_data.load(name)
    from .user import read_data

    return read_data(name)


def run(config: RunConfig | Mapping[str, Any], *, on_epoch: Callable[[dict[str, Any]], None] | None = None,
        dataset: lab_data.Dataset | None = None) -> dict[str, Any]:
    """Train one model as ``config`` says and return the result dict (JSON-ready; see the module docstring)."""
    import torch

    from ..monitor import Monitor, revive

    if not isinstance(config, RunConfig):
        config = RunConfig.from_dict(config)
    started = time.perf_counter()
    data = dataset if dataset is not None else load_data(config.data)
    regression = data.task == "regression"
    if config.standardize:
        data = standardized(data)
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    splits = {
        "train": (x_train, y_train),
        "val": (torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)),
        "test": (torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)),
    }

    model, weighted = _seeded_model(config, data)
    # Evaluation runs on a twin made before the monitor attaches, so only training batches fill its windows; in
    # eval mode (rrelu uses its mean slope there and draws no random numbers from the training stream).
    twin = copy.deepcopy(model).eval()
    optimizer = _optimizer(config, model)
    loss_fn = _loss(regression)
    order = torch.Generator().manual_seed(config.seed)
    n = len(y_train)

    def evaluate(split: str) -> tuple[float, float]:
        x, y = splits[split]
        twin.load_state_dict(model.state_dict())
        with torch.no_grad():
            logits = torch.cat([twin(x[i:i + 1024]) for i in range(0, len(y), 1024)])
            loss = float(loss_fn(logits, y))
            if regression:  # R^2: the accuracy-like score (1 is perfect; 1 - R^2 is the "error")
                target = y.double()
                total = float(((target - target.mean(0)) ** 2).sum())
                residual = float(((logits.reshape(y.shape).double() - target) ** 2).sum())
                return loss, (1.0 - residual / total) if total > 0 else float("nan")
            accuracy = float((logits.argmax(1) == y).double().mean())
        return loss, accuracy

    def weight_grad_sq() -> torch.Tensor:
        return torch.stack([torch.linalg.vector_norm(layer.weight.grad) for _, layer in weighted]).double() ** 2

    def probe(mon: Monitor) -> dict[str, Any]:
        """Forward and backward over the whole training split without an update: one monitor window."""
        mon.reset()
        total, batches, loss_sum = torch.zeros(len(weighted), dtype=torch.float64), 0, 0.0
        for i in range(0, n, config.batch_size):
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[i:i + config.batch_size]), y_train[i:i + config.batch_size])
            loss.backward()
            total += weight_grad_sq()
            loss_sum += float(loss.detach())
            batches += 1
        model.zero_grad(set_to_none=True)
        summary = _layer_records(mon.reset())
        summary["weight_grad"] = [float(v) for v in (total / batches).sqrt()]
        summary["train_loss"] = loss_sum / batches
        return summary

    result: dict[str, Any] = {
        "config": config.to_dict(), "key": config.key(), "status": "ok", "diverged_at": None, "epochs": [],
        "weight_layers": [name for name, _ in weighted], "revived": None,
        "metric": "r2" if regression else "accuracy",
    }
    model.train()
    with Monitor(model) as mon:
        result["activation_layers"] = mon.layers
        if config.probe:
            result["init"] = probe(mon)
        for epoch in range(1, config.epochs + 1):
            grad_sq = torch.zeros(len(weighted), dtype=torch.float64)
            loss_sum = torch.zeros((), dtype=torch.float64)
            batches = 0
            diverged = False
            batches_of_epoch = torch.randperm(n, generator=order).split(config.batch_size)
            checkpoints = {round(len(batches_of_epoch) * k / config.evals_per_epoch)
                           for k in range(1, config.evals_per_epoch)} - {0, len(batches_of_epoch)}
            curve = []
            for batch in batches_of_epoch:
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x_train[batch]), y_train[batch])
                if not torch.isfinite(loss):
                    diverged = True
                    break
                loss.backward()
                grad_sq += weight_grad_sq()
                optimizer.step()
                loss_sum += loss.detach()
                batches += 1
                if batches in checkpoints:
                    curve.append([epoch - 1 + batches / len(batches_of_epoch), 1.0 - evaluate("train")[1]])
            if diverged or not all(torch.isfinite(p).all() for p in model.parameters()):
                mon.reset()  # the diverged epoch's statistics hold NaN/inf: close the window and discard it
                result["status"], result["diverged_at"] = "diverged", epoch
                break
            window = mon.reset()
            record: dict[str, Any] = {"epoch": epoch, "train_loss": float(loss_sum) / batches}
            record["train_error"] = 1.0 - evaluate("train")[1]
            record["curve"] = curve + [[float(epoch), record["train_error"]]]
            record["val_loss"], record["val_accuracy"] = evaluate("val")
            record["test_accuracy"] = evaluate("test")[1]
            record.update(_layer_records(window))
            record["weight_grad"] = [float(v) for v in (grad_sq / batches).sqrt()]
            result["epochs"].append(record)
            if on_epoch is not None:
                on_epoch(record)
            if config.revive_after == epoch:
                generator = torch.Generator().manual_seed(config.seed + 7919)
                result["revived"] = revive(model, window, generator=generator, optimizer=optimizer)
        if config.probe and result["status"] == "ok":
            result["trained"] = probe(mon)
    result["final"] = _final(result, config)
    result["seconds"] = time.perf_counter() - started
    return result


def _seeded_model(config: RunConfig, data: lab_data.Dataset):
    """The model of ``config`` built after seeding torch with the run's seed, and its weight layers; the bias
    shift, if any, added to every layer followed by an activation."""
    import torch

    from .models import build_model, initialise, weight_layers

    torch.manual_seed(config.seed)
    if config.model in MODELS:
        # A regression's outputs: one per target column.
        outputs = data.num_classes if data.task != "regression" else int(np.prod(data.y_train.shape[1:],
                                                                                 dtype=np.int64))
        model = build_model(config.model, data.shape, outputs, activation=config.activation,
                            depth=config.depth, width=config.width, init=config.init, params=config.params)
    else:
        from .user import build_model as build_user_model

        model = initialise(build_user_model(config.model, config.activation, config.swap_from), config.init)
    weighted = weight_layers(model)
    if config.bias_shift:
        with torch.no_grad():
            for _, layer in weighted[:-1]:  # every layer followed by an activation, not the classifier
                if layer.bias is not None:
                    layer.bias += config.bias_shift
    return model, weighted


def _optimizer(config: RunConfig, model):
    import torch

    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {config.optimizer!r}")


def _loss(regression: bool):
    """Mean squared error for a regression (outputs reshaped to the targets), cross-entropy for classes."""
    from torch import nn

    if regression:
        def loss_fn(output, target):
            return nn.functional.mse_loss(output.reshape(target.shape), target)

        return loss_fn
    return nn.CrossEntropyLoss()


def _final(result: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    """The numbers the tables show: last epoch's accuracy, dead %, sparsity, gradient ratio; epochs to target."""
    epochs = result["epochs"]
    reached = next((at for e in epochs for at, error in e["curve"] if error <= config.target_error), None)
    last = epochs[-1] if epochs and result["status"] == "ok" else None
    ratio = None
    if last is not None and last["weight_grad"][-1] > 0:
        ratio = last["weight_grad"][0] / last["weight_grad"][-1]
    return {
        "test_accuracy": last["test_accuracy"] if last else None,
        "val_accuracy": last["val_accuracy"] if last else None,
        "train_error": last["train_error"] if last else None,
        "train_loss": last["train_loss"] if last else None,
        "epochs_to_target": reached,
        "dead_fraction": last["dead_fraction"] if last else None,
        "inactive_fraction": last["inactive_fraction"] if last else None,
        "sparsity": last["sparsity"] if last else None,
        "grad_ratio": ratio if ratio is None or math.isfinite(ratio) else None,
    }


_FRACTIONS = ("train_error", "val_accuracy", "test_accuracy", "dead_fraction", "inactive_fraction", "sparsity")
_LOSSES = ("train_loss", "val_loss")


def _impossible(where: str, record: Any, keys: Sequence[str], low: float, high: float) -> str | None:
    """The first of ``keys`` in ``record`` that is not None and not a number in [low, high]."""
    for key in keys:
        value = record.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and low <= value <= high):
            allowed = f"a finite number >= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
            return f"{where}{key} = {value!r}, not {allowed}"
    return None


def check_result(config: Mapping[str, Any], result: Any) -> str | None:
    """What makes ``result`` impossible as a :func:`run` of ``config``; None when nothing does.

    The sweep calls this on every stored run before reusing it: accuracies, errors, dead fractions and sparsity are
    fractions in [0, 1], losses and gradient norms finite and >= 0, one record per epoch, the config the same.

    >>> check_result({"epochs": 1}, {"status": "ok", "config": {"epochs": 1}, "epochs": [],
    ...                              "final": {"test_accuracy": 1.2}})
    'final.test_accuracy = 1.2, not in [0, 1]'
    """
    if not isinstance(result, dict) or not isinstance(result.get("epochs"), list) or not isinstance(
            result.get("final"), dict) or not isinstance(result.get("config"), dict):
        return "not a training run: no config, epochs and final"
    if result.get("status") not in ("ok", "diverged"):
        return f"status = {result.get('status')!r}, not 'ok' or 'diverged'"
    for key, value in config.items():
        if result["config"].get(key) != value:
            return f"config.{key} = {result['config'].get(key)!r}, but the run file's task says {value!r}"
    final, epochs = result["final"], result["epochs"]
    problem = (_impossible("final.", final, _FRACTIONS, 0.0, 1.0)
               or _impossible("final.", final, ("train_loss",), 0.0, math.inf)
               or _impossible("final.", final, ("grad_ratio",), 0.0, math.inf)
               or _impossible("final.", final, ("epochs_to_target",), 0.0, float(len(epochs))))
    if problem:
        return problem
    planned = config.get("epochs", RunConfig.epochs)
    if result["status"] == "ok" and len(epochs) != planned or len(epochs) > planned:
        return f"{len(epochs)} epoch records for a {result['status']} run of {planned} epochs"
    for number, record in enumerate(epochs, start=1):
        if not isinstance(record, dict) or record.get("epoch") != number:
            return f"epochs[{number - 1}] is not the record of epoch {number}"
        grads = record.get("weight_grad") or []
        problem = (_impossible(f"epochs[{number - 1}].", record, _FRACTIONS, 0.0, 1.0)
                   or _impossible(f"epochs[{number - 1}].", record, _LOSSES, 0.0, math.inf)
                   or _impossible(f"epochs[{number - 1}].", {f"weight_grad[{i}]": g for i, g in enumerate(grads)},
                                  [f"weight_grad[{i}]" for i in range(len(grads))], 0.0, math.inf))
        if problem:
            return problem
    return None


run.check_result = check_result  # the sweep looks for it on the task function (see relulab.lab.sweep)
