"""Suite-wide test configuration: the hypothesis profile and the pytester plugin.

The profile ``tinygrad-edu-suite`` keeps the whole suite fast (30 examples per property)
while staying random from run to run (``derandomize=False``); a failing example is printed
with its reproduction blob.  Pick another profile with ``--hypothesis-profile=NAME`` (for
instance the plugin's ``tinygrad-edu``, 50 examples, or ``tinygrad-edu-thorough``, 1000) or the ``TINYGRAD_EDU_HYPOTHESIS_PROFILE``
environment variable.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

settings.register_profile(
    "tinygrad-edu-suite",
    deadline=None,
    derandomize=False,
    max_examples=30,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# the same, searching much harder (for a nightly run or before a release)
settings.register_profile("tinygrad-edu-thorough", settings.get_profile("tinygrad-edu-suite"),
                          max_examples=1000)
settings.load_profile(os.environ.get("TINYGRAD_EDU_HYPOTHESIS_PROFILE", "tinygrad-edu-suite"))
