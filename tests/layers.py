"""The import-layer check of ``make test``: rooms, no cycles, no reaching into another package's private names.

The rules (docs/architecture.md states them for readers):

* **Rooms.** ``family`` <- ``nn`` <- ``monitor`` <- ``lab`` <- the command level (``cli``, ``bench``, ``explore``).
  A module imports only from its own room or a lower one, at module level or inside a function alike.
  ``relulab/__init__.py`` is the package face (it re-exports the family and loads the monitor and ``doctor``
  lazily), and ``relulab/_io.py`` is the shared file-writing floor below every room; neither counts as a room.
* **No cycles** between modules, counting function-level imports too.
* **Private names stay home.** A ``_name`` defined in a public module (``lab/compare.py``'s ``_integer``) is
  private to that file: no other module imports it or reads it as an attribute. A private module
  (``family/_parallel.py``, ``relulab/_io.py``) is its package's documented internals: modules of that package
  and of its sub-packages may import it and its names; nothing outside may. What crosses must have a public name.
* Edges to a package's own ``__init__`` from inside that package (``from .. import relu``) are the package face,
  not a dependency between modules, and do not count towards cycles.

The checker reads source text with :mod:`ast` (nothing is imported), so it can be fed synthetic modules.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

ROOMS = {"family": 0, "nn": 1, "monitor": 2, "lab": 3, "cli": 4, "bench": 4, "explore": 4}
FLOOR = {"relulab", "relulab._io"}  # the package face and the shared file-writing helpers: no room


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    rule: str
    text: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.rule}: {self.text}"


def sources(root: Path, package: str = "relulab") -> dict[str, tuple[str, bool]]:
    """``{module name: (source text, is a package __init__)}`` for every .py file under ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join([package, *parts])] = (path.read_text(encoding="utf-8"), is_package)
    return found


def room(module: str) -> int | None:
    if module in FLOOR:
        return None
    parts = module.split(".")
    return ROOMS.get(parts[1]) if len(parts) > 1 else None


def _package_of(module: str, is_package: bool) -> str:
    return module if is_package else module.rpartition(".")[0]


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = _package_of(module, is_package).split(".")
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _private_owner(name: str, modules: Mapping[str, tuple[str, bool]]) -> tuple[str, str, bool] | None:
    """For a dotted ``name`` that goes through a ``_private`` part: (its owner, the part, owner is a package).

    The owner of a private module is the package holding it (package-wide); of any other private name, the module
    that defines it (that file only).
    """
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            owner = ".".join(parts[:i])
            if ".".join(parts[:i + 1]) in modules:  # a private module: its package's internals
                return owner, part, True
            return owner, part, False
    return None


def _allowed(module: str, is_package: bool, owner: str, package_wide: bool) -> bool:
    if not package_wide:
        return module == owner
    own = _package_of(module, is_package)
    return own == owner or own.startswith(owner + ".")


def check(modules: Mapping[str, tuple[str, bool]]) -> list[Violation]:
    """Every violation of the rules above in ``modules`` (see :func:`sources`)."""
    violations: list[Violation] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, (text, is_package) in modules.items():
        tree = ast.parse(text)
        aliases: dict[str, str] = {}  # local name -> the relulab module it is bound to
        uses: list[tuple[int, str]] = []  # (line, dotted name used) for every import and module attribute
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    uses.append((node.lineno, alias.name))
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        aliases.setdefault(alias.name.split(".")[0], alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                if not all(f"{base}.{a.name}" in modules for a in node.names):
                    uses.append((node.lineno, base))
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    full = f"{base}.{alias.name}"
                    uses.append((node.lineno, full))
                    if full in modules:
                        aliases[alias.asname or alias.name] = full
        for node in ast.walk(tree):  # module.attribute chains: relulab.lab.compare._integer, report._series
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                chain, inner = [node.attr], node.value
                while isinstance(inner, ast.Attribute):
                    chain.append(inner.attr)
                    inner = inner.value
                if isinstance(inner, ast.Name) and inner.id in aliases:
                    uses.append((node.lineno, ".".join([aliases[inner.id], *reversed(chain)])))
        mine = room(module)
        for line, name in uses:
            if not (name == "relulab" or name.startswith("relulab.")):
                continue
            target = name
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module:
                if not module.startswith(target + "."):  # the package face, from inside: not an edge
                    graph[module].add(target)
                theirs = room(target)
                if mine is not None and theirs is not None and theirs > mine:
                    violations.append(Violation(module, line, "layer",
                                                f"imports {target} (room {theirs}) from room {mine}"))
            private = _private_owner(name, modules)
            if private and not _allowed(module, is_package, private[0], private[2]):
                violations.append(Violation(module, line, "private",
                                            f"uses {name}: {private[1]} is private to {private[0]}"))
    violations += [Violation(c[0], 0, "cycle", " -> ".join(c + [c[0]])) for c in cycles(graph)]
    return sorted(set(violations), key=lambda v: (v.module, v.line, v.rule, v.text))


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found
