"""The Lightning callback: one window per training epoch, dead % and sparsity logged (run when lightning is installed)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
lightning = pytest.importorskip("lightning", reason="lightning is not installed (it is not a test extra)")

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from relulab.monitor.lightning import MonitorCallback  # noqa: E402


class Tiny(lightning.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        with torch.no_grad():
            self.net[0].bias[3] = -1e3  # unit 3 is dead on every input

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


# Lightning's own deprecation chatter and its advice about dataloader workers are not ours to fix.
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning",
                            "ignore:.*does not have many workers:UserWarning",
                            "ignore:.*number of training batches.*:UserWarning")
def test_callback_logs_dead_percent_per_epoch(tmp_path):
    data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,))), batch_size=16)
    callback = MonitorCallback()
    trainer = lightning.Trainer(max_epochs=2, callbacks=[callback], default_root_dir=tmp_path, logger=False,
                                enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)
    trainer.fit(Tiny(), data)
    history = callback.monitor.history
    assert len(history) == 2 and all(window["samples"] == 64 for window in history)
    assert history[-1]["layers"][0]["dead_units"] == [3]
    assert trainer.callback_metrics["relulab/net.1/dead_pct"] == pytest.approx(100 / 8)
