"""A generated secret key for the embedded mode, kept beside its database."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path


def load_or_create_secret_key(path: Path) -> str:
    """Return the key stored at `path`, creating it (mode 0600) on first use.

    Several processes may start at once on a new data dir: each writes a complete key to a
    temporary file and links it into place; only the first link wins, and everyone reads it.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
            os.chmod(tmp, 0o600)
            # If another process won the race, its key stands and we read it below.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_text().strip()
