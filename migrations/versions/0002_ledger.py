"""Ledger: strategies and books, runs, signals, intents, orders, executions, fills,
FIFO lots, cash entries, marks, reconciliations, and the psql reporting views.

Revision ID: 0002_ledger
Revises: 0001_foundation
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_ledger"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The most recent known price per held symbol: the latest mark (a run's reference
# price) or the latest execution, whichever is newer.
LATEST_PRICES = """
CREATE VIEW latest_prices AS
SELECT s.symbol,
       CASE WHEN m.as_of IS NULL OR e.executed_at > m.as_of THEN e.price ELSE m.price END AS price,
       CASE WHEN m.as_of IS NULL OR e.executed_at > m.as_of THEN e.executed_at ELSE m.as_of END AS as_of
FROM (SELECT DISTINCT symbol FROM book_holdings) s
LEFT JOIN LATERAL (
    SELECT price, as_of FROM marks WHERE marks.symbol = s.symbol ORDER BY as_of DESC LIMIT 1
) m ON true
LEFT JOIN LATERAL (
    SELECT price, executed_at FROM executions x
    WHERE x.symbol = s.symbol ORDER BY executed_at DESC LIMIT 1
) e ON true
"""

BOOK_POSITIONS = """
CREATE VIEW book_positions AS
SELECT h.strategy_id, h.symbol, h.quantity, h.cost_basis,
       round(h.cost_basis / h.quantity, 6) AS average_cost,
       p.price AS last_price, p.as_of AS priced_at,
       h.quantity * p.price AS market_value,
       h.quantity * p.price - h.cost_basis AS unrealised_pnl
FROM book_holdings h
LEFT JOIN latest_prices p USING (symbol)
WHERE h.quantity > 0
"""

BOOK_VALUE = """
CREATE VIEW book_value AS
WITH valued AS (
    SELECT s.id AS strategy_id, s.state, s.allocation, s.cash, s.net_funding,
           COALESCE(v.positions_value, 0) AS positions_value
    FROM strategies s
    LEFT JOIN (
        SELECT strategy_id, sum(market_value) AS positions_value
        FROM book_positions GROUP BY strategy_id
    ) v ON v.strategy_id = s.id
)
SELECT strategy_id, state, allocation, cash, positions_value,
       cash + positions_value AS total_value,
       net_funding,
       cash + positions_value - net_funding AS pnl,
       round((cash + positions_value) / NULLIF(sum(cash + positions_value) OVER (), 0), 6)
           AS account_share
FROM valued
"""

BOOK_PNL = """
CREATE VIEW book_pnl AS
SELECT h.strategy_id, h.symbol, h.quantity, h.cost_basis, p.price AS last_price,
       h.realised_pnl,
       CASE WHEN h.quantity = 0 THEN 0 ELSE h.quantity * p.price - h.cost_basis END
           AS unrealised_pnl,
       h.realised_pnl
           + CASE WHEN h.quantity = 0 THEN 0 ELSE h.quantity * p.price - h.cost_basis END
           AS total_pnl
FROM book_holdings h
LEFT JOIN latest_prices p USING (symbol)
"""

TRADE_HISTORY = """
CREATE VIEW trade_history AS
SELECT f.id AS fill_id, f.filled_at, f.strategy_id, f.symbol, f.side, f.quantity, f.price,
       f.quantity * f.price AS amount,
       e.kind AS execution_kind, f.execution_id, f.run_id, o.client_order_id
FROM book_fills f
JOIN executions e ON e.execution_id = f.execution_id
LEFT JOIN broker_orders o ON o.id = e.broker_order_id
"""

RUN_SUMMARY = """
CREATE VIEW run_summary AS
SELECT r.id AS run_id, r.trading_day, r.kind, r.status, r.price_mode,
       r.started_at, r.finished_at, r.finished_at - r.started_at AS duration,
       r.strategies, r.failed_strategies, r.intents, r.broker_orders,
       r.book_fills, r.traded_value,
       rc.ok AS reconciled,
       r.error
