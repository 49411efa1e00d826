"""The user's own model and data in the lab (``relulab doctor``, ``relulab compare --model/--data``).

**Model.** An ``nn.Module`` instance, or a factory ``f(activation: str) -> nn.Module`` (or ``f() -> nn.Module``).
From the command line an import path: ``package.module:factory`` or ``path/to/file.py:factory``. A factory "takes
an activation" when it has a parameter called ``activation`` or exactly one parameter; other factories are called
without arguments and candidates are put in with :func:`relulab.nn.swap` on the built copy.

**Data.** ``(X, y)`` NumPy arrays or tensors, a mapping with ``X``/``y`` or ``X_train``/``y_train``/``X_test``/
``y_test``, a torch ``Dataset`` or ``DataLoader`` yielding ``(x, y)`` pairs; from the command line a ``.npz`` file
(the same array names), a ``.csv`` file with a header (``--target COLUMN``; every other column is a numeric
feature) or an import path to a loader returning any of these. Targets with whole-number values and few distinct
values (at most 50, and at most a fifth of the samples) are classes (cross-entropy); others are a regression (mean
squared error); ``task=`` overrides. Without a given test split the data is split 60/20/20 into train, validation
and test (stratified for classes); with one, 10 % of train is held out for validation. The features are used as
given (no scaling): the doctor diagnoses the training the user actually has.

**Workers.** Training runs in worker processes that rebuild everything from a JSON config. The data is prepared
once by the driver into ``DIR/inputs/data-<hash>.npz``; a model named by an import path is imported again by each
worker; a model or factory given as a Python object is pickled to ``DIR/inputs/model-<hash>.pkl``. An object that
cannot be pickled, or that pickle could not find again in another process (a lambda, a class defined in an
interactive session), is kept in this process and its runs go one at a time here (:attr:`ModelSource.note` says
so).
"""

from __future__ import annotations

import copy
import csv
import hashlib
import importlib
import importlib.util
import inspect
import io
import math
import pickle
import sys
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .._io import write_atomic
from .data import REGISTRY, Dataset, stratified_split
from .validate import MODELS, ConfigError

__all__ = ["ModelSource", "model_source", "build_model", "prepare_data", "save_data", "read_data", "is_user_data",
           "is_user_model", "check_model", "write_inputs", "data_path", "main_is_importable", "TASKS", "infer_task", "resolve_import"]

TASKS = ("classification", "regression")
_MAX_CLASSES = 50
_MEMORY: dict[str, Any] = {}  # "memory:<token>" -> a model or factory that cannot travel to a worker
_MEMORY_PREFIX = "memory:"


# -- import paths ------------------------------------------------------------------------------------------------
def _is_file_spec(module: str) -> bool:
    return module.endswith(".py") or "/" in module or "\\" in module


