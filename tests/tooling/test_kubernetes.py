"""deploy/kubernetes renders with `kubectl kustomize` (Debian's kubernetes-client) and every
manifest of every overlay is valid against the Kubernetes schemas (kubernetes-validate)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
VERSION = "1.32.0"  # the oldest Kubernetes the manifests promise to run on
# ./musterctl test installs Debian's kubernetes-client where kubectl is missing.
KUBECTL = shutil.which("kubectl") or "kubectl"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[dict]]:
    """Each overlay (and the base) rendered, from a copy holding the example secrets file."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    production = copy / "overlays" / "production"
    shutil.copy(production / "secrets.env.example", production / "secrets.env")
    out = {}
    for name, path in [("base", copy / "base"), ("production", production)]:
        text = subprocess.run(
            [KUBECTL, "kustomize", str(path)], capture_output=True, text=True, check=True
        ).stdout
        out[name] = [doc for doc in yaml.safe_load_all(text) if doc]
    return out


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("overlay", ["base", "production"])
def test_every_manifest_is_valid_kubernetes(rendered, overlay):
    assert rendered[overlay]
    for doc in rendered[overlay]:
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_the_deployments_and_their_probes_by_role(rendered):
    docs = rendered["production"]
    deployments = by_kind(docs, "Deployment")
    assert set(deployments) == {"muster-web", "muster-ws", "muster-worker"}

    def container(name: str) -> dict:
        [one] = deployments[name]["spec"]["template"]["spec"]["containers"]
        return one

    assert container("muster-web")["readinessProbe"]["httpGet"]["path"] == "/readyz"
    worker = container("muster-worker")
    assert worker["readinessProbe"]["exec"]["command"] == [
        "python",
        "manage.py",
        "ready",
        "--role",
        "worker",
    ]
    # The tick runs in the workers, under its lease.
    assert "-B" in worker["command"]
    assert "muster.beat:LeasedScheduler" in worker["command"]
    assert not [d for d in docs if "beat" in d["metadata"]["name"]]
    for name in deployments:
        assert container(name)["envFrom"] == [
            {"configMapRef": {"name": by_name(docs, "ConfigMap", "muster-config")}},
            {"secretRef": {"name": by_name(docs, "Secret", "muster-secrets")}},
        ]


def by_name(docs: list[dict], kind: str, prefix: str) -> str:
    """The generated name (with its hash) of the `kind` whose name starts with `prefix`."""
    [name] = [n for n in by_kind(docs, kind) if n.startswith(prefix)]
    return name


def test_the_web_tier_scales_and_the_stores_are_outside(rendered):
    docs = rendered["production"]
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["muster-web"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "muster-web"
    assert hpa["spec"]["minReplicas"] >= 2
    services = by_kind(docs, "Service")
    assert services["postgres"]["spec"]["type"] == "ExternalName"
    assert services["redis"]["spec"]["type"] == "ExternalName"
    assert not by_kind(docs, "StatefulSet")


def test_secrets_come_from_an_uncommitted_file(rendered):
    ignored = (ROOT / ".gitignore").read_text()
    assert "deploy/kubernetes/overlays/production/secrets.env" in ignored
    assert not (KUBERNETES / "overlays" / "production" / "secrets.env").exists()
