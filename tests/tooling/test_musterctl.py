"""`./musterctl`'s own choices: what `check` runs, and the commands its help names."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def musterctl():
    # musterctl has no .py suffix; load it as the module it is (dataclasses need it registered).
    loader = importlib.machinery.SourceFileLoader("musterctl", str(ROOT / "musterctl"))
    spec = importlib.util.spec_from_loader("musterctl", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["musterctl"] = module
    try:
        loader.exec_module(module)
        yield module
    finally:
        del sys.modules["musterctl"]


def test_check_lints_and_formats_musterctl_too_and_builds_the_docs_strictly(musterctl):
    steps = {step.name: step.argv for step in musterctl.CHECK_STEPS}

    assert steps["ruff check"] == ("ruff", "check", ".", "musterctl")
    assert steps["ruff format --check"] == ("ruff", "format", "--check", ".", "musterctl")
    assert steps["mkdocs build --strict"][:3] == ("mkdocs", "build", "--strict")


@pytest.mark.parametrize("command", ["up", "test", "check", "docs", "services", "setup"])
def test_every_command_is_in_the_help(musterctl, command):
    assert f"./musterctl {command}" in musterctl.__doc__


def test_an_unknown_command_prints_the_help_and_fails(musterctl, capsys):
    assert musterctl.main(["deploy"]) == 2
    assert "./musterctl check" in capsys.readouterr().err
