"""Many rows in one statement, as one array per column (`unnest`), for the hot paths.

A walk step and a fill are booked in batches; written with SQLAlchemy's
constructs, building and rendering the statements cost more of the event loop
than Postgres spends running them. Here a statement is a constant text, its rows
go as a few typed arrays (asyncpg encodes them in binary), and its size does not
change its text: one prepared statement whatever the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import TextClause, text

Columns = Sequence[tuple[str, str]]  # (name, Postgres type)


def names(columns: Columns) -> str:
    return ", ".join(name for name, _ in columns)


def rows_of(columns: Columns) -> str:
    """`SELECT name, ... FROM unnest(CAST(:name AS type[]), ...)`: the arrays as rows, in order.

    In order: rows inserted from it take their identities in the order given.
    """
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns)
    return (
        f"SELECT {names(columns)} FROM unnest({arrays}) WITH ORDINALITY"
        f" AS v({names(columns)}, row_number) ORDER BY row_number"
    )


def insert_rows(table: str, columns: Columns) -> str:
    """`INSERT INTO table (name, ...)` of the arrays' rows, in order."""
    return f"INSERT INTO {table} ({names(columns)}) {rows_of(columns)}"


def statement(sql: str) -> TextClause:
    return text(" ".join(sql.split()))


def arrays(columns: Columns, rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The parameters of `rows_of(columns)`: each column's values, in row order."""
    result: dict[str, list[Any]] = {name: [] for name, _ in columns}
    for row in rows:
        for name, values in result.items():
            values.append(row[name])
    return result
