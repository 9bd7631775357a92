"""Where the benchmarks live, and the one Python they run under: the project's .venv.

Stdlib only: each script imports it first, before anything of the project's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def run_in_venv() -> None:
    """Re-run this script under .venv's Python (Django, psycopg, …), whatever `python` started
    it; then let it import the project and the other benchmark modules."""
    if Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
        if not VENV_PYTHON.exists():
            sys.exit(f"{sys.argv[0]} needs the project's packages: run ./musterctl setup first")
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv])  # noqa: S606
    sys.path[:0] = [str(ROOT), str(BENCH)]
