"""`relulab doctor`: a network made to die, a deep sigmoid MLP and a healthy network, each checked against numbers
computed here directly with torch; the CLI end to end with a model file and a CSV, in worker processes, resumed."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from relulab.cli import main
from relulab.lab.doctor import doctor
from relulab.lab.user import prepare_data

from .helpers import PNG, relulab

FIGURES = ("dead_units.png", "gradient_flow.png", "learning_curves.png")


def blobs(n: int = 300, features: int = 6, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centres = rng.normal(size=(classes, features)) * 2
    return (rng.normal(size=(n, features)) + centres[y]).astype(np.float32), y


def planted(activation: str = "relu") -> nn.Module:
    """A relu MLP whose first 16 first-layer units get bias -20: their input is never > 0 on this data."""
    import relulab.nn as rnn

    model = nn.Sequential(nn.Linear(6, 32), rnn.make(activation), nn.Linear(32, 32), rnn.make(activation),
                          nn.Linear(32, 3))
    with torch.no_grad():
        model[0].bias[:16] = -20.0
    return model


def deep_sigmoid() -> nn.Module:
    layers: list[nn.Module] = []
    width = 6
    for _ in range(8):
        layers += [nn.Linear(width, 16), nn.Sigmoid()]
        width = 16
    return nn.Sequential(*layers, nn.Linear(16, 3))


def healthy(activation: str = "relu") -> nn.Module:
    import relulab.nn as rnn

    return nn.Sequential(nn.Linear(6, 32), rnn.make(activation), nn.Linear(32, 3))


def _runs_of(results, arm):
    return [r for r in results["runs"] if r["group"] == arm]


def test_a_network_made_to_die(tmp_path):
    x, y = blobs()
    done = doctor(planted, (x, y), epochs=3, seeds=2, jobs=1, out=tmp_path / "dying", progress=False)
    results = done.results
    dead = [f for f in results["findings"] if f["kind"] == "dead_units"]
    assert [f["layer"] for f in dead] == ["1"]
    evidence = dead[0]["evidence"]
    # Independent reference: the first layer's pre-activations on the training split, computed here.
    train_x = torch.from_numpy(prepare_data((x, y)).x_train)
    with torch.no_grad():
        never_positive = ~(planted()[0](train_x) > 0).any(0)
    assert torch.nonzero(never_positive).flatten().tolist() == list(range(16))
    assert evidence["dead_units_seed0"] == list(range(16))
    assert evidence["dead_fraction_per_seed"] == [0.5, 0.5] and evidence["dead_fraction_at_init"] == 0.5
    assert evidence["died_at_epoch"] == {"0": 32}  # 16 per seed, all dead from initialisation on
    assert any(f["kind"] == "born_dead" and f["layer"] == "1" for f in results["findings"])
    # The untouched network's dead % is the mean over its runs of dead units / all units, from the per-run records.
    base = results["baseline"]
    per_run = [r["epochs"][-1]["dead_fraction"] for r in _runs_of(results, "untouched")]
    assert base["dead_fraction"] == pytest.approx(np.mean(per_run)) and base["dead_fraction"] >= 16 / 64
    by_name = {r["name"]: r for r in results["remedies"]}
    assert {"leaky_relu", "elu", "he_init", "lower_lr", "revive"} <= by_name.keys()
    # revive re-initialises exactly the planted units: afterwards (nearly) nothing is dead, measurably below.
    revived = [r["revived"] for r in _runs_of(results, "revive")]
    assert all(count >= 16 for count in revived)
    for name in ("revive", "he_init"):
        assert by_name[name]["metrics"]["dead_fraction"] <= base["dead_fraction"] - 0.2
        assert "dead %" in by_name[name]["improved"]
    assert by_name["lower_lr"]["helped"] is False  # a smaller step cannot revive a unit with zero gradient
    assert any(r["helped"] for r in results["remedies"]) and results["verdict"]["outcome"] == "remedy found"
    for name in ("index.html", "results.json", "results.csv") + FIGURES:
        assert (tmp_path / "dying" / name).is_file()
    assert json.loads((tmp_path / "dying" / "results.json").read_text())["findings"] == results["findings"]


def test_a_deep_sigmoid_mlp_has_vanishing_gradients(tmp_path):
    x, y = blobs()
    done = doctor(deep_sigmoid, (x, y), epochs=2, seeds=2, jobs=1, out=tmp_path / "sigmoid", progress=False)
    vanishing = [f for f in done.results["findings"] if f["kind"] == "vanishing_gradients"]
    assert len(vanishing) == 1 and vanishing[0]["layer"] == "0"
    ratio = vanishing[0]["evidence"]["first_last_ratio"]
    # Independent reference: the whole-split gradient ratio of the seed-0 model at initialisation.
    data = prepare_data((x, y))
    torch.manual_seed(0)
    model = deep_sigmoid()
    nn.functional.cross_entropy(model(torch.from_numpy(data.x_train)), torch.from_numpy(data.y_train)).backward()
    direct = float(model[0].weight.grad.norm() / model[16].weight.grad.norm())
    assert ratio < 1e-2 and direct < 1e-2
    assert abs(np.log10(ratio) - np.log10(direct)) < 1.0  # the same order of magnitude
    names = {r["name"] for r in done.results["remedies"]}
    assert {"relu", "he_init"} <= names
    assert not any(f["kind"] == "dead_units" for f in done.results["findings"])  # sigmoid units cannot die


def test_a_healthy_network_is_reported_healthy(tmp_path):
    x, y = blobs()
    done = doctor(healthy, (x, y), epochs=4, seeds=2, lr=1e-2, jobs=1, out=tmp_path / "healthy", progress=False)
    results = done.results
    assert results["findings"] == [] and results["remedies"] == [] and results["healthy"] is True
    assert results["verdict"]["outcome"] == "healthy"
    assert results["baseline"]["val_metric"] > 0.8  # it learnt: healthy is not a synonym for "did nothing"
    assert "healthy" in done.text


MODEL_FILE = textwrap.dedent("""
    from torch import nn

    def build(activation="relu"):
        act = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}[activation]
        return nn.Sequential(nn.Linear(4, 16), act(), nn.Linear(16, 2))
