"""Everyday failures as one line a person can act on.

Each module raises a typed `UserError` where it knows the cause (the database
layer for connections and migrations, the Alpaca adapters for keys and reach);
`explain` turns the few foreign exceptions that reach the command line as they
are (a bad configuration, a strategy file that does not parse) into one as well. The
command line prints the message and exits non-zero; `--debug` shows the traceback.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_CONFIG = 2
KEYS_HELP = (
    "set ALPACA_API_KEY and ALPACA_SECRET_KEY to your Alpaca keys, and ALPACA_PAPER=true"
    " for paper keys or ALPACA_PAPER=false for live ones"
)


class UserError(Exception):
    """A failure the user can fix; the message says what happened and what to do."""

    exit_code = EXIT_FAILURE


class DatabaseUnavailable(UserError):
    """The database server cannot be reached, refuses us, or has no such database."""


class DatabaseUrlError(UserError, ValueError):
    exit_code = EXIT_CONFIG


class SchemaError(UserError):
    """The database's schema is not one this version knows (or a migration target is unknown)."""


class AlpacaKeysMissing(UserError):
    exit_code = EXIT_CONFIG


class AlpacaKeysRejected(UserError):
    pass


class AlpacaUnreachable(UserError):
    pass


class StrategyFileError(UserError):
    """A strategy file does not parse (the message starts with file:line:column)."""


def explain(exc: BaseException) -> UserError | None:
    """The `UserError` for an exception that reached the command line, or None (a bug)."""
    from alchemiser.dsl.errors import StrategyError
    from alchemiser.settings import ConfigError

    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, ConfigError):
        error = UserError(str(exc))
        error.exit_code = EXIT_CONFIG
        return error
    if isinstance(exc, StrategyError):
        return StrategyFileError(str(exc))
    return None
