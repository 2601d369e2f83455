"""sd_notify over a real unix datagram socket the test binds (as systemd does)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from alchemiser.daemon.systemd import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield sock, path


def test_each_notification_is_one_datagram(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.send("READY=1")
    notifier.send("STOPPING=1")
    assert [sock.recv(64), sock.recv(64)] == [b"READY=1", b"STOPPING=1"]


def test_an_abstract_socket_name_starts_with_a_nul() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0alchemiser-test-notify")
        sock.settimeout(5)
        Notifier({"NOTIFY_SOCKET": "@alchemiser-test-notify"}).send("READY=1")
        assert sock.recv(64) == b"READY=1"


async def test_the_watchdog_pings_from_the_loop_at_half_the_period(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    assert notifier.watchdog_seconds == pytest.approx(0.05)
    task = asyncio.create_task(notifier.watchdog())
    try:
        pings = [await asyncio.to_thread(sock.recv, 64) for _ in range(3)]
    finally:
        task.cancel()
    assert pings == [b"WATCHDOG=1"] * 3


async def test_without_notify_socket_nothing_is_sent_and_the_watchdog_ends() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.send("READY=1")  # no socket: a no-op, not an error
    await asyncio.wait_for(notifier.watchdog(), 1)


def test_a_vanished_socket_is_logged_not_raised(tmp_path: Path) -> None:
    with capture_logs() as logs:
        Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).send("WATCHDOG=1")
    assert [e["event"] for e in logs] == ["systemd notification failed"]
