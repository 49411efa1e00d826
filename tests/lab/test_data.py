"""relulab.lab.data: offline, deterministic, stratified data sets cached atomically."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from relulab.lab import data


def _no_tmp_files(directory) -> bool:
    return not [p for p in os.listdir(directory) if p.endswith(".tmp")]


def test_stratified_split_is_a_deterministic_partition_with_class_proportions():
    labels = np.repeat(np.arange(5), [100, 50, 30, 20, 10])
    parts = data.stratified_split(labels, (0.6, 0.2, 0.2))
    again = data.stratified_split(labels, (0.6, 0.2, 0.2))
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    joined = np.concatenate(parts)
    assert len(joined) == len(labels) and len(np.unique(joined)) == len(labels)  # disjoint and complete
    for part, fraction in zip(parts, (0.6, 0.2, 0.2)):
        counts = np.bincount(labels[part], minlength=5)
        expected = fraction * np.bincount(labels)
        assert np.all(np.abs(counts - expected) <= 1)
    other = data.stratified_split(labels, (0.6, 0.2, 0.2), seed=1)
    assert not np.array_equal(parts[1], other[1])
    with pytest.raises(ValueError, match="add up to 1"):
        data.stratified_split(labels, (0.5, 0.2))


def test_digits_is_stratified_standardised_and_cached(relulab_cache):
    digits = data.load("digits")
    assert digits.kind == "image" and digits.shape == (1, 8, 8) and digits.num_classes == 10
    assert sum(digits.sizes) == 1797
    assert digits.sizes == (1078, 360, 359)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert abs(float(digits.x_train.mean())) < 1e-5 and abs(float(digits.x_train.std()) - 1) < 1e-4
    for y in (digits.y_val, digits.y_test):  # every class in proportion (sklearn's digits has 174-183 per class)
        assert np.all(np.abs(np.bincount(y, minlength=10) / len(y) - 0.1) < 0.015)
    cached = [p for p in os.listdir(relulab_cache) if p.startswith("digits-") and p.endswith(".npz")]
    assert len(cached) == 1 and _no_tmp_files(relulab_cache)
    data._MEMORY.clear()
    reloaded = data.load("digits")  # from the .npz this time
    assert np.array_equal(reloaded.x_train, digits.x_train) and np.array_equal(reloaded.y_test, digits.y_test)


def test_a_corrupt_cache_file_is_rebuilt(relulab_cache):
    data.load("xor")
    path = data._cache_path("xor")
    path.write_bytes(b"not a zip file")
    data._MEMORY.clear()
    rebuilt = data.load("xor")
    assert rebuilt.sizes == (720, 240, 240)
    assert data._read(path).sizes == (720, 240, 240)


def test_mnist1d_is_generated_offline_with_its_fixed_seed(monkeypatch, relulab_cache):
    import mnist1d.data

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d must be generated, never downloaded")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_network)
    monkeypatch.setattr(mnist1d.data.requests, "get", no_network)
    state = np.random.get_state()
    seq = data.load("mnist1d")
    assert np.array_equal(np.random.get_state()[1], state[1])  # the global NumPy generator is left as it was
    assert seq.kind == "sequence" and seq.shape == (1, 40) and seq.num_classes == 10
    assert seq.sizes == (3601, 399, 1000)  # the package's 4000/1000 split, 10 % of train held out
    assert sorted(np.unique(seq.y_train)) == list(range(10))
    assert any(p.startswith("mnist1d-") and p.endswith(".npz") for p in os.listdir(relulab_cache))


@pytest.mark.parametrize("name, classes", [("moons", 2), ("circles", 2), ("spiral", 3), ("xor", 2)])
def test_toys_are_balanced_2d_points(name, classes):
    toy = data.load(name)
    assert toy.kind == "points" and toy.shape == (2,) and toy.num_classes == classes
    assert toy.sizes == (720, 240, 240)
    for y in (toy.y_train, toy.y_val, toy.y_test):
        assert np.ptp(np.bincount(y, minlength=classes)) <= 1
    assert np.allclose(toy.x_train.mean(0), 0, atol=1e-5) and np.allclose(toy.x_train.std(0), 1, atol=1e-4)


def test_xor_labels_are_the_quadrant_parity():
    x, y = data._toy_xor(np.random.default_rng(0), 400)
    assert np.array_equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(int))


def test_unknown_data_set_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown data set 'mnist2'.*digits, mnist1d"):
        data.load("mnist2")
    assert data.kind_of("cifar10") == "image" and data.kind_of("mnist1d") == "sequence"


class _FakeMNIST:
    """What torchvision's MNIST holds: a uint8 tensor (n, H, W) in .data and a tensor of labels in .targets."""

    def __init__(self, n: int):
        import torch

        self.data = torch.arange(n * 4 * 4, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(n, 4, 4)
        self.targets = torch.arange(n) % 10


class _FakeCIFAR:
    """What torchvision's CIFAR10 holds: a uint8 array (n, H, W, C) in .data and a list of labels in .targets."""

    def __init__(self, n: int):
        self.data = np.arange(n * 2 * 2 * 3, dtype=np.uint8).reshape(n, 2, 2, 3)
        self.targets = [i % 10 for i in range(n)]


def test_arrays_from_torchvision_layouts():
    images, labels = data.arrays_from_torchvision(_FakeMNIST(5))
    assert images.shape == (5, 1, 4, 4) and images.dtype == np.float32 and labels.dtype == np.int64
    assert images[0, 0, 0, 1] == pytest.approx(1 / 255)
    images, labels = data.arrays_from_torchvision(_FakeCIFAR(3))
    assert images.shape == (3, 3, 2, 2)  # channels first
    assert images[0, 2, 0, 0] == pytest.approx(2 / 255) and list(labels) == [0, 1, 2]


def test_torchvision_data_sets_say_what_is_missing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_torchvision(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise ImportError("No module named 'torchvision'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_torchvision)
    with pytest.raises(data.DataUnavailableError, match="needs torchvision: pip install torchvision"):
        data._build_torchvision("fashion_mnist")


def _write_idx(path, array: np.ndarray) -> None:
    """An IDX file (the MNIST format): magic with the uint8 type code and rank, big-endian sizes, the bytes."""
    with open(path, "wb") as handle:
        handle.write(struct.pack(">HBB", 0, 0x08, array.ndim))
        handle.write(struct.pack(f">{array.ndim}I", *array.shape))
        handle.write(array.astype(np.uint8).tobytes())


def test_mnist_through_torchvision_from_files_the_test_writes(relulab_cache, monkeypatch):
    pytest.importorskip("torchvision", reason="torchvision is not installed: the MNIST/Fashion-MNIST/CIFAR-10 "
                                              "loaders need it (pip install torchvision)")
    raw = relulab_cache / "torchvision" / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("t10k", 20)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    mnist = data._build_torchvision("mnist")
    assert mnist.shape == (1, 28, 28) and mnist.num_classes == 10
    assert mnist.sizes == (54, 6, 20)