""")


def test_cli_with_a_model_file_and_a_csv_in_workers_then_resumed(tmp_path, capsys):
    (tmp_path / "mymodel.py").write_text(MODEL_FILE)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4))
    label = (x[:, 0] + x[:, 1] > 0).astype(int)
    rows = "".join(f"{a:.4f},{b:.4f},{c:.4f},{d:.4f},{l}\n" for (a, b, c, d), l in zip(x, label))
    (tmp_path / "train.csv").write_text("a,b,c,d,label\n" + rows)
    out = tmp_path / "report"
    argv = ("doctor", "--model", f"{tmp_path / 'mymodel.py'}:build", "--data", str(tmp_path / "train.csv"),
            "--target", "label", "--epochs", "2", "--seeds", "2", "--lr", "0.01", "--jobs", "2", "--out", str(out))
    first = relulab(*argv)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr and "diagnosis" in first.stderr  # the progress lines
    assert f"doctor report: {out / 'index.html'}" in first.stdout
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == PNG
    page = (out / "index.html").read_text()
    assert all(f'src="{name}"' in page for name in FIGURES) and "Verdict" in page
    stored = json.loads((out / "results.json").read_text())
    computed = stored["counts"]["computed"]
    assert computed == 2 * (1 + len(stored["remedies"])) and len(list((out / "runs").glob("*.json"))) == computed
    assert main([*argv, "--json", "--quiet"]) == 0  # the rerun in this process: every run is loaded, none computed
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"] == {"computed": 0, "skipped": computed}
    assert printed["findings"] == stored["findings"] and printed["table"] == stored["table"]


def test_unscaled_inputs_are_found_and_standardize_uses_the_training_statistics():
    from relulab.lab.doctor import input_scale
    from relulab.lab.train import standardized

    x, y = blobs()
    x[:, 2] = x[:, 2] * 30 + 70  # one feature in raw units (a price, an age)
    data = prepare_data((x, y))
    finding = input_scale(data)
    assert finding["kind"] == "unscaled_inputs" and finding["evidence"]["unscaled"] == 1
    worst = finding["evidence"]["worst"][0]
    assert worst["feature"] == 2
    assert worst["mean"] == pytest.approx(float(np.mean(data.x_train[:, 2], dtype=np.float64)))
    scaled = standardized(data)
    mean, std = data.x_train.astype(np.float64).mean(0), data.x_train.astype(np.float64).std(0)
    np.testing.assert_allclose(scaled.x_test, (data.x_test - mean) / std, rtol=1e-5, atol=1e-5)
    assert input_scale(scaled) is None and input_scale(prepare_data(blobs())) is None
