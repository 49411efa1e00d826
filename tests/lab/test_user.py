"""The user's own model and data: import paths, files, torch data sets, the held-out split and the bad inputs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from relulab.cli import main
from relulab.lab import ConfigError
from relulab.nn import activation_name
from relulab.lab.user import build_model, check_model, infer_task, model_source, prepare_data

MODEL_SOURCE = textwrap.dedent("""
    import torch
    from torch import nn

    def build(activation="relu"):
        act = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "tanh": nn.Tanh}[activation]
        return nn.Sequential(nn.Linear(3, 8), act(), nn.Linear(8, 2))

    def plain():
        return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))

    def broken():
        raise RuntimeError("the factory refuses")

    def wrong_width():
        return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 5))
""")


@pytest.fixture()
def model_file(tmp_path):
    path = tmp_path / "usermodel_pkg" / "models.py"
    path.parent.mkdir()
    (path.parent / "__init__.py").write_text("")
    path.write_text(MODEL_SOURCE)
    return path


def _reference(activation: nn.Module) -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(3, 8), activation, nn.Linear(8, 2))


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_model_from_a_file_path_and_from_an_import_path(model_file, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(model_file.parent.parent))
    for spec in (f"{model_file}:build", "usermodel_pkg.models:build"):
        source = model_source(spec, out=tmp_path / "out")
        assert source.takes_activation and not source.in_process and source.fingerprint
        torch.manual_seed(3)
        model = source.build("leaky_relu")
        assert isinstance(model[1], nn.LeakyReLU)
        assert _same_weights(model, _reference(nn.LeakyReLU()))  # the factory ran with the seed, nothing else
    # A factory without an activation argument gets the candidate swapped in on its built model.
    source = model_source(f"{model_file}:plain", out=tmp_path / "out")
    assert not source.takes_activation
    torch.manual_seed(3)
    swapped = source.build("elu")
    assert activation_name(swapped[1]) == "elu" and _same_weights(swapped, _reference(nn.ELU()))
    x = torch.randn(5, 3)
    torch.testing.assert_close(swapped(x), _reference(nn.ELU())(x))
    assert not list((tmp_path / "out").glob("**/*"))  # checking a model writes nothing


def test_an_instance_is_copied_and_a_lambda_stays_in_process(tmp_path):
    instance = _reference(nn.ReLU())
    source = model_source(instance, out=tmp_path)
    built = source.build("leaky_relu")
    assert built is not instance and isinstance(instance[1], nn.ReLU) and activation_name(built[1]) == "leaky_relu"
    assert source.spec.endswith(".pkl") and not source.in_process
    lam = model_source(lambda: _reference(nn.ReLU()), out=tmp_path)
    assert lam.in_process and "cannot be pickled" in lam.note and lam.spec.startswith("memory:")
    assert _same_weights(build_model(lam.spec), _reference(nn.ReLU()))


def _blobs(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 3)) + y[:, None]
    return x, y


def _rows(*arrays: np.ndarray) -> list[tuple]:
    return sorted(tuple(np.round(r, 4)) for a in arrays for r in a.reshape(len(a), -1))


def test_npz_with_and_without_a_test_split(tmp_path):
    x, y = _blobs()
    np.savez(tmp_path / "xy.npz", X=x, y=y)
    data = prepare_data(str(tmp_path / "xy.npz"))
    assert data.task == "classification" and data.num_classes == 3 and data.sizes == (54, 18, 18)
    # Every sample lands in exactly one split, unchanged (no scaling), and each split keeps the class balance.
    assert _rows(data.x_train, data.x_val, data.x_test) == _rows(x.astype(np.float32))
    for labels in (data.y_train, data.y_val, data.y_test):
        assert np.bincount(labels).tolist() == [len(labels) // 3] * 3
    np.savez(tmp_path / "split.npz", X_train=x[:60], y_train=y[:60], X_test=x[60:], y_test=y[60:])
    data = prepare_data(str(tmp_path / "split.npz"))
    np.testing.assert_array_equal(data.x_test, x[60:].astype(np.float32))
    np.testing.assert_array_equal(data.y_test, y[60:])
    assert data.sizes == (54, 6, 30)


def test_csv_with_a_named_target_and_class_names(tmp_path):
    x, y = _blobs()
    names = np.array(["cat", "dog", "eel"])[y]
    lines = ["a,label,b,c"] + [f"{r[0]:.5f},{n},{r[1]:.5f},{r[2]:.5f}" for r, n in zip(x, names)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    data = prepare_data(str(tmp_path / "d.csv"), target="label")
    expected = np.loadtxt(tmp_path / "d.csv", delimiter=",", skiprows=1, usecols=(0, 2, 3))
    assert _rows(data.x_train, data.x_val, data.x_test) == _rows(expected.astype(np.float32))
    assert data.num_classes == 3 and data.task == "classification"
    # Class names are coded in sorted order: the features of every "dog" row map to label 1.
    by_row = {tuple(np.round(r, 4)): n for r, n in zip(expected.astype(np.float32), names)}
    for xs, ys in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert all(["cat", "dog", "eel"][label] == by_row[tuple(np.round(r, 4))] for r, label in zip(xs, ys))


def test_torch_dataset_and_dataloader_and_regression(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    x, _ = _blobs()
    target = (x @ np.array([1.0, -2.0, 0.5])).astype(np.float32)
    dataset = TensorDataset(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(target))
    for data in (prepare_data(dataset), prepare_data(DataLoader(dataset, batch_size=16))):
        assert data.task == "regression" and data.num_classes == 0
        assert _rows(data.x_train, data.x_val, data.x_test) == _rows(x.astype(np.float32))
        assert sorted(np.round(np.concatenate([data.y_train, data.y_val, data.y_test]), 4)) == \
            sorted(np.round(target, 4))
    assert infer_task(np.array([0.0, 1.0, 2.0] * 10)) == "classification"
    assert prepare_data((x, np.arange(90) % 3), task="regression").task == "regression"


def test_model_output_must_fit_y(model_file, tmp_path):
    x, y = _blobs()
    data = prepare_data((x, y))  # three classes; the models give two logits
    with pytest.raises(ConfigError, match=r"--model: .*shape \(2, 2\).*3 classes"):
        check_model(model_source(f"{model_file}:plain", out=tmp_path), data)
    check_model(model_source(f"{model_file}:wrong_width", out=tmp_path), data)  # 5 logits >= 3 classes is fine


def _bad(tmp_path, model_file, capsys, *argv: str) -> str:
    out = tmp_path / "never"
    code = main(["doctor", *argv, "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and not out.exists()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("relulab doctor: error: "), captured.err
    return lines[0]


def test_bad_inputs_are_one_line_errors_with_exit_2_and_nothing_written(tmp_path, model_file, capsys):
    x, y = _blobs()
    two_classes = y % 2
    np.savez(tmp_path / "ok.npz", X=x, y=two_classes)
    ok = str(tmp_path / "ok.npz")
    model = f"{model_file}:plain"
    assert "--model: cannot import 'no_such_package.models'" in _bad(
        tmp_path, model_file, capsys, "--model", "no_such_package.models:build", "--data", ok)
    assert "--model: building the model failed: RuntimeError: the factory refuses" in _bad(
        tmp_path, model_file, capsys, "--model", f"{model_file}:broken", "--data", ok)
    np.savez(tmp_path / "short.npz", X=x, y=two_classes[:-1])
    assert "--data: X has 90 samples but y has 89" in _bad(
        tmp_path, model_file, capsys, "--model", model, "--data", str(tmp_path / "short.npz"))
    holed = x.copy()
    holed[7, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=holed, y=two_classes)
    assert "--data: X holds NaN (first in sample 7)" in _bad(
        tmp_path, model_file, capsys, "--model", model, "--data", str(tmp_path / "nan.npz"))
    (tmp_path / "text.csv").write_text("a,city,label\n" + "".join(f"{i},Paris,{i % 2}\n" for i in range(20)))
    assert "--data: column 'city' is not numeric (line 2: 'Paris')" in _bad(
        tmp_path, model_file, capsys, "--model", model, "--data", str(tmp_path / "text.csv"), "--target", "label")
    np.savez(tmp_path / "three.npz", X=x, y=y)
    assert "does not fit y: 3 classes" in _bad(
        tmp_path, model_file, capsys, "--model", model, "--data", str(tmp_path / "three.npz"))
    assert "--target: no column 'nope'" in _bad(
        tmp_path, model_file, capsys, "--model", model, "--data", str(tmp_path / "text.csv"), "--target", "nope")
    assert "--model must be package.module:name" in _bad(tmp_path, model_file, capsys, "--model", "mlp",
                                                         "--data", ok)


def test_compare_and_run_train_the_users_model_and_data(tmp_path, model_file, capsys):
    import json

    x, y = _blobs(120)
    np.savez(tmp_path / "xy.npz", X=x, y=y % 2)
    out = tmp_path / "compare"
    code = main(["compare", "--model", f"{model_file}:plain", "--data", str(tmp_path / "xy.npz"), "--activations",
                 "relu,elu", "--seeds", "1", "--epochs", "1", "--lr", "0.1", "--jobs", "1", "--quiet", "--json",
                 "--out", str(out)])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert [row["activation"] for row in results["table"]] == ["relu", "elu"]
    assert results["settings"]["model"] == f"{model_file}:plain" and results["settings"]["data"] == "xy.npz"
    for run in results["runs"]:  # every run trained the user's model on the prepared copy of the user's data
        assert run["config"]["model"] == f"{model_file}:plain" and run["config"]["init"] == "default"
        assert run["config"]["data"].startswith(str(out.resolve() / "inputs" / "data-"))
        assert run["activation_layers"] == ["1"] and run["weight_layers"] == ["0", "2"]
    code = main(["run", "init", "--quick", "--data", str(tmp_path / "xy.npz"), "--jobs", "1", "--quiet", "--json",
                 "--out", str(tmp_path / "init")])
    assert code == 0
    results = json.loads(capsys.readouterr().out)
    assert results["inputs"] == {"data": "xy.npz", "model": None}
    assert all(r["config"]["data"].endswith(".npz") for r in results["runs"]) and results["runs"]
    assert main(["run", "born-dead", "--data", str(tmp_path / "xy.npz"), "--out", str(tmp_path / "no")]) == 2
    assert "relulab run born-dead does not take your data" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
