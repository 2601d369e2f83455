"""The `alchemiser` command.

Each command is a thin shell: it parses arguments, calls into the package and
prints. Heavy imports happen inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from alchemiser.errors import UserError, explain

if TYPE_CHECKING:
    from alchemiser.settings import Settings

LOG_LEVEL_ENV = "ALCHEMISER_LOG_LEVEL"
# Exit status of a failure that is a bug, not an everyday problem (sysexits' EX_SOFTWARE).
EXIT_BUG = 70


def load_settings_or_exit(path: Path | None = None) -> Settings:
    """Settings with logging configured; a bad configuration is a UserError (exit 2)."""
    from alchemiser.logging import configure_logging, register_secrets
    from alchemiser.settings import load_settings

    settings = load_settings(path)
    configure_logging(settings.log_level, settings.log_format, stream=sys.stderr)
    alpaca = settings.alpaca
    register_secrets([alpaca.api_key.get_secret_value(), alpaca.secret_key.get_secret_value()])
    if settings.database_url is not None:
        password = _password(settings.database_url.get_secret_value())
        register_secrets([password, quote(password, safe="")])  # as typed, and URL-encoded
    return settings


def _password(url: str) -> str:
    """The URL's password (masked in every line; the rest of the URL helps diagnose)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password or ""
    except ArgumentError:
        return url


def debugging() -> bool:
    return os.environ.get(LOG_LEVEL_ENV, "").lower() == "debug"


class _Main(click.Group):
    """The one place an exception becomes a message and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`alchemiser tickers ... | head`): stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except Exception as exc:
            if debugging():
                raise
            from alchemiser.logging import mask

            problem = explain(exc)
            if problem is None:
                click.echo(
                    mask(f"error: unexpected {type(exc).__name__}: {exc}\n")
                    + "  (a bug: run again with --debug for the traceback, and report it)",
                    err=True,
                )
                ctx.exit(EXIT_BUG)
            click.echo(mask(f"error: {problem}"), err=True)
            ctx.exit(problem.exit_code)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alchemiser")
@click.option("--debug", is_flag=True, help="Debug logs, and the traceback of any failure.")
def main(debug: bool) -> None:
    """Run Composer strategies on your own Alpaca account, each in its own book."""
    if debug:
        os.environ[LOG_LEVEL_ENV] = "debug"


@main.group()
def db() -> None:
    """Database schema (Alembic): upgrade, downgrade, current; psql on it: shell."""


@db.command("upgrade")
@click.argument("target", default="heads")
def db_upgrade(target: str) -> None:
    """Apply migrations up to TARGET (default: all heads)."""
    from alchemiser import db as database

    database.check_target(target)
    url = database.database_url(load_settings_or_exit())
    database.run(lambda engine: database.upgrade(engine, target), url)
    click.echo(f"database upgraded to {target}")


@db.command("downgrade")
@click.argument("target")
@click.option("--yes", is_flag=True, help="Do not ask before dropping tables.")
def db_downgrade(target: str, yes: bool) -> None:
    """Revert migrations down to TARGET (a revision, -1, or base): drops tables and data."""
    from alchemiser import db as database

    database.check_target(target)
    url = database.database_url(load_settings_or_exit())
    if not yes:
        click.confirm(
            f"Downgrading to {target} drops the tables of every later migration, with their"
            " data. Continue?",
            abort=True,
            err=True,
        )
    database.run(lambda engine: database.downgrade(engine, target), url)
    click.echo(f"database downgraded to {target}")


@db.command("current")
def db_current() -> None:
    """Show the revision(s) the database is at."""
    from alchemiser import db as database

    url = database.database_url(load_settings_or_exit())
    revision = database.run(database.current, url)
    click.echo(revision or "(empty: no migration applied)")


@db.command(
    "shell", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option("--demo", "of_demo", is_flag=True, help="The demo's database (alchemiser_demo).")
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def db_shell(of_demo: bool, psql_args: tuple[str, ...]) -> None:
    """Open psql on the ledger; PSQL_ARGS go to psql (e.g. -c "select * from book_value")."""
    from alchemiser.dbshell import demo_url, ledger_url, run_psql

    if of_demo:
        from alchemiser.demo import DEMO_DATABASE, demo_config_path

        url = demo_url(load_settings_or_exit(demo_config_path()), DEMO_DATABASE)
    else:
        url = ledger_url(load_settings_or_exit())
    sys.exit(run_psql(url, psql_args))


@main.command()
def demo() -> None:
    """Two trading days of the daily run on the simulator, embedded Postgres and the examples."""
    from alchemiser.demo import demo_config_path, run_demo

    run_demo(load_settings_or_exit(demo_config_path()))


@main.command("trade-now")
@click.option("--dry-run", is_flag=True, help="Plan and save the plan, print it, send nothing.")
def trade_now(dry_run: bool) -> None:
    """Run today's rebalance now: evaluate, plan, sell, buy, reconcile (once a day)."""
    from alchemiser.run.command import summary
    from alchemiser.run.command import trade_now as run_trade_now

    report = run_trade_now(load_settings_or_exit(), dry_run=dry_run)
    click.echo("\n".join(summary(report)))


