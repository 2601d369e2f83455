"""Migrations and the database helpers, on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db
from alchemiser.settings import load_settings


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    return set(names) - {"alembic_version"}


async def test_every_migration_runs_down_and_up_again(empty_db_url: str) -> None:
    engine = db.create_engine(empty_db_url)
    try:
        assert await _tables(engine) == set()
        await db.upgrade(engine)
        at_head = await _tables(engine)
        assert "config_snapshots" in at_head
        assert "(head)" in await db.current(engine)

        await db.downgrade(engine, "base")
        assert await _tables(engine) == set()
        assert await db.current(engine) == ""

        await db.upgrade(engine)
        assert await _tables(engine) == at_head
    finally:
        await engine.dispose()


async def test_each_test_database_starts_at_head_and_empty(engine: AsyncEngine) -> None:
    assert "(head)" in await db.current(engine)
    async with engine.connect() as conn:
        count = await conn.scalar(text("select count(*) from config_snapshots"))
    assert count == 0


async def test_record_config_is_idempotent_and_masks_secrets(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "PKTESTKEY123")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "very-secret-value")
    settings = load_settings(tmp_path / "absent-default.toml")

    first = await db.record_config(engine, settings)
    second = await db.record_config(engine, settings)
    assert first == second
    async with engine.connect() as conn:
        rows = (await conn.execute(text("select config::text from config_snapshots"))).all()
    assert len(rows) == 1
    stored = rows[0][0]
    assert "PKTESTKEY123" not in stored
    assert "very-secret-value" not in stored
    assert '"paper": true' in stored


def test_async_url_accepts_libpq_urls_and_rejects_others() -> None:
    assert db.async_url("postgresql://u:p@h:5432/d") == "postgresql+asyncpg://u:p@h:5432/d"
    assert db.async_url("postgres://u@h/d").startswith("postgresql+asyncpg://")
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        db.async_url("sqlite:///x.db")
