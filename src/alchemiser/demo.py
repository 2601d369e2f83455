"""`alchemiser demo`: as much of the daily job as has landed, on embedded defaults."""

from __future__ import annotations

import click

from alchemiser import db
from alchemiser.settings import Settings


def run_demo(settings: Settings) -> None:
    click.echo("1. database: migrating (embedded PostgreSQL unless ALCHEMISER_DATABASE_URL is set)")
    url = db.database_url(settings)
    db.run(db.upgrade, url)
    revision = db.run(db.current, url)
    click.echo(f"   schema at {revision}")
    digest = db.run(lambda engine: db.record_config(engine, settings), url)
    click.echo(f"   configuration journalled as {digest[:12]}")
    click.echo(f"2. strategies configured: {len(settings.strategies)}")
    for strategy in settings.strategies:
        click.echo(f"   {strategy.id}: {strategy.file} ({strategy.allocation:.0%})")
