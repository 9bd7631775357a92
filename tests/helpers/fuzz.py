"""What the fuzz tests share: how many examples to run, and reproducible Hypothesis settings.

In CI every fuzz test runs a few examples, derandomized: each run tries the same inputs, so a
failure in CI fails on a laptop too. MUSTER_FUZZ_EXAMPLES=200 (the nightly size) runs that many
examples per test (per API operation for the schema fuzzing), randomly: a failure then prints
the `@reproduce_failure` blob that replays it. See docs/development.md.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import settings

NIGHTLY_EXAMPLES = int(os.environ.get("MUSTER_FUZZ_EXAMPLES", "0") or 0)


def fuzz_settings(ci_examples: int, **more: Any) -> settings:
    """Hypothesis settings for one fuzz test: `ci_examples` in CI, MUSTER_FUZZ_EXAMPLES if set.

    No deadline (a shared CI runner is slow at times, which is no bug) and no example database
    (it would make one run depend on the last).
    """
    return settings(
        max_examples=NIGHTLY_EXAMPLES or ci_examples,
        derandomize=not NIGHTLY_EXAMPLES,
        deadline=None,
        database=None,
        print_blob=bool(NIGHTLY_EXAMPLES),
        **more,
    )