FROM runs r
LEFT JOIN LATERAL (
    SELECT ok FROM reconciliations c WHERE c.run_id = r.id ORDER BY c.id DESC LIMIT 1
) rc ON true
"""

# Created in this order, dropped in reverse (later views read earlier ones).
VIEWS = {
    "latest_prices": LATEST_PRICES,
    "book_positions": BOOK_POSITIONS,
    "book_value": BOOK_VALUE,
    "book_pnl": BOOK_PNL,
    "trade_history": TRADE_HISTORY,
    "run_summary": RUN_SUMMARY,
}


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("trading_day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("price_mode", sa.String(length=32), nullable=True),
        sa.Column("input_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "timings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("strategies", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failed_strategies", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("intents", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("broker_orders", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("book_fills", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("traded_value", sa.Numeric(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "status IN ('started', 'planned', 'executing', 'completed', 'failed')",
            name=op.f("ck_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("trading_day", "kind", name=op.f("uq_runs_trading_day")),
    )
    op.create_table(
        "strategies",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("file", sa.Text(), nullable=True),
        sa.Column(
            "allocation",
            sa.Numeric(precision=12, scale=9),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column("capital", sa.Numeric(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cash", sa.Numeric(), server_default=sa.text("0"), nullable=False),
        sa.Column("net_funding", sa.Numeric(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('active', 'halted', 'removed', 'system')", name=op.f("ck_strategies_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategies")),
    )
    op.create_table(
        "book_holdings",
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("cost_basis", sa.Numeric(), nullable=False),
        sa.Column("realised_pnl", sa.Numeric(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_book_holdings_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint("strategy_id", "symbol", name=op.f("pk_book_holdings")),
    )
    op.create_table(
        "broker_orders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("alpaca_order_id", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("order_type", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("limit_price", sa.Numeric(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column(
            "filled_quantity",
            sa.Numeric(precision=28, scale=9),
            server_default=sa.text("0"),
            nullable=False,
        ),
        sa.Column(
            "submitted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_broker_orders_side")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_broker_orders_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broker_orders")),
        sa.UniqueConstraint("alpaca_order_id", name=op.f("uq_broker_orders_alpaca_order_id")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_broker_orders_client_order_id")),
    )
    op.create_index(op.f("ix_broker_orders_run_id"), "broker_orders", ["run_id"], unique=False)
    op.create_table(
        "intents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("planned_quantity", sa.Numeric(precision=28, scale=9), nullable=True),
        sa.Column("reference_price", sa.Numeric(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_intents_side")),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_intents_quantity_not_negative")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_intents_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_intents_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intents")),
        sa.UniqueConstraint(
            "run_id", "strategy_id", "symbol", "side", name=op.f("uq_intents_run_id")
        ),
    )
    op.create_table(
        "marks",
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_marks_run_id_runs")),
        sa.PrimaryKeyConstraint("symbol", "as_of", name=op.f("pk_marks")),
    )
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "checked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("tolerance", sa.Numeric(), nullable=False),
        sa.Column("books_cash", sa.Numeric(), nullable=False),
        sa.Column("broker_cash", sa.Numeric(), nullable=False),
        sa.Column("differences", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_reconciliations_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliations")),
    )
    op.create_index(op.f("ix_reconciliations_run_id"), "reconciliations", ["run_id"], unique=False)
    op.create_table(
        "signals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("allocation", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("trace", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_signals_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_signals_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint("run_id", "strategy_id", name=op.f("uq_signals_run_id")),
    )
    op.create_table(
        "executions",
        sa.Column("execution_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("broker_order_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=True),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column(
            "executed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('broker', 'cross', 'opening')", name=op.f("ck_executions_kind")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_executions_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["broker_order_id"],
            ["broker_orders.id"],
            name=op.f("fk_executions_broker_order_id_broker_orders"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_executions_run_id_runs")),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_executions")),
    )
    op.create_index(
        op.f("ix_executions_broker_order_id"), "executions", ["broker_order_id"], unique=False
    )
    op.create_index(op.f("ix_executions_run_id"), "executions", ["run_id"], unique=False)
    op.create_index(
        "ix_executions_symbol_executed_at", "executions", ["symbol", "executed_at"], unique=False
    )
    op.create_table(
        "book_fills",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("execution_id", sa.String(length=128), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("filled_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_book_fills_side")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_book_fills_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.execution_id"],
            name=op.f("fk_book_fills_execution_id_executions"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_book_fills_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_book_fills_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_book_fills")),
        sa.UniqueConstraint("execution_id", "strategy_id", name=op.f("uq_book_fills_execution_id")),
    )
    op.create_index(op.f("ix_book_fills_filled_at"), "book_fills", ["filled_at"], unique=False)
    op.create_index(op.f("ix_book_fills_run_id"), "book_fills", ["run_id"], unique=False)
    op.create_index(
        "ix_book_fills_strategy_symbol", "book_fills", ["strategy_id", "symbol"], unique=False
    )
    op.create_table(
        "cash_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("book_fill_id", sa.BigInteger(), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("counterparty", sa.String(length=100), nullable=True),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('deposit', 'withdrawal', 'funding', 'transfer', 'fill', 'dividend', 'fee')",
            name=op.f("ck_cash_entries_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["book_fill_id"],
            ["book_fills.id"],
            name=op.f("fk_cash_entries_book_fill_id_book_fills"),
        ),
        sa.ForeignKeyConstraint(
            ["counterparty"],
            ["strategies.id"],
            name=op.f("fk_cash_entries_counterparty_strategies"),
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_cash_entries_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_cash_entries_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_entries")),
    )
    op.create_index(
        op.f("ix_cash_entries_book_fill_id"), "cash_entries", ["book_fill_id"], unique=False
    )
    op.create_index("ix_cash_entries_strategy_id", "cash_entries", ["strategy_id"], unique=False)
    op.create_table(
        "lots",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("book_fill_id", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("remaining", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("cost_price", sa.Numeric(), nullable=False),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= quantity", name=op.f("ck_lots_remaining_in_range")
        ),
        sa.ForeignKeyConstraint(
            ["book_fill_id"], ["book_fills.id"], name=op.f("fk_lots_book_fill_id_book_fills")
        ),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_lots_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
    )
    op.create_index(op.f("ix_lots_book_fill_id"), "lots", ["book_fill_id"], unique=False)
    op.create_index(
        "ix_lots_open",
        "lots",
        ["strategy_id", "symbol", "id"],
        unique=False,
        postgresql_where=sa.text("remaining > 0"),
    )
    op.create_table(
        "lot_closures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("lot_id", sa.BigInteger(), nullable=False),
        sa.Column("book_fill_id", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("cost_price", sa.Numeric(), nullable=False),
        sa.Column("sale_price", sa.Numeric(), nullable=False),
        sa.Column("realised_pnl", sa.Numeric(), nullable=False),
        sa.ForeignKeyConstraint(
            ["book_fill_id"],
            ["book_fills.id"],
            name=op.f("fk_lot_closures_book_fill_id_book_fills"),
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_lot_closures_lot_id_lots")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_closures")),
    )
    op.create_index(
        op.f("ix_lot_closures_book_fill_id"), "lot_closures", ["book_fill_id"], unique=False
    )
    op.create_index(op.f("ix_lot_closures_lot_id"), "lot_closures", ["lot_id"], unique=False)
    # The book of whatever no strategy holds: the account's remainder.
    op.execute("INSERT INTO strategies (id, state) VALUES ('unallocated', 'system')")
    for definition in VIEWS.values():
        op.execute(definition)


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index(op.f("ix_lot_closures_lot_id"), table_name="lot_closures")
    op.drop_index(op.f("ix_lot_closures_book_fill_id"), table_name="lot_closures")
    op.drop_table("lot_closures")
    op.drop_index("ix_lots_open", table_name="lots", postgresql_where=sa.text("remaining > 0"))
    op.drop_index(op.f("ix_lots_book_fill_id"), table_name="lots")
    op.drop_table("lots")
    op.drop_index("ix_cash_entries_strategy_id", table_name="cash_entries")
    op.drop_index(op.f("ix_cash_entries_book_fill_id"), table_name="cash_entries")
    op.drop_table("cash_entries")
    op.drop_index("ix_book_fills_strategy_symbol", table_name="book_fills")
    op.drop_index(op.f("ix_book_fills_run_id"), table_name="book_fills")
    op.drop_index(op.f("ix_book_fills_filled_at"), table_name="book_fills")
    op.drop_table("book_fills")
    op.drop_index("ix_executions_symbol_executed_at", table_name="executions")
    op.drop_index(op.f("ix_executions_run_id"), table_name="executions")
    op.drop_index(op.f("ix_executions_broker_order_id"), table_name="executions")
    op.drop_table("executions")
    op.drop_table("signals")
    op.drop_index(op.f("ix_reconciliations_run_id"), table_name="reconciliations")
    op.drop_table("reconciliations")
    op.drop_table("marks")
    op.drop_table("intents")
    op.drop_index(op.f("ix_broker_orders_run_id"), table_name="broker_orders")
    op.drop_table("broker_orders")
    op.drop_table("book_holdings")
    op.drop_table("strategies")
    op.drop_table("runs")
