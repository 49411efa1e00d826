"""The explorer's tests share one data cache (never ~/.cache) and start their own server on a free port."""

from __future__ import annotations

import os
import threading

import pytest



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
