"""The Playground's training sessions: one small MLP on a 2-D toy, trained on its own thread, watched by the monitor.

A :class:`Session` owns a model, its optimizer and a worker thread. Everything that touches the model (an epoch of
training, a probe, revive, swap, reset) holds the session's lock, so a request thread and the worker never see the
model half-updated; the page reads :meth:`Session.snapshot`, a JSON-ready copy made after each change.

After every epoch (and after every revive or swap) a *probe* runs the whole training split through the network once
under a fresh :class:`relulab.Monitor`: that window says which units are alive (active on at least one sample),
dead (inactive, and the member is exactly zero for x < 0, so no gradient reaches them) or inactive (leaky members),
with the monitor's own definitions. Training itself runs without hooks.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from .. import family
from ..lab.validate import INITS, OPTIMIZERS
from .errors import FieldError

__all__ = ["TOYS", "INITS", "OPTIMIZERS", "LIMITS", "PlaygroundConfig", "validate_config", "Session"]

TOYS = ("xor", "moons", "circles", "spiral")  # the lab's 2-D data sets, in the order the page offers them
# Small enough that every unit is a cell on the page and an epoch takes milliseconds on one thread.
LIMITS = {"depth": (1, 6), "width": (1, 32), "batch_size": (1, 720), "seed": (0, 2**31 - 1)}
LR_MAX = 100.0
GRID = 48  # the decision boundary is drawn from a GRID x GRID evaluation of the network
EXTENT = 2.6  # ... over [-EXTENT, EXTENT]^2 in standardised coordinates (the toys' features are standardised)
HISTORY = 2000  # epochs kept for the curves; older points are thinned, never the latest

# torch.manual_seed is process-wide: two sessions building models at once would interleave their draws.
_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class PlaygroundConfig:
    """Everything that determines a session's network and data. Two equal configs train identically."""

    data: str = "xor"
    depth: int = 2
    width: int = 8
    activation: str = "relu"
    params: Mapping[str, Any] = field(default_factory=dict)
    init: str = "he"
    lr: float = 0.03
    optimizer: str = "sgd"
    batch_size: int = 16
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["params"] = dict(self.params)
        return out


def _integer(values: Mapping[str, Any], key: str, default: int) -> int:
    value = values.get(key, default)
    low, high = LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FieldError(key, f"{key} must be an integer in [{low}, {high}]; got {value!r}")
    return value


