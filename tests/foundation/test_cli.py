"""The `alchemiser` command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import REPO_ROOT


def _heads() -> list[str]:
    from alembic.script import ScriptDirectory

    from alchemiser import db

    return list(ScriptDirectory.from_config(db.alembic_config("postgresql://x/y")).get_heads())


HEADS = _heads()


def alchemiser(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALCHEMISER_", "ALPACA_"))}
    return subprocess.run(
        [sys.executable, "-m", "alchemiser.cli", *args],
        env={**base, **(env or {})},
        cwd=REPO_ROOT,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = alchemiser("--help")
    assert result.returncode == 0
    for command in ("db", "demo"):
        assert f"  {command} " in result.stdout
    db_help = alchemiser("db", "--help").stdout
    for sub in ("upgrade", "downgrade", "current"):
        assert sub in db_help


def test_db_upgrade_with_a_database_url_and_no_secret_in_logs(empty_db_url: str) -> None:
    plain = make_url(empty_db_url).set(drivername="postgresql").render_as_string(False)
    env = {
        "ALCHEMISER_DATABASE_URL": plain,
        "ALCHEMISER_LOG_LEVEL": "debug",
        "ALPACA_API_KEY": "PKCLIKEY0000XYZ",
        "ALPACA_SECRET_KEY": "cli-secret-zzz",
    }
    result = alchemiser("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert "database upgraded to heads" in result.stdout
    current = alchemiser("db", "current", env=env)
    assert current.stdout.count("(head)") == len(HEADS)
    down = alchemiser("db", "downgrade", "base", "--yes", env=env)
    assert down.returncode == 0, down.stderr
    assert "no migration applied" in alchemiser("db", "current", env=env).stdout
    everything = "".join(r.stdout + r.stderr for r in (result, current, down))
    assert "PKCLIKEY0000XYZ" not in everything
    assert "cli-secret-zzz" not in everything


@pytest.mark.slow
def test_db_upgrade_without_a_url_uses_the_embedded_server(tmp_path: Path) -> None:
    env = {"ALCHEMISER_DATA_DIR": str(tmp_path / "data")}
    result = alchemiser("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
    # A second process finds the same data directory, already migrated.
    current = alchemiser("db", "current", env=env)
    assert current.stdout.count("(head)") == len(HEADS)


def test_bad_configuration_exits_2_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[strategies]]\nid = "x"\nfile = "gone.clj"\nallocation = 0.5\n')
    result = alchemiser("db", "current", env={"ALCHEMISER_CONFIG": str(config)})
    assert result.returncode == 2
    assert "strategies[0].file" in result.stderr
    assert "strategy file does not exist" in result.stderr
