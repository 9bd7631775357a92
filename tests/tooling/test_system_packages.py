"""What `./musterctl` installs on a machine that lacks something, and what it says where it can't.

Pure: each test hands muster_system_packages a made-up machine; nothing is installed.
"""

from __future__ import annotations

import dataclasses

import pytest

from muster_system_packages import (
    ALERTMANAGER,
    CHROMIUM,
    EMOJI_FONTS,
    KUBECTL,
    POSTGRESQL,
    PYTHON_VENV,
    REDIS,
    SERVICES,
    TESTS,
    InstallRefused,
    Machine,
    missing,
    plan_install,
)

EVERYTHING = frozenset(package.debian for package in TESTS)
DEBIAN_AS_ROOT = Machine(
    present=EVERYTHING,
    can_create_venv=True,
    platform="linux",
    has_apt_get=True,
    is_root=True,
    has_sudo=False,
    has_systemd=True,
)


def machine(**changes) -> Machine:
    return dataclasses.replace(DEBIAN_AS_ROOT, **changes)


def without(*packages) -> frozenset[str]:
    return EVERYTHING - {package.debian for package in packages}


def test_a_machine_with_everything_lacks_nothing():
    assert missing([*TESTS, PYTHON_VENV], DEBIAN_AS_ROOT) == []


def test_a_fresh_debian_lacks_every_package_the_tests_need_in_order():
    fresh = machine(present=frozenset(), can_create_venv=False)

    assert missing([*TESTS, PYTHON_VENV], fresh) == [
        POSTGRESQL,
        REDIS,
        CHROMIUM,
        EMOJI_FONTS,
        ALERTMANAGER,
        KUBECTL,
        PYTHON_VENV,
    ]


def test_services_need_only_postgresql_and_redis():
    no_browser = machine(present=without(CHROMIUM, EMOJI_FONTS, ALERTMANAGER))

    assert missing(SERVICES, no_browser) == []
    assert missing(TESTS, no_browser) == [CHROMIUM, EMOJI_FONTS, ALERTMANAGER]


def test_python3_venv_is_missing_only_where_no_venv_can_be_created():
    assert missing([PYTHON_VENV], machine(can_create_venv=True)) == []
    assert missing([PYTHON_VENV], machine(can_create_venv=False)) == [PYTHON_VENV]


def test_root_installs_with_apt_get_directly_and_disables_debians_alertmanager():
    plan = plan_install([REDIS, ALERTMANAGER], DEBIAN_AS_ROOT, interactive=False)

    update, install = plan.commands
    assert update[0] == "apt-get" and "update" in update
    assert install[:2] == ("env", "DEBIAN_FRONTEND=noninteractive")
    assert install[-3:] == ("--no-install-recommends", "redis-server", "prometheus-alertmanager")
    assert "install" in install and "-y" in install
    assert plan.afterwards == (
        ("systemctl", "disable", "--now", "prometheus-alertmanager.service"),
    )
    assert "redis-server: the tests' throwaway broker" in plan.announcement()


def test_no_systemctl_call_without_alertmanager_or_without_systemd():
    assert plan_install([REDIS], DEBIAN_AS_ROOT, interactive=False).afterwards == ()
    no_systemd = machine(has_systemd=False)
    assert plan_install([ALERTMANAGER], no_systemd, interactive=False).afterwards == ()


@pytest.mark.parametrize(("interactive", "sudo"), [(True, ("sudo",)), (False, ("sudo", "-n"))])
def test_a_user_installs_through_sudo_which_never_waits_for_a_password_in_ci(interactive, sudo):
    user = machine(is_root=False, has_sudo=True)

    plan = plan_install([POSTGRESQL, ALERTMANAGER], user, interactive=interactive)

    for command in (*plan.commands, *plan.afterwards):
        assert command[: len(sudo)] == sudo
        assert command[len(sudo)] != "sudo"


def test_a_user_without_sudo_is_told_what_to_install_as_root():
    with pytest.raises(InstallRefused) as refused:
        plan_install([POSTGRESQL, REDIS], machine(is_root=False, has_sudo=False), interactive=True)

    assert "apt-get install postgresql redis-server` as root" in str(refused.value)


def test_macos_gets_the_homebrew_commands_and_installs_nothing():
    mac = machine(has_apt_get=False, platform="darwin", is_root=False, has_sudo=True)

    with pytest.raises(InstallRefused) as refused:
        plan_install([POSTGRESQL, REDIS, CHROMIUM, ALERTMANAGER], mac, interactive=True)

    message = str(refused.value)
    assert "has no apt-get" in message
    assert "brew install postgresql@17 redis alertmanager" in message
    assert "brew install --cask chromium" in message
    assert "MUSTER_CHROMIUM=" in message


def test_another_platform_without_apt_get_gets_the_debian_names():
    other = machine(has_apt_get=False, platform="linux")

    with pytest.raises(InstallRefused) as refused:
        plan_install([POSTGRESQL, EMOJI_FONTS], other, interactive=False)

    message = str(refused.value)
    assert "postgresql: the tests' throwaway database" in message
    assert "fonts-noto-color-emoji" in message
    assert "brew" not in message
