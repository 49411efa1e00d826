"""The user's own data and/or model in a named experiment (``relulab run NAME --data ... --model ...``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..compare import TRAIN
from ..sweep import Sweep, Task
from ..validate import ConfigError
from .base import Experiment

__all__ = ["UserInputs", "validate_user_inputs", "WithUserInputs"]


@dataclass(frozen=True)
class UserInputs:
    """The user's data and/or model for ``relulab run`` (see :func:`validate_user_inputs`)."""

    data: Any = None  # a prepared relulab.lab.data.Dataset
    model: Any = None  # a relulab.lab.user.ModelSource

    def note(self) -> str:
        parts = ([f"data {self.data.name}"] if self.data is not None else []) + (
            [f"model {self.model.label} (candidates put in by its factory or relulab.nn.swap)"]
            if self.model is not None else [])
        return "Run on your " + " and your ".join(parts) + " instead of the preset's."


def validate_user_inputs(experiment: Experiment, accepted: Mapping[str, Sequence[str]], *, data: Any = None,
                         model: Any = None, target: str | None = None, task: str | None = None,
                         out: Path) -> UserInputs | None:
    """Check ``--data``/``--model`` for ``experiment`` (None when neither is given). Writes nothing.

    ``accepted``: what every experiment accepts, by name, for the message when this one refuses.
    """
    if data is None and model is None:
        return None
    from .. import user

    for option, value in (("data", data), ("model", model)):
        if value is not None and option not in experiment.accepts:
            raise ConfigError(f"--{option}: relulab run {experiment.name} does not take your {option}: "
                              f"{experiment.refusal} (accepted: "
                              + (", ".join(f"{n} ({'/'.join(v)})" for n, v in accepted.items() if v)) + ")")
    prepared = user.prepare_data(data, target=target, task=task) if data is not None else None
    if prepared is not None and prepared.task != "classification":
        raise ConfigError(f"--data: relulab run measures accuracy and train error: it needs classes; "
                          f"{prepared.name} is a regression")
    source = user.model_source(model, out=out) if model is not None else None
    if source is not None:
        from ..data import load

        user.check_model(replace(source, baseline="relu"), prepared if prepared is not None else load("digits"))
    return UserInputs(prepared, source)


class WithUserInputs:
    """The experiment's sweep with every training task pointed at the user's data and/or model."""

    def __init__(self, sweep: Sweep, inputs: UserInputs, out: Path) -> None:
        from .. import user

        self.sweep = sweep
        self.data = str(user.save_data(inputs.data, out)) if inputs.data is not None else None
        self.model = inputs.model
        if inputs.model is not None:
            user.write_inputs(inputs.model)

    def run(self, tasks: Sequence[Task], *, label: str = "runs") -> list[Any]:
        return self.sweep.run([self._point(t) for t in tasks], label=label)

    def _point(self, task: Task) -> Task:
        if task.fn != TRAIN:
            return task
        config = dict(task.config)
        if self.data is not None:
            config["data"] = self.data
        if self.model is not None:
            config.update(model=self.model.spec, fingerprint=self.model.fingerprint)
        return Task(task.fn, config, task.label)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sweep, name)