def resolve_import(spec: str, option: str) -> Callable[..., Any]:
    """The object named by ``package.module:name`` or ``path/file.py:name``; ConfigError naming ``option`` if not.

    A file is imported under a name derived from its absolute path, so two files called ``model.py`` do not clash.
    """
    if not isinstance(spec, str) or ":" not in spec.strip(":") or spec.count(":") > 1 and not _is_file_spec(spec):
        raise ConfigError(f"{option} must be package.module:name or path/to/file.py:name; got {spec!r}")
    module_name, _, attribute = spec.rpartition(":")
    try:
        if _is_file_spec(module_name):
            path = Path(module_name).expanduser().resolve()
            if not path.is_file():
                raise ConfigError(f"{option}: no file {module_name!r}")
            unique = "relulab_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
            module = sys.modules.get(unique)
            if module is None or getattr(module, "__file__", None) != str(path):
                loader_spec = importlib.util.spec_from_file_location(unique, path)
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[unique] = module  # so classes defined there pickle and dataclasses resolve
                try:
                    loader_spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(unique, None)
                    raise
        else:
            module = importlib.import_module(module_name)
    except ConfigError:
        raise
    except Exception as error:  # ImportError, SyntaxError, or whatever the module raises while importing
        raise ConfigError(f"{option}: cannot import {module_name!r}: {type(error).__name__}: {error}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"{option}: {module_name!r} has no attribute {attribute!r}") from None


def _source_digest(spec: str) -> str:
    """A hash of the source file behind an import path (a changed file must not reuse finished runs)."""
    module_name = spec.rpartition(":")[0]
    if _is_file_spec(module_name):
        path = Path(module_name).expanduser().resolve()
    else:
        found = importlib.util.find_spec(module_name)
        path = Path(found.origin) if found is not None and found.origin not in (None, "built-in", "frozen") else None
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()[:12] if path is not None else ""
    except OSError:
        return ""


# -- the model ---------------------------------------------------------------------------------------------------
def _activation_parameter(factory: Callable[..., Any]) -> str | None:
    """How a factory takes the activation name: 'activation' (keyword), '' (its only parameter) or None."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.name == "activation" and p.kind != p.VAR_POSITIONAL and p.kind != p.VAR_KEYWORD for p in parameters):
        return "activation"
    plain = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return "" if len(parameters) == 1 and plain else None


def _needs_argument(factory: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


@dataclass(frozen=True)
class ModelSource:
    """Where a worker finds the user's model: ``spec`` (an import path, a pickle file or ``memory:<token>``).

    ``takes_activation``: candidates are built by calling the factory with the member's name; otherwise they are
    swapped in. ``baseline``: the activation the untouched model is built with ("" = as the factory builds it).
    ``in_process``: the model cannot travel to a worker process (``note`` says why).
    """

    spec: str
    label: str
    takes_activation: bool
    baseline: str
    fingerprint: str
    in_process: bool = False
    note: str = ""
    obj: Any = field(default=None, repr=False, compare=False)  # the instance or factory, to build here
    payload: bytes | None = field(default=None, repr=False, compare=False)  # its pickle, for the workers

    def build(self, activation: str = "", swap_from: str = ""):
        return build_model(self.spec if self.obj is None else self.obj, activation, swap_from)


def is_user_model(spec: Any) -> bool:
    """True for anything that is not one of the lab's built-in model names."""
    return not (isinstance(spec, str) and spec in MODELS)


def _factory_of(obj: Any, option: str) -> Any:
    from torch import nn

    if isinstance(obj, nn.Module) or callable(obj):
        return obj
    raise ConfigError(f"{option} must be a torch.nn.Module, a factory returning one, or an import path "
                      f"package.module:factory; got {type(obj).__name__}")


def model_source(model: Any, *, out: Path, activation: str = "", option: str = "--model") -> ModelSource:
    """Check ``model`` (instance, factory or import path) and say how workers will rebuild it. Writes nothing.

    ``activation``: for a factory that needs its activation argument, the member to build the untouched model with
    (default relu).
    """
    from torch import nn

    if isinstance(model, str):
        obj = resolve_import(model, option)
        module_name, _, attribute = model.rpartition(":")
        spec = f"{Path(module_name).expanduser().resolve()}:{attribute}" if _is_file_spec(module_name) else model
        fingerprint = _source_digest(spec)
        label = model
    else:
        obj = model
        spec, fingerprint, label = "", "", type(model).__name__ if isinstance(model, nn.Module) else getattr(
            model, "__qualname__", type(model).__name__)
    obj = _factory_of(obj, option)
    takes = not isinstance(obj, nn.Module) and _activation_parameter(obj) is not None
    baseline = activation or ("relu" if takes and _needs_argument(obj) else "")
    source = ModelSource(spec=spec, label=label, takes_activation=takes, baseline=baseline, fingerprint=fingerprint,
                         obj=obj)
    if spec:
        return source
    # A Python object: pickled for the workers when it survives the trip.
    try:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        reason = f"it cannot be pickled ({type(error).__name__}: {str(error).splitlines()[0]})"
    else:
        reason = _unreachable(obj)
        if reason is None:
            digest = hashlib.sha1(payload).hexdigest()[:16]
            path = Path(out).resolve() / "inputs" / f"model-{digest}.pkl"
            return replace(source, spec=str(path), fingerprint=digest, payload=payload)
    token = f"{_MEMORY_PREFIX}{id(obj):x}"
    _MEMORY[token] = obj
    note = (f"the model {label} stays in this process because {reason}: its runs go one at a time here. Give an "
            "import path (package.module:factory or file.py:factory) to train in parallel worker processes.")
    return replace(source, spec=token, in_process=True, note=note)


def main_is_importable() -> bool:
    """False when ``__main__`` names a file that is not there (``python -`` reads ``<stdin>``): a spawned worker
    process would try to run it again and die before doing any work."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or Path(main_file).is_file()


def _unreachable(obj: Any) -> str | None:
    """Why a worker process could not unpickle ``obj`` although it pickles here, or None."""
    target = obj if isinstance(obj, (type, types.FunctionType)) else type(obj)
    module = getattr(target, "__module__", "") or ""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if module == "__main__" and (main_file is None or not Path(main_file).is_file()):
        return "it is defined in an interactive session (__main__ without a file), which a worker cannot import"
    if module.startswith("relulab_user_"):
        return "it comes from a file imported by path, which pickle cannot name in another process"
    return None


def write_inputs(source: ModelSource) -> None:
    """Write the pickled model for the workers (after validation, when the run starts)."""
    payload = source.payload
    if payload is not None and not Path(source.spec).is_file():
        write_atomic(source.spec, payload)


def _load_spec(spec: str) -> Any:
    if spec.startswith(_MEMORY_PREFIX):
        try:
            return _MEMORY[spec]
        except KeyError:
            raise RuntimeError(f"model {spec!r} lives in the driver process and cannot be rebuilt here; give an "
                               "import path package.module:factory instead") from None
    if spec.endswith(".pkl") and ":" not in Path(spec).name:
        with open(spec, "rb") as handle:
            return pickle.load(handle)
    return resolve_import(spec, "--model")


def _dominant(model) -> str:
    from ..nn import activation_name

    counts: dict[str, int] = {}
    for module in model.modules():
        name = activation_name(module)
        if name is not None and name != "identity":
            counts[name] = counts.get(name, 0) + 1
    return max(counts, key=lambda n: counts[n]) if counts else ""


def build_model(spec_or_obj: Any, activation: str = "", swap_from: str = ""):
    """A fresh model: the factory's, or a deep copy of the instance; with ``activation`` the candidate member.

    A factory that takes an activation is called with it; otherwise the built model's ``swap_from`` modules (default:
    its most common activation member) are replaced by ``activation`` with :func:`relulab.nn.swap`. Seed torch first
    for a reproducible draw (an instance keeps its weights).
    """
    from torch import nn

    from ..nn import swap

    obj = _load_spec(spec_or_obj) if isinstance(spec_or_obj, str) else spec_or_obj
    if isinstance(obj, nn.Module):
        model = copy.deepcopy(obj)
        takes = None
    else:
        takes = _activation_parameter(obj)
        if activation and takes is not None:
            model = obj(activation=activation) if takes == "activation" else obj(activation)
            activation = ""  # built in
        else:
            model = obj()
    if not isinstance(model, nn.Module):
        raise TypeError(f"the model factory returned {type(model).__name__}, not a torch.nn.Module")
    if activation:
        old = swap_from or _dominant(model)
        if old and old != activation:
            swap(model, old, activation)
    return model


def check_model(source: ModelSource, data: Dataset, option: str = "--model") -> None:
    """Build the model and run two samples through it: ConfigError naming ``option`` when that fails or the output
    does not fit the targets (logits (n, classes) for classes, y's shape for a regression)."""
    import torch

    try:
        torch.manual_seed(0)
        model = source.build(source.baseline)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"{option}: building the model failed: {type(error).__name__}: {error}") from None
    x = torch.from_numpy(data.x_train[:2])
    try:
        model.eval()
        with torch.no_grad():
            output = model(x)
    except Exception as error:
        raise ConfigError(f"{option}: the model fails on inputs of shape {tuple(x.shape)}: "
                          f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    if not isinstance(output, torch.Tensor):
        raise ConfigError(f"{option}: the model returns {type(output).__name__}; the lab needs a tensor")
    if data.task == "classification":
        if output.ndim != 2 or output.shape[1] < data.num_classes:
            raise ConfigError(f"{option}: the model's output has shape {tuple(output.shape)}, which does not fit "
                              f"y: {data.num_classes} classes need logits of shape (n, {data.num_classes})")
    else:
        want = (2,) + tuple(data.y_train.shape[1:])
        if output.numel() != math.prod(want):
            raise ConfigError(f"{option}: the model's output has shape {tuple(output.shape)}, which does not fit "
                              f"y of shape (n{''.join(', ' + str(s) for s in want[1:])}) for a regression")
    from ..monitor import find_activations

    if not find_activations(model):
        raise ConfigError(f"{option}: the model has no activation modules the monitor can see (activations called "
                          "as functions inside forward are invisible); make them modules, e.g. torch.nn.ReLU()")


# -- the data ----------------------------------------------------------------------------------------------------
def is_user_data(name: Any) -> bool:
    """True for anything that is not one of the lab's built-in data set names."""
    return not (isinstance(name, str) and name in REGISTRY)


def infer_task(y: np.ndarray) -> str:
    """'classification' for whole-number (or non-numeric) targets with few distinct values, else 'regression'.

    >>> infer_task(np.array([0, 1, 1, 2] * 10)), infer_task(np.linspace(0, 1, 40))
    ('classification', 'regression')
    """
    if y.dtype.kind in "OUSb":
        return "classification"
    if y.ndim != 1:
        return "regression"
    whole = bool(np.all(np.equal(np.mod(y, 1), 0)))
    distinct = len(np.unique(y))
    return "classification" if whole and distinct <= min(_MAX_CLASSES, max(2, len(y) // 5)) else "regression"


def _array(value: Any, what: str, option: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as error:
        raise ConfigError(f"{option}: {what} is not an array: {error}") from None


def _features(x: Any, option: str, what: str = "X") -> np.ndarray:
    x = _array(x, what, option)
    if x.dtype.kind not in "biuf":
        raise ConfigError(f"{option}: {what} must be numeric; got dtype {x.dtype}")
    if x.ndim < 2:
        raise ConfigError(f"{option}: {what} must have a sample axis and features, shape (n, features...); "
                          f"got shape {x.shape}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        kind = "NaN" if np.isnan(x).any() else "an infinite value"
        raise ConfigError(f"{option}: {what} holds {kind} (first in sample {row}); remove or fill missing values")
    return x


def _targets(y: Any, option: str, what: str = "y") -> np.ndarray:
    y = _array(y, what, option)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 0:
        raise ConfigError(f"{option}: {what} must hold one target per sample; got a scalar")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ConfigError(f"{option}: {what} holds NaN or infinite targets (first in sample "
                          f"{int(np.argwhere(~np.isfinite(y))[0][0])})")
    return y


def _pairs_from_torch(obj: Any, option: str) -> tuple[np.ndarray, np.ndarray]:
    """Stack the (x, y) pairs of a torch Dataset or DataLoader into arrays."""
    import torch
    from torch.utils.data import DataLoader

    xs, ys = [], []
    items = obj if isinstance(obj, DataLoader) else (obj[i] for i in range(len(obj)))
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ConfigError(f"{option}: the data must yield (x, y) pairs; got {type(item).__name__}")
        x, y = item
        xs.append(torch.as_tensor(x))
        ys.append(torch.as_tensor(y))
    if not xs:
        raise ConfigError(f"{option}: the data set is empty")
    if isinstance(obj, DataLoader):
        return torch.cat(xs).numpy(), torch.cat(ys).numpy()
    return torch.stack(xs).numpy(), torch.stack(ys).numpy()


def _read_csv(path: Path, target: str | None, option: str) -> tuple[np.ndarray, np.ndarray]:
    if not target:
        raise ConfigError(f"{option}: a .csv file needs --target COLUMN (the column to predict)")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise ConfigError(f"{option}: {str(path)!r} has no data rows under its header")
    header = [h.strip() for h in rows[0]]
    if target not in header:
        raise ConfigError(f"--target: no column {target!r} in {str(path)!r}; columns: {', '.join(header)}")
    index = header.index(target)
    features, labels = [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ConfigError(f"{option}: line {number} of {str(path)!r} has {len(row)} fields; the header has "
                              f"{len(header)}")
        values = []
        for column, cell in enumerate(row):
            if column == index:
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise ConfigError(f"{option}: column {header[column]!r} is not numeric (line {number}: {cell!r}); "
                                  "features must be numbers (encode categories first)") from None
        features.append(values)
        labels.append(row[index].strip())
    try:
        y = np.array([float(v) for v in labels])
    except ValueError:
        y = np.array(labels)  # class names
    return np.array(features, dtype=np.float64), y


def _read_npz(path: Path, option: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as error:
        raise ConfigError(f"{option}: cannot read {str(path)!r} as .npz: {error}") from None
    return arrays


def _named_arrays(arrays: Mapping[str, Any], option: str) -> dict[str, Any]:
    """X/y or X_train/y_train/X_test/y_test from a mapping (names case-insensitive)."""
    lower = {k.lower(): v for k, v in arrays.items()}
    if {"x_train", "y_train"} <= lower.keys():
        if ("x_test" in lower) != ("y_test" in lower):
            raise ConfigError(f"{option}: give both X_test and y_test, or neither")
        return {k: lower[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in lower}
    if {"x", "y"} <= lower.keys():
        return {"x_train": lower["x"], "y_train": lower["y"]}
    raise ConfigError(f"{option}: expected arrays X and y (or X_train, y_train, X_test, y_test); found "
                      f"{', '.join(arrays) or 'none'}")


def _raw(data: Any, target: str | None, option: str) -> tuple[dict[str, Any], str]:
    """The user's data as named arrays, and a label for reports."""
    if isinstance(data, (str, Path)):
        text = str(data)
        path = Path(text).expanduser()
        if path.suffix.lower() in (".csv", ".npz"):
            if not path.is_file():
                raise ConfigError(f"{option}: no file {text!r}")
            if path.suffix.lower() == ".csv":
                x, y = _read_csv(path, target, option)
                return {"x_train": x, "y_train": y}, path.name
            return _named_arrays(_read_npz(path, option), option), path.name
        if ":" not in text:
            raise ConfigError(f"{option} must be a .npz or .csv file or an import path package.module:loader; "
                              f"got {text!r}")
        loader = resolve_import(text, option)
        try:
            loaded = loader() if callable(loader) else loader
        except Exception as error:
            raise ConfigError(f"{option}: the loader {text!r} raised {type(error).__name__}: {error}") from None
        raw, _ = _raw(loaded, target, option)
        return raw, text
    if isinstance(data, Mapping):
        return _named_arrays(data, option), "arrays"
    if isinstance(data, tuple) and len(data) == 2:
        return {"x_train": data[0], "y_train": data[1]}, "arrays"
    if isinstance(data, tuple) and len(data) == 4:
        return dict(zip(("x_train", "y_train", "x_test", "y_test"), data)), "arrays"
    try:
        from torch.utils.data import DataLoader
        from torch.utils.data import Dataset as TorchDataset
    except ImportError:  # pragma: no cover
        TorchDataset = DataLoader = ()
    if isinstance(data, (TorchDataset, DataLoader)):
        x, y = _pairs_from_torch(data, option)
        return {"x_train": x, "y_train": y}, type(data).__name__
    raise ConfigError(f"{option} must be (X, y) arrays, a mapping of X/y arrays, a torch Dataset or DataLoader, a "
                      f".npz/.csv file or an import path; got {type(data).__name__}")


def _kind(shape: tuple[int, ...]) -> str:
    return {1: "points", 2: "sequence", 3: "image"}.get(len(shape), "tensor")


def prepare_data(data: Any, *, target: str | None = None, task: str | None = None, option: str = "--data",
                 seed: int = 20240601) -> Dataset:
    """The user's data checked and split into a lab :class:`~relulab.lab.data.Dataset` (with ``task``).

    Raises ConfigError naming ``option`` for unreadable input, X/y of different lengths, NaN or infinite features,
    a non-numeric CSV feature column, too few samples or classes.
    """
    if task is not None and task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}; got {task!r}")
    raw, label = _raw(data, target, option)
    x_train = _features(raw["x_train"], option, "X" if "x_test" not in raw else "X_train")
    y_train = _targets(raw["y_train"], option, "y" if "x_test" not in raw else "y_train")
    if len(x_train) != len(y_train):
        raise ConfigError(f"{option}: X has {len(x_train)} samples but y has {len(y_train)}; they must match")
    test = None
    if "x_test" in raw:
        x_test, y_test = _features(raw["x_test"], option, "X_test"), _targets(raw["y_test"], option, "y_test")
        if len(x_test) != len(y_test):
            raise ConfigError(f"{option}: X_test has {len(x_test)} samples but y_test has {len(y_test)}")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ConfigError(f"{option}: X_test samples have shape {x_test.shape[1:]}, X_train's {x_train.shape[1:]}")
        test = (x_test, y_test)
    task = task or infer_task(y_train)
    y_all = y_train if test is None else np.concatenate([y_train, test[1]])
    if task == "classification":
        if y_all.ndim != 1:
            raise ConfigError(f"{option}: class targets must be one label per sample; got y of shape {y_all.shape}")
        if y_all.dtype.kind == "f" and not np.all(np.mod(y_all, 1) == 0):
            raise ConfigError(f"{option}: --task classification needs whole-number or named classes; y holds "
                              "fractions")
        classes, codes = np.unique(y_all, return_inverse=True)
        if len(classes) < 2:
            raise ConfigError(f"{option}: y has a single class ({classes[0]!r}); nothing to learn")
        if y_all.dtype.kind in "iu" or y_all.dtype.kind == "f":
            # Whole-number labels keep their values (the model's logit k is class k) when they are 0..K-1 already.
            values = y_all.astype(np.int64)
            codes = values if values.min() >= 0 and values.max() < _MAX_CLASSES * 4 else codes
        codes = codes.astype(np.int64)
        num_classes = int(codes.max()) + 1
        y_train, y_test_codes = codes[:len(y_train)], codes[len(y_train):]
        labels = y_train
    else:
        if y_all.dtype.kind not in "biuf":
            raise ConfigError(f"{option}: --task regression needs numeric targets; got dtype {y_all.dtype}")
        y_train = y_train.astype(np.float32)
        y_test_codes = test[1].astype(np.float32) if test is not None else None
        num_classes = 0
        labels = np.zeros(len(y_train), dtype=np.int64)  # a single stratum: a plain random split
    if test is None:
        if len(y_train) < 10:
            raise ConfigError(f"{option}: {len(y_train)} samples are too few to split into train, validation and "
                              "test (need at least 10)")
        train, val, held = _split(labels, (0.6, 0.2, 0.2), seed)
        splits = (x_train[train], y_train[train], x_train[val], y_train[val], x_train[held], y_train[held])
    else:
        train, val = _split(labels, (0.9, 0.1), seed)
        splits = (x_train[train], y_train[train], x_train[val], y_train[val], test[0], y_test_codes)
    if min(len(splits[1]), len(splits[3]), len(splits[5])) == 0:
        raise ConfigError(f"{option}: too few samples for a train/validation/test split")
    return Dataset(label, _kind(tuple(x_train.shape[1:])), tuple(int(s) for s in x_train.shape[1:]), num_classes,
                   *[np.ascontiguousarray(a) for a in splits], task=task)


def _split(labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Stratified for classes, but a class too small to appear in every part is spread at random with the rest."""
    counts = np.bincount(labels) if labels.size else np.zeros(0)
    if counts.size and counts[counts > 0].min() * min(fractions) < 1:
        labels = np.zeros_like(labels)
    return stratified_split(labels, fractions, seed)


def _digest(data: Dataset) -> str:
    hasher = hashlib.sha1(f"{data.task}|{data.num_classes}|{data.shape}".encode())
    for array in (data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test):
        hasher.update(str(array.dtype).encode() + str(array.shape).encode())
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()[:16]


def data_path(data: Dataset, out: str | Path) -> Path:
    """Where :func:`save_data` puts ``data`` under ``out`` (named by a hash of its contents)."""
    return Path(out).resolve() / "inputs" / f"data-{_digest(data)}.npz"


def save_data(data: Dataset, out: str | Path) -> Path:
    """Write the prepared data once (atomically) for the workers; returns its path."""
    path = data_path(data, out)
    if not path.is_file():
        buffer = io.BytesIO()
        np.savez(buffer, name=data.name, kind=data.kind, shape=np.array(data.shape, dtype=np.int64),
                 num_classes=data.num_classes, task=data.task, x_train=data.x_train, y_train=data.y_train,
                 x_val=data.x_val, y_val=data.y_val, x_test=data.x_test, y_test=data.y_test)
        write_atomic(path, buffer.getvalue())
    return path


_READ: dict[str, Dataset] = {}


def read_data(path: str | Path) -> Dataset:
    """The prepared data written by :func:`save_data` (cached per process: a worker reads it once)."""
    key = str(path)
    if key not in _READ:
        with np.load(path, allow_pickle=False) as z:
            _READ[key] = Dataset(str(z["name"]), str(z["kind"]), tuple(int(s) for s in z["shape"]),
                                 int(z["num_classes"]), z["x_train"], z["y_train"], z["x_val"], z["y_val"],
                                 z["x_test"], z["y_test"], task=str(z["task"]))
    return _READ[key]
