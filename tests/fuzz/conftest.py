"""The fuzz harness's settings: a short run inside ``make test``, a long one on request.

``RELULAB_FUZZ_EXAMPLES=N`` sets the examples per fuzz test (default 100, derandomized: the whole directory in a
few seconds, the same cases every run; when set, each run draws new cases). Every test here accepts exactly two
outcomes: a value that matches an independent reference, or a TypeError/ValueError whose message names the
argument at fault.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("RELULAB_FUZZ_EXAMPLES", "100"))

FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, print_blob=True, database=None,
    # make test: the same cases every run; a long run explores afresh
    derandomize="RELULAB_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],  # monkeypatch/capsys/tmp_path: reset per example
)
