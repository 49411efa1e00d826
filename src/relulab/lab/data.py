"""Data sets for the lab: small, real, offline, deterministic.

Every loader returns a :class:`Dataset` with a train/validation/test split that depends only on the data set (never
on the run's seed), so runs that differ in seed differ in initialisation and batch order, not in the data they see.

- ``digits``: scikit-learn's 8x8 handwritten digits (1797 images, ships with scikit-learn), stratified 60/20/20.
- ``mnist1d``: MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package with its fixed seed (never
  downloaded): its 4000/1000 train/test split, 10 % of train held out (stratified) for validation.
- ``moons``, ``circles``, ``spiral``, ``xor``: 2-D toys generated with NumPy from a fixed seed, stratified 60/20/20.
- ``mnist``, ``fashion_mnist``, ``cifar10``: through torchvision (downloaded on first use into the cache), when
  torchvision is installed; 10 % of train held out (stratified) for validation.

Features are standardised with statistics of the training split (per channel for images). Built data sets are
cached as ``.npz`` under :func:`cache_dir` (written atomically), so worker processes load them with NumPy alone.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .._io import write_atomic

__all__ = ["Dataset", "DataSpec", "REGISTRY", "DATASETS", "names", "TORCHVISION_DATASETS", "cache_dir",
           "load", "kind_of", "stratified_split", "arrays_from_torchvision", "DataUnavailableError"]

# Bump when a loader's output changes, so stale caches are rebuilt rather than reused.
_CACHE_VERSION = 2
_SPLIT_SEED = 20240601  # the one seed every split uses; runs vary by their own seed, never by the split


class DataUnavailableError(RuntimeError):
    """A data set that needs an optional package (torchvision) or a download that is not possible here."""


@dataclass(frozen=True)
class Dataset:
    """Arrays of one data set, split three ways. ``x_*`` are float32 of shape (n, *shape); ``y_*`` int64 labels
    (``task="classification"``) or float32 targets (``task="regression"``, the user's data; ``num_classes`` 0)."""

    name: str
    kind: str  # "image" (C, H, W), "sequence" (C, L) or "points" (features,)
    shape: tuple[int, ...]
    num_classes: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str = "classification"

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.y_train), len(self.y_val), len(self.y_test)

    def __repr__(self) -> str:
        train, val, test = self.sizes
        return (f"Dataset({self.name!r}, kind={self.kind!r}, shape={self.shape}, classes={self.num_classes}, "
                f"train={train}, val={val}, test={test})")


def cache_dir() -> Path:
    """Where built data sets live: ``$RELULAB_CACHE`` if set, else ``~/.cache/relulab``."""
    root = os.environ.get("RELULAB_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "relulab"


# -- splitting and scaling ---------------------------------------------------------------------------------------
def stratified_split(labels: np.ndarray, fractions: tuple[float, ...], seed: int = _SPLIT_SEED) -> list[np.ndarray]:
    """Split indices of ``labels`` into len(fractions) parts with each class in the same proportions.

    Deterministic for a given seed; each part's indices are sorted. The last part takes what rounding leaves.

    >>> parts = stratified_split(np.array([0] * 10 + [1] * 10), (0.6, 0.2, 0.2))
    >>> [len(p) for p in parts]
    [12, 4, 4]
    """
    if not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must add up to 1; got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, bounds)):
            part.append(chunk)
    return [np.sort(np.concatenate(part)) for part in parts]


