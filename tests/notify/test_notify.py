"""Notifications reach a real SMTP server and a real webhook receiver, started here.

The books are written by the ledger itself (two runs on two trading days), the
failing strategy's error comes from the real parser, and logs are captured to
prove a dead channel is reported and no secret is ever written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs
from structlog.typing import EventDict

from alchemiser.books import ledger
from alchemiser.books.planner import Intent
from alchemiser.notify import notify_problem, notify_run
from alchemiser.run.daily import RunReport
from alchemiser.run.evaluation import Outcome, parse_strategies
from alchemiser.settings import (
    EmailConfig,
    NotificationsConfig,
    Settings,
    StrategyConfig,
    WebhookConfig,
)
from tests.books.harness import Broker, execute_run, strategy

D = Decimal
PASSWORD = "smtp-pass-do-not-log"
HOOK_SECRET = "Bearer hook-secret-do-not-log"
DAY_ONE, DAY_TWO = date(2026, 11, 27), date(2026, 11, 30)
BROKEN = '(defsymphony "broken" {}\n  (weight-equal [(asset "SPY")\n'


@pytest.fixture
def logs() -> Iterator[list[EventDict]]:
    """Every event at any level (another test may have left logging at `warning`)."""
    before = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**before)


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(message_from_bytes(envelope.original_content or b""))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password.decode() == PASSWORD)


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Mailbox, int]]:
    box = Mailbox()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(box, authenticator=box.authenticate, auth_require_tls=False),
        "127.0.0.1",
        0,
    )
    yield box, server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@dataclass
class Hook:
    posts: list[dict[str, Any]] = field(default_factory=list)
    headers: list[str | None] = field(default_factory=list)


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Hook, int]]:
    hook = Hook()

    async def receive(request: web.Request) -> web.Response:
        hook.posts.append(await request.json())
        hook.headers.append(request.headers.get("Authorization"))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks/abc123", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield hook, port
    await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notifying(db_url: str, smtp_port: int, hook_port: int) -> Settings:
    plain = make_url(db_url).set(drivername="postgresql").render_as_string(False)
    email = EmailConfig(
        host="127.0.0.1",
        port=smtp_port,
        security="none",
        username="trader",
        password=SecretStr(PASSWORD),
        from_address="alchemiser@example.org",
        to=("trader@example.org", "partner@example.org"),
        timeout_seconds=5,
    )
    hook = WebhookConfig(
        url=SecretStr(f"http://127.0.0.1:{hook_port}/hooks/abc123"),
        header_value=SecretStr(HOOK_SECRET),
        timeout_seconds=5,
    )
    return Settings(
        database_url=SecretStr(plain),
        notifications=NotificationsConfig(email=email, webhook=hook),
    )


async def two_days(engine: AsyncEngine, tmp_path: Path) -> RunReport:
    """Day one: books a and b buy SPY at 100. Day two, marked at 110: a sells 5 at 110."""
    async with engine.begin() as conn:
        await ledger.deposit(conn, D(100_000))
        await ledger.sync_strategies(
            conn, [strategy("a", "5000"), strategy("b", "5000")], D(100_000)
        )
        broker = Broker(D(100_000))
        one = await ledger.start_run(conn, DAY_ONE, "daily")
        await ledger.record_prices(conn, {"SPY": D(100)}, run_id=one.id)
        buys = [
            Intent("a", "SPY", "buy", D(10), D(100), "rebalance"),
            Intent("b", "SPY", "buy", D(20), D(100), "rebalance"),
        ]
        await execute_run(conn, one.id, buys, broker, fractionable={"SPY"})
        two = await ledger.start_run(conn, DAY_TWO, "daily")
        await ledger.record_prices(conn, {"SPY": D(110)}, run_id=two.id)
        sells = [Intent("a", "SPY", "sell", D(5), D(110), "rebalance")]
        await execute_run(conn, two.id, sells, broker, fractionable={"SPY"})
    broken = tmp_path / "broken.clj"
    broken.write_text(BROKEN)
    parsed = await parse_strategies([StrategyConfig(id="broken", file=broken, allocation=D(0))])
    outcomes = {
        "a": Outcome({"SPY": 0.5}),
        "b": Outcome({"SPY": 1.0}),
        **{sid: Outcome(error=e) for sid, e in parsed.errors.items()},
    }
    return RunReport(DAY_TWO, run_id=two.id, status="completed", outcomes=outcomes)


async def test_the_run_summary_reaches_the_mailbox_and_the_webhook(
    engine: AsyncEngine,
    db_url: str,
    smtp: tuple[Mailbox, int],
    webhook: tuple[Hook, int],
    tmp_path: Path,
    logs: list[EventDict],
) -> None:
    report = await two_days(engine, tmp_path)
    (box, smtp_port), (hook, hook_port) = smtp, webhook
    await notify_run(notifying(db_url, smtp_port, hook_port), report)

    error = report.outcomes["broken"].error
    # The failing strategy's file:line:column, from the parser.
    assert error and error.startswith(f"{tmp_path / 'broken.clj'}:2:17: ")
    [mail] = box.messages
    assert box.logins == [("trader", PASSWORD)]
    assert mail["To"] == "trader@example.org, partner@example.org"
    assert "completed" in mail["Subject"] and "2026-11-30" in mail["Subject"]
    body = mail.get_payload(decode=True).decode()
    assert error in body  # the failing strategy, with its line:column
    # a: carried 10 from 100 to 110 (+100), sold 5 at 110; b: 20 carried, +200.
    assert "  a: 1 trade(s) 550.00, value 5,100.00, today's P&L +100.00" in body
    assert "  b: 0 trade(s) 0.00, value 5,200.00, today's P&L +200.00" in body

    [post] = hook.posts
    assert hook.headers == [HOOK_SECRET]
    assert (post["kind"], post["trading_day"], post["status"]) == ("run", "2026-11-30", "completed")
    strategies = {s["id"]: s for s in post["strategies"]}
    assert strategies["broken"]["outcome"] == "skipped" and strategies["broken"]["error"] == error
    assert strategies["a"] == {
        "id": "a",
        "outcome": "evaluated",
        "error": None,
        "weights": {"SPY": 0.5},
    }
    books = {b["id"]: b for b in post["books"]}
    assert books["a"] == {
        "id": "a",
        "trades": 1,
        "traded_value": "550",
        "value": "5100",
        "pnl_today": "100",
    }
    assert books["b"] == {
        "id": "b",
        "trades": 0,
        "traded_value": "0",
        "value": "5200",
        "pnl_today": "200",
    }
    assert {e["channel"] for e in logs if e["event"] == "notification sent"} == {"email", "webhook"}


async def test_the_first_days_pnl_of_a_carried_position_is_null(
    engine: AsyncEngine,
    db_url: str,
    webhook: tuple[Hook, int],
    tmp_path: Path,
) -> None:
    report = await two_days(engine, tmp_path)
    report.trading_day = DAY_ONE  # as if no earlier day had marks
    hook, port = webhook
    await notify_run(notifying(db_url, closed_port(), port), report)
    books = {b["id"]: b for b in hook.posts[0]["books"]}
    assert books["b"]["pnl_today"] is None


async def test_a_dead_channel_is_logged_and_the_other_still_delivers_without_secrets(
    engine: AsyncEngine,
    db_url: str,
    smtp: tuple[Mailbox, int],
    webhook: tuple[Hook, int],
    tmp_path: Path,
    logs: list[EventDict],
) -> None:
    report = await two_days(engine, tmp_path)
    (box, smtp_port), (hook, hook_port) = smtp, webhook
    dead_mail = notifying(db_url, closed_port(), hook_port)
    dead_hook = notifying(db_url, smtp_port, closed_port())
    await notify_run(dead_mail, report)  # never raises
    await notify_problem(dead_hook, "run missed", "the run window passed at 16:00")
    assert len(hook.posts) == 1 and hook.posts[0]["books"] is not None
    [mail] = box.messages
    assert mail["Subject"] == "alchemiser: run missed"
    assert "the run window passed" in mail.get_payload(decode=True).decode()
    failed = [e for e in logs if e["event"] == "notification failed"]
    assert [e["channel"] for e in failed] == ["email", "webhook"]
    assert all(e["log_level"] == "warning" and e["error"] for e in failed)
    written = json.dumps(logs, default=str)
    for secret in (PASSWORD, HOOK_SECRET, "abc123"):
        assert secret not in written


async def test_a_wrong_password_is_reported_without_the_password(
    engine: AsyncEngine,
    db_url: str,
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
    logs: list[EventDict],
) -> None:
    box, port = smtp
    settings = notifying(db_url, port, closed_port())
    email = settings.notifications.email
    assert email is not None
    wrong = email.model_copy(
        update={"password": SecretStr("wrong-pass-secret"), "timeout_seconds": 1}
    )
    settings = settings.model_copy(
        update={"notifications": NotificationsConfig(email=wrong, webhook=None)}
    )
    await notify_problem(settings, "run failed", "the gate refused")
    assert box.messages == [] and box.logins == [("trader", "wrong-pass-secret")]
    [failed] = [e for e in logs if e["event"] == "notification failed"]
    assert failed["channel"] == "email" and failed["error"].startswith("SMTP")
    assert "wrong-pass-secret" not in json.dumps(logs, default=str)


async def test_without_channels_nothing_is_read_or_sent(logs: list[EventDict]) -> None:
    unreachable = Settings(database_url=SecretStr(f"postgresql://u:p@127.0.0.1:{closed_port()}/x"))
    await notify_run(unreachable, RunReport(DAY_TWO, run_id=1, status="completed"))
    await notify_problem(unreachable, "run missed", "after the window")
    assert logs == []
