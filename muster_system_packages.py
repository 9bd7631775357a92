"""The system packages `./musterctl` needs: which ones this machine lacks, and installing them.

Stdlib only, like muster_services. `Machine.inspect()` looks at the machine once; everything else
here decides from that snapshot (pure, so tests can hand it any machine), and `install` carries
out the decision with apt-get, as root or through sudo. Where there is no apt-get (macOS with
Homebrew, another distribution), `InstallRefused` names the packages to install by hand.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from muster_services import ServiceError, find_postgres_bindir, find_redis_server

EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
ALERTMANAGER_SERVICE = "prometheus-alertmanager.service"


@dataclass(frozen=True)
class Package:
    """A system package: its Debian name, its Homebrew name, and what Muster needs it for."""

    debian: str
    needed_for: str
    homebrew: str | None = None  # a formula
    homebrew_cask: str | None = None


POSTGRESQL = Package("postgresql", "the tests' throwaway database", homebrew="postgresql@17")
REDIS = Package(
    "redis-server", "the tests' throwaway broker, channel layer and cache", homebrew="redis"
)
CHROMIUM = Package(
    "chromium", "the browser tests, which drive it with Playwright", homebrew_cask="chromium"
)
EMOJI_FONTS = Package(
    "fonts-noto-color-emoji",
    "the war-room bot's emoji in the browser tests' screenshots",
    homebrew_cask="font-noto-color-emoji",
)
ALERTMANAGER = Package(
    "prometheus-alertmanager", "the test against a real Alertmanager", homebrew="alertmanager"
)
KUBECTL = Package(
    "kubernetes-client",
    "rendering deploy/kubernetes with `kubectl kustomize` in a test",
    homebrew="kubernetes-cli",
)
# Homebrew's and python.org's Pythons have venv and ensurepip: Debian's alone ships them apart.
PYTHON_VENV = Package("python3-venv", "`python3 -m venv`, which creates .venv")

SERVICES = (POSTGRESQL, REDIS)
TESTS = (POSTGRESQL, REDIS, CHROMIUM, EMOJI_FONTS, ALERTMANAGER, KUBECTL)


@dataclass(frozen=True)
class Machine:
    """What this machine has, as far as Muster's development commands care."""

    present: frozenset[str]  # the Debian names of the packages whose programs or files are here
    can_create_venv: bool  # .venv exists, or this Python has venv and ensurepip
    platform: str  # sys.platform
    has_apt_get: bool
    is_root: bool
    has_sudo: bool
    has_systemd: bool  # systemd runs this machine (it starts Debian's Alertmanager service)

    @classmethod
    def inspect(cls, venv_python: str) -> Machine:
        """Look at this machine: which packages are here, and how packages could be installed."""
        found = {
            POSTGRESQL.debian: _finds(find_postgres_bindir),
            REDIS.debian: _finds(find_redis_server),
            # As tests/browser/conftest.py looks for it.
            CHROMIUM.debian: bool(os.environ.get("MUSTER_CHROMIUM") or shutil.which("chromium")),
            EMOJI_FONTS.debian: os.path.exists(EMOJI_FONT) or bool(glob.glob(_MAC_EMOJI_FONT)),
            # As tests/system/test_real_alertmanager.py looks for it.
            ALERTMANAGER.debian: bool(
                shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
            ),
            # As tests/tooling/test_kubernetes.py looks for it.
            KUBECTL.debian: shutil.which("kubectl") is not None,
        }
        return cls(
            present=frozenset(name for name, here in found.items() if here),
            can_create_venv=os.path.exists(venv_python) or _has_venv_module(),
            platform=sys.platform,
            has_apt_get=shutil.which("apt-get") is not None,
            is_root=os.geteuid() == 0,
            has_sudo=shutil.which("sudo") is not None,
            has_systemd=os.path.isdir("/run/systemd/system") and bool(shutil.which("systemctl")),
        )


_MAC_EMOJI_FONT = "/System/Library/Fonts/Apple Color Emoji.tt[cf]"  # macOS has its own


class InstallRefused(RuntimeError):
    """Missing packages cannot be installed here; the message names them and says how."""


@dataclass(frozen=True)
class InstallPlan:
    """The commands that install the missing packages with apt-get."""

    packages: tuple[Package, ...]
    commands: tuple[tuple[str, ...], ...]  # each must succeed
    afterwards: tuple[tuple[str, ...], ...]  # each may fail: tidying up, not installing

    def announcement(self) -> str:
        """Return what is about to be installed and why, for the person watching."""
        return f"installing with apt-get what this machine lacks:\n{_listing(self.packages)}"


