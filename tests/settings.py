"""Settings for the tests: production's (muster.settings), with each pytest-xdist worker on a
Redis of its own. pyproject.toml's [tool.pytest.ini_options] selects this module.

Parallel test workers share one Redis, and a test's cache.clear() flushes a whole database: each
worker gets a database of its own (1-15), so none wipes another's keys. Pub/sub channels are not
per database, so each worker's channel layer gets a prefix of its own too. The real processes a
test starts (workers, daphne) run muster.settings, given this worker's REDIS_URL.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from muster.settings import *  # noqa: F403
from muster.settings import CACHES, CHANNEL_LAYERS, REDIS_URL

XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")

if REDIS_URL and XDIST_WORKER.startswith("gw"):
    REDIS_URL = urlsplit(REDIS_URL)._replace(path=f"/{1 + int(XDIST_WORKER[2:]) % 15}").geturl()
    CELERY_BROKER_URL = REDIS_URL
    CHANNEL_LAYERS = {
        "default": {
            **CHANNEL_LAYERS["default"],
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "muster" + XDIST_WORKER},
        }
    }
    CACHES = {"default": {**CACHES["default"], "LOCATION": REDIS_URL}}

# As a production deployment must (docs/deploying/health.md): scrapes send
# tests.helpers.api.METRICS_AUTH.
METRICS_TOKEN = "muster-tests-metrics-token"
