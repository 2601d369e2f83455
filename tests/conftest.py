"""Shared fixtures: a real PostgreSQL for the session, a migrated database per test.

`TEST_DATABASE_URL` selects a server (any database on it; we create our own);
without it an embedded PostgreSQL is started for the session. Each test that asks
for `db_url` / `engine` gets a fresh database cloned from a template that was
built by running the Alembic migrations (never `create_all`).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """An asyncpg URL of a PostgreSQL server (TEST_DATABASE_URL, else embedded)."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield db.async_url(configured)
        return
    # Not under pytest's basetemp: concurrent pytest runs rotate (delete) old basetemps.
    yield db.start_embedded(Path(tempfile.mkdtemp(prefix="alchemiser-test-pg-")), scratch=True)


@pytest.fixture(scope="session")
async def migrated_template(pg_server_url: str) -> AsyncIterator[str]:
    """A database built by `alembic upgrade heads`, cloned for each test."""
    name = f"alchemiser_template_{uuid.uuid4().hex[:8]}"
    url = await db.create_database(pg_server_url, name)
    engine = db.create_engine(url)
    try:
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    yield name
    await db.drop_database(pg_server_url, name)


@pytest.fixture
async def empty_db_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh database with no migration applied."""
    name = f"alchemiser_test_{uuid.uuid4().hex[:12]}"
    url = await db.create_database(pg_server_url, name)
    yield url
    await db.drop_database(pg_server_url, name)


@pytest.fixture
async def db_url(pg_server_url: str, migrated_template: str) -> AsyncIterator[str]:
    """A fresh database at the newest schema."""
    name = f"alchemiser_test_{uuid.uuid4().hex[:12]}"
    url = await db.create_database(pg_server_url, name, template=migrated_template)
    yield url
    await db.drop_database(pg_server_url, name)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = db.create_engine(db_url)
    yield eng
    await eng.dispose()


DB_FIXTURES = {"pg_server_url", "empty_db_url", "db_url", "engine", "migrated_template"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the database `db`, so CI can re-run them on another server."""
    for item in items:
        if DB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
