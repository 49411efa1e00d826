"""Shared test configuration: the hypothesis profiles, SIGINT for the Ctrl-C tests, the data cache.

CI machines are slow and shared, so the default profile has no deadline and a moderate number of examples;
``HYPOTHESIS_PROFILE=thorough`` runs many more.
"""

import os
import signal

import pytest

# A suite started as a background job of a non-interactive shell (`make test &`, nohup) inherits SIGINT ignored, and
# an ignored signal stays ignored across exec: the commands that the Ctrl-C tests start would never see it. Taking
# SIGINT back here gives every subprocess the default disposition again (a handler is reset to it on exec).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a test extra; tests that need it import it themselves
    pass
else:
    settings.register_profile(
        "ci", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow], print_blob=True
    )
    settings.register_profile("thorough", deadline=None, max_examples=2000, print_blob=True)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def relulab_cache(tmp_path_factory):
    """RELULAB_CACHE for this session and for every subprocess the tests start (they inherit os.environ): data
    sets are built once, offline, and ~/.cache is never touched."""
    path = tmp_path_factory.mktemp("relulab-cache")
    previous = os.environ.get("RELULAB_CACHE")
    os.environ["RELULAB_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("RELULAB_CACHE", None)
    else:
        os.environ["RELULAB_CACHE"] = previous