@main.command("run")
def run_command() -> None:
    """The daemon: the daily run on the broker's schedule, health and metrics, until stopped."""
    from alchemiser.daemon.app import run_daemon

    run_daemon(load_settings_or_exit())


@main.command("halt")
@click.argument("strategy", required=False)
@click.option("--reason", default=None, help="Kept with the halt and shown by the gate.")
def halt_command(strategy: str | None, reason: str | None) -> None:
    """Kill switch: stop every new order at once, or (STRATEGY) hold one book as it is."""
    from alchemiser import db as database
    from alchemiser.books import halts

    scope = strategy or halts.EVERYTHING

    async def write(engine: Any) -> None:
        async with engine.begin() as conn:
            await halts.halt(conn, scope, reason)

    database.run(write, database.database_url(load_settings_or_exit()), migrate=True)
    what = f"strategy {strategy} is held" if strategy else "all new orders are stopped"
    lift = "alchemiser resume" + (f" {strategy}" if strategy else "")
    click.echo(f"halted: {what}; `{lift}` lifts it")


@main.command("resume")
@click.argument("strategy", required=False)
def resume_command(strategy: str | None) -> None:
    """Lift `alchemiser halt` (everything, or one STRATEGY's hold)."""
    from alchemiser import db as database
    from alchemiser.books import halts

    scope = strategy or halts.EVERYTHING

    async def write(engine: Any) -> bool:
        async with engine.begin() as conn:
            return await halts.resume(conn, scope)

    lifted = database.run(write, database.database_url(load_settings_or_exit()), migrate=True)
    click.echo(f"resumed: {strategy or 'trading'}" if lifted else "there was no such halt")


def _sim_now(_: click.Context, __: click.Parameter, value: str | None) -> Any:
    from datetime import datetime

    if value is None:
        return None
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    if start.tzinfo is None:
        raise click.BadParameter("needs a UTC offset, e.g. 2026-11-20T15:30:00-05:00")
    return start


def _sim_cash(_: click.Context, __: click.Parameter, value: str) -> Any:
    from decimal import Decimal, InvalidOperation

    try:
        cash = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not an amount, e.g. 100000") from None
    if not cash.is_finite() or cash < 0:
        raise click.BadParameter(f"{value!r}: give a positive amount, e.g. 100000")
    return cash


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, help="Port (0 = any free port).")
@click.option("--seed", default=0, show_default=True, help="Seed of the market history.")
@click.option(
    "--now", default=None, callback=_sim_now, help="Simulated time at start, ISO 8601 with offset."
)
@click.option("--speed", default=1.0, show_default=True, help="Simulated seconds per second.")
@click.option("--cash", default="100000", show_default=True, callback=_sim_cash, help="Cash.")
@click.option("--fill-wait-scale", default=1.0, show_default=True, help="Scale of fill waits.")
@click.option(
    "--history-start",
    default="2000-01-03",
    show_default=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First bar day.",
)
def sim(history_start: Any, **options: Any) -> None:
    """Run a local Alpaca (REST + websockets + market model) for tests and demos."""
    from alchemiser.sim.command import serve
    from alchemiser.sim.config import SimConfig

    config = SimConfig(history_start=history_start.date(), **options)
    try:
        serve(config)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise UserError(
            f"port {config.port} on {config.host} is in use (another simulator?):"
            " pick another with --port, or --port 0 for any free port"
        ) from exc


@main.group()
def data() -> None:
    """Market data: the daily bar store (refresh, show, export)."""


STRATEGY_PATHS = click.Path(exists=True, path_type=Path)


@data.command("refresh")
@click.argument("tickers", nargs=-1)
@click.option("--strategies", is_flag=True, help="Every ticker the configured strategies name.")
@click.option(
    "--for",
    "files",
    multiple=True,
    type=STRATEGY_PATHS,
    help="Every ticker this strategy file (or folder of them) names; repeatable.",
)
@click.option("--through", type=click.DateTime(["%Y-%m-%d"]), help="Last session to load.")
def data_refresh(
    tickers: tuple[str, ...], strategies: bool, files: tuple[Path, ...], through: Any
) -> None:
    """Load new tickers' history and top up known ones (default: through the last close).

    `--for` takes one path; to name several, repeat it or list them after it:
    `alchemiser data refresh --for a.clj b.clj` treats b.clj as a strategy too.
    """
    from alchemiser.marketdata import commands

    settings = load_settings_or_exit()
    paths = [*files, *(Path(t) for t in tickers if t.endswith(".clj") or Path(t).is_dir())]
    names = [t for t in tickers if Path(t) not in paths]
    wanted = commands.resolve_tickers(settings, names, strategies, paths)
    if not wanted:
        raise click.UsageError("name some TICKERS, pass --strategies or --for FILE.clj")
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
@click.argument("paths", nargs=-1, required=True, type=STRATEGY_PATHS)
@click.option(
    "--bars",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Parquet file of daily bars instead of the bar store.",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Session to evaluate (default: the latest: the last close, or the file's last day).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per strategy and line.")
