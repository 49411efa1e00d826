"""Lab tests share one data cache per session (built once, offline) and never touch ~/.cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def lab_cache(tmp_path_factory):
    """RELULAB_CACHE for this session and for every subprocess the tests start (they inherit os.environ)."""
    path = tmp_path_factory.mktemp("relulab-cache")
    previous = os.environ.get("RELULAB_CACHE")
    os.environ["RELULAB_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("RELULAB_CACHE", None)
    else:
        os.environ["RELULAB_CACHE"] = previous
