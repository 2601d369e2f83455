"""Notifications: a run's summary, or a problem, to every configured channel.

Channels are e-mail over SMTP and a JSON webhook (`[notifications]` in the
settings). Neither function ever raises: a channel that fails is logged (its
kind and the error, never a password, header secret or webhook path) and the
others are still tried, so a notification can never fail a run.

A book's P&L of the day is what its positions and today's trades made since the
previous trading day's marks: Σ (value now − value carried in at those marks −
cost of today's buys + proceeds of today's sells). Fees and dividends are not in
it (they post later). When a position was carried in but no earlier mark prices
it (the first run), it is null.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections import defaultdict
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db
from alchemiser.logging import get_logger
from alchemiser.run.command import summary
from alchemiser.run.daily import RunReport
from alchemiser.settings import EmailConfig, Settings, WebhookConfig

log = get_logger(__name__)

SUBJECT_PREFIX = "alchemiser"
# Reading the books for the summary may not hold a notification up longer than this.
BOOKS_TIMEOUT_SECONDS = 30.0
MASK = "***"


@dataclass(frozen=True)
class BookLine:
    strategy_id: str
    trades: int
    traded_value: Decimal
    value: Decimal
    pnl_today: Decimal | None


async def notify_run(settings: Settings, report: RunReport) -> None:
    """The run's summary (strategies, per-book trades, value and P&L) to every channel."""
    if not _channels(settings):
        return
    try:
        books: list[BookLine] | None = await asyncio.wait_for(
            _books(settings, report), BOOKS_TIMEOUT_SECONDS
        )
    except Exception as exc:  # the summary still goes out, without the books
        log.warning("notification: books unreadable", error=type(exc).__name__)
        books = None
    subject = f"{SUBJECT_PREFIX}: run {report.trading_day} {report.status}"
    body = "\n".join([*summary(report), *_book_text(books)])
    await _send(settings, subject, body, _run_json(report, books))


async def notify_problem(settings: Settings, subject: str, detail: str) -> None:
    """A failed or missed run (or any problem a person must see) to every channel."""
    payload = {"kind": "problem", "subject": subject, "detail": detail}
    await _send(settings, f"{SUBJECT_PREFIX}: {subject}", detail, payload)


# --- the summary -----------------------------------------------------------------------------


def _book_text(books: Sequence[BookLine] | None) -> Iterator[str]:
    if books is None:
        yield "books: unavailable (the ledger could not be read)"
        return
    yield "books:"
    for b in books:
        pnl = "n/a (no earlier prices)" if b.pnl_today is None else f"{b.pnl_today:+,.2f}"
        yield (
            f"  {b.strategy_id}: {b.trades} trade(s) {b.traded_value:,.2f}, "
            f"value {b.value:,.2f}, today's P&L {pnl}"
        )


def _run_json(report: RunReport, books: Sequence[BookLine] | None) -> dict[str, Any]:
    rec = report.reconciliation
    return {
        "kind": "run",
        "trading_day": report.trading_day.isoformat(),
        "run_id": report.run_id,
        "status": report.status,
        "resumed": report.resumed,
        "strategies": [
            {
                "id": sid,
                "outcome": "skipped" if o.error else "evaluated",
                "error": o.error,
                "weights": o.weights,
            }
            for sid, o in sorted(report.outcomes.items())
        ],
        "books": None
        if books is None
        else [
            {
                "id": b.strategy_id,
                "trades": b.trades,
                "traded_value": _exact(b.traded_value),
                "value": _exact(b.value),
                "pnl_today": None if b.pnl_today is None else _exact(b.pnl_today),
            }
            for b in books
        ],
        "reconciled": None if rec is None else rec.ok,
    }


def _exact(amount: Decimal) -> str:
    """Money as an exact string without trailing zeros (550, not 550.000000000)."""
    return f"{amount.normalize():f}"


async def _books(settings: Settings, report: RunReport) -> list[BookLine]:
    url = await asyncio.to_thread(db.database_url, settings)  # may start the embedded server
    engine = db.create_engine(url)
    try:
        return await book_lines(engine, report)
    finally:
        await engine.dispose()


async def book_lines(engine: AsyncEngine, report: RunReport) -> list[BookLine]:
    """Each book's trades in the run, its value now, and its P&L of the day."""
    params = {"run": report.run_id, "day": report.trading_day}
    async with engine.connect() as conn:
        values = (await conn.execute(text(_VALUES))).all()
        fills = (await conn.execute(text(_FILLS), params)).all()
        held = (await conn.execute(text(_HELD))).all()
        now: dict[str, Decimal] = {s: p for s, p in await conn.execute(text(_LAST_PRICES))}
        before: dict[str, Decimal] = {
            s: p for s, p in await conn.execute(text(_EARLIER_MARKS), params)
        }
    trades: dict[str, list[Any]] = defaultdict(list)
    for row in fills:
        trades[row.strategy_id].append(row)
    holdings: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for sid, symbol, quantity in held:
        holdings[sid][symbol] = quantity
    return [
        BookLine(
            sid,
            len(trades[sid]),
            sum((f.quantity * f.price for f in trades[sid]), Decimal(0)),
            value,
            _pnl_today(holdings[sid], trades[sid], now, before),
        )
        for sid, value in values
    ]


