"""The system tests' fixtures; their helpers are in tests/helpers/system.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.system import Muster, musters

# pytest-django's live server listens on "localhost" unless told otherwise; keep it on IPv4
# loopback, where the other processes of these tests (Alertmanager) reach it. Read when the
# session-scoped live_server fixture starts, which is after collection has imported this file.
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")


@pytest.fixture
def start_muster(tmp_path) -> Iterator[Callable[[Path], Muster]]:
    """Start `./musterctl up` on a free port; every process started is killed at the end."""
    with musters(tmp_path) as start:
        yield start