def _standardise(x_train: np.ndarray, *others: np.ndarray, channel_axis: int | None) -> list[np.ndarray]:
    """Scale every split by the training split's mean and std (per channel when ``channel_axis`` is given)."""
    if channel_axis is None:
        mean, std = x_train.mean(), x_train.std()
    else:
        axes = tuple(a for a in range(x_train.ndim) if a != channel_axis)
        mean = x_train.mean(axis=axes, keepdims=True)
        std = x_train.std(axis=axes, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return [((x - mean) / std).astype(np.float32) for x in (x_train, *others)]


def _three_way(name: str, kind: str, x: np.ndarray, y: np.ndarray, num_classes: int,
               channel_axis: int | None) -> Dataset:
    train, val, test = stratified_split(y, (0.6, 0.2, 0.2))
    xs = _standardise(x[train], x[val], x[test], channel_axis=channel_axis)
    return Dataset(name, kind, tuple(x.shape[1:]), num_classes, xs[0], y[train], xs[1], y[val], xs[2], y[test])


def _hold_out(name: str, kind: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
              y_test: np.ndarray, num_classes: int, channel_axis: int | None, val_fraction: float = 0.1) -> Dataset:
    """A data set with a fixed test split: hold out a stratified ``val_fraction`` of train for validation."""
    train, val = stratified_split(y_train, (1 - val_fraction, val_fraction))
    xs = _standardise(x_train[train], x_train[val], x_test, channel_axis=channel_axis)
    return Dataset(name, kind, tuple(x_train.shape[1:]), num_classes, xs[0], y_train[train], xs[1], y_train[val],
                   xs[2], y_test)


# -- builders ----------------------------------------------------------------------------------------------------
def _build_digits() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32)[:, None, :, :] / 16.0  # (n, 1, 8, 8), pixel intensities 0..16
    return _three_way("digits", "image", images, bunch.target.astype(np.int64), 10, channel_axis=1)


def _build_mnist1d() -> Dataset:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds NumPy's global generator (its own fixed seed 42); keep the caller's global state intact.
    state = np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(state)
    x_train = np.asarray(raw["x"], dtype=np.float32)[:, None, :]  # (n, 1, 40)
    x_test = np.asarray(raw["x_test"], dtype=np.float32)[:, None, :]
    return _hold_out("mnist1d", "sequence", x_train, np.asarray(raw["y"], dtype=np.int64), x_test,
                     np.asarray(raw["y_test"], dtype=np.int64), 10, channel_axis=1)


_TOY_SAMPLES = 1200
_TOY_SEED = 7


def _toy_moons(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    angle = rng.uniform(0, np.pi, n)
    upper = np.stack([np.cos(angle[:half]), np.sin(angle[:half])], 1)
    lower = np.stack([1 - np.cos(angle[half:]), 0.5 - np.sin(angle[half:])], 1)
    x = np.concatenate([upper, lower]) + rng.normal(0, 0.2, (n, 2))
    return x, np.repeat([0, 1], [half, n - half])


def _toy_circles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = np.where(np.arange(n) < half, 1.0, 0.5)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1) + rng.normal(0, 0.08, (n, 2))
    return x, np.repeat([0, 1], [half, n - half])


def _toy_spiral(rng: np.random.Generator, n: int, arms: int = 3) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % arms
    radius = rng.uniform(0.05, 1.0, n)
    angle = labels * 2 * np.pi / arms + 4.0 * radius + rng.normal(0, 0.15, n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1), labels


def _toy_xor(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = np.arange(n) % 2  # balanced: class 1 when exactly one coordinate is positive
    first = rng.choice([-1.0, 1.0], n)
    second = np.where(labels == 1, -first, first)
    x = np.stack([first, second], 1) * rng.uniform(0.02, 1.0, (n, 2))
    return x, labels


_TOYS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]] = {
    "moons": _toy_moons, "circles": _toy_circles, "spiral": _toy_spiral, "xor": _toy_xor,
}


def _build_toy(name: str) -> Dataset:
    x, y = _TOYS[name](np.random.default_rng(_TOY_SEED), _TOY_SAMPLES)
    y = np.asarray(y, dtype=np.int64)
    return _three_way(name, "points", x.astype(np.float32), y, int(y.max()) + 1, channel_axis=1)


