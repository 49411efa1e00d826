"""The lab: real data, models, a deterministic training loop, a resumable parallel sweep, reports, experiments.

``relulab compare`` and ``relulab run NAME`` are its front door; in Python::

    from relulab.lab import validate_compare, compare
    done = compare(validate_compare(activations="relu,tanh", seeds=2, epochs=5, out="report"))
    print(done.text)              # the table; done.results is what report/results.json holds

    from relulab.lab import run_experiment
    done = run_experiment("vanishing", quick=True, out="report-vanishing")

    from relulab.lab import doctor
    done = doctor("./mymodel.py:build", "train.csv", target="label", out="report-doctor")
    # the same grids on a Ray cluster (pip install 'relulab[ray]'): backend="ray", address="HOST:6379"
    done = compare(validate_compare(seeds=10, out="report"), backend="ray", address="head-node:6379")

Importing this package loads NumPy only; torch is imported by the code that trains (in worker processes).
"""

from .compare import (DEFAULT_ACTIVATIONS, CompareSettings, ConfigError, LabResult, compare, compare_columns,
                      compare_table, validate_compare)
from .data import DATASETS, Dataset, load
from .doctor import DoctorSettings, doctor, run_doctor, validate_doctor
from .experiments import EXPERIMENTS, run_experiment, validate_experiment
from .sweep import Backend, BackendError, Sweep, SweepError, Task, validate_backend
from .train import RunConfig

__all__ = ["ConfigError", "CompareSettings", "LabResult", "validate_compare", "compare", "compare_table",
           "compare_columns", "DEFAULT_ACTIVATIONS", "DATASETS", "Dataset", "load", "EXPERIMENTS", "run_experiment",
           "validate_experiment", "Sweep", "SweepError", "Backend", "BackendError", "validate_backend", "Task",
           "RunConfig", "doctor", "validate_doctor", "run_doctor", "DoctorSettings"]
