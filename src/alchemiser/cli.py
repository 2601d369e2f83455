"""The `alchemiser` command.

Each command is a thin shell: it parses arguments, calls into the package and
prints. Heavy imports happen inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from alchemiser.settings import Settings

# Exit status for a configuration that stops start-up.
EXIT_CONFIG = 2


def load_settings_or_exit(path: Path | None = None) -> Settings:
    """Settings with logging configured, or a clear message and exit status 2."""
    from alchemiser.logging import configure_logging, register_secrets
    from alchemiser.settings import ConfigError, load_settings

    try:
        settings = load_settings(path)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(EXIT_CONFIG)
    configure_logging(settings.log_level, settings.log_format, stream=sys.stderr)
    secrets = [settings.alpaca.api_key, settings.alpaca.secret_key, settings.database_url]
    register_secrets(s.get_secret_value() for s in secrets if s is not None)
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alchemiser")
def main() -> None:
    """Run Composer strategies on your own Alpaca account, each in its own book."""


@main.group()
def db() -> None:
    """Database schema (Alembic): upgrade, downgrade, current."""


@db.command("upgrade")
@click.argument("target", default="heads")
def db_upgrade(target: str) -> None:
    """Apply migrations up to TARGET (default: all heads)."""
    from alchemiser import db as database

    url = database.database_url(load_settings_or_exit())
    database.run(lambda engine: database.upgrade(engine, target), url)
    click.echo(f"database upgraded to {target}")


@db.command("downgrade")
@click.argument("target")
def db_downgrade(target: str) -> None:
    """Revert migrations down to TARGET (a revision, -1, or base)."""
    from alchemiser import db as database

    url = database.database_url(load_settings_or_exit())
    database.run(lambda engine: database.downgrade(engine, target), url)
    click.echo(f"database downgraded to {target}")


@db.command("current")
def db_current() -> None:
    """Show the revision(s) the database is at."""
    from alchemiser import db as database

    url = database.database_url(load_settings_or_exit())
    revision = database.run(database.current, url)
    click.echo(revision or "(empty: no migration applied)")


@main.command()
def demo() -> None:
    """Run the main job on embedded defaults: embedded Postgres, the simulator, examples."""
    from alchemiser.demo import demo_config_path, run_demo

    run_demo(load_settings_or_exit(demo_config_path()))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, help="Port (0 = any free port).")
@click.option("--seed", default=0, show_default=True, help="Seed of the market history.")
@click.option("--now", default=None, help="Simulated time at start, ISO 8601 (default: now).")
@click.option("--speed", default=1.0, show_default=True, help="Simulated seconds per second.")
@click.option("--cash", default="100000", show_default=True, help="Starting cash.")
@click.option("--fill-wait-scale", default=1.0, show_default=True, help="Scale of fill waits.")
@click.option("--history-start", default="2000-01-03", show_default=True, help="First bar day.")
def sim(now: str | None, cash: str, history_start: str, **options: Any) -> None:
    """Run a local Alpaca (REST + websockets + market model) for tests and demos."""
    from datetime import date, datetime
    from decimal import Decimal

    from alchemiser.sim.command import serve
    from alchemiser.sim.config import SimConfig

    start = datetime.fromisoformat(now) if now else None
    if start is not None and start.tzinfo is None:
        raise click.BadParameter("--now needs a UTC offset, e.g. 2026-11-20T15:30:00-05:00")
    first_day = date.fromisoformat(history_start)
    serve(SimConfig(now=start, cash=Decimal(cash), history_start=first_day, **options))


@main.group()
def data() -> None:
    """Market data: the daily bar store (refresh, show, export)."""


@data.command("refresh")
@click.argument("tickers", nargs=-1)
@click.option("--strategies", is_flag=True, help="Every ticker the configured strategies name.")
@click.option("--through", type=click.DateTime(["%Y-%m-%d"]), help="Last session to load.")
def data_refresh(tickers: tuple[str, ...], strategies: bool, through: Any) -> None:
    """Load new tickers' history and top up known ones (default: through the last close)."""
    from alchemiser.marketdata import commands

    settings = load_settings_or_exit()
    wanted = commands.resolve_tickers(settings, tickers, strategies)
    if not wanted:
        raise click.UsageError("name some TICKERS or pass --strategies")
    end = through.date() if through else None
    report = commands.run_refresh(settings, wanted, end, commands.progressbar)
    click.echo("\n".join(commands.describe_refresh(report)))
    if not report.ok:
        sys.exit(commands.EXIT_PARTIAL)


@data.command("show")
@click.argument("ticker")
@click.option("--last", "count", default=10, show_default=True, help="How many bars to list.")
def data_show(ticker: str, count: int) -> None:
    """A ticker's coverage and newest bars."""
    from alchemiser.marketdata import commands

    click.echo("\n".join(commands.show(load_settings_or_exit(), ticker, count)))


@data.command("export")
@click.option("--as-of", "as_of", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--ticker", "tickers", multiple=True, help="Only these (default: all stored).")
def data_export(as_of: Any, file: Path, tickers: tuple[str, ...]) -> None:
    """Write bars through AS_OF to FILE.parquet, the layout `evaluate --bars` reads."""
    from alchemiser.marketdata import commands

    wanted = [t.upper() for t in tickers]
    rows = commands.export(load_settings_or_exit(), as_of.date(), file, wanted)
    click.echo(f"wrote {rows} bars to {file}")


@main.command("evaluate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--bars", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as-of", "as_of", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per strategy and line.")
def evaluate_strategies(paths: tuple[Path, ...], bars: Path, as_of: Any, as_json: bool) -> None:
    """Evaluate strategy files (or folders of them) on a Parquet file of daily bars."""
    from alchemiser.evaluate_command import run_evaluate

    sys.exit(run_evaluate(paths, bars, as_of.date(), as_json=as_json, echo=click.echo))


@main.command()
@click.argument(
    "what", type=click.Choice(["books", "positions", "trades", "runs"]), default="books"
)
@click.option("--strategy", default=None, help="Only this strategy's book.")
@click.option("--limit", default=50, show_default=True, help="Rows for trades and runs.")
def report(what: str, strategy: str | None, limit: int) -> None:
    """Print the books (value, P&L), positions, recent trades or recent runs."""
    from alchemiser import db as database
    from alchemiser.books.report import render_report

    url = database.database_url(load_settings_or_exit())
    name: Any = what
    output = database.run(
        lambda engine: render_report(engine, name, strategy=strategy, limit=limit), url
    )
    click.echo(output)


if __name__ == "__main__":
    main()