# torchvision name, dataset class name, number of classes
TORCHVISION_DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def arrays_from_torchvision(dataset) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, C, H, W) float32 in [0, 1] and int64 labels from a torchvision vision data set.

    MNIST-style sets hold a uint8 tensor (n, H, W) in ``.data``; CIFAR-style sets a uint8 array (n, H, W, C).
    """
    images = dataset.data
    images = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    if images.ndim == 3:
        images = images[:, None, :, :]
    elif images.ndim == 4:
        images = images.transpose(0, 3, 1, 2)
    else:
        raise ValueError(f"expected images of shape (n, H, W) or (n, H, W, C); got {images.shape}")
    targets = dataset.targets
    targets = targets.numpy() if hasattr(targets, "numpy") else np.asarray(targets)
    return images.astype(np.float32) / 255.0, targets.astype(np.int64)


def _build_torchvision(name: str) -> Dataset:
    try:
        import torchvision.datasets as tv_datasets
    except ImportError:
        raise DataUnavailableError(f"data set {name!r} needs torchvision: pip install torchvision") from None
    cls = getattr(tv_datasets, TORCHVISION_DATASETS[name])
    root = cache_dir() / "torchvision"
    try:
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
    except (OSError, RuntimeError) as error:  # no network, a failed checksum
        raise DataUnavailableError(f"could not download {name!r} with torchvision: {error}") from None
    x_train, y_train = arrays_from_torchvision(train)
    x_test, y_test = arrays_from_torchvision(test)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return _hold_out(name, "image", x_train, y_train, x_test, y_test, num_classes, channel_axis=1)


# -- the registry ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpec:
    """A data set the lab knows by name: how to build it and what it is, without building it."""

    name: str
    kind: str  # "image", "sequence" or "points"
    build: Callable[[], Dataset]
    needs: str | None = None  # an optional package it needs (installed separately), else None: offline
    summary: str = ""


# Every data set the lab knows, declared once: ``relulab compare --data``'s choices, its help and the validation
# read this table, so a new data set is one entry here (and its builder above).
REGISTRY: dict[str, DataSpec] = {spec.name: spec for spec in (
    DataSpec("digits", "image", _build_digits, summary="scikit-learn's 8x8 handwritten digits"),
    DataSpec("mnist1d", "sequence", _build_mnist1d, summary="MNIST-1D, generated offline"),
    *(DataSpec(toy, "points", (lambda toy=toy: _build_toy(toy)), summary=f"2-D toy: {toy}") for toy in _TOYS),
    *(DataSpec(tv, "image", (lambda tv=tv: _build_torchvision(tv)), needs="torchvision",
               summary=f"torchvision's {cls}") for tv, cls in TORCHVISION_DATASETS.items()),
)}
DATASETS = tuple(REGISTRY)  # the names at import; names() reads the registry as it is now


def names(*, offline: bool = False) -> tuple[str, ...]:
    """The registered data sets' names (``offline``: only those that need no optional package)."""
    return tuple(name for name, spec in REGISTRY.items() if not offline or spec.needs is None)


def kind_of(name: str) -> str:
    """The kind of a data set ("image", "sequence" or "points") without loading it."""
    if name not in REGISTRY:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(names())}")
    return REGISTRY[name].kind


# -- the cache ---------------------------------------------------------------------------------------------------
def _cache_path(name: str) -> Path:
    tag = hashlib.sha1(f"{name}-v{_CACHE_VERSION}-{_SPLIT_SEED}".encode()).hexdigest()[:10]
    return cache_dir() / f"{name}-{tag}.npz"


def _save_atomic(path: Path, data: Dataset) -> None:
    write_atomic(path, lambda handle: np.savez(
        handle, name=data.name, kind=data.kind, shape=np.array(data.shape), num_classes=data.num_classes,
        x_train=data.x_train, y_train=data.y_train, x_val=data.x_val, y_val=data.y_val, x_test=data.x_test,
        y_test=data.y_test))


def _read(path: Path) -> Dataset:
    with np.load(path) as z:
        return Dataset(str(z["name"]), str(z["kind"]), tuple(int(s) for s in z["shape"]), int(z["num_classes"]),
                       z["x_train"], z["y_train"], z["x_val"], z["y_val"], z["x_test"], z["y_test"])


_MEMORY: dict[str, Dataset] = {}


def load(name: str) -> Dataset:
    """The data set called ``name`` (one of :data:`DATASETS`), built once and cached on disk and in memory.

    >>> data = load("xor")
    >>> data.kind, data.shape, data.num_classes, data.sizes
    ('points', (2,), 2, (720, 240, 240))
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(names())}")
    path = _cache_path(name)
    key = str(path)
    if key in _MEMORY:
        return _MEMORY[key]
    try:
        data = _read(path)
    except Exception:  # absent, or a corrupt or foreign file: rebuild it
        data = REGISTRY[name].build()
        _save_atomic(path, data)
    _MEMORY[key] = data
    return data