def _choice(values: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = values.get(key, default)
    if value not in allowed:
        raise FieldError(key, f"{key} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def module_params() -> dict[str, list[str]]:
    """For each member with a relulab.nn module: which of the family's parameters that module takes.

    The Playground's fields for an activation are these (rrelu's module has no ``training``/``seed``: the module's
    mode decides; prelu's slopes are learned, so it has none).
    """
    import inspect

    from .. import nn as rnn

    out = {}
    for name in family.names():
        module = rnn.MODULES.get(name)
        if module is not None:
            accepted = inspect.signature(module).parameters
            out[name] = [p.name for p in family.get(name).params if p.name in accepted]
    return out


def check_activation(name: Any, params: Any) -> tuple[str, dict[str, Any]]:
    """The canonical member name and its parameters, checked by the family and by ``relulab.nn.make``.

    The messages are the library's own, naming the parameter and its allowed range.
    """
    try:
        act = family.get(name)
    except (TypeError, ValueError) as error:
        raise FieldError("activation", str(error)) from None
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise FieldError("params", f"params must be an object of parameter values; got {params!r}")
    params = dict(params)
    from .. import nn as rnn

    try:
        rnn.make(act.name, **params)
    except (TypeError, ValueError) as error:
        message = str(error)
        field_name = next((k for k in params if f"{k} " in message or f"'{k}'" in message), "params")
        raise FieldError(field_name, message) from None
    return act.name, params


def validate_config(values: Mapping[str, Any], base: PlaygroundConfig | None = None) -> PlaygroundConfig:
    """A :class:`PlaygroundConfig` from a request's JSON (missing fields keep ``base``'s values), or FieldError."""
    if not isinstance(values, Mapping):
        raise FieldError("config", f"the configuration must be a JSON object; got {values!r}")
    base = base or PlaygroundConfig()
    known = set(PlaygroundConfig.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise FieldError(unknown[0], f"unknown field {unknown[0]!r}; the fields are {', '.join(sorted(known))}")
    merged = {**base.to_dict(), **values}
    lr = merged["lr"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and 0 < lr <= LR_MAX):
        raise FieldError("lr", f"lr must be a number in (0, {LR_MAX:g}]; got {lr!r}")
    # A new activation without its own params starts from its defaults, not the old member's params.
    params = merged["params"] if "params" in values or "activation" not in values else {}
    activation, params = check_activation(merged["activation"], params)
    return PlaygroundConfig(
        data=_choice(merged, "data", base.data, TOYS), depth=_integer(merged, "depth", base.depth),
        width=_integer(merged, "width", base.width), activation=activation, params=params,
        init=_choice(merged, "init", base.init, INITS), lr=float(lr),
        optimizer=_choice(merged, "optimizer", base.optimizer, OPTIMIZERS),
        batch_size=_integer(merged, "batch_size", base.batch_size), seed=_integer(merged, "seed", base.seed))


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def warm_up() -> None:
    """Import and build what the first session needs (torch, its optimizers, the monitor, the toys' cache), so the
    Playground opens in a fraction of a second instead of several; the CLI runs it on a background thread."""
    try:
        Session(PlaygroundConfig()).close()
    except ImportError:  # no torch: the Curves view still works, the Playground says what to install
        pass


class Session:
    """One run of the Playground: a network, its optimizer, its history and the thread that trains it.

    ``pace`` is the pause between epochs while training (seconds): it keeps a few sessions on a shared machine
    from starving the server and makes each epoch visible.
    """

    def __init__(self, config: PlaygroundConfig, *, pace: float = 0.02) -> None:
        self.pace = pace
        self.lock = threading.RLock()
        self.last_seen = time.monotonic()
        self._wake = threading.Event()
        self._running = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self.version = 0
        self._build(config)

    # -- building ----------------------------------------------------------------------------------------------
    def _build(self, config: PlaygroundConfig) -> None:
        import torch

        from ..lab import data as lab_data
        from ..lab.models import build_model

        # The explorer's networks are tiny: torch's intra-op threads only add overhead, and on a busy machine
        # their spinning made an epoch take seconds instead of milliseconds. (Process-wide; the worker sets it too.)
        torch.set_num_threads(1)
        data = lab_data.load(config.data)
        self.config = config
        self.x = torch.from_numpy(data.x_train)
        self.y = torch.from_numpy(data.y_train)
        self.points = {"x": np.round(data.x_train, 4).tolist(), "y": data.y_train.tolist(),
                       "classes": data.num_classes}
        with _BUILD_LOCK:
            torch.manual_seed(config.seed)
            self.model = build_model("mlp", data.shape, data.num_classes, activation=config.activation,
                                     depth=config.depth, width=config.width, init=config.init,
                                     params=config.params)
        self.activation = config.activation
        self.optimizer = self._optimizer()
        self.order = torch.Generator().manual_seed(config.seed)
        self.revive_generator = torch.Generator().manual_seed(config.seed + 7919)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.epoch = 0
        self.history: dict[str, list] = {"epoch": [], "loss": [], "accuracy": [], "val_accuracy": [], "dead": [],
                                         "inactive": []}
        self.events: list[dict[str, Any]] = []
        self.status = "ready"
        self.message = ""
        lin = torch.linspace(-EXTENT, EXTENT, GRID)
        gx, gy = torch.meshgrid(lin, lin, indexing="xy")
        self.grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
        self.x_val, self.y_val = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
        self._probe()

    def _optimizer(self, previous=None):
        import torch

        if self.config.optimizer == "adam":
            optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
        else:
            optimizer = torch.optim.SGD(self.model.parameters(), lr=self.config.lr, momentum=0.9)
        if previous is not None:  # after a swap: parameters that survived keep their momentum
            for param in self.model.parameters():
                if param in previous.state:
                    optimizer.state[param] = previous.state[param]
        return optimizer

    # -- training ----------------------------------------------------------------------------------------------
    def _train_epoch(self) -> None:
        import torch

        self.model.train()
        for batch in torch.randperm(len(self.y), generator=self.order).split(self.config.batch_size):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(self.x[batch]), self.y[batch])
            if not torch.isfinite(loss):
                break
            loss.backward()
            self.optimizer.step()
        self.epoch += 1
        self._probe()

    def _probe(self) -> None:
        """One pass over the training split under a fresh Monitor: unit states, loss, accuracy, boundary."""
        import torch

        from ..monitor import Monitor

        self.model.eval()  # rrelu uses its mean slope; no random draws from the training stream
        with torch.no_grad(), Monitor(self.model) as monitor:
            logits = self.model(self.x)
        self.report = monitor.report()
        with torch.no_grad():
            loss = float(self.loss_fn(logits, self.y))
            accuracy = float((logits.argmax(1) == self.y).double().mean())
            val_accuracy = float((self.model(self.x_val).argmax(1) == self.y_val).double().mean())
            probabilities = torch.softmax(self.model(self.grid), 1)
        if not math.isfinite(loss):
            self.status, self._running = "diverged", False
            self.message = "the loss is not finite (the learning rate is too high): lower lr and press Reset"
        confidence, winner = probabilities.max(1)
        self.boundary = {"size": GRID, "extent": EXTENT,
                         "class": winner.tolist(), "confidence": np.round(confidence.numpy(), 3).tolist()}
        self.layers = []
        for stats in self.report.layers:
            units = stats.units or 0
            dead, inactive = set(stats.dead_units), set(stats.inactive_units)
            active = stats.active_fraction.tolist() if stats.samples else [0.0] * units
            # A unit whose output was NaN is neither alive nor dead (the monitor counts it in neither).
            state = ["nan" if math.isnan(a) else "dead" if u in dead else "inactive" if u in inactive else "alive"
                     for u, a in enumerate(active)]
            self.layers.append({"name": stats.name, "kind": stats.kind, "units": units, "state": state,
                                "active_fraction": [None if math.isnan(a) else round(a, 3) for a in active],
                                "dead": len(dead), "inactive": len(inactive)})
        self._record(loss, accuracy, val_accuracy)

    def _record(self, loss: float, accuracy: float, val_accuracy: float) -> None:
        history = self.history
        history["epoch"].append(self.epoch)
        history["loss"].append(_json_number(loss))
        history["accuracy"].append(accuracy)
        history["val_accuracy"].append(val_accuracy)
        history["dead"].append([layer["dead"] / layer["units"] if layer["units"] else 0.0 for layer in self.layers])
        history["inactive"].append([layer["inactive"] / layer["units"] if layer["units"] else 0.0
                                    for layer in self.layers])
        if len(history["epoch"]) > HISTORY:  # thin the older half, keep the newest points dense
            half = HISTORY // 2
            for key, values in history.items():
                history[key] = values[:half:2] + values[half:]
        self.version += 1

    def _loop(self) -> None:
        import torch

        # The worker computes on one thread: the server's request threads and other sessions keep the rest.
        torch.set_num_threads(1)
        while not self._closed:
            self._wake.wait(0.5)
            while self._running and not self._closed:
                with self.lock:
                    if self._running:
                        self._train_epoch()
                time.sleep(self.pace)
            self._wake.clear()

    # -- commands (from request threads) -----------------------------------------------------------------------
    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def train(self) -> None:
        with self.lock:
            if self.status == "diverged":
                raise FieldError("lr", self.message)
            self._running, self.status = True, "training"
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="relulab-explore-session", daemon=True)
                self._thread.start()
        self._wake.set()

    def pause(self) -> None:
        with self.lock:
            self._running = False
            if self.status == "training":
                self.status = "paused"

    def step(self) -> None:
        with self.lock:
            if self.status == "diverged":
                raise FieldError("lr", self.message)
            self._running = False
            self._train_epoch()
            if self.status != "diverged":
                self.status = "paused"

    def reset(self, values: Mapping[str, Any] | None = None) -> None:
        """Rebuild the network from scratch (with changed fields, when given): epoch 0, the same seed's draw."""
        config = validate_config(values or {}, self.config)
        with self.lock:
            self._running = False
            self._build(config)

    def set_lr(self, lr: Any) -> None:
        """Change the learning rate of the running network (the optimizer keeps its state)."""
        config = validate_config({"lr": lr}, self.config)
        with self.lock:
            if config.lr != self.config.lr:
                self.events.append({"epoch": self.epoch, "what": f"learning rate {self.config.lr:g} -> {config.lr:g}"})
            self.config = config
            for group in self.optimizer.param_groups:
                group["lr"] = config.lr
            self.version += 1

    def revive(self) -> int:
        """``relulab.revive`` the dead units of the last probe; probe again so the page sees the result."""
        from ..monitor import revive

        with self.lock:
            count = revive(self.model, self.report, generator=self.revive_generator, optimizer=self.optimizer)
            self.events.append({"epoch": self.epoch, "what": f"revived {count} dead unit{'s' * (count != 1)}"})
            self._probe()
            return count

    def swap(self, name: Any, params: Any = None) -> int:
        """``relulab.nn.swap`` every activation of the running network to another member; weights are kept."""
        from .. import nn as rnn

        new, params = check_activation(name, params)
        with self.lock:
            count = rnn.swap(self.model, self.activation, new, **params)
            self.events.append({"epoch": self.epoch, "what": f"swapped {self.activation} -> {new}"})
            self.activation = new
            self.config = replace(self.config, activation=new, params=params)
            self.optimizer = self._optimizer(self.optimizer)
            if self.status == "diverged":
                self.status = "paused"
            self._probe()
            return count

    def close(self, wait: float = 2.0) -> None:
        """Stop training for good; wait (up to ``wait`` s) for the worker to finish its epoch."""
        self._closed, self._running = True, False
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(wait)

    @property
    def running(self) -> bool:
        return self._running

    def snapshot(self, since: int | None = None) -> dict[str, Any]:
        """What the page draws. With ``since`` equal to the current version only the status is sent."""
        with self.lock:
            state = {"version": self.version, "status": self.status, "message": self.message,
                     "running": self._running, "epoch": self.epoch, "activation": self.activation,
                     "config": self.config.to_dict()}
            if since == self.version:
                return state
            state.update(layers=self.layers, boundary=self.boundary, events=list(self.events),
                         history={k: list(v) for k, v in self.history.items()})
            return state
