"""A Lightning callback that keeps a relulab Monitor on during fit and logs dead % and sparsity per layer.

Import-guarded: needs ``lightning`` (or the older ``pytorch_lightning``), which relulab does not install.

    from relulab.monitor.lightning import MonitorCallback
    trainer = lightning.Trainer(callbacks=[MonitorCallback()])
"""

from __future__ import annotations

from typing import Any

try:  # the unified package first, then the legacy one
    from lightning.pytorch import Callback
except ImportError:  # pragma: no cover - depends on the environment
    try:
        from pytorch_lightning import Callback
    except ImportError as error:
        raise ImportError(
            "relulab.monitor.lightning needs Lightning: pip install lightning (relulab does not install it)"
        ) from error

from .core import Monitor

__all__ = ["MonitorCallback"]


class MonitorCallback(Callback):
    """Watch the LightningModule's activations; one monitor window per training epoch.

    At the end of each training epoch it logs ``relulab/<layer>/dead_pct`` and ``relulab/<layer>/sparsity_pct``
    (and ``grad_norm`` when a backward pass happened), then starts a new window. Validation and test passes are
    not counted. ``self.monitor.history`` keeps every epoch's summary.
    """

    def __init__(self, modules: Any = None, every: int = 1, unit_dim: int | None = None, functional: bool = False,
                 prefix: str = "relulab") -> None:
        super().__init__()
        self._options = dict(modules=modules, every=every, unit_dim=unit_dim, functional=functional)
        self.prefix = prefix
        self.monitor: Monitor | None = None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.monitor = Monitor(pl_module, **self._options).attach()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            self.monitor.enabled = True

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            self.monitor.enabled = False

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            self.monitor.enabled = True

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.monitor is None:
            return
        report = self.monitor.reset()
        metrics = {}
        for layer in report.to_dict()["layers"]:
            if layer["dead_fraction"] is not None:
                metrics[f"{self.prefix}/{layer['name']}/dead_pct"] = 100.0 * layer["dead_fraction"]
            if layer["sparsity"] is not None:
                metrics[f"{self.prefix}/{layer['name']}/sparsity_pct"] = 100.0 * layer["sparsity"]
            if layer["grad_norm"] is not None:
                metrics[f"{self.prefix}/{layer['name']}/grad_norm"] = layer["grad_norm"]
        if metrics:
            pl_module.log_dict(metrics)

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            self.monitor.detach()
