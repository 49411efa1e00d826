"""The explorer's tests share one data cache (never ~/.cache) and start their own server on a free port."""

from __future__ import annotations

import os
import threading

import pytest


@pytest.fixture(scope="session", autouse=True)
def explore_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("relulab-cache")
    previous = os.environ.get("RELULAB_CACHE")
    os.environ["RELULAB_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("RELULAB_CACHE", None)
    else:
        os.environ["RELULAB_CACHE"] = previous


def start_server(**options):
    """A serving ExploreServer on 127.0.0.1 and a free port; call ``stop`` on what it returns."""
    from relulab.explore import make_server

    server = make_server("127.0.0.1", 0, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.close()
        thread.join(5)

    server.stop = stop
    return server


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("torch")
    srv = start_server()
    yield srv
    srv.stop()
