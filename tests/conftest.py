"""Shared test configuration: the hypothesis profiles.

CI machines are slow and shared, so the default profile has no deadline and a moderate number of examples;
``HYPOTHESIS_PROFILE=thorough`` runs many more.
"""

import os

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
