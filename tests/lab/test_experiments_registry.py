"""Adding an experiment is adding a file: the registry finds it, and `relulab run`'s help and checks read it."""

from __future__ import annotations

import sys

import pytest

from relulab.cli import build_parser
from relulab.lab import experiments
from relulab.lab.validate import ConfigError

NEW_FILE = '''
from relulab.lab.experiments.base import HOLDS, Experiment, Plan, Summary


class Tiny(Experiment):
    name, title, anchor, order = "tiny", "A tiny claim", "Nobody 2024: it holds.", 2.5
    accepts = ("data",)

    def plan(self, quick):
        return Plan(settings={"quick": quick})

    def measure(self, plan, sweep):
        return []

    def summarise(self, plan, measured):
        return Summary([], {"number": 1.0})

    def verdict(self, plan, summary):
        return HOLDS, "It holds."

    def plot(self, plan, measured, summary, out):
        return []


EXPERIMENT = Tiny()
'''


@pytest.fixture
def with_new_file(tmp_path, monkeypatch):
    (tmp_path / "tiny_claim.py").write_text(NEW_FILE)
    monkeypatch.setattr(experiments, "__path__", [*experiments.__path__, str(tmp_path)])
    yield experiments._discover()
    sys.modules.pop("relulab.lab.experiments.tiny_claim", None)


def test_a_new_file_is_registered_in_its_order(with_new_file):
    assert list(with_new_file) == ["convergence", "vanishing", "tiny", "sparsity", "dying", "init", "born-dead"]
    assert with_new_file["tiny"].run(False, None, None).verdict == {"outcome": "holds", "text": "It holds."}


def test_the_cli_and_the_checks_read_the_registry(with_new_file, monkeypatch, tmp_path):
    monkeypatch.setattr(experiments, "EXPERIMENTS", with_new_file)
    monkeypatch.setattr(experiments, "USER_INPUTS", {n: e.accepts for n, e in with_new_file.items()})
    run = next(a for a in build_parser()._actions if a.dest == "command").choices["run"]
    assert "tiny" in run.format_help() and "tiny" in next(a for a in run._actions if a.dest == "data").help
    assert experiments.validate_experiment("tiny", out=tmp_path / "r", jobs=1)[0] == "tiny"
    with pytest.raises(ConfigError, match="does not take your model: its claim is about the preset's deep MLP"):
        experiments.validate_user_inputs("tiny", model="m.py:f", out=tmp_path)