def evaluate_strategies(
    paths: tuple[Path, ...], bars: Path | None, as_of: Any, as_json: bool
) -> None:
    """Evaluate strategy files (or folders of them) on the bar store's daily bars."""
    from alchemiser import evaluate_command as ev
    from alchemiser.dsl import PriceHistory
    from alchemiser.tickers import strategy_files

    files = strategy_files(paths)
    if bars is None:
        from alchemiser.marketdata.refresh import last_completed_session

        day = as_of.date() if as_of else last_completed_session()
        prices = ev.store_prices(load_settings_or_exit(), files, day)
    else:
        import polars as pl

        try:
            frame = ev.read_bars_file(bars)
        except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
            raise UserError(f"cannot read bars: {exc}") from exc
        day = as_of.date() if as_of else frame["date"].max()
        prices = PriceHistory(frame)
    sys.exit(ev.run_evaluate(files, prices, day, as_json=as_json, echo=click.echo))


@main.command("backtest")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--start", required=True, help="First session (YYYY-MM-DD).")
@click.option("--end", required=True, help="Last session (YYYY-MM-DD).")
@click.option(
    "--bars",
    type=click.Path(path_type=Path),
    help="A Parquet file of daily bars instead of the bar store.",
)
@click.option("--capital", default="10000", show_default=True, help="Each book's starting value.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per strategy and line.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write values.parquet, allocations.parquet, charts and report.html here.",
)
def backtest_command(  # click passes every option by keyword
    *,
    paths: tuple[Path, ...],
    start: str,
    end: str,
    bars: Path | None,
    capital: str,
    as_json: bool,
    out: Path | None,
) -> None:
    """Backtest strategy files (default: the configured ones) and the configured account."""
    from alchemiser.backtest.cli import backtest_main

    settings = load_settings_or_exit()
    sys.exit(
        backtest_main(
            settings,
            paths,
            start,
            end,
            bars=bars,
            capital=capital,
            as_json=as_json,
            out=out,
            echo=click.echo,
        )
    )


@main.command("tickers")
@click.argument("paths", nargs=-1, required=True, type=STRATEGY_PATHS)
@click.option("--where", is_flag=True, help="With the file:line:column of each first use.")
def tickers_command(paths: tuple[Path, ...], where: bool) -> None:
    """List the tickers strategy files (or folders of them) name, one per line."""
    from alchemiser.tickers import read_strategy, strategy_files, ticker_uses

    seen: set[str] = set()
    for path in strategy_files(paths):
        for use in ticker_uses(read_strategy(path)):
            if where:
                click.echo(f"{use.ticker}\t{path}:{use.line}:{use.column}")
            elif use.ticker not in seen:
                click.echo(use.ticker)
            seen.add(use.ticker)


@main.command()
@click.argument(
    "what",
    type=click.Choice(["books", "positions", "trades", "runs", "execution"]),
    default="books",
)
@click.option("--strategy", default=None, help="Only this strategy's book.")
@click.option("--limit", default=50, show_default=True, help="Rows for trades, runs, execution.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="A table for people; JSON or CSV (exact numbers) for programs.",
)
def report(what: str, strategy: str | None, limit: int, fmt: str) -> None:
    """Print the books (value, P&L), positions, recent trades, runs or execution quality."""
    from alchemiser import db as database
    from alchemiser.books.report import UnknownBook, render_report

    url = database.database_url(load_settings_or_exit())
    name: Any = what
    style: Any = fmt
    try:
        output = database.run(
            lambda engine: render_report(engine, name, strategy=strategy, limit=limit, fmt=style),
            url,
            migrate=True,
        )
    except UnknownBook as exc:
        raise UserError(str(exc)) from None
    click.echo(output)


@main.command()
def check() -> None:
    """Pre-flight: configuration, strategy files, broker, database and data; exit 0 if ready."""
    from alchemiser import preflight
    from alchemiser.settings import ConfigError

    try:
        settings = load_settings_or_exit()
    except ConfigError as exc:
        checks = [preflight.Check("configuration", False, str(exc).replace("\n", " "))]
    else:
        checks = preflight.run_checks(settings)
    preflight.render(checks, click.echo)
    sys.exit(0 if all(c.ready for c in checks) else 1)


if __name__ == "__main__":
    main()
