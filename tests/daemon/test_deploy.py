"""The deployment files start `alchemiser run` and are wired as the README says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

UNIT = REPO_ROOT / "config" / "alchemiser.service"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_starts_the_daemon_once_the_database_is_healthy() -> None:
    services = compose()["services"]
    db, daemon = services["db"], services["alchemiser"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.startswith("pgdata:") for v in db["volumes"])
    assert "pgdata" in compose()["volumes"]
    assert daemon["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert daemon["env_file"] == ".env"
    assert daemon["restart"] == "unless-stopped"
    assert "@db:5432/" in daemon["environment"]["ALCHEMISER_DATABASE_URL"]
    mounts = {v.split(":")[1] for v in daemon["volumes"]}
    assert {"/app/strategies", "/app/config"} <= mounts


def test_compose_publishes_health_to_this_machine_only() -> None:
    ports = compose()["services"]["alchemiser"]["ports"]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)


def test_the_image_runs_the_daemon_as_a_user_and_checks_healthz() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    assert 'CMD ["alchemiser", "run"]' in lines
    assert "USER alchemiser" in lines
    assert re.search(r"^HEALTHCHECK .*\\\n\s*CMD .*127\.0\.0\.1:8080/healthz", dockerfile, re.M)
    # Inside the container the health server must listen beyond loopback.
    assert "ALCHEMISER_DAEMON__HEALTH_HOST=0.0.0.0" in dockerfile


def test_the_env_example_names_every_secret_but_holds_none() -> None:
    example = (REPO_ROOT / ".env.example").read_text()
    values = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert values["ALPACA_API_KEY"] == "" and values["ALPACA_SECRET_KEY"] == ""


def test_the_unit_is_a_watched_notify_service_that_restarts() -> None:
    unit = UNIT.read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "EnvironmentFile=/etc/alchemiser.env",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ProtectHome=true",
        "PrivateTmp=true",
    ):
        assert line in unit.splitlines()
    assert any(line.startswith("WatchdogSec=") for line in unit.splitlines())
    assert "ExecStart=/opt/alchemiser/.venv/bin/alchemiser run" in unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # The unit names /opt/alchemiser; verify checks the command exists, so use ours.
    ours = str(Path(sys.executable).parent / "alchemiser")
    unit = tmp_path / "alchemiser.service"
    unit.write_text(UNIT.read_text().replace("/opt/alchemiser/.venv/bin/alchemiser", ours))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert str(unit) not in done.stderr, done.stderr  # unknown keys are only warnings