def missing(wanted: Iterable[Package], machine: Machine) -> list[Package]:
    """Return the packages of `wanted` that `machine` lacks, in the order wanted."""
    lacking = []
    for package in wanted:
        here = (
            machine.can_create_venv if package is PYTHON_VENV else package.debian in machine.present
        )
        if not here and package not in lacking:
            lacking.append(package)
    return lacking


def plan_install(packages: list[Package], machine: Machine, *, interactive: bool) -> InstallPlan:
    """Return how to install `packages` on `machine`, or raise InstallRefused saying why not.

    `interactive`: someone at a terminal could type sudo's password; otherwise (CI) sudo must not
    ask, so that a run without rights fails at once instead of waiting for ever.
    """
    if not machine.has_apt_get:
        raise InstallRefused(manual_install_message(packages, machine.platform))
    if machine.is_root:
        sudo: tuple[str, ...] = ()
    elif machine.has_sudo:
        sudo = ("sudo",) if interactive else ("sudo", "-n")
    else:
        names = " ".join(package.debian for package in packages)
        raise InstallRefused(
            f"this machine lacks:\n{_listing(packages)}\nand installing them needs root: run "
            f"`apt-get install {names}` as root (or install sudo), then try again."
        )
    names = tuple(package.debian for package in packages)
    # Wait for a dpkg lock another apt-get holds (a second ./musterctl, an unattended upgrade).
    apt_get = ("apt-get", "-o", "DPkg::Lock::Timeout=300")
    install = ("env", "DEBIAN_FRONTEND=noninteractive", *apt_get, "install", "-y", "-qq")
    commands = (
        (*sudo, *apt_get, "update", "-qq"),
        (*sudo, *install, "--no-install-recommends", *names),
    )
    afterwards: tuple[tuple[str, ...], ...] = ()
    if ALERTMANAGER in packages and machine.has_systemd:
        # The tests start their own Alertmanager on a free loopback port; Debian's package also
        # starts a system-wide one, listening on every interface, which nobody asked for.
        afterwards = ((*sudo, "systemctl", "disable", "--now", ALERTMANAGER_SERVICE),)
    return InstallPlan(tuple(packages), commands, afterwards)


def manual_install_message(packages: list[Package], platform: str) -> str:
    """Return the message for a machine without apt-get: what to install, and with what."""
    lines = [f"this machine lacks:\n{_listing(packages)}\nand has no apt-get to install them."]
    if platform == "darwin":
        formulas = [package.homebrew for package in packages if package.homebrew]
        casks = [package.homebrew_cask for package in packages if package.homebrew_cask]
        lines.append("With Homebrew:")
        if formulas:
            lines.append(f"    brew install {' '.join(formulas)}")
        if casks:
            lines.append(f"    brew install --cask {' '.join(casks)}")
        if POSTGRESQL in packages:
            lines.append(
                "postgresql@17 is keg-only: put its bin/ on PATH (`brew info postgresql@17`)."
            )
        if others := [package.debian for package in packages if not _on_homebrew(package)]:
            lines.append(f"Install by other means: {', '.join(others)}")
        if CHROMIUM in packages:
            lines.append(
                "Point the browser tests at Chromium: export "
                "MUSTER_CHROMIUM=/Applications/Chromium.app/Contents/MacOS/Chromium"
            )
    else:
        lines.append("Install them with your package manager (the names above are Debian's).")
    return "\n".join(lines)


def install(plan: InstallPlan) -> None:
    """Run `plan`'s commands; raise InstallRefused naming the one that failed."""
    for command in plan.commands:
        if subprocess.run(command, stdin=subprocess.DEVNULL).returncode:
            raise InstallRefused(f"`{' '.join(command)}` failed; see its output above")
    for command in plan.afterwards:
        subprocess.run(command, stdin=subprocess.DEVNULL)


def _on_homebrew(package: Package) -> bool:
    return bool(package.homebrew or package.homebrew_cask)


def _listing(packages: Iterable[Package]) -> str:
    return "\n".join(f"    {package.debian}: {package.needed_for}" for package in packages)


def _finds(find: Callable[[], object]) -> bool:
    with contextlib.suppress(ServiceError):
        find()
        return True
    return False


def _has_venv_module() -> bool:
    # Debian ships ensurepip, which `python3 -m venv` needs, apart, in python3-venv.
    probe = [sys.executable, "-c", "import ensurepip, venv"]
    return subprocess.run(probe, capture_output=True).returncode == 0
