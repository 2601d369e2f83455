"""Everyday failures: one line naming the cause, a non-zero exit, never a traceback.

Each test runs the command as a user does (a subprocess) against real servers:
a PostgreSQL that refuses, a database that does not exist, a port already taken.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from alchemiser import db
from tests.foundation.test_cli import HEADS, alchemiser

TRACEBACK = "Traceback (most recent call last)"


def plain(url: str) -> str:
    """A libpq URL as a user writes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def failed(result: subprocess.CompletedProcess[str], *causes: str, code: int = 1) -> str:
    """The error line, after checking the exit status, the causes and no traceback."""
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    assert TRACEBACK not in out
    for cause in causes:
        assert cause in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def free_port() -> Iterator[int]:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


def test_refused_database(free_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port}/postgres"
    result = alchemiser("db", "current", env={"ALCHEMISER_DATABASE_URL": url})
    failed(result, "connection refused", "ALCHEMISER_DATABASE_URL", f"127.0.0.1:{free_port}")


def test_unknown_host() -> None:
    url = "postgresql://postgres@no-such-host.invalid:5432/postgres"
    result = alchemiser("db", "current", env={"ALCHEMISER_DATABASE_URL": url})
    failed(result, "unknown host", "ALCHEMISER_DATABASE_URL")


def test_unknown_database(pg_server_url: str) -> None:
    url = plain(make_url(pg_server_url).set(database="no_such_db_here").render_as_string(False))
    result = alchemiser("db", "current", env={"ALCHEMISER_DATABASE_URL": url})
    failed(result, 'database "no_such_db_here" does not exist', "createdb")


def test_unknown_role(pg_server_url: str) -> None:
    url = plain(make_url(pg_server_url).set(username="no_such_role").render_as_string(False))
    result = alchemiser("db", "current", env={"ALCHEMISER_DATABASE_URL": url})
    failed(result, "no_such_role", "ALCHEMISER_DATABASE_URL")


def test_password_is_never_shown(free_port: int) -> None:
    url = f"postgresql://postgres:hunter2secret@127.0.0.1:{free_port}/postgres"
    result = alchemiser("db", "current", env={"ALCHEMISER_DATABASE_URL": url})
    assert "hunter2secret" not in failed(result, "connection refused")


@pytest.mark.parametrize(
    ("url", "cause"),
    [("mysql://u@h/d", "not a PostgreSQL URL"), ("not a url", "not a URL")],
)
def test_bad_database_url(url: str, cause: str) -> None:
    result = alchemiser("db", "current", env={"ALCHEMISER_DATABASE_URL": url})
    failed(result, cause, "ALCHEMISER_DATABASE_URL", code=2)


def test_a_database_behind_its_migrations_is_migrated_by_commands_that_need_it(
    empty_db_url: str,
) -> None:
    env = {"ALCHEMISER_DATABASE_URL": plain(empty_db_url)}
    assert "no migration applied" in alchemiser("db", "current", env=env).stdout
    result = alchemiser("report", "books", env=env)
    assert result.returncode == 0, result.stderr
    assert alchemiser("db", "current", env=env).stdout.count("(head)") == len(HEADS)


def test_unknown_migration_target_lists_the_known_ones(db_url: str) -> None:
    result = alchemiser("db", "downgrade", "foo", "--yes", env={"ALCHEMISER_DATABASE_URL": db_url})
    error = failed(result, "cannot migrate to 'foo'", "0001_foundation", "base")
    assert len(error.strip().splitlines()) == 1


def test_downgrade_asks_before_dropping_tables(db_url: str) -> None:
    env = {"ALCHEMISER_DATABASE_URL": plain(db_url)}
    result = alchemiser("db", "downgrade", "base", env=env, input="n\n")
    assert result.returncode == 1
    assert "drops the tables" in result.stderr
    assert TRACEBACK not in result.stderr
    # Nothing was dropped.
    assert alchemiser("db", "current", env=env).stdout.count("(head)") == len(HEADS)


def test_debug_shows_the_traceback(free_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port}/postgres"
    result = alchemiser("--debug", "db", "current", env={"ALCHEMISER_DATABASE_URL": url})
    assert result.returncode != 0
    assert TRACEBACK in result.stderr
    assert "DatabaseUnavailable" in result.stderr


def test_a_configured_strategy_that_does_not_parse(tmp_path: Path) -> None:
    (tmp_path / "broken.clj").write_text('(defsymphony "b" {}\n  (asset "SPY"\n')
    config = tmp_path / "alchemiser.toml"
    config.write_text('[[strategies]]\nid = "b"\nfile = "broken.clj"\nallocation = 0.5\n')
    result = alchemiser("data", "refresh", "--strategies", env={"ALCHEMISER_CONFIG": str(config)})
    failed(result, f"{tmp_path / 'broken.clj'}:2:3: unclosed `(`")


def test_missing_alpaca_keys(db_url: str) -> None:
    result = alchemiser("data", "refresh", "SPY", env={"ALCHEMISER_DATABASE_URL": db_url})
    failed(result, "ALPACA_API_KEY", "ALPACA_SECRET_KEY", "ALPACA_PAPER", code=2)


# ---------------------------------------------------------------- simulator flags


def test_sim_busy_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = alchemiser("sim", "--port", str(port))
    failed(result, f"port {port}", "in use", "--port 0")


@pytest.mark.parametrize(
    ("flag", "value", "cause"),
    [
        ("--now", "tomorrow", "'tomorrow' is not an ISO 8601 time"),
        ("--now", "2026-11-20T15:30:00", "needs a UTC offset"),
        ("--cash", "lots", "'lots' is not an amount"),
        ("--cash", "-5", "give a positive amount"),
        ("--history-start", "2000-13-01", "--history-start"),
    ],
)
def test_sim_bad_flags(flag: str, value: str, cause: str) -> None:
    failed(alchemiser("sim", flag, value), cause, code=2)


async def test_a_database_migrated_by_a_newer_version(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE alembic_version SET version_num = '9999_future'"
                    " WHERE version_num = (SELECT min(version_num) FROM alembic_version)"
                )
            )
    finally:
        await engine.dispose()
    result = await asyncio.to_thread(
        alchemiser, "report", "books", env={"ALCHEMISER_DATABASE_URL": plain(db_url)}
    )
    failed(result, "9999_future", "a newer alchemiser migrated it")


def test_a_closed_pipe_ends_the_output_quietly(tmp_path: Path) -> None:
    import sys

    many = tmp_path / "many.clj"
    # Far more output than a pipe buffers, so the writer meets the closed pipe.
    assets = " ".join(f'(asset "T{i:05d}")' for i in range(20_000))
    many.write_text(f"(weight-equal [{assets}])", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "alchemiser.cli", "tickers", "--where", str(many)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("T00000\t")
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(60) != 0
    assert stderr == ""


async def test_a_server_that_never_answers_is_unavailable_not_a_hang() -> None:
    # A socket that completes the TCP handshake (the backlog) but never speaks.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        engine = db.create_engine(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        try:
            with pytest.raises(db.DatabaseUnavailable, match="no answer"):
                await db.check_connection(engine, within=0.5)
        finally:
            await engine.dispose()