def _pnl_today(
    holdings: dict[str, Decimal],
    fills: Sequence[Any],
    now: dict[str, Decimal],
    before: dict[str, Decimal],
) -> Decimal | None:
    pnl = Decimal(0)
    carried = dict(holdings)
    for f in fills:
        sign = 1 if f.side == "buy" else -1
        carried[f.symbol] = carried.get(f.symbol, Decimal(0)) - sign * f.quantity
        pnl -= sign * f.quantity * f.price  # cash: buys cost, sells bring
    for symbol in carried.keys() | holdings.keys():
        quantity, brought = holdings.get(symbol, Decimal(0)), carried.get(symbol, Decimal(0))
        if (quantity and symbol not in now) or (brought and symbol not in before):
            return None
        pnl += quantity * now.get(symbol, Decimal(0)) - brought * before.get(symbol, Decimal(0))
    return pnl


_VALUES = "SELECT strategy_id, total_value FROM book_value ORDER BY strategy_id"
_FILLS = "SELECT strategy_id, symbol, side, quantity, price FROM book_fills WHERE run_id = :run"
_HELD = "SELECT strategy_id, symbol, quantity FROM book_holdings WHERE quantity <> 0"
_LAST_PRICES = "SELECT symbol, price FROM latest_prices"
# Each symbol's newest mark of an earlier trading day: what the day's P&L starts from.
_EARLIER_MARKS = """
    SELECT DISTINCT ON (m.symbol) m.symbol, m.price
    FROM marks m JOIN runs r ON r.id = m.run_id
    WHERE r.trading_day < :day
    ORDER BY m.symbol, r.trading_day DESC, m.as_of DESC"""


# --- the channels ----------------------------------------------------------------------------


async def _send(settings: Settings, subject: str, body: str, payload: dict[str, Any]) -> None:
    config = settings.notifications
    sends: dict[str, Awaitable[None]] = {}
    if config.email is not None:
        sends["email"] = _email(config.email, subject, body)
    if config.webhook is not None:
        sends["webhook"] = _webhook(config.webhook, payload)
    results = await asyncio.gather(*sends.values(), return_exceptions=True)
    for channel, result in zip(sends, results, strict=True):
        if isinstance(result, BaseException):
            log.warning(
                "notification failed",
                channel=channel,
                error=_scrub(f"{type(result).__name__}: {result}", _secrets(settings)),
            )
        else:
            log.info("notification sent", channel=channel)


def _channels(settings: Settings) -> bool:
    config = settings.notifications
    return config.email is not None or config.webhook is not None


async def _email(config: EmailConfig, subject: str, body: str) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.from_address
    message["To"] = ", ".join(config.to)
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(domain=config.from_address.rpartition("@")[2] or None)
    message.set_content(body)
    # smtplib blocks: off the loop, each socket operation bounded by the timeout.
    await asyncio.wait_for(
        asyncio.to_thread(_smtp_send, config, message), config.timeout_seconds * 2
    )


def _smtp_send(config: EmailConfig, message: EmailMessage) -> None:
    timeout = config.timeout_seconds
    smtp = (
        smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=_tls())
        if config.security == "ssl"
        else smtplib.SMTP(config.host, config.port, timeout=timeout)
    )
    with smtp:
        if config.security == "starttls":
            smtp.starttls(context=_tls())
        if config.username:
            password = config.password.get_secret_value() if config.password else ""
            smtp.login(config.username, password)
        smtp.send_message(message)


def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


async def _webhook(config: WebhookConfig, payload: dict[str, Any]) -> None:
    headers = {}
    if config.header_value is not None:
        headers[config.header_name] = config.header_value.get_secret_value()
    timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(config.url.get_secret_value(), json=payload, headers=headers) as response,
    ):
        if response.status >= 300:
            # Only the host: a webhook's path often is its secret (Slack, Discord).
            host = urlsplit(config.url.get_secret_value()).netloc
            raise RuntimeError(f"{host} answered HTTP {response.status}")


def _secrets(settings: Settings) -> list[str]:
    config = settings.notifications
    found = []
    if config.email is not None and config.email.password is not None:
        found.append(config.email.password.get_secret_value())
    if config.webhook is not None:
        if config.webhook.header_value is not None:
            found.append(config.webhook.header_value.get_secret_value())
        path = urlsplit(config.webhook.url.get_secret_value())
        found += [p for p in (path.path, path.query) if len(p) > 1]
    return [s for s in found if s]


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        message = message.replace(secret, MASK)
    return message
